"""The GitHub tracker type for tokenproviders: github.com and GitHub Enterprise.

A tracker's ``base_url`` is a repository, ``https://HOST/OWNER/REPO``; its service URL is
``https://HOST``, so one personal token stored for ``https://github.com`` serves every
github.com repository tracker. The credential is a personal access token (fine-grained or
classic) in ``api_password``, sent as ``Authorization: token <t>``.

The API root is ``api_url`` when given, otherwise derived from the host: ``https://api.github.com``
for github.com, ``https://api.SUBDOMAIN.ghe.com`` for GitHub Enterprise Cloud with data residency,
and ``https://HOST/api/v3`` for GitHub Enterprise Server.

Options (``Tracker.options``): ``labels`` (list, or a comma-separated string), ``issue_type``
(the name of an organization issue type, e.g. ``"Bug"``; sent only when set) and ``fields`` (a
mapping of further create-issue fields, e.g. ``{"assignees": ["octocat"], "milestone": 3}``).

PyGithub is imported only in :meth:`GitHubTrackerType.build_client`. Its client is built lazy
(no GET of the repository before filing an issue), with its throttling sleeps switched off and
with only the retries that cannot duplicate an issue (see :func:`tokenproviders.trackertype.no_duplicate_retry`).
"""

from __future__ import annotations

import http
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
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
    origin_of,
)
from tokenproviders.trackertype import classify_requests_error, no_duplicate_retry, tls_verify

__all__ = [
    "GitHubAnswerError",
    "GitHubTrackerType",
    "api_root",
    "repository_of",
    "tokenproviders_register_tracker_types",
]

#: GitHub refuses issue titles longer than this.
TITLE_MAX = 256
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REDIRECT_DETAIL = (
    "the tracker answered with a redirect to another address; set base_url/api_url to the final address"
)
NOT_GITHUB_DETAIL = "the answer was not GitHub's API; check base_url/api_url"


class GitHubAnswerError(Exception):
    """Raised by this plugin when GitHub's answer is not one it can use (a redirect, or JSON
    without what the call needs): the wrong URL, not the credentials."""

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


def redirect_error(status: int) -> GitHubAnswerError:
    """The error for a 3xx answer, which is never followed."""
    return GitHubAnswerError(TrackerFailure("not_found", REDIRECT_DETAIL, status))


def _not_github() -> GitHubAnswerError:
    return GitHubAnswerError(TrackerFailure("not_found", NOT_GITHUB_DETAIL))


class GitHubTrackerType(TrackerType):
    """GitHub issues on github.com, GitHub Enterprise Cloud and GitHub Enterprise Server."""

    name: ClassVar[str] = "github"
    title: ClassVar[str] = "GitHub (github.com, GitHub Enterprise)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            "api_password",
            "Personal access token",
            "Create it under Settings > Developer settings > Personal access tokens"
            " (https://github.com/settings/personal-access-tokens; on GitHub Enterprise the same page"
            " of your server). Fine-grained token: give it access to the repository with the"
            " permission Issues: Read and write. Classic token: scope repo (public_repo for public"
            " repositories only). If the organization uses SAML single sign-on, authorize the"
            " token for it (Configure SSO).",
            secret=True,
        ),
    )

    # -- declaration -------------------------------------------------------------------------
    def validate_credentials(self, credentials: Credentials) -> None:
        super().validate_credentials(credentials)  # no control characters, nothing outside Latin-1
        # GitHub tokens are plain ASCII without spaces: a space means a pasting accident. The
        # revealed token is not kept in a local variable (error reporters record the locals
        # of every frame an exception passes through).
        if not _plain_token(credentials.api_password.reveal()):
            raise InvalidCredentialsError(
                "a GitHub token cannot contain spaces, line breaks or non-ASCII characters",
                hint="copy the token again from GitHub (Settings > Developer settings > Personal access tokens)",
            )

    def service_url(self, tracker: Tracker) -> str | None:
        """``https://HOST``: one token serves every repository on that GitHub."""
        return origin_of(tracker.base_url)

    def api_url_trusted(self, tracker: Tracker) -> bool:
        """A personal token goes to the API root GitHub itself uses for the tracker's host.

        That is the root :func:`api_root` derives when ``api_url`` is unset
        (``https://api.github.com`` for github.com, ``https://api.SUBDOMAIN.ghe.com`` for
        Enterprise Cloud, ``https://HOST/api/v3`` for Enterprise Server), the same root spelled
        out in ``api_url``, or any ``api_url`` on the tracker's own origin. Any other host is
        not trusted with a token matched on the tracker's URL.
        """
        if super().api_url_trusted(tracker):
            return True
        assert tracker.api_url is not None  # the default trusts a tracker without one
        return normalize_url(tracker.api_url) == _derived_api_root(tracker)

    # -- talking to GitHub ---------------------------------------------------------------------
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        import github

        from ._client import refuse_redirects  # imports PyGithub

        client = github.Github(
            base_url=api_root(tracker),
            auth=github.Auth.Token(credentials.api_password.reveal()),
            timeout=max(1, math.ceil(settings.timeout)),  # PyGithub insists on an int
            user_agent=settings.user_agent,
            verify=tls_verify(tracker),
            retry=no_duplicate_retry(settings.retries),  # never PyGithub's default: 10 retries on 403/5xx
            seconds_between_requests=None,  # PyGithub sleeps 0.25 s between requests by default
            seconds_between_writes=None,  # ... and 1 s between writes
            lazy=True,  # no GET of an object before using it
        )
        # A redirect would re-send the request, issue included, to the address it names.
        refuse_redirects(client)
        return client

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        _, data = client.requester.requestJsonAndCheck("GET", "/user")
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str) or not login:
            raise _not_github()  # a wrong URL that serves some other JSON
        user_id = data.get("id")
        return Identity(
            login=login,
            name=_str_or_none(data.get("name")),
            email=_str_or_none(data.get("email")),
            id=str(user_id) if isinstance(user_id, int) else None,
        )

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        owner, repo = repository_of(tracker)
        # One POST, whatever the draft carries. Github.requester is PyGithub's public door for
        # fields its create_issue() does not take (the issue type); the answer is plain JSON.
        _, data = client.requester.requestJsonAndCheck(
            "POST", f"/repos/{owner}/{repo}/issues", input=self.issue_payload(tracker, draft)
        )
        number = data.get("number") if isinstance(data, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise _not_github()  # GitHub always answers with the new issue's number
        html_url = data.get("html_url")
        url = html_url if isinstance(html_url, str) and html_url else f"{tracker.url}/issues/{number}"
        return ReportedIssue(id=str(number), url=url)

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        if not issue_id.isascii() or not issue_id.isdigit():
            raise InvalidInputError(f"{issue_id!r} is not a GitHub issue number")
        owner, repo = repository_of(tracker)
        _, data = client.requester.requestJsonAndCheck(
            "POST", f"/repos/{owner}/{repo}/issues/{int(issue_id)}/comments", input={"body": text}
        )
        comment_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(comment_id, int) or isinstance(comment_id, bool):
            raise _not_github()  # GitHub answers with the new comment, id included

    def issue_payload(self, tracker: Tracker, draft: IssueDraft) -> dict[str, Any]:
        """The JSON body of ``POST /repos/{owner}/{repo}/issues`` for ``draft``."""
        options = tracker.options
        title = " ".join(draft.title.split())
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "\u2026"
        payload: dict[str, Any] = {"title": title}
        if draft.body:
            payload["body"] = draft.body
        labels = _labels(tracker, options.get("labels"), draft.labels)
        if labels:
            payload["labels"] = labels
        issue_type = draft.issue_type or options.get("issue_type")
        if issue_type:
            if not isinstance(issue_type, str):
                raise ConfigurationError(f"tracker {tracker.label}: option 'issue_type' must be a string")
            payload["type"] = issue_type
        extra = options.get("fields")
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise ConfigurationError(f"tracker {tracker.label}: option 'fields' must be a mapping")
            for name, value in extra.items():
                payload.setdefault(str(name), value)
        return payload

    # -- errors ------------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, GitHubAnswerError):
            return exc.failure
        github_exceptions = sys.modules.get("github.GithubException")
        if github_exceptions is not None and isinstance(exc, github_exceptions.GithubException):
            return _github_failure(exc, github_exceptions)
        return classify_requests_error(
            exc, redirect_detail=REDIRECT_DETAIL, not_json_detail=NOT_GITHUB_DETAIL
        ) or super().classify_error(exc)


@hookimpl
def tokenproviders_register_tracker_types(register: Callable[[TrackerType], None]) -> None:
    """Register the ``github`` tracker type."""
    register(GitHubTrackerType())


# -- URLs -----------------------------------------------------------------------------------------
def api_root(tracker: Tracker) -> str:
    """The REST API root of ``tracker``: ``api_url``, or derived from the repository's host."""
    if tracker.api_url:
        return normalize_url(tracker.api_url)
    return _derived_api_root(tracker)


def _derived_api_root(tracker: Tracker) -> str:
    """The API root GitHub serves for the host of the tracker's ``base_url``."""
    origin = origin_of(tracker.base_url)
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if host in ("github.com", "www.github.com"):
        return "https://api.github.com"
    if host.endswith(".ghe.com") and not host.startswith("api."):
        return f"{parts.scheme}://api.{parts.netloc}"  # Enterprise Cloud with data residency
    return f"{origin}/api/v3"  # Enterprise Server


def repository_of(tracker: Tracker) -> tuple[str, str]:
    """``(owner, repo)`` from a repository URL such as ``https://github.com/octo/widgets(.git)``."""
    segments = [s for s in urlsplit(tracker.url).path.split("/") if s]
    if len(segments) < 2:
        raise ConfigurationError(
            f"tracker {tracker.label}: base_url {tracker.url} is not a repository URL",
            hint="give the repository's address, https://HOST/OWNER/REPO",
        )
    owner, repo = segments[0], segments[1].removesuffix(".git")
    if not _OWNER.match(owner) or not _REPO.match(repo) or repo in (".", ".."):
        raise ConfigurationError(
            f"tracker {tracker.label}: {owner}/{repo} in base_url is not a GitHub owner/repository name",
            hint="give the repository's address, https://HOST/OWNER/REPO",
        )
    return owner, repo


# -- helpers ------------------------------------------------------------------------------------


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
        label = str(value).strip()
        if label and label not in labels:
            labels.append(label)
    return labels


def _plain_token(text: str) -> bool:
    return text.isascii() and not any(c.isspace() for c in text)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _safe_text(text: str, limit: int = 200) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _validation_errors(data: Any) -> str:
    """GitHub's own words from a JSON error body: its message and each field error."""
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    message = data.get("message")
    if isinstance(message, str) and message:
        parts.append(message)
    for error in data.get("errors") or ():
        if isinstance(error, dict):
            words = [str(error[k]) for k in ("resource", "field", "code") if isinstance(error.get(k), str)]
            if isinstance(error.get("message"), str):
                words.append(error["message"])
            if words:
                parts.append(" ".join(words))
        elif isinstance(error, str):
            parts.append(error)
    return _safe_text("; ".join(parts))


def _github_failure(exc: Any, exceptions: Any) -> TrackerFailure:
    status = exc.status
    if not isinstance(status, int):
        return TrackerFailure("request", f"GitHub refused the request ({type(exc).__name__})")
    data = exc.data
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    message = str(data.get("message") or "") if isinstance(data, dict) else ""
    text = f"HTTP {status} {_phrase(status)}".rstrip()
    if (
        isinstance(exc, exceptions.RateLimitExceededException)
        or status == 429
        or (status == 403 and headers.get("x-ratelimit-remaining") == "0")
    ):
        reset = headers.get("x-ratelimit-reset", "")
        when = ""
        if reset.isdigit():
            when = " until " + datetime.fromtimestamp(int(reset), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return TrackerFailure("unavailable", f"{text}: GitHub's API rate limit is used up{when}", status)
    if status == 401:
        if isinstance(exc, exceptions.BadCredentialsException):
            text += ": GitHub says 'Bad credentials' (the token is wrong, expired or revoked)"
        else:
            text += ": GitHub wants a valid token"
    elif status == 403:
        lowered = message.lower()
        if "saml" in lowered:
            text += ": the organization enforces SAML single sign-on; authorize the token for it (Configure SSO)"
        elif lowered.startswith("resource not accessible"):
            text += (
                ": the token lacks a permission (fine-grained: Issues read and write on this repository;"
                " classic: the repo or public_repo scope)"
            )
        else:
            text += ": the token or its user may not do this in the repository"
    elif status == 404:
        text += (
            ": no such repository, or a private one this token may not see (GitHub answers 404, not"
            " 403, then; a fine-grained token must list the repository)"
        )
    elif status == 410:
        text += ": issues are disabled in this repository"
    elif 400 <= status < 500:
        words = _validation_errors(data)
        if words:
            text += f": {words}"
    failure = classify_http_status(status, text)
    if failure is None:
        return TrackerFailure("request", f"unexpected answer {text}", status)
    return failure
