"""A fake Redmine REST API (JSON format) that python-redmine accepts."""

from __future__ import annotations

import re
from typing import Any

from ._server import (
    ANONYMOUS,
    AuthResult,
    FakeIssue,
    FakeTracker,
    FakeUser,
    RecordedRequest,
    Response,
    basic_credentials,
    json_response,
    segment,
    utc_timestamp,
)

__all__ = ["FakeRedmine"]

_CURRENT_USER = re.compile(r"/users/current\.json")
_ISSUES = re.compile(r"/issues\.json")
_PROJECT_ISSUES = re.compile(r"/projects/(?P<project>[^/]+)/issues\.json")
_ISSUE = re.compile(r"/issues/(?P<id>[0-9]+)\.json")
_PROJECT = re.compile(r"/projects/(?P<project>[^/]+)\.json")

_TRACKERS = {1: "Bug", 2: "Feature", 3: "Support"}


class FakeRedmine(FakeTracker):
    """A fake Redmine answering the JSON REST API.

    Routes: ``GET /users/current.json``, ``POST /issues.json`` and ``POST
    /projects/{id}/issues.json`` (201 ``{"issue": {..., "author": {"id", "name"}}}``),
    ``GET /issues/{id}.json`` (``?include=journals`` lists the notes), ``PUT /issues/{id}.json``
    (204; a non-empty ``notes`` becomes a comment), ``GET /projects/{id}.json``.  Projects are
    referred to by identifier (created on first use) or by the numeric id they were given.

    Credentials:

    * ``add_user(login, token=key)`` — ``X-Redmine-API-Key: <key>``, the ``key`` query parameter, or
      HTTP Basic with the key as user name (any password), as Redmine accepts.
    * ``add_user(login, username=u, password=p)`` — HTTP Basic ``u:p``.

    Like Redmine, requests whose credentials are missing or wrong are treated as anonymous, and
    anonymous users get 401 with an empty body and ``WWW-Authenticate: Basic realm="Redmine API"``
    on every route (the fake's projects are private).  Unknown routes get an empty 404.  Validation
    errors are 422 ``{"errors": [...]}``.  :attr:`issues` is keyed by ``str(id)``.
    """

    type_name = "redmine"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._projects: dict[str, int] = {}

    def add_project(self, identifier: str) -> int:
        """Make sure project ``identifier`` exists and return its numeric id."""
        with self._lock:
            if identifier not in self._projects:
                self._projects[identifier] = self._next("project")
            return self._projects[identifier]

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        key = request.header("X-Redmine-API-Key") or request.query_param("key")
        if key is not None:
            return AuthResult(presented=True, user=self._user_by_token(key))
        basic = basic_credentials(request)
        if basic is not None:
            username, password = basic
            user = self._user_by_password(username, password) or self._user_by_token(username)
            return AuthResult(presented=True, user=user)
        if request.header("Authorization") is not None:
            return AuthResult(presented=True)
        return ANONYMOUS

    # ------------------------------------------------------------------ shapes

    def _error_response(self, status: int, message: str) -> Response:
        if status in (401, 404):
            headers = {"WWW-Authenticate": 'Basic realm="Redmine API"'} if status == 401 else {}
            return Response(status=status, body=b"", headers=headers)
        return json_response(status, {"errors": [message]})

    @staticmethod
    def _names(user: FakeUser) -> tuple[str, str]:
        first, _, last = user.display_name.partition(" ")
        return first, last

    def _ref(self, login: str) -> dict[str, Any]:
        user = self.users.get(login)
        if user is None:
            return {"id": 0, "name": login}
        return {"id": user.numeric_id, "name": user.display_name}

    def _project_ref(self, identifier: str) -> dict[str, Any]:
        return {"id": self._projects[identifier], "name": identifier}

    def _issue_json(self, issue: FakeIssue, with_journals: bool) -> dict[str, Any]:
        tracker_name = issue.issue_type or "Bug"
        tracker_id = next((k for k, v in _TRACKERS.items() if v == tracker_name), 1)
        result: dict[str, Any] = {
            "id": int(issue.id),
            "project": self._project_ref(issue.project),
            "tracker": {"id": tracker_id, "name": tracker_name},
            "status": {"id": 1, "name": "New", "is_closed": False},
            "priority": {"id": 2, "name": "Normal"},
            "author": self._ref(issue.reporter),
            "subject": issue.title,
            "description": issue.body,
            "start_date": utc_timestamp()[:10],
            "done_ratio": 0,
            "is_private": False,
            "created_on": utc_timestamp(),
            "updated_on": utc_timestamp(),
        }
        if with_journals:
            result["journals"] = [
                {
                    "id": int(c.id),
                    "user": self._ref(c.author),
                    "notes": c.text,
                    "created_on": utc_timestamp(),
                    "private_notes": False,
                    "details": [],
                }
                for c in issue.comments
            ]
        return result

    # ------------------------------------------------------------------ routes

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        path = request.raw_path
        user = auth.user
        routes = (_CURRENT_USER, _ISSUES, _PROJECT_ISSUES, _ISSUE, _PROJECT)
        if not any(p.fullmatch(path) for p in routes):
            return self._error_response(404, "Not Found")
        if user is None:
            return self._error_response(401, "Unauthorized")

        if _CURRENT_USER.fullmatch(path):
            if request.method != "GET":
                return self._error_response(404, "Not Found")
            first, last = self._names(user)
            body: dict[str, Any] = {
                "id": user.numeric_id,
                "login": user.username or user.login,
                "admin": False,
                "firstname": first,
                "lastname": last,
                "mail": user.mail,
                "created_on": utc_timestamp(),
                "last_login_on": utc_timestamp(),
            }
            if user.token is not None:
                body["api_key"] = user.token
            return json_response(200, {"user": body})

        if _ISSUES.fullmatch(path):
            if request.method != "POST":
                return json_response(200, {"issues": [], "total_count": 0, "offset": 0, "limit": 25})
            return self._create_issue(request, user, None)

        if match := _PROJECT_ISSUES.fullmatch(path):
            if request.method != "POST":
                return json_response(200, {"issues": [], "total_count": 0, "offset": 0, "limit": 25})
            project = self._project_identifier(segment(match["project"]))
            if project is None:
                return self._error_response(404, "Not Found")
            return self._create_issue(request, user, project)

        if match := _ISSUE.fullmatch(path):
            issue = self._get_issue(match["id"])
            if issue is None:
                return self._error_response(404, "Not Found")
            if request.method == "GET":
                includes = ",".join(request.query.get("include", [])).split(",")
                return json_response(200, {"issue": self._issue_json(issue, "journals" in includes)})
            if request.method != "PUT":
                return self._error_response(404, "Not Found")
            return self._update_issue(request, user, issue)

        if match := _PROJECT.fullmatch(path):
            project = self._project_identifier(segment(match["project"]))
            if project is None or request.method != "GET":
                return self._error_response(404, "Not Found")
            return json_response(
                200,
                {
                    "project": {
                        "id": self._projects[project],
                        "name": project,
                        "identifier": project,
                        "status": 1,
                        "is_public": False,
                    }
                },
            )
        return self._error_response(404, "Not Found")  # pragma: no cover - routes checked above

    def _project_identifier(self, value: Any) -> str | None:
        """Resolve a numeric id (must exist) or an identifier (created on first use)."""
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            number = int(value)
            with self._lock:
                for identifier, project_id in self._projects.items():
                    if project_id == number:
                        return identifier
            return None
        if isinstance(value, str) and value:
            self.add_project(value)
            return value
        return None

    def _issue_fields(self, request: RecordedRequest) -> dict[str, Any] | None:
        try:
            data = request.json()
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("issue"), dict):
            return None
        fields: dict[str, Any] = data["issue"]
        return fields

    def _create_issue(self, request: RecordedRequest, user: FakeUser, project: str | None) -> Response:
        fields = self._issue_fields(request)
        if fields is None:
            return json_response(422, {"errors": ["Invalid request body"]})
        errors: list[str] = []
        if project is None:
            project = self._project_identifier(fields.get("project_id"))
            if project is None:
                errors.append("Project cannot be blank")
        subject = fields.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            errors.append("Subject cannot be blank")
        tracker_id = fields.get("tracker_id", 1)
        try:
            tracker = _TRACKERS[int(tracker_id)]
        except (KeyError, TypeError, ValueError):
            errors.append("Tracker is not included in the list")
            tracker = "Bug"
        if errors:
            return json_response(422, {"errors": errors})
        assert project is not None and isinstance(subject, str)
        description = fields.get("description")
        issue_id = str(self._next("issue"))
        issue = FakeIssue(
            id=issue_id,
            key=issue_id,
            title=subject,
            body=description if isinstance(description, str) else "",
            reporter=user.login,
            project=project,
            labels=[],
            issue_type=tracker,
            url=f"{self.url}/issues/{issue_id}",
            payload=request.json(),
        )
        self._store_issue(issue_id, issue)
        return json_response(201, {"issue": self._issue_json(issue, False)})

    def _update_issue(self, request: RecordedRequest, user: FakeUser, issue: FakeIssue) -> Response:
        fields = self._issue_fields(request)
        if fields is None:
            return json_response(422, {"errors": ["Invalid request body"]})
        subject = fields.get("subject")
        if subject is not None and (not isinstance(subject, str) or not subject.strip()):
            return json_response(422, {"errors": ["Subject cannot be blank"]})
        with self._lock:
            if isinstance(subject, str):
                issue.title = subject
            if isinstance(fields.get("description"), str):
                issue.body = fields["description"]
        notes = fields.get("notes")
        if isinstance(notes, str) and notes:
            self._add_comment(issue, user.login, notes)
        return Response(status=204, body=b"", content_type=None)
