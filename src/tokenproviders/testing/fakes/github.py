"""A fake GitHub / GitHub Enterprise REST API that PyGithub accepts."""

from __future__ import annotations

import re
import zlib
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

__all__ = ["FakeGitHub"]

_PREFIX = re.compile(r"(?P<prefix>/api/v3)(?P<rest>/.*)?")
_USER = re.compile(r"/user/?")
_REPO = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/?")
_ISSUES = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/?")
_ISSUE = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>[0-9]+)/?")
_COMMENTS = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>[0-9]+)/comments/?")

_DOCS = "https://docs.github.com/rest"


class FakeGitHub(FakeTracker):
    """A fake GitHub API served both at the root (github.com style) and under ``/api/v3``
    (GitHub Enterprise Server style).

    Routes: ``GET /user``, ``GET /repos/{o}/{r}``, ``POST /repos/{o}/{r}/issues`` (201),
    ``GET /repos/{o}/{r}/issues/{n}``, ``POST``/``GET /repos/{o}/{r}/issues/{n}/comments`` (201).
    Every URL in a reply (``url``, ``comments_url`` ...) points back at this server with the prefix
    the request used, so PyGithub follows them.

    Credentials: ``add_user(login, token=t)`` accepts ``Authorization: token <t>``, ``Bearer <t>``
    and ``Basic base64(<anything>:<t>)``.  A token that matches nobody gets 401 ``{"message": "Bad
    credentials"}`` on every route; a request without credentials gets 401 ``"Requires
    authentication"`` on the routes that need a user.  Any repository exists.  Issue numbers come
    from one counter shared by all repositories, so :attr:`issues` is keyed by ``str(number)``.
    """

    type_name = "github"

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        if request.header("Authorization") is None:
            return ANONYMOUS
        token = bearer_token(request, "token", "Bearer")
        if token is None:
            basic = basic_credentials(request)
            token = basic[1] if basic is not None else None
        return AuthResult(presented=True, user=self._user_by_token(token))

    # ------------------------------------------------------------------ shapes

    def _error_response(self, status: int, message: str) -> Response:
        return json_response(status, {"message": message, "documentation_url": _DOCS, "status": str(status)})

    def _user_json(self, user: FakeUser, base: str) -> dict[str, Any]:
        return {
            "login": user.login,
            "id": user.numeric_id,
            "node_id": f"U_{user.numeric_id}",
            "type": "User",
            "site_admin": False,
            "name": user.display_name,
            "email": user.mail,
            "url": f"{base}/users/{user.login}",
            "html_url": f"{self.url}/{user.login}",
        }

    def _author_json(self, login: str, base: str) -> dict[str, Any]:
        user = self.users.get(login)
        if user is None:
            return {"login": login, "type": "User"}
        return self._user_json(user, base)

    def _repo_json(self, owner: str, repo: str, base: str) -> dict[str, Any]:
        return {
            "id": zlib.crc32(f"{owner}/{repo}".encode()) % 10_000_000,
            "name": repo,
            "full_name": f"{owner}/{repo}",
            "owner": {"login": owner, "type": "User", "url": f"{base}/users/{owner}"},
            "private": False,
            "has_issues": True,
            "url": f"{base}/repos/{owner}/{repo}",
            "html_url": f"{self.url}/{owner}/{repo}",
            "issues_url": f"{base}/repos/{owner}/{repo}/issues{{/number}}",
        }

    def _issue_json(self, issue: FakeIssue, base: str) -> dict[str, Any]:
        api_url = f"{base}/repos/{issue.project}/issues/{issue.key}"
        return {
            "id": int(issue.id),
            "node_id": f"I_{issue.id}",
            "number": int(issue.key),
            "title": issue.title,
            "body": issue.body,
            "state": "open",
            "locked": False,
            "user": self._author_json(issue.reporter, base),
            "labels": [
                {"name": name, "color": "ededed", "url": f"{base}/repos/{issue.project}/labels/{name}"}
                for name in issue.labels
            ],
            "type": {"name": issue.issue_type} if issue.issue_type else None,
            "comments": len(issue.comments),
            "url": api_url,
            "repository_url": f"{base}/repos/{issue.project}",
            "comments_url": f"{api_url}/comments",
            "html_url": issue.url,
            "created_at": utc_timestamp(),
            "updated_at": utc_timestamp(),
        }

    def _comment_json(self, issue: FakeIssue, comment_id: str, author: str, text: str, base: str) -> dict[str, Any]:
        return {
            "id": int(comment_id),
            "node_id": f"IC_{comment_id}",
            "body": text,
            "user": self._author_json(author, base),
            "url": f"{base}/repos/{issue.project}/issues/comments/{comment_id}",
            "html_url": f"{issue.url}#issuecomment-{comment_id}",
            "issue_url": f"{base}/repos/{issue.project}/issues/{issue.key}",
            "created_at": utc_timestamp(),
            "updated_at": utc_timestamp(),
        }

    # ------------------------------------------------------------------ routes

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        base = self.url
        path = request.raw_path
        if prefixed := _PREFIX.fullmatch(path):
            base = self.url + prefixed["prefix"]
            path = prefixed["rest"] or "/"
        if auth.rejected:
            return self._error_response(401, "Bad credentials")

        user = auth.user
        needs_user = _USER.fullmatch(path) or (
            request.method != "GET" and (_ISSUES.fullmatch(path) or _COMMENTS.fullmatch(path))
        )
        if needs_user and user is None:
            return self._error_response(401, "Requires authentication")

        if _USER.fullmatch(path):
            assert user is not None
            if request.method != "GET":
                return self._error_response(404, "Not Found")
            return json_response(200, self._user_json(user, base))

        if match := _ISSUES.fullmatch(path):
            owner, repo = segment(match["owner"]), segment(match["repo"])
            if request.method == "POST":
                assert user is not None
                return self._create_issue(request, user, owner, repo, base)
            if request.method == "GET":
                issues = [
                    self._issue_json(i, base) for i in list(self.issues.values()) if i.project == f"{owner}/{repo}"
                ]
                return json_response(200, issues)
            return self._error_response(404, "Not Found")

        if match := _COMMENTS.fullmatch(path):
            issue = self._repo_issue(match)
            if issue is None:
                return self._error_response(404, "Not Found")
            if request.method == "GET":
                return json_response(
                    200, [self._comment_json(issue, c.id, c.author, c.text, base) for c in issue.comments]
                )
            if request.method != "POST":
                return self._error_response(404, "Not Found")
            assert user is not None
            data = request.json()
            text = data.get("body") if isinstance(data, dict) else None
            if not isinstance(text, str) or not text:
                return self._validation_failed("IssueComment", "body")
            comment = self._add_comment(issue, user.login, text)
            return json_response(201, self._comment_json(issue, comment.id, user.login, text, base))

        if match := _ISSUE.fullmatch(path):
            issue = self._repo_issue(match)
            if issue is None or request.method != "GET":
                return self._error_response(404, "Not Found")
            return json_response(200, self._issue_json(issue, base))

        if match := _REPO.fullmatch(path):
            if request.method != "GET":
                return self._error_response(404, "Not Found")
            return json_response(200, self._repo_json(segment(match["owner"]), segment(match["repo"]), base))

        return self._error_response(404, "Not Found")

    def _repo_issue(self, match: re.Match[str]) -> FakeIssue | None:
        issue = self._get_issue(match["number"])
        if issue is None or issue.project != f"{segment(match['owner'])}/{segment(match['repo'])}":
            return None
        return issue

    def _validation_failed(self, resource: str, field_name: str) -> Response:
        return json_response(
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": resource, "code": "missing_field", "field": field_name}],
                "documentation_url": _DOCS,
                "status": "422",
            },
        )

    def _create_issue(self, request: RecordedRequest, user: FakeUser, owner: str, repo: str, base: str) -> Response:
        try:
            data = request.json()
        except ValueError:
            return self._error_response(400, "Problems parsing JSON")
        if not isinstance(data, dict):
            return self._error_response(400, "Problems parsing JSON")
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            return self._validation_failed("Issue", "title")
        raw_labels = data.get("labels") or []
        labels = [
            label if isinstance(label, str) else str(label.get("name", ""))
            for label in raw_labels
            if isinstance(label, (str, dict))
        ]
        body = data.get("body")
        issue_type = data.get("type")
        number = self._next("issue")
        issue = FakeIssue(
            id=str(self._next("issue-id", start=1_000_001)),
            key=str(number),
            title=title,
            body=body if isinstance(body, str) else "",
            reporter=user.login,
            project=f"{owner}/{repo}",
            labels=labels,
            issue_type=issue_type if isinstance(issue_type, str) else None,
            url=f"{self.url}/{owner}/{repo}/issues/{number}",
            payload=data,
        )
        self._store_issue(str(number), issue)
        return json_response(201, self._issue_json(issue, base))
