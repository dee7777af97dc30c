"""The base class every tracker-type plugin subclasses.

A tracker type says which credential fields it needs, where a service-wide token applies, how
to build its client library's client (imported lazily, inside :meth:`TrackerType.build_client`),
and how to whoami, report an issue and add a comment with the fewest requests. It classifies its
client library's exceptions with :meth:`TrackerType.classify_error`; the core turns that into an
error message that names the credentials' source and what to do, never the library's own text
(which can carry a token in a URL).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ._printable import printable
from .errors import InvalidCredentialsError, PluginError
from .model import ClientSettings, Credentials, Field, Identity, IssueDraft, ReportedIssue, Tracker
from .urls import normalize_url, origin_of

__all__ = [
    "TrackerType",
    "TrackerFailure",
    "FailureKind",
    "classify_http_status",
    "no_duplicate_retry",
    "tls_verify",
    "isolate_session",
    "classify_requests_error",
]

FailureKind = Literal["rejected", "unavailable", "not_found", "request"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TrackerFailure:
    """What went wrong talking to a tracker, in the core's words.

    ``kind``: ``rejected`` (401/403), ``unavailable`` (refused, timeout, 5xx, 429),
    ``not_found`` (404: wrong URL, project or repository) or ``request`` (other 4xx).
    ``detail`` must be safe to show: a status and a short reason, never a URL with a token.
    """

    kind: FailureKind
    detail: str
    status: int | None = None

    def __post_init__(self) -> None:
        # The detail often quotes the tracker's own words (Redmine's validation messages, Azure's
        # typeKey); they reach terminals and logs, so nothing in them may act there.
        object.__setattr__(self, "detail", printable(str(self.detail)))


def classify_http_status(status: int, detail: str = "") -> TrackerFailure | None:
    """Map an HTTP status onto a :class:`TrackerFailure` (``None`` for success codes)."""
    text = detail or f"HTTP {status}"
    if status in (401, 403):
        return TrackerFailure("rejected", text, status)
    if status == 429 or status >= 500:
        return TrackerFailure("unavailable", text, status)
    if status in (404, 410):
        return TrackerFailure("not_found", text, status)
    if status >= 400:
        return TrackerFailure("request", text, status)
    return None


class TrackerType(ABC):
    """A kind of issue tracker. Subclass it in a plugin and register an instance::

        @hookimpl
        def tokenproviders_register_tracker_types(register):
            register(MyTrackerType())
    """

    #: Short machine name, e.g. ``"jira"``; the value of ``Tracker.type``.
    name: ClassVar[str]
    #: Human title, e.g. ``"Jira (Cloud, Server, Data Center)"``.
    title: ClassVar[str]
    #: Which of ``api_username`` / ``api_password`` this type uses, with labels for forms.
    fields: ClassVar[tuple[Field, ...]]
    #: ``(fields, declares api_username, requires api_username)``, cached by _fits_plainly.
    _field_shape: tuple[tuple[Field, ...], bool, bool] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return
        for attr in ("name", "title", "fields"):
            if not hasattr(cls, attr):
                raise PluginError(f"tracker type {cls.__qualname__} must define {attr!r}")

    # -- declaration ---------------------------------------------------------------------
    def check_declaration(self) -> None:
        """Raise :class:`PluginError` if the declaration is malformed (called at registration)."""
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PluginError(
                f"tracker type name {self.name!r} must be lower-case letters, digits, '-' or '_'"
            )
        if not isinstance(self.title, str) or not self.title:
            raise PluginError(f"tracker type {self.name!r} needs a title")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise PluginError(f"tracker type {self.name!r} declares a field twice")
        if "api_password" not in names:
            raise PluginError(f"tracker type {self.name!r} must declare api_password")
        for f in self.fields:
            if not isinstance(f, Field):
                raise PluginError(f"tracker type {self.name!r}: fields must be Field objects")

    def field(self, name: str) -> Field | None:
        """The declared field called ``name``, or ``None``."""
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def describe_fields(self) -> str:
        """``API token (required), E-mail (optional)`` for messages."""
        return ", ".join(
            f"{f.label} ({f.name}, {'required' if f.required else 'optional'})" for f in self.fields
        )

    def validate_credentials(self, credentials: Credentials) -> None:
        """Raise :class:`InvalidCredentialsError` unless ``credentials`` has exactly the fields
        this type takes, with every required one present. Override to add format checks, and
        call ``super()``."""
        if self._fits_plainly(credentials):
            return
        present = credentials.present_fields()
        declared = {f.name for f in self.fields}
        extra = present - declared
        if extra:
            raise InvalidCredentialsError(
                f"tracker type {self.name!r} does not take {', '.join(sorted(extra))}",
                hint=f"give only: {self.describe_fields()}",
            )
        missing = [f for f in self.fields if f.required and f.name not in present]
        if missing:
            raise InvalidCredentialsError(
                f"tracker type {self.name!r} requires {', '.join(f.label + ' (' + f.name + ')' for f in missing)}",
                hint=f"give: {self.describe_fields()}",
            )
        # A line break or control character in a credential would end up in an HTTP header,
        # where client libraries refuse it with an error that quotes the whole value.
        username = credentials.api_username or ""
        if username != username.strip() or _CONTROL.search(username):
            raise InvalidCredentialsError(
                "the api_username has surrounding spaces, a line break or another control character",
                hint="type the user name again without extra characters",
            )
        if _CONTROL.search(credentials.api_password.reveal()):
            raise InvalidCredentialsError(
                "the api_password contains a line break or another control character",
                hint="paste the token again without extra characters",
            )
        # HTTP headers carry Latin-1 at most; anything else fails inside the client library
        # with an encoding error that holds the whole value. (No local here holds the revealed
        # password: a traceback rendered with locals would show it.)
        for name, sendable in (
            ("api_username", _sendable_in_header(username)),
            ("api_password", _sendable_in_header(credentials.api_password.reveal())),
        ):
            if not sendable:
                raise InvalidCredentialsError(
                    f"the {name} contains characters that cannot travel in an HTTP header",
                    hint="tokens are plain ASCII; paste it again from the tracker",
                )

    def _fits_plainly(self, credentials: Credentials) -> bool:
        """The common case of :meth:`validate_credentials`, on every resolution: printable ASCII
        in declared fields, every required one present. ``False`` means "check fully", which
        either passes too or raises the precise error."""
        shape = self._field_shape
        if shape is None or shape[0] is not self.fields:
            names = {f.name: f.required for f in self.fields}
            shape = (self.fields, "api_username" in names, names.get("api_username", False))
            # Through __dict__: a tracker type may be a frozen dataclass.
            self.__dict__["_field_shape"] = shape
        username = credentials.api_username  # never "", Credentials makes that None
        if username is None:
            if shape[2]:
                return False
        elif not (shape[1] and username.isascii() and username.isprintable() and username.strip() == username):
            return False
        # (api_password is always declared.) isprintable() is False for every control character.
        password = credentials.api_password.reveal()
        return bool(password) and password.isascii() and password.isprintable()

    def api_url_trusted(self, tracker: Tracker) -> bool:
        """Whether credentials that match the tracker's URL or service URL may be sent where its
        client talks to.

        A personal token is matched on ``base_url`` (or its service URL), but the client talks
        to ``api_url`` when one is set: a tenant administrator must not be able to point
        ``api_url`` elsewhere and collect members' tokens for a service. The default trusts no
        ``api_url`` or one on the same origin as ``base_url``; override (and call ``super()``)
        for services whose API lives on another host, such as ``api.github.com``.
        """
        return tracker.api_url is None or origin_of(tracker.api_url) == origin_of(tracker.base_url)

    def service_url(self, tracker: Tracker) -> str | None:
        """Where a service-wide personal token applies (normalized), or ``None``.

        The default is the origin of the tracker's base URL, so a token for
        ``https://github.com`` serves every repository there. Override when the service is not
        the origin; return ``None`` if the type has no service-wide tokens. The resolver
        remembers the answer per type, tenant, tracker id, ``base_url`` and ``api_url``: derive
        it from those, not from options.
        """
        return origin_of(tracker.base_url)

    # -- talking to the tracker ----------------------------------------------------------
    @abstractmethod
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        """Return the client library's client, authenticated with ``credentials``.

        Import the client library *here*, not at module top. Apply ``settings.timeout`` and
        ``settings.retries`` (bounded), the TLS settings (:func:`~tokenproviders.trackertype.tls_verify`
        gives ``requests``' ``verify``), and no client-side sleeps. Do no network I/O if the library allows it.
        """

    @abstractmethod
    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        """The identity the credentials belong to, with the tracker's cheapest call."""

    @abstractmethod
    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        """File ``draft`` and return its id and URL, with the fewest requests possible."""

    @abstractmethod
    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        """Add ``text`` as a comment on issue ``issue_id``."""

    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        """Classify an exception raised by the client library, or return ``None`` if it is not
        a tracker failure (it then propagates unchanged).

        The default understands ``requests`` exceptions (without importing requests) and
        socket-level errors. Override for library-specific exceptions and call ``super()``.
        """
        return classify_common_error(exc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '?')!r}>"


def tls_verify(tracker: Tracker) -> bool | str:
    """The ``verify`` argument for ``requests``: ``False`` when the tracker turns TLS
    verification off, else its CA bundle, else the host's (``REQUESTS_CA_BUNDLE`` or
    ``CURL_CA_BUNDLE``, as ``requests`` reads them), else ``True``.

    The tracker's own settings win over the environment; a session made by
    :func:`isolate_session` reads nothing else from it."""
    if not tracker.verify_tls:
        return False
    return tracker.ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def isolate_session(session: Any, url: str) -> Any:
    """Make ``session``, the ``requests.Session`` a client talks to ``url`` (its API root)
    with, send no credentials but the ones the plugin gives it; return it.

    A session that trusts the environment (``requests``' default) adds the HTTP Basic
    credentials of the host's ``~/.netrc`` (or of the file ``NETRC`` names, where a
    ``default`` entry matches every host) to each request made without ``auth=``, and again
    after a redirect. This turns ``trust_env`` off and keeps, on purpose, the host's proxies
    for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``, read now);
    the host's CA bundle comes with :func:`tls_verify`. Call it on every session a client uses,
    before its first request. ``requests`` is imported here, when a client is built.
    """
    from requests.utils import get_environ_proxies

    session.trust_env = False  # no ~/.netrc, here or after a redirect
    session.proxies.update(get_environ_proxies(normalize_url(url)))
    return session


def no_duplicate_retry(retries: int) -> Any:
    """A ``urllib3`` ``Retry`` that can neither duplicate an issue nor outlast the timeout by much.

    A failed *connect* never reached the server, so it is retried for every method, the POST
    that files an issue included; a 502/503/504 is retried only for idempotent requests
    (whoami), without honouring ``Retry-After``. A read timeout is never retried: a tracker
    that does not answer fails after one timeout, and a POST that timed out may have landed.
    urllib3 is imported here, when a client is built, never at import time.
    """
    from urllib3.util.retry import Retry

    return Retry(
        total=retries,
        connect=retries,
        read=False,
        status=retries,
        other=0,
        status_forcelist=(502, 503, 504),
        backoff_factor=0.1,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def _sendable_in_header(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _caused_by(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` or anything it wraps (cause, context, ``reason``, args) is one of ``kinds``."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen or len(seen) > 16:
            continue
        seen.add(id(current))
        if isinstance(current, kinds):
            return True
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None), *current.args])
    return False


def classify_requests_error(exc: BaseException, *, redirect_detail: str, not_json_detail: str) -> TrackerFailure | None:
    """Name what went wrong on the wire for a ``requests``-based client, in words that never
    quote the library's message; ``None`` for anything else (and for an ``HTTPError``, whose
    status the generic mapping reads).

    ``redirect_detail`` explains a refused redirect and ``not_json_detail`` an answer that is
    not JSON (both usually mean the URL is not the tracker's API), in the type's own words.
    """
    if isinstance(exc, json.JSONDecodeError):  # requests' own JSONDecodeError is one too
        return TrackerFailure("not_found", not_json_detail)
    requests_exceptions = sys.modules.get("requests.exceptions")
    if requests_exceptions is None or not isinstance(exc, requests_exceptions.RequestException):
        return None
    if isinstance(exc, requests_exceptions.TooManyRedirects):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return TrackerFailure("not_found", redirect_detail, status if isinstance(status, int) else None)
    if isinstance(exc, requests_exceptions.SSLError):
        return TrackerFailure(
            "unavailable", "TLS handshake failed (check the tracker's certificate, ca_bundle or verify_tls)"
        )
    if isinstance(exc, requests_exceptions.ConnectTimeout):
        return TrackerFailure("unavailable", "connecting timed out")
    if isinstance(exc, requests_exceptions.Timeout):
        return TrackerFailure("unavailable", "no answer within the timeout")
    if isinstance(exc, requests_exceptions.ConnectionError):
        if _caused_by(exc, (ConnectionRefusedError,)):
            return TrackerFailure("unavailable", "connection refused")
        if _caused_by(exc, (socket.gaierror,)):
            return TrackerFailure("unavailable", "the host name does not resolve")
        return TrackerFailure("unavailable", "connection failed")
    if isinstance(exc, requests_exceptions.HTTPError):
        return None  # a status: let the generic mapping read it
    # InvalidHeader, InvalidURL, ...: their text may quote a header value, i.e. a token.
    return TrackerFailure("request", f"the request could not be sent ({type(exc).__name__})")


def classify_common_error(exc: BaseException) -> TrackerFailure | None:
    """Classify socket errors and ``requests``/``urllib3`` exceptions, if those are loaded."""
    if isinstance(exc, (ConnectionRefusedError, ConnectionResetError, socket.timeout, TimeoutError)):
        return TrackerFailure("unavailable", type(exc).__name__)
    requests_exc = sys.modules.get("requests.exceptions")
    if requests_exc is not None:
        if isinstance(exc, requests_exc.HTTPError) and exc.response is not None:
            return classify_http_status(exc.response.status_code)
        if isinstance(exc, requests_exc.Timeout):
            return TrackerFailure("unavailable", "timed out")
        if isinstance(exc, requests_exc.ConnectionError):
            return TrackerFailure("unavailable", "connection failed")
        if isinstance(exc, requests_exc.RetryError):
            return TrackerFailure("unavailable", "gave up after retries")
        if isinstance(exc, requests_exc.RequestException):
            # InvalidHeader, InvalidURL, TooManyRedirects...: their text may quote a header
            # value or URL holding the token, so only the class name is kept.
            return TrackerFailure("request", f"the HTTP client refused the request ({type(exc).__name__})")
    urllib3_exc = sys.modules.get("urllib3.exceptions")
    if urllib3_exc is not None and isinstance(exc, urllib3_exc.HTTPError):
        return TrackerFailure("unavailable", type(exc).__name__)
    if isinstance(exc, UnicodeError):
        # e.g. a value that is not Latin-1 in a header: the exception holds the whole value.
        return TrackerFailure("request", f"the request could not be encoded ({type(exc).__name__})")
    if isinstance(exc, ConnectionError):
        return TrackerFailure("unavailable", type(exc).__name__)
    return None
