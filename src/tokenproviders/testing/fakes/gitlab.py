"""A fake GitLab REST API v4 that python-gitlab accepts."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from ._server import (
    AuthResult,
    FakeIssue,
    FakeTracker,
    FakeUser,
    RecordedRequest,
    Response,
    bearer_token,
    json_response,
    segment,
    utc_timestamp,
)

__all__ = ["FakeGitLab"]

_USER = re.compile(r"/api/v4/user/?")
_PROJECT = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/?")
_ISSUES = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/issues/?")
_ISSUE = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/issues/(?P<iid>[0-9]+)/?")
_NOTES = re.compile(r"/api/v4/projects/(?P<project>[^/]+)/issues/(?P<iid>[0-9]+)/notes/?")


class FakeGitLab(FakeTracker):
    """A fake GitLab serving ``/api/v4``.

    Routes: ``GET /user``, ``GET /projects/{id}``, ``POST``/``GET /projects/{id}/issues`` (201 with
    ``id``, ``iid``, ``project_id``, ``web_url``, ``author``), ``GET /projects/{id}/issues/{iid}``,
    ``POST``/``GET /projects/{id}/issues/{iid}/notes`` (201).  ``{id}`` is either the URL-encoded
    path (``grp%2Fsub%2Fproj``; any path exists and gets a numeric id on first use) or the numeric id
    of a project seen before (unknown numbers get 404 ``Project Not Found``).

    Credentials: ``add_user(login, token=t)`` accepts ``PRIVATE-TOKEN: <t>`` and
    ``Authorization: Bearer <t>``.  Anything else gets 401 ``{"message": "401 Unauthorized"}``
    (GitLab does not tell a wrong token from a missing one on authenticated routes).  ``iid``s come
    from one counter shared by all projects, so :attr:`issues` is keyed by ``str(iid)``.
    """

    type_name = "gitlab"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._project_ids: dict[str, int] = {}

    def add_project(self, path: str) -> int:
        """Make sure project ``path`` exists and return its numeric id."""
        with self._lock:
            if path not in self._project_ids:
                self._project_ids[path] = self._next("project", start=1000)
            return self._project_ids[path]

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        token = request.header("PRIVATE-TOKEN")
        if token is None:
            token = bearer_token(request, "Bearer")
        if token is None:
            return AuthResult(presented=request.header("Authorization") is not None)
        return AuthResult(presented=True, user=self._user_by_token(token))

    # ------------------------------------------------------------------ shapes

    def _error_response(self, status: int, message: str) -> Response:
        return json_response(status, {"message": f"{status} {message}"})

    def _user_json(self, user: FakeUser) -> dict[str, Any]:
        return {
            "id": user.numeric_id,
            "username": user.login,
            "name": user.display_name,
            "email": user.mail,
            "public_email": user.mail,
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.url}/{user.login}",
        }

    def _author_json(self, login: str) -> dict[str, Any]:
        user = self.users.get(login)
        if user is None:
            return {"username": login, "name": login, "state": "active", "web_url": f"{self.url}/{login}"}
        return self._user_json(user)

    def _project_json(self, path: str, project_id: int) -> dict[str, Any]:
        return {
            "id": project_id,
            "name": path.rsplit("/", 1)[-1],
            "path": path.rsplit("/", 1)[-1],
            "path_with_namespace": path,
            "web_url": f"{self.url}/{path}",
            "issues_enabled": True,
        }

    def _issue_json(self, issue: FakeIssue) -> dict[str, Any]:
        project_id = self._project_ids[issue.project]
        return {
            "id": int(issue.id),
            "iid": int(issue.key),
            "project_id": project_id,
            "title": issue.title,
            "description": issue.body,
            "state": "opened",
            "labels": list(issue.labels),
            "author": self._author_json(issue.reporter),
            "issue_type": issue.issue_type or "issue",
            "type": (issue.issue_type or "issue").upper(),
            "user_notes_count": len(issue.comments),
            "web_url": issue.url,
            "references": {
                "short": f"#{issue.key}",
                "relative": f"#{issue.key}",
                "full": f"{issue.project}#{issue.key}",
            },
            "created_at": utc_timestamp(),
            "updated_at": utc_timestamp(),
            "_links": {
                "self": f"{self.url}/api/v4/projects/{project_id}/issues/{issue.key}",
                "notes": f"{self.url}/api/v4/projects/{project_id}/issues/{issue.key}/notes",
                "project": f"{self.url}/api/v4/projects/{project_id}",
            },
        }

    def _note_json(self, issue: FakeIssue, note_id: str, author: str, text: str) -> dict[str, Any]:
        return {
            "id": int(note_id),
            "type": None,
            "body": text,
            "author": self._author_json(author),
            "system": False,
            "noteable_id": int(issue.id),
            "noteable_type": "Issue",
            "noteable_iid": int(issue.key),
            "project_id": self._project_ids[issue.project],
            "created_at": utc_timestamp(),
            "updated_at": utc_timestamp(),
        }

    # ------------------------------------------------------------------ routes

    def _project_path(self, raw: str) -> str | None:
        decoded = segment(raw)
        if decoded.isdigit():
            with self._lock:
                for path, project_id in self._project_ids.items():
                    if project_id == int(decoded):
                        return path
            return None
        self.add_project(decoded)
        return decoded

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        path = request.raw_path
        is_api = path.startswith("/api/v4/")
        if is_api and auth.rejected:
            return self._error_response(401, "Unauthorized")
        user = auth.user
        known = any(p.fullmatch(path) for p in (_USER, _PROJECT, _ISSUES, _ISSUE, _NOTES))
        if known and user is None:
            return self._error_response(401, "Unauthorized")

        if _USER.fullmatch(path):
            assert user is not None
            if request.method != "GET":
                return _not_found_route()
            return json_response(200, self._user_json(user))

        if match := _NOTES.fullmatch(path):
            assert user is not None
            issue = self._project_issue(match)
            if isinstance(issue, Response):
                return issue
            if request.method == "GET":
                return json_response(200, [self._note_json(issue, c.id, c.author, c.text) for c in issue.comments])
            if request.method != "POST":
                return _not_found_route()
            data = _json_or_form(request)
            text = data.get("body")
            if not isinstance(text, str) or not text:
                return json_response(400, {"error": "body is missing"})
            comment = self._add_comment(issue, user.login, text)
            return json_response(201, self._note_json(issue, comment.id, user.login, text))

        if match := _ISSUE.fullmatch(path):
            issue = self._project_issue(match)
            if isinstance(issue, Response):
                return issue
            if request.method != "GET":
                return _not_found_route()
            return json_response(200, self._issue_json(issue))

        if match := _ISSUES.fullmatch(path):
            assert user is not None
            project = self._project_path(match["project"])
            if project is None:
                return self._error_response(404, "Project Not Found")
            if request.method == "GET":
                return json_response(
                    200, [self._issue_json(i) for i in list(self.issues.values()) if i.project == project]
                )
            if request.method != "POST":
                return _not_found_route()
            return self._create_issue(request, user, project)

        if match := _PROJECT.fullmatch(path):
            project = self._project_path(match["project"])
            if project is None:
                return self._error_response(404, "Project Not Found")
            if request.method != "GET":
                return _not_found_route()
            return json_response(200, self._project_json(project, self._project_ids[project]))

        return _not_found_route()

    def _project_issue(self, match: re.Match[str]) -> FakeIssue | Response:
        project = self._project_path(match["project"])
        if project is None:
            return self._error_response(404, "Project Not Found")
        issue = self._get_issue(match["iid"])
        if issue is None or issue.project != project:
            return self._error_response(404, "Not found")
        return issue

    def _create_issue(self, request: RecordedRequest, user: FakeUser, project: str) -> Response:
        data = _json_or_form(request)
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            return json_response(400, {"error": "title is missing"})
        raw_labels = data.get("labels") or []
        if isinstance(raw_labels, str):
            labels = [label.strip() for label in raw_labels.split(",") if label.strip()]
        else:
            labels = [str(label) for label in raw_labels]
        description = data.get("description")
        issue_type = data.get("issue_type")
        iid = self._next("issue")
        issue = FakeIssue(
            id=str(self._next("issue-id", start=5001)),
            key=str(iid),
            title=title,
            body=description if isinstance(description, str) else "",
            reporter=user.login,
            project=project,
            labels=labels,
            issue_type=issue_type if isinstance(issue_type, str) else "issue",
            url=f"{self.url}/{project}/-/issues/{iid}",
            payload=data,
        )
        self._store_issue(str(iid), issue)
        return json_response(201, self._issue_json(issue))


def _not_found_route() -> Response:
    return json_response(404, {"error": "404 Not Found"})


def _json_or_form(request: RecordedRequest) -> dict[str, Any]:
    """Decode a JSON body, or a form/query-string body, into a dict."""
    content_type = (request.header("Content-Type") or "").lower()
    if "json" in content_type:
        try:
            data = request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    pairs = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    pairs.update({k: v for k, v in request.query.items() if k not in pairs})
    return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}
