"""The Bugzilla tracker type for tokenproviders: API keys over the REST API, through python-bugzilla.

A tracker's ``base_url`` is the Bugzilla instance (``https://bugzilla.example.com`` or
``https://example.com/bugzilla``). The REST root is ``{base_url}/rest``, or ``api_url`` when set
(for instances that serve it as ``.../rest.cgi``). The client is always built with that explicit
REST URL (no probing requests) and with ``use_creds=False, tokenfile=None``: python-bugzilla never
reads ``~/.bugzillarc`` nor a shared on-disk login-token file, so nothing but the resolved
credentials can authenticate a request.

Credentials: an API key (``api_password``). On Bugzilla 5.1 and later the key travels in the
``X-BUGZILLA-API-KEY`` header, never in a URL (where server logs and exception messages would keep
it); Bugzilla 5.0 only understands the ``Bugzilla_api_key`` query parameter, so there it is that.

Tracker options: ``product`` and ``component`` (required), ``version`` (default
``unspecified``), and optionally ``severity``, ``priority``, ``op_sys``, ``platform``, ``type``
(Bugzilla 5.2's bug type; a report's ``issue_type`` overrides it) and ``keywords`` (added to a
report's labels; Bugzilla only accepts keywords its administrator defined).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from tokenproviders import (
    ClientSettings,
    Credentials,
    Field,
    Identity,
    InvalidInputError,
    IssueDraft,
    ReportedIssue,
    Tracker,
    TrackerFailure,
    TrackerType,
    classify_http_status,
    hookimpl,
    normalize_url,
)
from tokenproviders.trackertype import FailureKind, tls_verify

__all__ = [
    "BugzillaAnswerError",
    "BugzillaRedirectError",
    "BugzillaTrackerType",
    "tokenproviders_register_tracker_types",
]

__version__ = "0.1.0"

REDIRECT_DETAIL = (
    "the tracker answered with a redirect to another address; set base_url/api_url to the final address"
)
NOT_BUGZILLA_DETAIL = "the answer was not Bugzilla's API; check base_url/api_url"
_REST_SUFFIXES = ("/rest", "/rest.cgi")
_ENTRY_POINTS = ("/xmlrpc.cgi", "/jsonrpc.cgi", "/index.cgi", "/show_bug.cgi", "/enter_bug.cgi", "/buglist.cgi")

#: What Bugzilla's error codes mean for us: (kind, the HTTP status its REST layer answers with,
#: words). From Bugzilla's WebService::Constants (WS_ERROR_CODE and REST_STATUS_CODE_MAP).
_CODES: dict[int, tuple[FailureKind, int, str]] = {
    # These credentials do not authenticate. An invalid API key is HTTP 400, not 401.
    300: ("rejected", 401, "invalid login or password"),
    301: ("rejected", 401, "the account is disabled"),
    305: ("rejected", 400, "the login token is invalid"),
    306: ("rejected", 400, "the API key is invalid"),
    410: ("rejected", 401, "a login is required and none was accepted"),
    505: ("rejected", 401, "the request was not logged in"),
    # Something named in the URL does not exist: the URL is wrong, not the key.
    101: ("not_found", 404, "no such bug"),
    32614: ("not_found", 404, "no such REST resource: is the URL a Bugzilla 5 instance?"),
    # The instance refuses the configuration (options) or the request itself.
    51: ("request", 404, "a product, component, version, keyword or user named in the options does not exist"),
    100: ("request", 400, "invalid bug id"),
    102: ("request", 401, "these credentials may not see that bug"),
    104: ("request", 400, "invalid field value"),
    105: ("request", 400, "the component is missing or unknown"),
    106: ("request", 401, "the product does not exist, or these credentials may not file bugs in it"),
    107: ("request", 400, "the summary is missing"),
}


class BugzillaAnswerError(Exception):
    """Raised by this plugin when Bugzilla's answer itself says what went wrong, or is not an
    answer Bugzilla gives (some other JSON at the URL)."""

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


class BugzillaRedirectError(Exception):
    """The server answered with a redirect, which is never followed; the message is ``HTTP <status>``.

    A plain one-string exception on purpose: python-bugzilla re-raises what its session raises
    as ``type(e)(message)``.
    """


def not_bugzilla() -> BugzillaAnswerError:
    """The error for an answer that is not Bugzilla's (a wrong URL serving other JSON)."""
    return BugzillaAnswerError(TrackerFailure("not_found", NOT_BUGZILLA_DETAIL))


def instance_url(tracker: Tracker) -> str:
    """The normalized Bugzilla instance URL (no ``/rest``, no ``.cgi`` page)."""
    url = normalize_url(tracker.api_url or tracker.base_url)
    parts = urlsplit(url)
    path = parts.path
    for suffix in _REST_SUFFIXES + _ENTRY_POINTS:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


def rest_url(tracker: Tracker) -> str:
    """The REST root python-bugzilla is given: ``api_url`` if it ends in ``/rest`` or
    ``/rest.cgi``, otherwise ``{instance}/rest``."""
    if tracker.api_url:
        api = normalize_url(tracker.api_url)
        if api.endswith(_REST_SUFFIXES):
            return api
    return instance_url(tracker) + "/rest"


def _option(tracker: Tracker, name: str, default: str | None = None) -> str | None:
    value = tracker.options.get(name)
    text = str(value).strip() if value is not None else ""
    return text or default


class BugzillaTrackerType(TrackerType):
    """Bugzilla 5.0 and later, through its REST API, with an API key."""

    name: ClassVar[str] = "bugzilla"
    title: ClassVar[str] = "Bugzilla (5.0 and later, REST API)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            name="api_password",
            label="API key",
            help=(
                "A Bugzilla API key: in Bugzilla open Preferences (top right) > 'API Keys', tick"
                " 'Generate a new API key', add a description such as 'Kiwi TCMS', click 'Submit"
                " Changes' and copy the key shown. The key acts as you: bugs and comments are"
                " filed under your account."
            ),
            required=True,
            secret=True,
        ),
    )

    def service_url(self, tracker: Tracker) -> str | None:
        """The Bugzilla instance: one key serves every product tracker on it."""
        return instance_url(tracker)

    # -- talking to Bugzilla ---------------------------------------------------------------
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        from ._client import build_bugzilla  # python-bugzilla is imported here, never at module top

        verify = tls_verify(tracker)
        return build_bugzilla(rest_url(tracker), credentials, settings, verify)

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        from ._client import whoami

        return whoami(client)

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        product = _option(tracker, "product")
        component = _option(tracker, "component")
        if product is None or component is None:
            raise InvalidInputError(
                f"tracker {tracker.label} does not say which Bugzilla product and component to file bugs in",
                hint="set the tracker options 'product' and 'component' (and 'version' unless it is 'unspecified')",
            )
        keywords = list(draft.labels)
        extra = tracker.options.get("keywords")
        if isinstance(extra, str):
            keywords += [k.strip() for k in extra.split(",") if k.strip()]
        elif isinstance(extra, (list, tuple)):
            keywords += [str(k) for k in extra]
        data = client.build_createbug(
            product=product,
            component=component,
            version=_option(tracker, "version", "unspecified"),
            summary=draft.title,
            description=draft.body or draft.title,
            keywords=list(dict.fromkeys(keywords)) or None,
            severity=_option(tracker, "severity"),
            priority=_option(tracker, "priority"),
            op_sys=_option(tracker, "op_sys"),
            platform=_option(tracker, "platform"),
        )
        bug_type = draft.issue_type or _option(tracker, "type")
        if bug_type:
            data["type"] = bug_type
        try:
            bug = client.createbug(data)  # one request: POST /rest/bug
        except (KeyError, TypeError):
            raise not_bugzilla() from None  # python-bugzilla reads the answer's "id"
        bug_id = getattr(bug, "bug_id", None)
        if not isinstance(bug_id, int) or isinstance(bug_id, bool):
            raise not_bugzilla()
        return ReportedIssue(id=str(bug_id), url=f"{instance_url(tracker)}/show_bug.cgi?id={bug_id}")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        number = str(issue_id).strip().lstrip("#")
        if not number.isdigit():
            raise InvalidInputError(f"a Bugzilla bug id is a number, not {issue_id!r}")
        # One request: PUT /rest/bug/{id} with {"comment": {"body": ...}} (no bug fetched first).
        answer = client.update_bugs([int(number)], client.build_update(comment=text))
        if not isinstance(answer, dict) or not isinstance(answer.get("bugs"), list):
            raise not_bugzilla()  # Bugzilla answers an update with the list of changed bugs

    # -- errors ----------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, BugzillaAnswerError):
            return exc.failure
        if isinstance(exc, BugzillaRedirectError):
            match = re.fullmatch(r"HTTP ([0-9]{3})", str(exc))
            return TrackerFailure("not_found", REDIRECT_DETAIL, int(match[1]) if match else None)
        exceptions = sys.modules.get("bugzilla.exceptions")
        if exceptions is not None and isinstance(exc, exceptions.BugzillaError):
            # python-bugzilla raises it from the JSON error body of a 400, 401 or 404, while
            # handling the HTTP error: the status is on that one.
            return failure_for(_status_of(exc.__context__), getattr(exc, "code", None))
        if isinstance(exc, json.JSONDecodeError):
            # python-bugzilla parses every answer as JSON: a page that is not JSON means the URL
            # does not lead to Bugzilla's REST API.
            return TrackerFailure("not_found", NOT_BUGZILLA_DETAIL)
        return super().classify_error(exc)


def classify_bugzilla_code(code: object) -> TrackerFailure:
    """Map a Bugzilla error code (from the JSON error body) onto a failure kind.

    Bugzilla answers an invalid API key with HTTP **400** and code 306 (and a missing login with
    401 and code 410), so the code, not the status, says whether the key was rejected.
    """
    if isinstance(code, int):
        known = _CODES.get(code)
        if known is not None:
            kind, status, words = known
            return TrackerFailure(kind, f"Bugzilla error {code}: {words}", status)
        return TrackerFailure("request", f"Bugzilla error {code}", 400)
    return TrackerFailure("request", "Bugzilla refused the request")


def failure_for(status: int | None, code: object) -> TrackerFailure:
    """The failure an error answer means: the HTTP ``status`` and Bugzilla's error ``code``.

    401/403 are rejected credentials and 429/5xx an unavailable tracker whatever the JSON body
    says (a proxy or a crashing Bugzilla answers with some body too), unless the code is one
    Bugzilla itself sends with exactly that status (102, "may not see that bug", is a 401 that
    is not about the key). Other statuses go by the code, since Bugzilla answers an invalid API
    key with 400 and code 306.
    """
    by_code = classify_bugzilla_code(code)
    if status is None:
        return by_code
    known = _CODES.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    if status in (401, 403, 429) or status >= 500:
        if known is not None and known[1] == status:
            return replace(by_code, status=status)
        by_status = classify_http_status(status)
        if by_status is None:  # pragma: no cover - every status here is an error status
            return by_code
        suffix = f" (Bugzilla error {code})" if isinstance(code, int) and not isinstance(code, bool) else ""
        return replace(by_status, detail=f"HTTP {status}{suffix}")
    return replace(by_code, status=status)


def failure_from_answer(status: int, body: object) -> TrackerFailure | None:
    """The failure a raw REST answer (status and decoded body) describes, or ``None`` if it is fine."""
    if isinstance(body, dict) and body.get("error"):
        return failure_for(status, body.get("code"))
    if 300 <= status < 400:
        return TrackerFailure("not_found", REDIRECT_DETAIL, status)
    return classify_http_status(status)


def _status_of(exc: BaseException | None) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    """Register the ``bugzilla`` tracker type."""
    register(BugzillaTrackerType())
