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
import sys
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
from tokenproviders.trackertype import FailureKind

__all__ = ["BugzillaTrackerType", "BugzillaAnswerError", "tokenproviders_register_tracker_types"]

__version__ = "0.1.0"

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
    """Raised by this plugin when Bugzilla's answer itself says what went wrong."""

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


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

        verify: bool | str = tracker.ca_bundle if tracker.ca_bundle else tracker.verify_tls
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
        bug = client.createbug(data)  # one request: POST /rest/bug
        return ReportedIssue(id=str(bug.bug_id), url=f"{instance_url(tracker)}/show_bug.cgi?id={bug.bug_id}")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        number = str(issue_id).strip().lstrip("#")
        if not number.isdigit():
            raise InvalidInputError(f"a Bugzilla bug id is a number, not {issue_id!r}")
        # One request: PUT /rest/bug/{id} with {"comment": {"body": ...}} (no bug fetched first).
        client.update_bugs([int(number)], client.build_update(comment=text))

    # -- errors ----------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, BugzillaAnswerError):
            return exc.failure
        exceptions = sys.modules.get("bugzilla.exceptions")
        if exceptions is not None and isinstance(exc, exceptions.BugzillaError):
            return classify_bugzilla_code(getattr(exc, "code", None))
        if isinstance(exc, json.JSONDecodeError):
            # python-bugzilla parses every answer as JSON: a page that is not JSON means the URL
            # does not lead to Bugzilla's REST API.
            return TrackerFailure("not_found", "the URL did not answer like Bugzilla's REST API")
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


def failure_from_answer(status: int, body: object) -> TrackerFailure | None:
    """The failure a raw REST answer (status and decoded body) describes, or ``None`` if it is fine."""
    if isinstance(body, dict) and body.get("error"):
        return classify_bugzilla_code(body.get("code"))
    return classify_http_status(status)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    """Register the ``bugzilla`` tracker type."""
    register(BugzillaTrackerType())
