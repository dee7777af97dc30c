"""The Redmine tracker type for tokenproviders, through python-redmine.

A tracker's ``base_url`` is the Redmine instance (``https://redmine.example.com``, or a sub-path
such as ``https://example.com/redmine``); a project URL (``.../projects/webshop``) is accepted too
and names the project. ``api_url``, when set, is the instance and wins over ``base_url``.

Credentials: an API key alone (``api_password``; sent as ``X-Redmine-API-Key``), or a user name
and password (``api_username`` + ``api_password``; HTTP Basic).

Tracker options:

``project``
    the project identifier (``webshop``) or numeric id; required unless ``base_url`` is a
    project URL.
``tracker_id``
    numeric id of the Redmine *tracker* (Bug, Feature, ...) new issues get; Redmine's project
    default when absent.
``priority_id``
    numeric id of the priority new issues get; Redmine's default when absent.
``tracker_ids``
    a mapping of tracker names to ids (``{"Bug": 1, "Feature": 2}``) so that a report's
    ``issue_type`` can be given by name.

python-redmine is imported only when a client is built (``build_client``); importing this module
and discovering the plugin cost no client-library import.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
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
from tokenproviders.trackertype import tls_verify

__all__ = ["RedmineAnswerError", "RedmineTrackerType", "tokenproviders_register_tracker_types"]

__version__ = "0.1.0"

_PROJECT_PATH = re.compile(r"^(?P<instance>.*?)/projects/(?P<project>[^/]+)(?:/.*)?$")
REDIRECT_DETAIL = (
    "the tracker answered with a redirect to another address; set base_url/api_url to the final address"
)
NOT_REDMINE_DETAIL = "the answer was not Redmine's API; check base_url/api_url"


class RedmineAnswerError(Exception):
    """Raised by this plugin when Redmine's answer is not one it can use (JSON without what the
    call needs): the wrong URL, not the credentials."""

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


def _not_redmine() -> RedmineAnswerError:
    return RedmineAnswerError(TrackerFailure("not_found", NOT_REDMINE_DETAIL))


def instance_and_project(tracker: Tracker) -> tuple[str, str | None]:
    """The normalized Redmine instance URL of ``tracker`` and the project its URL names (if any)."""
    base = normalize_url(tracker.base_url)
    parts = urlsplit(base)
    match = _PROJECT_PATH.match(parts.path)
    project = match["project"] if match else None
    if tracker.api_url:
        return normalize_url(tracker.api_url), project
    if match:
        return urlunsplit((parts.scheme, parts.netloc, match["instance"], "", "")), project
    return base, None


def _int_option(tracker: Tracker, name: str) -> int | None:
    value = tracker.options.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"tracker {tracker.label}: option {name!r} must be a numeric Redmine id, not {value!r}",
            hint=f"set {name} to the number shown in Redmine's administration pages",
        ) from None


class RedmineTrackerType(TrackerType):
    """Redmine (any version with the REST API), with an API key or a user name and password."""

    name: ClassVar[str] = "redmine"
    title: ClassVar[str] = "Redmine"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            name="api_password",
            label="API key (or password)",
            help=(
                "Your Redmine API access key: in Redmine open 'My account' (top right), then"
                " 'API access key' > 'Show' in the sidebar. If the sidebar has no API key, an"
                " administrator must tick 'Enable REST web service' under Administration >"
                " Settings > API. If you fill in a user name, put that user's password here instead."
            ),
            required=True,
            secret=True,
        ),
        Field(
            name="api_username",
            label="User name (only with a password)",
            help=(
                "Leave empty when you give an API key (recommended). Fill in your Redmine login"
                " only to sign in with login and password (HTTP Basic) instead of a key."
            ),
            required=False,
        ),
    )

    # -- where tokens apply ----------------------------------------------------------------
    def service_url(self, tracker: Tracker) -> str | None:
        """The Redmine instance: one key serves every project on it."""
        return instance_and_project(tracker)[0]

    def project_of(self, tracker: Tracker) -> str:
        """The project identifier (or id) new issues go to."""
        option = tracker.options.get("project")
        project = str(option).strip() if option is not None else ""
        if not project:
            project = instance_and_project(tracker)[1] or ""
        if not project:
            raise InvalidInputError(
                f"tracker {tracker.label} does not say which Redmine project to file issues in",
                hint="set the tracker option 'project' to the project's identifier (as in"
                " /projects/<identifier>), or use the project's URL as base_url",
            )
        return project

    # -- talking to Redmine ----------------------------------------------------------------
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        from ._client import build_redmine  # python-redmine is imported here, never at module top

        instance, _ = instance_and_project(tracker)
        verify = tls_verify(tracker)
        return build_redmine(instance, credentials, settings, verify)

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        try:
            user = client.user.get("current")  # GET /users/current.json
        except (KeyError, TypeError, AttributeError):
            # python-redmine indexes the answer with "user": some other JSON (or none).
            raise _not_redmine() from None
        data = user.raw()
        login, user_id = data.get("login"), data.get("id")
        if not isinstance(login, str) or not login or not isinstance(user_id, int) or isinstance(user_id, bool):
            raise _not_redmine()
        full = " ".join(str(data.get(key) or "") for key in ("firstname", "lastname")).strip()
        mail = data.get("mail")
        return Identity(
            login=login,
            name=full or None,
            email=mail if isinstance(mail, str) and mail else None,
            id=str(user_id),
        )

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        fields: dict[str, Any] = {
            "project_id": self.project_of(tracker),
            "subject": draft.title,
            "description": draft.body,
        }
        tracker_id = self._tracker_id(tracker, draft.issue_type)
        if tracker_id is not None:
            fields["tracker_id"] = tracker_id
        priority_id = _int_option(tracker, "priority_id")
        if priority_id is not None:
            fields["priority_id"] = priority_id
        # One request: POST /projects/{project}/issues.json (python-redmine reads nothing first).
        try:
            issue = client.issue.create(**fields)
        except (KeyError, TypeError, AttributeError):
            # python-redmine indexes the answer with "issue": some other JSON (or none).
            raise _not_redmine() from None
        number = issue.raw().get("id")
        if not isinstance(number, int) or isinstance(number, bool):
            raise _not_redmine()
        instance, _ = instance_and_project(tracker)
        return ReportedIssue(id=str(number), url=f"{instance}/issues/{number}")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        # One request: PUT /issues/{id}.json with the note; Redmine records it as a journal entry.
        answer = client.issue.update(_issue_number(issue_id), notes=text)
        if answer is not True:
            # Redmine answers an update with an empty body (204, or 200 on old versions), which
            # python-redmine returns as True; a JSON body means some other API answered.
            raise _not_redmine()

    def _tracker_id(self, tracker: Tracker, issue_type: str | None) -> int | None:
        if issue_type is None or not issue_type.strip():
            return _int_option(tracker, "tracker_id")
        wanted = issue_type.strip()
        if wanted.isdigit():
            return int(wanted)
        names = tracker.options.get("tracker_ids")
        if isinstance(names, Mapping):
            for name, value in names.items():
                if str(name).casefold() == wanted.casefold():
                    return int(value)
        raise InvalidInputError(
            f"tracker {tracker.label}: Redmine needs a numeric tracker id for issue type {wanted!r}",
            hint="give the id (e.g. '1'), or map names to ids in the tracker option 'tracker_ids'",
        )

    # -- errors ----------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, RedmineAnswerError):
            return exc.failure
        exceptions = sys.modules.get("redminelib.exceptions")
        if exceptions is not None and isinstance(exc, exceptions.BaseRedmineError):
            return _classify_redmine(exc, exceptions)
        requests_exceptions = sys.modules.get("requests.exceptions")
        if requests_exceptions is not None and isinstance(exc, requests_exceptions.TooManyRedirects):
            # Not raised (the engine follows no redirect); mapped in case a request ever is.
            status = getattr(getattr(exc, "response", None), "status_code", None)
            return TrackerFailure("not_found", REDIRECT_DETAIL, status if isinstance(status, int) else None)
        return super().classify_error(exc)


def _classify_redmine(exc: BaseException, exceptions: Any) -> TrackerFailure:
    if isinstance(exc, exceptions.AuthError):
        return TrackerFailure("rejected", "HTTP 401", 401)
    if isinstance(exc, exceptions.ForbiddenError):
        return TrackerFailure(
            "rejected",
            "HTTP 403: the REST API is disabled, or this user may not do that in the project",
            403,
        )
    if isinstance(exc, exceptions.ResourceNotFoundError):
        return TrackerFailure("not_found", "HTTP 404: no such project, issue or Redmine URL", 404)
    if isinstance(exc, exceptions.ServerError):
        return TrackerFailure("unavailable", "HTTP 500", 500)
    if isinstance(exc, exceptions.UnknownError):
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and 300 <= status < 400:
            return TrackerFailure("not_found", REDIRECT_DETAIL, status)
        if isinstance(status, int):
            failure = classify_http_status(status)
            if failure is not None:
                return failure
        return TrackerFailure("request", "an unexpected HTTP status", status)
    if isinstance(exc, exceptions.ValidationError):
        # Redmine's own validation messages ("Subject cannot be blank"): no secrets in them.
        return TrackerFailure("request", f"HTTP 422: {exc}", 422)
    if isinstance(exc, (exceptions.JSONDecodeError, exceptions.HTTPProtocolError)):
        return TrackerFailure("not_found", NOT_REDMINE_DETAIL)
    if isinstance(exc, exceptions.ConflictError):
        return TrackerFailure("request", "HTTP 409: the issue changed meanwhile", 409)
    if isinstance(exc, exceptions.RequestEntityTooLargeError):
        return TrackerFailure("request", "HTTP 413: the report is too large", 413)
    return TrackerFailure("request", type(exc).__name__)


def _issue_number(issue_id: str) -> int:
    text = str(issue_id).strip().lstrip("#")
    if not text.isdigit():
        raise InvalidInputError(f"a Redmine issue id is a number, not {issue_id!r}")
    return int(text)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    """Register the ``redmine`` tracker type."""
    register(RedmineTrackerType())
