"""A fake Bugzilla 5.x REST API (under ``/rest``) that python-bugzilla accepts."""

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
    json_response,
    segment,
    utc_timestamp,
)

__all__ = ["FakeBugzilla"]

_VERSION = re.compile(r"/rest/version/?")
_EXTENSIONS = re.compile(r"/rest/extensions/?")
_WHOAMI = re.compile(r"/rest/whoami/?")
_USERS = re.compile(r"/rest/user/?")
_BUGS = re.compile(r"/rest/bug/?")
_BUG = re.compile(r"/rest/bug/(?P<id>[^/]+)/?")
_COMMENTS = re.compile(r"/rest/bug/(?P<id>[^/]+)/comment/?")

_DOCS = "https://bugzilla.readthedocs.io/en/latest/api/"
#: Bugzilla error codes and the HTTP status its REST layer maps them to (WebService::Constants).
_API_KEY_NOT_VALID = (306, 400, "The API key you specified is invalid. Please check that you typed it correctly.")
_LOGIN_REQUIRED = (410, 401, "You must log in before using this part of Bugzilla.")
_INVALID_LOGIN = (300, 401, "The username or password you entered is not valid.")


class FakeBugzilla(FakeTracker):
    """A fake Bugzilla 5.x serving the REST API under ``/rest``.

    Routes: ``GET /rest/version`` and ``GET /rest/extensions`` (login-exempt, as in Bugzilla),
    ``GET /rest/whoami`` (Bugzilla 5.1+), ``GET /rest/user?ids=..&names=..`` (what
    ``Bugzilla.logged_in`` calls), ``POST /rest/bug`` (``{"id": n}``), ``GET /rest/bug/{id}``,
    ``PUT /rest/bug/{id}`` (a ``comment.body`` becomes a comment), ``POST /rest/bug/{id}/comment``
    (201 ``{"id": comment_id}``), ``GET /rest/bug/{id}/comment``.

    Credentials:

    * ``add_user(login, token=api_key)`` — the ``Bugzilla_api_key`` (or ``api_key``) query parameter
      or the ``X-BUGZILLA-API-KEY`` header (Bugzilla 5.1+); ``login`` is the Bugzilla login name
      (usually an e-mail address) that ``whoami`` reports as ``name``.
    * ``add_user(login, username=u, password=p)`` — ``Bugzilla_login``/``Bugzilla_password`` query
      parameters.

    Errors follow Bugzilla's REST layer: body ``{"error": true, "code": N, "message": ...,
    "documentation": ...}``; an invalid API key is code 306 with HTTP **400** (it is not in
    Bugzilla's 401 map), a wrong password code 300 with 401, and calling a method that needs a login
    without credentials code 410 with 401.  ``version``/``extensions`` never check credentials.
    Unknown routes are code 32614 with 404.  :attr:`issues` is keyed by ``str(bug id)``.
    """

    type_name = "bugzilla"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, version: str = "5.2") -> None:
        super().__init__(host, port)
        self.version = version

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        key = (
            request.query_param("Bugzilla_api_key")
            or request.query_param("api_key")
            or request.header("X-BUGZILLA-API-KEY")
        )
        if key is not None:
            return AuthResult(presented=True, user=self._user_by_token(key))
        login = request.query_param("Bugzilla_login") or request.query_param("login")
        password = request.query_param("Bugzilla_password") or request.query_param("password")
        if login is not None and password is not None:
            return AuthResult(presented=True, user=self._user_by_password(login, password))
        return ANONYMOUS

    # ------------------------------------------------------------------ shapes

    def _error_response(self, status: int, message: str) -> Response:
        code = {404: 32614, 401: 410}.get(status, 32000)
        return self._bz_error(code, status, message)

    @staticmethod
    def _bz_error(code: int, status: int, message: str) -> Response:
        return json_response(status, {"error": True, "code": code, "message": message, "documentation": _DOCS})

    def _user_detail(self, login: str) -> dict[str, Any]:
        user = self.users.get(login)
        if user is None:
            return {"id": 0, "name": login, "email": login, "real_name": ""}
        return {
            "id": user.numeric_id,
            "name": user.login,
            "email": user.mail,
            "real_name": user.name or "",
            "nick": user.login.split("@", 1)[0],
        }

    def _bug_json(self, issue: FakeIssue) -> dict[str, Any]:
        payload = issue.payload if isinstance(issue.payload, dict) else {}
        return {
            "id": int(issue.id),
            "alias": [],
            "summary": issue.title,
            "product": issue.project,
            "component": payload.get("component", ""),
            "version": payload.get("version", "unspecified"),
            "keywords": list(issue.labels),
            "type": issue.issue_type,
            "status": "CONFIRMED",
            "resolution": "",
            "creator": issue.reporter,
            "creator_detail": self._user_detail(issue.reporter),
            "creation_time": utc_timestamp(),
            "last_change_time": utc_timestamp(),
            "is_open": True,
        }

    def _comments_json(self, issue: FakeIssue) -> list[dict[str, Any]]:
        texts = [(issue.reporter, issue.body, "0")] + [(c.author, c.text, c.id) for c in issue.comments]
        return [
            {
                "id": int(comment_id),
                "bug_id": int(issue.id),
                "count": count,
                "creator": author,
                "text": text,
                "is_private": False,
                "time": utc_timestamp(),
                "creation_time": utc_timestamp(),
            }
            for count, (author, text, comment_id) in enumerate(texts)
        ]

    # ------------------------------------------------------------------ routes

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        path = request.raw_path
        method = request.method
        if (_VERSION.fullmatch(path) or _EXTENSIONS.fullmatch(path)) and method == "GET":
            if _VERSION.fullmatch(path):
                return json_response(200, {"version": self.version})
            return json_response(200, {"extensions": {}})

        routes = (_WHOAMI, _USERS, _BUGS, _BUG, _COMMENTS)
        if not any(p.fullmatch(path) for p in routes):
            return self._bz_error(
                32614, 404, f"A REST API resource was not found for '{method} {path.removeprefix('/rest')}'."
            )
        if auth.rejected:
            if request.query_param("Bugzilla_login") is not None or request.query_param("login") is not None:
                return self._bz_error(*_INVALID_LOGIN)
            return self._bz_error(*_API_KEY_NOT_VALID)
        user = auth.user
        # Reading bugs is allowed anonymously; everything else needs a login.
        if user is None and not (method == "GET" and not _WHOAMI.fullmatch(path)):
            return self._bz_error(*_LOGIN_REQUIRED)

        if _WHOAMI.fullmatch(path):
            assert user is not None
            return json_response(
                200,
                {
                    "id": user.numeric_id,
                    "name": user.login,
                    "real_name": user.name or "",
                    "nick": user.login.split("@", 1)[0],
                },
            )

        if _USERS.fullmatch(path):
            if method != "GET":
                return self._unsupported(method, path)
            return self._get_users(request, user)

        if _BUGS.fullmatch(path):
            if method == "POST":
                assert user is not None
                return self._create_bug(request, user)
            if method == "GET":
                ids = {i for v in request.query.get("id", []) for i in v.split(",")}
                bugs = [self._bug_json(b) for b in list(self.issues.values()) if not ids or b.id in ids]
                return json_response(200, {"bugs": bugs, "faults": []})
            return self._unsupported(method, path)

        if match := _COMMENTS.fullmatch(path):
            issue = self._find_bug(match["id"])
            if issue is None:
                return self._no_such_bug(match["id"])
            if method == "GET":
                return json_response(
                    200, {"bugs": {issue.id: {"comments": self._comments_json(issue)}}, "comments": {}}
                )
            if method != "POST":
                return self._unsupported(method, path)
            assert user is not None
            data = _json_dict(request)
            text = data.get("comment") if data.get("comment") is not None else data.get("text")
            if not isinstance(text, str) or not text.strip():
                return self._bz_error(50, 400, "You must specify a value for comment.")
            comment = self._add_comment(issue, user.login, text)
            return json_response(201, {"id": int(comment.id)})

        if match := _BUG.fullmatch(path):
            issue = self._find_bug(match["id"])
            if issue is None:
                return self._no_such_bug(match["id"])
            if method == "GET":
                return json_response(200, {"bugs": [self._bug_json(issue)], "faults": []})
            if method != "PUT":
                return self._unsupported(method, path)
            assert user is not None
            return self._update_bug(request, user, issue)

        return self._unsupported(method, path)  # pragma: no cover - routes checked above

    def _get_users(self, request: RecordedRequest, user: FakeUser | None) -> Response:
        ids = {i for v in request.query.get("ids", []) for i in v.split(",")}
        names = {n for v in request.query.get("names", []) for n in v.split(",")}
        if ids and user is None:
            return self._bz_error(
                505,
                401,
                'Logged-out users cannot use the "ids" argument to this function to access any user information.',
            )
        with self._lock:
            known = list(self.users.values())
        found = [
            {"id": u.numeric_id, "name": u.login, "real_name": u.name or "", "email": u.mail, "can_login": True}
            for u in known
            if str(u.numeric_id) in ids or u.login in names
        ]
        return json_response(200, {"users": found})

    def _unsupported(self, method: str, path: str) -> Response:
        return self._bz_error(
            32614, 404, f"A REST API resource was not found for '{method} {path.removeprefix('/rest')}'."
        )

    def _no_such_bug(self, raw_id: str) -> Response:
        value = segment(raw_id)
        if not value.isdigit():
            return self._bz_error(
                100, 400, f"Invalid Bug ID: '{value}' is not a valid bug number nor an alias to a bug."
            )
        return self._bz_error(101, 404, f"Bug #{value} does not exist.")

    def _find_bug(self, raw_id: str) -> FakeIssue | None:
        return self._get_issue(segment(raw_id))

    def _create_bug(self, request: RecordedRequest, user: FakeUser) -> Response:
        data = _json_dict(request)
        for required, code, message in (
            ("product", 106, "You must select/enter a product."),
            ("component", 105, "You must select/enter a component."),
            ("summary", 107, "You must enter a summary for this bug."),
            ("version", 50, "You must select/enter a version."),
        ):
            value = data.get(required)
            if not isinstance(value, str) or not value.strip():
                status = 401 if code == 106 else 400
                return self._bz_error(code, status, message)
        keywords = data.get("keywords") or []
        if isinstance(keywords, str):
            keywords = [k.strip() for k in keywords.split(",") if k.strip()]
        description = data.get("description")
        if description is None:
            description = data.get("comment", "")
        bug_type = data.get("type")
        bug_id = str(self._next("issue"))
        issue = FakeIssue(
            id=bug_id,
            key=bug_id,
            title=str(data["summary"]),
            body=description if isinstance(description, str) else "",
            reporter=user.login,
            project=str(data["product"]),
            labels=[str(k) for k in keywords],
            issue_type=bug_type if isinstance(bug_type, str) else None,
            url=f"{self.url}/show_bug.cgi?id={bug_id}",
            payload=data,
        )
        self._store_issue(bug_id, issue)
        return json_response(200, {"id": int(bug_id)})

    def _update_bug(self, request: RecordedRequest, user: FakeUser, issue: FakeIssue) -> Response:
        data = _json_dict(request)
        changes: dict[str, Any] = {}
        comment = data.get("comment")
        if isinstance(comment, dict):
            text = comment.get("body", comment.get("comment"))
            if isinstance(text, str) and text.strip():
                self._add_comment(issue, user.login, text)
        summary = data.get("summary")
        if isinstance(summary, str) and summary.strip() and summary != issue.title:
            changes["summary"] = {"removed": issue.title, "added": summary}
            with self._lock:
                issue.title = summary
        return json_response(
            200,
            {"bugs": [{"id": int(issue.id), "alias": [], "last_change_time": utc_timestamp(), "changes": changes}]},
        )


def _json_dict(request: RecordedRequest) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
