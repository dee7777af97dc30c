"""The HTTP machinery shared by every fake issue tracker.

:class:`FakeTracker` runs a small threaded HTTP/1.1 server on a loopback port, records every request
it receives (:class:`RecordedRequest`), resolves the credentials of each request to a registered user
and hands the request to the tracker-specific subclass, which answers it like the real tracker would.
It also injects faults (error statuses, slow answers, hung connections) on demand.

Only the standard library is used, so this module can ship inside the core distribution.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import http
import json
import re
import socket
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "AuthResult",
    "FakeComment",
    "FakeIssue",
    "FakeTracker",
    "FakeUser",
    "RecordedRequest",
    "Response",
    "basic_credentials",
    "bearer_token",
    "json_response",
    "utc_timestamp",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request exactly as a fake tracker received it.

    ``raw_path`` keeps the percent-encoding the client used (``grp%2Fproj``, ``$Bug``) and excludes
    the query string; ``path`` is the same path percent-decoded.  ``identity`` is the login of the
    user the request's credentials authenticate as, or ``None`` when the request carried no valid
    credentials (or a forced 401/403 fault rejected it).
    """

    method: str
    raw_path: str
    path: str
    query: dict[str, list[str]]
    headers: tuple[tuple[str, str], ...]
    body: bytes
    identity: str | None

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (compared case-insensitively), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def query_param(self, name: str) -> str | None:
        """Return the first value of query parameter ``name`` (case-sensitive), or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """Decode the body as JSON (``None`` for an empty body)."""
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


@dataclass
class FakeComment:
    """A comment stored by a fake tracker; ``author`` is the login that posted it."""

    author: str
    text: str
    id: str = ""


@dataclass
class FakeIssue:
    """An issue (bug, work item) stored by a fake tracker.

    ``id`` is the tracker's internal id; ``key`` is what the tracker shows people (``PROJ-7`` in Jira,
    the issue number in GitHub, the ``iid`` in GitLab, the id elsewhere).  ``reporter`` is the login of
    the user whose credentials created it; ``project`` is the project key/path/product it was filed in;
    ``url`` is the human-facing web URL; ``payload`` is the decoded JSON body of the create request.
    """

    id: str
    key: str
    title: str
    body: str
    reporter: str
    project: str
    labels: list[str] = field(default_factory=list)
    issue_type: str | None = None
    comments: list[FakeComment] = field(default_factory=list)
    url: str = ""
    payload: Any = None


@dataclass
class FakeUser:
    """A user registered with :meth:`FakeTracker.add_user` (what the fake knows about a login)."""

    login: str
    numeric_id: int
    token: str | None = None
    username: str | None = None
    password: str | None = None
    email: str | None = None
    name: str | None = None

    @property
    def display_name(self) -> str:
        """The user's full name, or the login when no name was given."""
        return self.name if self.name is not None else self.login

    @property
    def mail(self) -> str:
        """The user's e-mail address, made up from the login when none was given."""
        if self.email is not None:
            return self.email
        if self.username is not None and "@" in self.username:
            return self.username
        return f"{self.login}@example.com" if "@" not in self.login else self.login


@dataclass(frozen=True)
class AuthResult:
    """What a request's credentials resolved to.

    ``presented`` says whether the request carried any credentials at all; ``user`` is the matching
    registered user, or ``None``.  Credentials that were presented but match nobody are ``rejected``.
    """

    presented: bool
    user: FakeUser | None = None

    @property
    def identity(self) -> str | None:
        """The authenticated login, or ``None``."""
        return self.user.login if self.user is not None else None

    @property
    def rejected(self) -> bool:
        """True when credentials were sent but did not authenticate anybody."""
        return self.presented and self.user is None


ANONYMOUS = AuthResult(presented=False)


@dataclass
class Response:
    """An HTTP response a fake is about to send (serialised and written in one piece)."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Build a JSON :class:`Response`."""
    return Response(
        status=status,
        body=json.dumps(payload).encode("utf-8"),
        headers=dict(headers or {}),
    )


def utc_timestamp() -> str:
    """The current UTC time as ``2024-01-02T03:04:05Z``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def basic_credentials(request: RecordedRequest) -> tuple[str, str] | None:
    """Decode ``Authorization: Basic ...`` into ``(username, password)``; ``None`` if absent/invalid."""
    value = request.header("Authorization")
    if value is None:
        return None
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


def bearer_token(request: RecordedRequest, *schemes: str) -> str | None:
    """Return the token of ``Authorization: <scheme> <token>`` for any of ``schemes`` (any case)."""
    value = request.header("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() in {s.lower() for s in schemes} and token.strip():
        return token.strip()
    return None


class _Fault:
    """The fault-injection state of a tracker (guarded by the tracker's lock)."""

    def __init__(self) -> None:
        self.fail_status: int | None = None
        self.fail_remaining: int | None = None
        self.fail_headers: dict[str, str] = {}
        self.fail_message: str | None = None
        self.delay: float = 0.0
        self.hang_release: threading.Event | None = None


class _HTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its tracker and tracks open connections."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], tracker: FakeTracker) -> None:
        self.tracker = tracker
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        with self.tracker._lock:
            self.tracker.connections_accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: broken client connections are normal in tests."""

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
            self.open_connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    """Reads one request at a time and delegates it to the tracker."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeTracker"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no line on stderr per request."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        server = self.server
        assert isinstance(server, _HTTPServer)
        raw_target = self.path
        if raw_target.startswith(("http://", "https://")):
            split = urllib.parse.urlsplit(raw_target)
            raw_target = split.path + (f"?{split.query}" if split.query else "")
        raw_path, _, query_string = raw_target.partition("?")
        body = self._read_body()
        request = RecordedRequest(
            method=self.command,
            raw_path=raw_path,
            path=urllib.parse.unquote(raw_path),
            query=urllib.parse.parse_qs(query_string, keep_blank_values=True),
            headers=tuple((k, v) for k, v in self.headers.items()),
            body=body,
            identity=None,
        )
        response = server.tracker._serve(request)
        if response is None:
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        phrase = _phrase(response.status)
        body = b"" if self.command == "HEAD" else response.body
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        lines.append(f"Server: {self.server_version}")
        lines.append(f"Date: {self.date_time_string()}")
        if response.content_type is not None and (response.body or response.status != 204):
            lines.append(f"Content-Type: {response.content_type}")
        extra = {k.lower(): (k, v) for k, v in response.headers.items()}
        extra.pop("content-length", None)
        for name, value in extra.values():
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class FakeTracker:
    """Base class of the fake issue-tracker HTTP servers.

    A subclass describes one tracker: how credentials are read (:meth:`_authenticate`), which routes
    exist (:meth:`_route`) and the shape of its error bodies (:meth:`_error_response`).  This class
    runs the server (``ThreadingHTTPServer``, daemon threads, HTTP/1.1 keep-alive, ``TCP_NODELAY``,
    ``Content-Length`` on every response, each response sent in one write), records every request in
    :attr:`requests`, stores created issues in :attr:`issues` and injects faults.

    Use it as a context manager (``with FakeGitHub() as gh: ...``) or call :meth:`start` /
    :meth:`stop`.  It is safe to call the public methods from the test thread while requests are
    being served.
    """

    type_name: ClassVar[str] = ""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.issues: dict[str, FakeIssue] = {}
        self.users: dict[str, FakeUser] = {}
        self.errors: list[str] = []
        """Tracebacks of exceptions raised inside the fake while answering (answered with 500)."""
        self.connections_accepted = 0
        """How many TCP connections the server accepted (shows whether clients keep connections alive)."""
        self._lock = threading.RLock()
        self._fault = _Fault()
        self._stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counters: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind the port and serve in a background thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._stopping.clear()
        server = _HTTPServer((self.host, self.port), self)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving promptly, dropping open (even hung) connections.  Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            if self._fault.hang_release is not None:
                self._fault.hang_release.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ configuration

    def add_user(
        self,
        login: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        name: str | None = None,
    ) -> None:
        """Register which credentials authenticate as ``login``.

        The meaning of ``token``/``username``/``password`` depends on the tracker; see each
        subclass.  Registering the same login again replaces the previous registration.
        """
        with self._lock:
            existing = self.users.get(login)
            numeric_id = existing.numeric_id if existing is not None else self._next("user")
            self.users[login] = FakeUser(
                login=login,
                numeric_id=numeric_id,
                token=token,
                username=username,
                password=password,
                email=email,
                name=name,
            )

    def fail_with(
        self,
        status: int,
        times: int | None = None,
        headers: dict[str, str] | None = None,
        *,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (``None``: until :meth:`reset_faults`) with ``status``.

        The body has the tracker's error shape.  A 429 gets ``Retry-After: 1`` unless ``headers``
        says otherwise.  ``message`` overrides the error text.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for 'until reset')")
        fault_headers = dict(headers or {})
        if status == 429 and not any(k.lower() == "retry-after" for k in fault_headers):
            fault_headers["Retry-After"] = "1"
        with self._lock:
            self._fault.fail_status = status
            self._fault.fail_remaining = times
            self._fault.fail_headers = fault_headers
            self._fault.fail_message = message

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering every request (until :meth:`reset_faults`)."""
        with self._lock:
            self._fault.delay = max(0.0, seconds)

    def hang(self) -> None:
        """Accept connections and read requests but never answer them.

        Hung requests are released by :meth:`stop` (the connection is dropped) or by
        :meth:`reset_faults` (the request is then answered normally).
        """
        with self._lock:
            if self._fault.hang_release is None:
                self._fault.hang_release = threading.Event()

    def reset_faults(self) -> None:
        """Cancel :meth:`fail_with`, :meth:`delay` and :meth:`hang`."""
        with self._lock:
            release = self._fault.hang_release
            self._fault = _Fault()
        if release is not None:
            release.set()

    def clear(self) -> None:
        """Forget the recorded requests and reset :attr:`connections_accepted` (issues and users are kept)."""
        with self._lock:
            self.requests.clear()
            self.connections_accepted = 0

    # ------------------------------------------------------------------ queries for tests

    def requests_to(self, method: str | None = None, path_pattern: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, optionally filtered by method and a regex searched in ``path``."""
        with self._lock:
            recorded = list(self.requests)
        return [
            r
            for r in recorded
            if (method is None or r.method == method.upper())
            and (path_pattern is None or re.search(path_pattern, r.path))
        ]

    # ------------------------------------------------------------------ subclass hooks

    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        """Resolve the request's credentials.  Subclasses override."""
        return ANONYMOUS

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        """Answer a request (faults already handled).  Subclasses override."""
        return self._error_response(404, "Not Found")

    def _error_response(self, status: int, message: str) -> Response:
        """A response with ``status`` and the tracker's error body.  Subclasses override."""
        return json_response(status, {"message": message})

    # ------------------------------------------------------------------ helpers for subclasses

    def _next(self, counter: str, start: int = 1) -> int:
        """The next value of a named counter (thread-safe)."""
        with self._lock:
            value = self._counters.get(counter, start - 1) + 1
            self._counters[counter] = value
            return value

    def _find_user(self, predicate: Callable[[FakeUser], bool]) -> FakeUser | None:
        with self._lock:
            users: Iterable[FakeUser] = list(self.users.values())
        for user in users:
            if predicate(user):
                return user
        return None

    def _user_by_token(self, token: str | None) -> FakeUser | None:
        if token is None:
            return None
        return self._find_user(lambda u: u.token is not None and u.token == token)

    def _user_by_password(self, username: str, password: str) -> FakeUser | None:
        return self._find_user(lambda u: u.username == username and u.password is not None and u.password == password)

    def _store_issue(self, key: str, issue: FakeIssue) -> None:
        with self._lock:
            self.issues[key] = issue

    def _get_issue(self, key: str) -> FakeIssue | None:
        with self._lock:
            return self.issues.get(key)

    def _add_comment(self, issue: FakeIssue, author: str, text: str) -> FakeComment:
        comment = FakeComment(author=author, text=text, id=str(self._next("comment")))
        with self._lock:
            issue.comments.append(comment)
        return comment

    # ------------------------------------------------------------------ request pipeline

    def _serve(self, request: RecordedRequest) -> Response | None:
        """Record ``request``, apply faults and route it.  ``None`` means: drop the connection."""
        try:
            auth = self._authenticate(request)
        except Exception:  # noqa: BLE001 - a bug in a fake becomes a recorded error, not a dead connection
            self._remember_error()
            auth = AuthResult(presented=True)
        with self._lock:
            fault = self._fault
            fail_status = fault.fail_status
            if fail_status is not None and fault.fail_remaining is not None:
                fault.fail_remaining -= 1
                if fault.fail_remaining <= 0:
                    fault.fail_status = None
                    fault.fail_remaining = None
            fail_headers = dict(fault.fail_headers)
            fail_message = fault.fail_message
            delay = fault.delay
            hang_release = fault.hang_release
            identity = auth.identity if fail_status not in (401, 403) else None
            self.requests.append(replace(request, identity=identity))

        if hang_release is not None:
            while not hang_release.wait(0.1):
                if self._stopping.is_set():
                    return None
            if self._stopping.is_set():
                return None
        if delay > 0 and self._stopping.wait(delay):
            return None
        if fail_status is not None:
            text = fail_message or _phrase(fail_status)
            response = self._error_response(fail_status, text)
            response.headers.update(fail_headers)
            return response
        try:
            return self._route(replace(request, identity=auth.identity), auth)
        except Exception:  # noqa: BLE001 - answered with 500 and kept in self.errors
            self._remember_error()
            return self._error_response(500, "Internal Server Error")

    def _remember_error(self) -> None:
        with self._lock:
            self.errors.append(traceback.format_exc())


def _phrase(status: int) -> str:
    """The standard reason phrase of ``status`` ("Error" for codes without one)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def segment(value: str) -> str:
    """Percent-decode one raw path segment."""
    return urllib.parse.unquote(value)
