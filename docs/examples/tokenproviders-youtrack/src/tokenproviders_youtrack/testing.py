"""A fake YouTrack REST API for tests, built on tokenproviders' fake-tracker base class.

Routes (under ``/api``): ``GET users/me``, ``POST issues`` (``{"project": {"id": ...},
"summary": ...}``), ``GET issues/{id}``, ``POST issues/{id}/comments``. Credentials:
``add_user(login, token=t)`` accepts ``Authorization: Bearer <t>``; anything else is 401.
Issues are keyed by their readable id (``DEMO-1``) in ``issues``.
"""

from __future__ import annotations

import re

from tokenproviders.testing import (
    ANONYMOUS,
    AuthResult,
    FakeIssue,
    FakeTracker,
    RecordedRequest,
    Response,
    bearer_token,
    json_response,
)

__all__ = ["FakeYouTrack"]

_ME = re.compile(r"/api/users/me/?")
_ISSUES = re.compile(r"/api/issues/?")
_ISSUE = re.compile(r"/api/issues/(?P<id>[^/]+)/?")
_COMMENTS = re.compile(r"/api/issues/(?P<id>[^/]+)/comments/?")


# [start fake]
class FakeYouTrack(FakeTracker):
    """A fake YouTrack: every project id exists and is shown as ``DEMO``."""

    type_name = "youtrack"

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        if request.header("Authorization") is None:
            return ANONYMOUS
        return AuthResult(presented=True, user=self._user_by_token(bearer_token(request, "Bearer")))

    def _error_response(self, status: int, message: str) -> Response:
        return json_response(status, {"error": message, "error_description": message})

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        user = auth.user
        if user is None:
            return self._error_response(401, "Unauthorized")
        path = request.path
        if _ME.fullmatch(path) and request.method == "GET":
            return json_response(
                200, {"id": f"1-{user.numeric_id}", "login": user.login, "fullName": user.display_name,
                      "email": user.mail, "$type": "Me"}
            )
        if _ISSUES.fullmatch(path) and request.method == "POST":
            data = request.json() or {}
            summary = data.get("summary")
            if not (data.get("project") or {}).get("id") or not summary:
                return self._error_response(400, "project and summary are required")
            number = self._next("issue")
            readable = f"DEMO-{number}"
            issue = FakeIssue(id=f"2-{number}", key=readable, title=summary, body=data.get("description") or "",
                              reporter=user.login, project=data["project"]["id"],
                              url=f"{self.url}/issue/{readable}", payload=data)
            self._store_issue(readable, issue)
            return json_response(200, {"id": issue.id, "idReadable": readable, "$type": "Issue"})
        if match := _COMMENTS.fullmatch(path):
            target = self._get_issue(match["id"])
            text = (request.json() or {}).get("text")
            if target is None or request.method != "POST" or not text:
                return self._error_response(404 if target is None else 400, "no such issue or no text")
            comment = self._add_comment(target, user.login, text)
            return json_response(200, {"id": comment.id, "$type": "IssueComment"})
        if (match := _ISSUE.fullmatch(path)) and (found := self._get_issue(match["id"])) is not None:
            return json_response(200, {"id": found.id, "idReadable": found.key, "summary": found.title})
        return self._error_response(404, "Not Found")


# [end fake]
