"""The Azure Boards tracker type for tokenproviders: personal access tokens, through requests.

A tracker's ``base_url`` is a project of an Azure DevOps organization:
``https://dev.azure.com/{organization}/{project}``, the older
``https://{organization}.visualstudio.com/{project}``, or, on Azure DevOps Server,
``https://server/{collection}/{project}`` (set ``api_url`` to the collection URL when it has more
than one path segment, e.g. ``https://server/tfs/DefaultCollection``). Anything after the
project in the URL (``/_boards``, ``/_workitems``...) is ignored; ``options["project"]``
overrides the project the URL names.

Credentials: a personal access token (``api_password``), sent as
``Authorization: Basic base64(":" + token)``. Azure DevOps may answer a token it does not accept
with **HTTP 203 and an HTML sign-in page** instead of 401; that is treated as rejected credentials.

Tracker options: ``project``; ``work_item_type`` (default ``Bug``; a report's ``issue_type``
overrides it); ``area_path`` and ``iteration_path``; ``tags`` (added to a report's labels, as
``System.Tags``); ``description_fields`` (the HTML fields the report's body goes to; default
``System.Description``, plus ``Microsoft.VSTS.TCM.ReproSteps`` for Bugs, which is what the Bug
form of the Agile, Scrum and CMMI processes shows).

requests is imported only when a client is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

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
    hookimpl,
    normalize_url,
)
from tokenproviders.trackertype import tls_verify

__all__ = [
    "AzureBoardsError",
    "AzureBoardsTrackerType",
    "AzureLocation",
    "locate",
    "tokenproviders_register_tracker_types",
]

__version__ = "0.1.0"

#: Work-item creation and the REST API version the plugin speaks.
API_VERSION = "7.1"
#: The work-item comments API exists only as a preview.
COMMENTS_API_VERSION = "7.1-preview.4"
REDIRECT_DETAIL = (
    "the tracker answered with a redirect to another address; set base_url/api_url to the final address"
)
NOT_AZURE_DETAIL = "the answer was not Azure DevOps' API; check base_url/api_url"


class AzureBoardsError(Exception):
    """What the Azure Boards client raises when Azure DevOps refuses a call.

    It carries the :class:`~tokenproviders.TrackerFailure` already classified, with a detail that
    names the status and Azure's error type, never a token.
    """

    def __init__(self, failure: TrackerFailure) -> None:
        self.failure = failure
        super().__init__(failure.detail)


@dataclass(frozen=True)
class AzureLocation:
    """Where a tracker lives: its organization (or collection) URL and project name."""

    organization_url: str
    project: str | None


def locate(tracker: Tracker) -> AzureLocation:
    """The organization URL (normalized) and project of an Azure Boards tracker."""
    base = normalize_url(tracker.base_url)
    parts = urlsplit(base)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    option = tracker.options.get("project")
    explicit = str(option).strip() if option is not None and str(option).strip() else None
    if tracker.api_url:
        organization = normalize_url(tracker.api_url)
        prefix = [unquote(s) for s in urlsplit(organization).path.split("/") if s]
        rest = segments[len(prefix) :] if segments[: len(prefix)] == prefix else []
    elif parts.hostname is not None and parts.hostname.endswith(".visualstudio.com"):
        organization = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        rest = segments
    else:
        organization = urlunsplit((parts.scheme, parts.netloc, f"/{segments[0]}" if segments else "", "", ""))
        organization = normalize_url(organization)
        rest = segments[1:]
    named = rest[0] if rest and not rest[0].startswith("_") else None
    return AzureLocation(organization_url=organization, project=explicit or named)


def _text_option(tracker: Tracker, name: str, default: str | None = None) -> str | None:
    value = tracker.options.get(name)
    text = str(value).strip() if value is not None else ""
    return text or default


def _list_option(tracker: Tracker, name: str) -> list[str]:
    value = tracker.options.get(name)
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if isinstance(value, Sequence):
        return [str(part).strip() for part in value if str(part).strip()]
    return []


class AzureBoardsTrackerType(TrackerType):
    """Azure Boards work items (Azure DevOps Services and Server), with a personal access token."""

    name: ClassVar[str] = "azureboards"
    title: ClassVar[str] = "Azure Boards (Azure DevOps)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            name="api_password",
            label="Personal access token",
            help=(
                "In Azure DevOps open User settings (the icon next to your picture, top right) >"
                " 'Personal access tokens' > '+ New Token'. Choose the organization this tracker"
                " belongs to, the scope 'Work Items: Read & write' and an expiry date, then copy"
                " the token. One token serves every project of that organization."
            ),
            required=True,
            secret=True,
        ),
    )

    def service_url(self, tracker: Tracker) -> str | None:
        """The organization (``https://dev.azure.com/{org}``): a PAT serves all its projects."""
        return locate(tracker).organization_url

    # -- talking to Azure DevOps -----------------------------------------------------------
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        from ._client import AzureBoardsClient  # requests is imported here, never at module top

        verify = tls_verify(tracker)
        return AzureBoardsClient(locate(tracker).organization_url, credentials, settings, verify)

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        identity: Identity = client.whoami()
        return identity

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        project = self._project(tracker)
        work_item_type = (draft.issue_type or "").strip() or _text_option(tracker, "work_item_type", "Bug") or "Bug"
        description_fields = _list_option(tracker, "description_fields") or (
            ["System.Description", "Microsoft.VSTS.TCM.ReproSteps"]
            if work_item_type.casefold() == "bug"
            else ["System.Description"]
        )
        fields: dict[str, str] = {"System.Title": draft.title}
        if draft.body:
            for name in description_fields:
                fields[name] = as_html(draft.body)
        tags = list(dict.fromkeys([*draft.labels, *_list_option(tracker, "tags")]))
        if tags:
            fields["System.Tags"] = "; ".join(tags)
        for option, field_name in (("area_path", "System.AreaPath"), ("iteration_path", "System.IterationPath")):
            value = _text_option(tracker, option)
            if value:
                fields[field_name] = value
        item_id, url = client.create_work_item(project, work_item_type, fields)
        return ReportedIssue(id=str(item_id), url=url)

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        number = str(issue_id).strip().lstrip("#")
        if not number.isdigit():
            raise InvalidInputError(f"an Azure Boards work item id is a number, not {issue_id!r}")
        client.add_comment(self._project(tracker), int(number), as_html(text))

    def _project(self, tracker: Tracker) -> str:
        project = locate(tracker).project
        if not project:
            raise InvalidInputError(
                f"tracker {tracker.label} does not say which Azure DevOps project to file work items in",
                hint="use the project's URL (https://dev.azure.com/{organization}/{project}) as base_url,"
                " or set the tracker option 'project'",
            )
        return project

    # -- errors ----------------------------------------------------------------------------
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, AzureBoardsError):
            return exc.failure
        return super().classify_error(exc)


def as_html(text: str) -> str:
    """Plain text as the HTML Azure Boards' description and comment fields hold."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    """Register the ``azureboards`` tracker type."""
    register(AzureBoardsTrackerType())
