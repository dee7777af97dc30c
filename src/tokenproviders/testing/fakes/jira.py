"""A fake Jira (Cloud or Server/Data Center) REST API v2 that the ``jira`` library accepts."""

from __future__ import annotations

import hashlib
import http
import json
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
    bearer_token,
    json_response,
    segment,
    utc_timestamp,
)

__all__ = ["FakeJira"]

_API = r"/rest/api/(?P<v>2|3|latest)"
_SERVER_INFO = re.compile(_API + r"/serverInfo/?")
_MYSELF = re.compile(_API + r"/myself/?")
_ISSUE_CREATE = re.compile(_API + r"/issue/?")
_ISSUE = re.compile(_API + r"/issue/(?P<key>[^/]+)/?")
_COMMENT = re.compile(_API + r"/issue/(?P<key>[^/]+)/comment/?")
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*")

_NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


class FakeJira(FakeTracker):
    """A fake Jira serving ``/rest/api/2`` (also ``3`` and ``latest``).

    Routes: ``GET serverInfo`` (anonymous allowed), ``GET myself``, ``POST issue`` (201 with
    ``id``/``key``/``self``), ``GET issue/{key}``, ``POST``/``GET issue/{key}/comment``.

    Credentials, as registered with :meth:`add_user`:

    * ``add_user(login, username=email, token=api_token)`` — Jira Cloud: ``Authorization: Basic
      base64(email:api_token)``.
    * ``add_user(login, username=user, password=pw)`` — Server basic auth with a password.
    * ``add_user(login, token=pat)`` (no ``username``) — Server/Data Center personal access token:
      ``Authorization: Bearer <pat>``.

    Credentials that match nobody get 401 on every route (with ``X-Seraph-LoginReason:
    AUTHENTICATED_FAILED``); requests without credentials may read ``serverInfo`` only.
    ``deployment_type`` ("Server" or "Cloud") and ``version`` shape the ``serverInfo`` answer.
    Issue keys are ``<PROJECT>-<n>`` numbered per project; :attr:`issues` is keyed by issue key.
    """

    type_name = "jira"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        deployment_type: str = "Server",
        version: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.deployment_type = deployment_type
        if version is None:
            version = (1001, 0, 0) if deployment_type == "Cloud" else (9, 12, 2)
        self.version = version
        self._projects: dict[str, str] = {}  # key -> id

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        if request.header("Authorization") is None:
            return ANONYMOUS
        basic = basic_credentials(request)
        if basic is not None:
            username, secret = basic
            user = self._find_user(lambda u: u.username == username and secret in {u.token, u.password} - {None})
            return AuthResult(presented=True, user=user)
        token = bearer_token(request, "Bearer")
        if token is not None:
            user = self._find_user(lambda u: u.username is None and u.token == token)
            return AuthResult(presented=True, user=user)
        return AuthResult(presented=True)

    # ------------------------------------------------------------------ shapes

    def _error_response(self, status: int, message: str) -> Response:
        return json_response(status, {"errorMessages": [message], "errors": {}})

    def _account_id(self, user: FakeUser) -> str:
        return "5b10" + hashlib.sha256(user.login.encode("utf-8")).hexdigest()[:20]

    def _user_json(self, user: FakeUser, version: str) -> dict[str, Any]:
        account_id = self._account_id(user)
        return {
            "self": f"{self.url}/rest/api/{version}/user?accountId={account_id}",
            "accountId": account_id,
            "key": user.login,
            "name": user.login,
            "emailAddress": user.mail,
            "displayName": user.display_name,
            "active": True,
            "timeZone": "UTC",
            "accountType": "atlassian",
        }

    def _issue_json(self, issue: FakeIssue, version: str) -> dict[str, Any]:
        reporter = self.users.get(issue.reporter)
        reporter_json = self._user_json(reporter, version) if reporter else {"name": issue.reporter}
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.url}/rest/api/{version}/issue/{issue.id}",
            "fields": {
                "summary": issue.title,
                "description": issue.body,
                "labels": list(issue.labels),
                "issuetype": {"name": issue.issue_type},
                "project": {"key": issue.project, "id": self._projects.get(issue.project)},
                "reporter": reporter_json,
                "creator": reporter_json,
                "comment": {
                    "comments": [self._comment_json(issue, c.id, c.author, c.text, version) for c in issue.comments],
                    "total": len(issue.comments),
                    "maxResults": len(issue.comments),
                    "startAt": 0,
                },
            },
        }

    def _comment_json(self, issue: FakeIssue, comment_id: str, author: str, text: str, version: str) -> dict[str, Any]:
        user = self.users.get(author)
        author_json = self._user_json(user, version) if user else {"name": author}
        return {
            "self": f"{self.url}/rest/api/{version}/issue/{issue.id}/comment/{comment_id}",
            "id": comment_id,
            "author": author_json,
            "updateAuthor": author_json,
            "body": text,
            "created": utc_timestamp(),
            "updated": utc_timestamp(),
        }

    def _find_issue(self, key_or_id: str) -> FakeIssue | None:
        issue = self._get_issue(key_or_id)
        if issue is not None:
            return issue
        with self._lock:
            for candidate in self.issues.values():
                if candidate.id == key_or_id:
                    return candidate
        return None

    # ------------------------------------------------------------------ routes

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        path = request.raw_path
        if auth.rejected:
            response = self._error_response(401, _NOT_AUTHENTICATED)
            response.headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            response.headers["WWW-Authenticate"] = 'OAuth realm="fake-jira"'
            return response

        if match := _SERVER_INFO.fullmatch(path):
            if request.method != "GET":
                return self._error_response(405, "Method Not Allowed")
            return json_response(200, self._server_info())

        user = auth.user
        if (
            _MYSELF.fullmatch(path)
            or _ISSUE_CREATE.fullmatch(path)
            or _ISSUE.fullmatch(path)
            or _COMMENT.fullmatch(path)
        ) and user is None:
            return self._error_response(401, _NOT_AUTHENTICATED)

        if match := _MYSELF.fullmatch(path):
            assert user is not None
            if request.method != "GET":
                return self._error_response(405, "Method Not Allowed")
            return json_response(200, self._user_json(user, match["v"]))

        if match := _ISSUE_CREATE.fullmatch(path):
            assert user is not None
            if request.method != "POST":
                return self._error_response(405, "Method Not Allowed")
            return self._create_issue(request, user, match["v"])

        if match := _COMMENT.fullmatch(path):
            assert user is not None
            issue = self._find_issue(segment(match["key"]))
            if issue is None:
                return self._error_response(404, "Issue does not exist or you do not have permission to see it.")
            if request.method == "GET":
                comments = [self._comment_json(issue, c.id, c.author, c.text, match["v"]) for c in issue.comments]
                return json_response(
                    200,
                    {"comments": comments, "total": len(comments), "startAt": 0, "maxResults": len(comments)},
                )
            if request.method != "POST":
                return self._error_response(405, "Method Not Allowed")
            data = request.json()
            body = data.get("body") if isinstance(data, dict) else None
            if body is None or body == "":
                return json_response(
                    400, {"errorMessages": [], "errors": {"comment": "Comment body can not be empty!"}}
                )
            text = body if isinstance(body, str) else _json_text(body)
            comment = self._add_comment(issue, user.login, text)
            return json_response(201, self._comment_json(issue, comment.id, user.login, text, match["v"]))

        if match := _ISSUE.fullmatch(path):
            if request.method != "GET":
                return self._error_response(405, "Method Not Allowed")
            issue = self._find_issue(segment(match["key"]))
            if issue is None:
                return self._error_response(404, "Issue does not exist or you do not have permission to see it.")
            return json_response(200, self._issue_json(issue, match["v"]))

        return self._error_response(404, http.HTTPStatus.NOT_FOUND.phrase)

    def _server_info(self) -> dict[str, Any]:
        major, minor, patch = self.version
        return {
            "baseUrl": self.url,
            "version": f"{major}.{minor}.{patch}",
            "versionNumbers": [major, minor, patch],
            "deploymentType": self.deployment_type,
            "buildNumber": 100000 + major,
            "buildDate": "2024-01-01T00:00:00.000+0000",
            "serverTime": utc_timestamp(),
            "scmInfo": "fake",
            "serverTitle": "Fake Jira",
        }

    def _create_issue(self, request: RecordedRequest, user: FakeUser, version: str) -> Response:
        try:
            data = request.json()
        except ValueError:
            return json_response(400, {"errorMessages": ["Unexpected character in JSON body"], "errors": {}})
        fields = data.get("fields") if isinstance(data, dict) else None
        if not isinstance(fields, dict):
            return json_response(400, {"errorMessages": ["Can not create issue without fields"], "errors": {}})
        errors: dict[str, str] = {}
        project_key = self._project_key(fields.get("project"))
        if project_key is None:
            errors["project"] = "valid project is required"
        issuetype = fields.get("issuetype")
        issue_type: str | None = None
        if isinstance(issuetype, dict) and (issuetype.get("name") or issuetype.get("id")):
            issue_type = str(issuetype.get("name") or issuetype.get("id"))
        else:
            errors["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        labels = fields.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            errors["labels"] = "data was not an array"
            labels = []
        else:
            for label in labels:
                if " " in label:
                    errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        if errors:
            return json_response(400, {"errorMessages": [], "errors": errors})
        assert project_key is not None and isinstance(summary, str)
        description = fields.get("description")
        if description is None:
            body = ""
        elif isinstance(description, str):
            body = description
        else:
            body = _json_text(description)
        issue_id = str(self._next("issue", start=10001))
        key = f"{project_key}-{self._next('issue:' + project_key)}"
        issue = FakeIssue(
            id=issue_id,
            key=key,
            title=summary,
            body=body,
            reporter=user.login,
            project=project_key,
            labels=list(labels),
            issue_type=issue_type,
            url=f"{self.url}/browse/{key}",
            payload=data,
        )
        self._store_issue(key, issue)
        return json_response(
            201, {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/{version}/issue/{issue_id}"}
        )

    def _project_key(self, project: Any) -> str | None:
        if not isinstance(project, dict):
            return None
        key = project.get("key")
        if isinstance(key, str) and _PROJECT_KEY.fullmatch(key):
            with self._lock:
                if key not in self._projects:
                    self._projects[key] = str(self._next("project", start=10000))
            return key
        project_id = project.get("id")
        if project_id is not None:
            with self._lock:
                for known_key, known_id in self._projects.items():
                    if known_id == str(project_id):
                        return known_key
        return None


def _json_text(value: Any) -> str:
    """Render a non-string (e.g. Atlassian Document Format) value as stable JSON text."""
    return json.dumps(value, sort_keys=True)
