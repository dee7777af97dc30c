"""The GitLab tracker type for tokenproviders: gitlab.com and self-hosted GitLab.

A tracker's ``base_url`` is a project, possibly in nested groups
(``https://gitlab.example.com/grp/sub/proj``); the GitLab instance is ``api_url`` when given
(``https://example.com/gitlab``, with or without ``/api/v4``), otherwise the origin of
``base_url``. The instance is the service URL, so one personal token serves every project
tracker on it. The credential is a personal (or project / group) access token in
``api_password``, sent as ``PRIVATE-TOKEN: <t>``.

Options (``Tracker.options``): ``project`` (a numeric id or a path, instead of the one in
``base_url``), ``labels`` (list, or a comma-separated string), ``issue_type`` (``issue``,
``incident``, ``test_case`` or ``task``; ``bug`` means ``issue``) and ``fields`` (a mapping of
further create-issue attributes, e.g. ``{"confidential": True}``).

python-gitlab is imported only in :meth:`GitLabTrackerType.build_client`. The client does no
I/O when built, files an issue with one POST (no GET of the project first), never sleeps
through a rate limit, and retries only what cannot duplicate an issue (see
:func:`tokenproviders.trackertype.no_duplicate_retry`).
"""

from __future__ import annotations

import http
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

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
    origin_of,
)
from tokenproviders.trackertype import classify_requests_error, isolate_session, no_duplicate_retry, tls_verify

__all__ = [
    "GitLabAnswerError",
    "GitLabTrackerType",
    "ISSUE_TYPES",
    "instance_url",
    "project_of",
    "tokenproviders_register_tracker_types",
]

#: GitLab refuses longer issue titles.
TITLE_MAX = 255
#: The values GitLab's API takes for ``issue_type``.
ISSUE_TYPES = ("issue", "incident", "test_case", "task")
_ISSUE_TYPE_ALIASES = {"bug": "issue", "test case": "test_case", "test-case": "test_case"}
_API_SUFFIX = re.compile(r"/api/v4$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REDIRECT_DETAIL = (
    "the tracker answered with a redirect to another address; set base_url/api_url to the final address"
)
NOT_GITLAB_DETAIL = "the answer was not GitLab's API; check base_url/api_url"


class GitLabAnswerError(Exception):
    """Raised by this plugin when GitLab's answer is not one it can use (JSON without what the
    call needs): the wrong URL, not the credentials."""

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


def _not_gitlab() -> GitLabAnswerError:
    return GitLabAnswerError(TrackerFailure("not_found", NOT_GITLAB_DETAIL))


class GitLabTrackerType(TrackerType):
    """GitLab issues on gitlab.com and self-hosted GitLab (Community and Enterprise Edition)."""

    name: ClassVar[str] = "gitlab"
    title: ClassVar[str] = "GitLab (gitlab.com, self-hosted)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            "api_password",
            "Personal access token",
            "Create it in GitLab under your avatar > Edit profile > Access tokens > Add new token"
            " (https://gitlab.com/-/user_settings/personal_access_tokens, or the same page of your"
            " GitLab), with the scope api; read_api cannot file issues or comments. Its user needs"
            " at least the Guest role in the project (Reporter for a confidential issue).",
            secret=True,
        ),
    )

    # -- declaration -------------------------------------------------------------------------
    def validate_credentials(self, credentials: Credentials) -> None:
        super().validate_credentials(credentials)  # no control characters, nothing outside Latin-1
        # GitLab tokens are plain ASCII without spaces: a space means a pasting accident. The
        # revealed token is not kept in a local variable (error reporters record the locals
        # of every frame an exception passes through).
        if not _plain_token(credentials.api_password.reveal()):
            raise InvalidCredentialsError(
                "a GitLab token cannot contain spaces, line breaks or non-ASCII characters",
                hint="copy the token again from GitLab (Edit profile > Access tokens)",
            )

    def service_url(self, tracker: Tracker) -> str | None:
        """The GitLab instance: one token serves every project on it."""
        return instance_url(tracker)

    # -- talking to GitLab ---------------------------------------------------------------------
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        import requests
        from requests.adapters import HTTPAdapter

        from ._client import BoundedGitlab  # imports python-gitlab

        instance = instance_url(tracker)
        session = isolate_session(requests.Session(), instance)  # no ~/.netrc credentials
        adapter = HTTPAdapter(max_retries=no_duplicate_retry(settings.retries))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # No redirect is followed: python-gitlab lets requests follow them, and requests keeps
        # the PRIVATE-TOKEN header (it drops only Authorization) and re-POSTs the issue on a
        # 307. With max_redirects 0, requests raises TooManyRedirects before it sends anything
        # to the new address.
        session.max_redirects = 0
        return BoundedGitlab(
            instance,
            private_token=credentials.api_password.reveal(),
            ssl_verify=tls_verify(tracker),
            timeout=settings.timeout,
            user_agent=settings.user_agent,
            retry_transient_errors=False,  # it re-sends POSTs; the adapter retries only safe cases
            session=session,
        )

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        # GET /api/v4/user. Gitlab.auth() would do the same and also store the user on the
        # client, which is shared between threads.
        data = client.http_get("/user")
        login = data.get("username") if isinstance(data, dict) else None
        if not isinstance(login, str) or not login:
            raise _not_gitlab()  # a wrong URL that serves some other JSON (or none)
        user_id = data.get("id")
        return Identity(
            login=login,
            name=_str_or_none(data.get("name")),
            email=_str_or_none(data.get("email")) or _str_or_none(data.get("public_email")),
            id=str(user_id) if isinstance(user_id, int) else None,
        )

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        attributes = self.issue_attributes(tracker, draft)
        # One POST. Gitlab.http_post instead of projects.get(lazy=True).issues.create(): the
        # manager path builds a Project and an Issue object with some 100 sub-managers each,
        # which tripled the client-side cost of a warm report.
        data = client.http_post(f"/projects/{_project_ref(tracker)}/issues", post_data=attributes)
        iid = data.get("iid") if isinstance(data, dict) else None
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise _not_gitlab()  # GitLab always answers with the new issue's iid
        web_url = data.get("web_url")
        url = web_url if isinstance(web_url, str) and web_url else f"{tracker.url}/-/issues/{iid}"
        return ReportedIssue(id=str(iid), url=url)

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        if not issue_id.isascii() or not issue_id.isdigit():
            raise InvalidInputError(f"{issue_id!r} is not a GitLab issue number (its iid, as in #12)")
        data = client.http_post(
            f"/projects/{_project_ref(tracker)}/issues/{int(issue_id)}/notes", post_data={"body": text}
        )
        note_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(note_id, int) or isinstance(note_id, bool):
            raise _not_gitlab()  # GitLab answers with the new note, id included

    def issue_attributes(self, tracker: Tracker, draft: IssueDraft) -> dict[str, Any]:
        """The attributes of the create-issue request for ``draft`` on ``tracker``."""
        options = tracker.options
        title = " ".join(draft.title.split())
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "\u2026"
        attributes: dict[str, Any] = {"title": title}
        if draft.body:
            attributes["description"] = draft.body
        labels = _labels(tracker, options.get("labels"), draft.labels)
        if labels:
            attributes["labels"] = ",".join(labels)  # the API takes one comma-separated list
        if draft.issue_type:
            attributes["issue_type"] = _issue_type(draft.issue_type, InvalidInputError, "the report's issue_type")
        elif options.get("issue_type"):
            attributes["issue_type"] = _issue_type(
                options["issue_type"], ConfigurationError, f"tracker {tracker.label}: option 'issue_type'"
            )
        extra = options.get("fields")
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise ConfigurationError(f"tracker {tracker.label}: option 'fields' must be a mapping")
            for name, value in extra.items():
                attributes.setdefault(str(name), value)
        return attributes

    # -- errors ------------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, GitLabAnswerError):
            return exc.failure
        gitlab_exceptions = sys.modules.get("gitlab.exceptions")
        if gitlab_exceptions is not None and isinstance(exc, gitlab_exceptions.GitlabError):
            return _gitlab_failure(exc, gitlab_exceptions)
        return classify_requests_error(
            exc, redirect_detail=REDIRECT_DETAIL, not_json_detail=NOT_GITLAB_DETAIL
        ) or super().classify_error(exc)


@hookimpl
def tokenproviders_register_tracker_types(register: Callable[[TrackerType], None]) -> None:
    """Register the ``gitlab`` tracker type."""
    register(GitLabTrackerType())


# -- URLs -----------------------------------------------------------------------------------------
def instance_url(tracker: Tracker) -> str:
    """The GitLab instance: ``api_url`` (without ``/api/v4``), or the origin of ``base_url``."""
    if tracker.api_url:
        return _API_SUFFIX.sub("", normalize_url(tracker.api_url))
    return origin_of(tracker.base_url)


def project_of(tracker: Tracker) -> str | int:
    """The project to file into: option ``project``, or the path of ``base_url`` below the instance.

    ``https://gitlab.example.com/grp/sub/proj`` gives ``grp/sub/proj``; a trailing ``.git`` or
    ``/-/issues`` is dropped; for an instance at ``https://example.com/gitlab`` the path starts
    after ``/gitlab``.
    """
    option = tracker.options.get("project")
    if option is not None:
        if isinstance(option, int) and not isinstance(option, bool):
            return option
        if isinstance(option, str) and option.strip("/ "):
            value = option.strip("/ ")
            return int(value) if value.isdigit() else value
        raise ConfigurationError(f"tracker {tracker.label}: option 'project' must be a project id or path")
    base = urlsplit(tracker.url)
    instance = urlsplit(instance_url(tracker))
    path = base.path
    if (base.scheme, base.netloc) == (instance.scheme, instance.netloc) and instance.path:
        if not path.startswith(instance.path + "/"):
            raise ConfigurationError(
                f"tracker {tracker.label}: base_url {tracker.url} is not a project of the GitLab at"
                f" {instance_url(tracker)}",
                hint="give the project's address below the instance, or option 'project'",
            )
        path = path[len(instance.path) :]
    path = re.split(r"/-(?:/|$)", unquote(path).strip("/"), maxsplit=1)[0].removesuffix(".git")
    segments = path.split("/")
    if len(segments) < 2 or not all(_SEGMENT.match(s) and s not in (".", "..") for s in segments):
        raise ConfigurationError(
            f"tracker {tracker.label}: base_url {tracker.url} is not a project URL",
            hint="give the project's address, https://HOST/GROUP[/SUBGROUP...]/PROJECT, or option 'project'",
        )
    return path


def _project_ref(tracker: Tracker) -> str:
    """The project as one URL path segment: its id, or its path percent-encoded (``grp%2Fproj``)."""
    project = project_of(tracker)
    return str(project) if isinstance(project, int) else quote(project, safe="")


# -- helpers ------------------------------------------------------------------------------------


def _issue_type(value: Any, error: type[Exception], what: str) -> str:
    if isinstance(value, str):
        lowered = value.strip().lower()
        lowered = _ISSUE_TYPE_ALIASES.get(lowered, lowered)
        if lowered in ISSUE_TYPES:
            return lowered
    raise error(f"{what} {value!r} is not a GitLab issue type; GitLab takes {', '.join(ISSUE_TYPES)}")


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
        # GitLab's API takes labels as one comma-separated list: a comma would split a label.
        label = str(value).replace(",", " ").strip()
        if label and label not in labels:
            labels.append(label)
    return labels


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _plain_token(text: str) -> bool:
    return text.isascii() and not any(c.isspace() for c in text)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _safe_text(text: str, limit: int = 200) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _json_body(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, (bytes, str)) or not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _gitlab_words(data: dict[str, Any] | None) -> str:
    """GitLab's own words from a JSON error body (``message`` or ``error``; never a raw body)."""
    if data is None:
        return ""
    message = data.get("message", data.get("error"))
    if isinstance(message, str):
        return _safe_text(message)
    if isinstance(message, dict):
        parts = []
        for key, value in message.items():
            values = value if isinstance(value, list) else [value]
            parts.append(f"{key} {' and '.join(str(v) for v in values)}")
        return _safe_text("; ".join(parts))
    return ""


def _gitlab_failure(exc: Any, exceptions: Any) -> TrackerFailure:
    if isinstance(exc, exceptions.RedirectError):  # not raised: redirects are refused first
        return TrackerFailure("not_found", REDIRECT_DETAIL)
    if isinstance(exc, exceptions.GitlabParsingError):
        return TrackerFailure("not_found", NOT_GITLAB_DETAIL)
    status = exc.response_code
    if not isinstance(status, int):
        return TrackerFailure("request", f"GitLab refused the request ({type(exc).__name__})")
    if 300 <= status < 400:  # a 3xx without a Location requests could follow
        return TrackerFailure("not_found", REDIRECT_DETAIL, status)
    data = _json_body(exc.response_body)
    text = f"HTTP {status} {_phrase(status)}".rstrip()
    if status == 401:
        text += ": the token is wrong, expired or revoked"
    elif status == 403:
        if data is not None and data.get("error") == "insufficient_scope":
            text += ": the token lacks the api scope (read_api cannot file issues or comments)"
        else:
            text += ": the token needs the api scope, and its user a role in the project that may do this"
    elif status == 404:
        text += ": no such project or issue, or a private one the token's user may not see (GitLab answers 404 then)"
    elif 400 <= status < 500 and status != 429:
        # GitLab starts many messages with the status again ("400 Bad request - ...").
        words = re.sub(rf"^{status}\s*", "", _gitlab_words(data))
        if words:
            text += f": {words}"
    failure = classify_http_status(status, text)
    if failure is None:
        return TrackerFailure("request", f"unexpected answer {text}", status)
    return failure
