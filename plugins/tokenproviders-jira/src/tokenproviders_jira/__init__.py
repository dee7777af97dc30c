"""The Jira tracker type for tokenproviders: Jira Cloud, Server and Data Center.

Two credential kinds, told apart by ``api_username``:

* **Jira Cloud**: the account's e-mail in ``api_username`` and an API token in ``api_password``,
  sent as ``Authorization: Basic base64(email:token)``. (A Server that still allows basic
  authentication takes a user name and password the same way.)
* **Jira Server / Data Center**: a personal access token alone in ``api_password`` (empty
  ``api_username``), sent as ``authorization: Bearer <token>``.

The tracker's ``base_url`` is the Jira instance (with its context path, e.g.
``https://jira.example.com/jira``); it is also the service URL, so one personal token serves
every tracker (project) on that instance. ``api_url`` optionally names another address for
the REST API (an internal host name, or ``https://api.atlassian.com/ex/jira/<cloudId>`` for
scoped Cloud API tokens); browser links always use ``base_url``.

Options (``Tracker.options``): ``project`` (key or numeric id, required to report),
``issue_type`` (default ``"Bug"``), ``labels`` (list, or a comma-separated string) and
``fields`` (a mapping of further create-issue fields, e.g. ``{"components": [{"name": "UI"}]}``).

The ``jira`` library is imported only in :meth:`JiraTrackerType.build_client`; the client is
built without the ``serverInfo`` probe, with the configured timeout, and with only the
retries that cannot duplicate an issue (see :func:`tokenproviders.trackertype.no_duplicate_retry`).
"""

from __future__ import annotations

import http
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from tokenproviders import (
    ClientSettings,
    ConfigurationError,
    Credentials,
    Field,
    Identity,
    InvalidCredentialsError,
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
from tokenproviders.trackertype import classify_requests_error, isolate_session, no_duplicate_retry, tls_verify

__all__ = ["JiraAnswerError", "JiraTrackerType", "tokenproviders_register_tracker_types"]

#: Jira refuses longer summaries (HTTP 400) and any line break in them.
SUMMARY_MAX = 255
_ISSUE_KEY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*-[0-9]+|[0-9]+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REDIRECT_DETAIL = (
    "the tracker answered with a redirect to another address; set base_url/api_url to the final address"
)
NOT_JIRA_DETAIL = "the answer was not Jira's API; check base_url/api_url"


class JiraAnswerError(Exception):
    """Raised by this plugin when Jira's answer is not one it can use (a redirect, or JSON
    without what the call needs): the wrong URL, not the credentials."""

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


def _not_jira() -> JiraAnswerError:
    return JiraAnswerError(TrackerFailure("not_found", NOT_JIRA_DETAIL))


class JiraTrackerType(TrackerType):
    """Jira Cloud (e-mail + API token) and Jira Server / Data Center (personal access token)."""

    name: ClassVar[str] = "jira"
    title: ClassVar[str] = "Jira (Cloud, Server, Data Center)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            "api_username",
            "E-mail (Jira Cloud only)",
            "Jira Cloud: the e-mail address of your Atlassian account, used together with an API"
            " token. Jira Server / Data Center: leave empty and give a personal access token.",
            required=False,
        ),
        Field(
            "api_password",
            "API token (Cloud) or personal access token (Server / Data Center)",
            "Jira Cloud: create an API token at https://id.atlassian.com/manage-profile/security/api-tokens"
            " (Atlassian account > Security > Create and manage API tokens); it acts with your own"
            " permissions (Browse Projects, Create Issues, Add Comments). Jira Server / Data Center 8.14+:"
            " your avatar > Profile > Personal Access Tokens > Create token.",
            secret=True,
        ),
    )

    # -- declaration -------------------------------------------------------------------------
    def validate_credentials(self, credentials: Credentials) -> None:
        super().validate_credentials(credentials)  # no control characters, nothing outside Latin-1
        # A personal access token is plain ASCII without spaces: a space means a pasting
        # accident. The revealed token is not kept in a local variable (error reporters record
        # the locals of every frame an exception passes through).
        if credentials.api_username is None and not _plain_token(credentials.api_password.reveal()):
            raise InvalidCredentialsError(
                "a Jira personal access token cannot contain spaces or non-ASCII characters",
                hint="copy the token again from Jira (Profile > Personal Access Tokens)",
            )

    def service_url(self, tracker: Tracker) -> str | None:
        """The Jira instance itself: ``base_url`` *is* the instance, context path included."""
        return tracker.url

    def api_url_trusted(self, tracker: Tracker) -> bool:
        """Same origin as ``base_url``, or, for a Jira Cloud site (``*.atlassian.net``),
        Atlassian's own API gateway ``https://api.atlassian.com/ex/jira/<cloudId>``: the token's
        issuer, which refuses it for any site it was not made for."""
        if super().api_url_trusted(tracker) or tracker.api_url is None:
            return super().api_url_trusted(tracker)
        host = urlsplit(tracker.url).hostname or ""
        api = urlsplit(normalize_url(tracker.api_url))
        return (
            host.endswith(".atlassian.net")
            and tracker.url.startswith("https://")
            and api.scheme == "https"
            and api.netloc == "api.atlassian.com"
            and api.path.startswith("/ex/jira/")
        )

    # -- talking to Jira -----------------------------------------------------------------------
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        import jira
        from requests.adapters import HTTPAdapter

        server = _api_server(tracker)
        options: dict[str, Any] = {
            "server": server,
            "verify": tls_verify(tracker),
            "headers": {"User-Agent": settings.user_agent},
        }
        auth: dict[str, Any]
        if credentials.api_username:
            auth = {"basic_auth": (credentials.api_username, credentials.api_password.reveal())}
        else:
            auth = {"token_auth": credentials.api_password.reveal()}
        client = jira.JIRA(
            options=options,
            get_server_info=False,  # no GET serverInfo per client; nothing here needs the version
            max_retries=0,  # jira's own loop sleeps 20-60 s per retry and re-sends POSTs
            timeout=settings.timeout,
            **auth,
        )
        isolate_session(client._session, server)  # no ~/.netrc credentials
        adapter = HTTPAdapter(max_retries=no_duplicate_retry(settings.retries))
        client._session.mount("https://", adapter)
        client._session.mount("http://", adapter)
        # No redirect is followed: requests would re-send the issue (a 307 re-POSTs it) to
        # whatever host the answer names. With max_redirects 0, requests raises
        # TooManyRedirects before it sends anything to the new address.
        client._session.max_redirects = 0
        return client

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        me: Any = client.myself()  # GET /rest/api/2/myself
        if not isinstance(me, Mapping):
            raise _not_jira()
        login = me.get("name") or me.get("emailAddress") or me.get("accountId") or me.get("key")
        if not isinstance(login, str) or not login:
            raise _not_jira()  # a wrong URL that serves some other JSON
        return Identity(
            login=str(login),
            name=_str_or_none(me.get("displayName")),
            email=_str_or_none(me.get("emailAddress")),
            id=_str_or_none(me.get("accountId") or me.get("key")),
        )

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        fields = self.issue_fields(tracker, draft)
        # prefetch=False: no GET of the new issue; project and issue type are sent by key and
        # name, so the library does not look them up either. One POST.
        issue = client.create_issue(fields=fields, prefetch=False)
        key = getattr(issue, "key", None)
        if not isinstance(key, str) or not _ISSUE_KEY.match(key):
            raise _not_jira()
        return ReportedIssue(id=key, url=f"{tracker.url}/browse/{key}")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        if not _ISSUE_KEY.match(issue_id):
            raise InvalidInputError(
                f"{issue_id!r} is not a Jira issue key (like PROJ-123) or numeric issue id"
            )
        comment = client.add_comment(issue_id, text)  # one POST /rest/api/2/issue/{key}/comment
        raw = getattr(comment, "raw", None)
        if not isinstance(raw, Mapping) or raw.get("id") in (None, ""):
            raise _not_jira()  # Jira answers a comment with its id; some other JSON is not Jira

    def issue_fields(self, tracker: Tracker, draft: IssueDraft) -> dict[str, Any]:
        """The ``fields`` of the create-issue request for ``draft`` on ``tracker``."""
        options = tracker.options
        project = options.get("project")
        if isinstance(project, int) and not isinstance(project, bool):
            project = str(project)
        if not isinstance(project, str) or not project.strip():
            raise ConfigurationError(
                f"tracker {tracker.label} has no Jira project to report into",
                hint="set the tracker's options={'project': 'KEY'} (the project key, e.g. PROJ)",
            )
        project = project.strip()
        issue_type = draft.issue_type or options.get("issue_type") or "Bug"
        if not isinstance(issue_type, str):
            raise ConfigurationError(f"tracker {tracker.label}: option 'issue_type' must be a string")
        summary = " ".join(draft.title.split())
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1] + "\u2026"
        fields: dict[str, Any] = {
            "project": {"id": project} if project.isdigit() else {"key": project},
            "issuetype": {"name": issue_type},
            "summary": summary,
        }
        if draft.body:
            fields["description"] = draft.body
        labels = _labels(tracker, options.get("labels"), draft.labels)
        if labels:
            fields["labels"] = labels
        extra = options.get("fields")
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise ConfigurationError(f"tracker {tracker.label}: option 'fields' must be a mapping")
            for name, value in extra.items():
                fields.setdefault(str(name), value)
        return fields

    # -- errors ------------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, JiraAnswerError):
            return exc.failure
        jira_exceptions = sys.modules.get("jira.exceptions")
        if jira_exceptions is not None and isinstance(exc, jira_exceptions.JIRAError):
            return _jira_failure(exc)
        return classify_requests_error(
            exc, redirect_detail=REDIRECT_DETAIL, not_json_detail=NOT_JIRA_DETAIL
        ) or super().classify_error(exc)


@hookimpl
def tokenproviders_register_tracker_types(register: Callable[[TrackerType], None]) -> None:
    """Register the ``jira`` tracker type."""
    register(JiraTrackerType())


# -- helpers ------------------------------------------------------------------------------------
def _api_server(tracker: Tracker) -> str:
    return normalize_url(tracker.api_url) if tracker.api_url else tracker.url




def _labels(tracker: Tracker, option: Any, extra: Iterable[str]) -> list[str]:
    if option is None:
        configured: list[Any] = []
    elif isinstance(option, str):
        configured = option.split(",")
    elif isinstance(option, (list, tuple)):
        configured = list(option)
    else:
        raise ConfigurationError(f"tracker {tracker.label}: option 'labels' must be a list or a string")
    labels: list[str] = []
    for value in (*configured, *extra):
        # Jira refuses a label with a space in it (HTTP 400); keep the words together instead.
        label = "-".join(str(value).split())
        if label and label not in labels:
            labels.append(label)
    return labels


def _plain_token(text: str) -> bool:
    return text.isascii() and not any(c.isspace() for c in text)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _safe_text(text: str, limit: int = 200) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _jira_messages(response: Any) -> str:
    """Jira's own error messages from a JSON error body (never a raw body, which a proxy may fill)."""
    if response is None:
        return ""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    messages = data.get("errorMessages")
    if isinstance(messages, list):
        parts.extend(str(m) for m in messages if isinstance(m, str) and m)
    errors = data.get("errors")
    if isinstance(errors, dict):
        parts.extend(f"{k}: {v}" for k, v in errors.items() if isinstance(v, str))
    return _safe_text("; ".join(parts))


def _auth_scheme(response: Any) -> str:
    request = getattr(response, "request", None)
    headers = getattr(request, "headers", None) or {}
    value = headers.get("authorization") or ""
    return str(value).split(" ", 1)[0].lower()


def _jira_failure(exc: Any) -> TrackerFailure:
    status = exc.status_code
    response = exc.response
    if not isinstance(status, int):
        return TrackerFailure("unavailable", "Jira sent an empty answer")
    if 300 <= status < 400:
        return TrackerFailure("not_found", REDIRECT_DETAIL, status)
    if status < 300:
        # A success the library could not use, e.g. a create answer without an issue key.
        return TrackerFailure("not_found", NOT_JIRA_DETAIL, status)
    text = f"HTTP {status} {_phrase(status)}".rstrip()
    headers = getattr(response, "headers", None) or {}
    path = str(exc.url or "").split("?", 1)[0].rstrip("/")
    if status == 401:
        scheme = _auth_scheme(response)
        if scheme == "bearer":
            text += (
                "; it was sent as a personal access token (Bearer), but Jira Cloud needs the"
                " account's e-mail with an API token"
            )
        elif scheme == "basic":
            text += "; it was sent as e-mail (or user name) and API token (Basic)"
    elif status == 403:
        login_reason = str(headers.get("X-Seraph-LoginReason", ""))
        if "AUTHENTICATION_DENIED" in login_reason or headers.get("X-Authentication-Denied-Reason"):
            text += ": Jira demands a CAPTCHA after failed logins; log in once in a browser"
        else:
            text += ": the account lacks a Jira permission (Browse Projects, Create Issues or Add Comments)"
    elif status == 404:
        if path.endswith("/myself"):
            text += ": no Jira REST API at this address; check its context path (e.g. /jira)"
        elif path.endswith("/comment"):
            text += ": the issue does not exist or the account cannot see it"
    elif 400 <= status < 500 and status != 429:
        messages = _jira_messages(response)
        if messages:
            text += f": {messages}"
    failure = classify_http_status(status, text)
    if failure is None:  # pragma: no cover - every status below 400 is handled above
        return TrackerFailure("request", f"unexpected answer {text}", status)
    return failure
