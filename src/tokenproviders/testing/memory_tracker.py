"""An in-process tracker type for unit tests: no HTTP, no client library.

``MemoryTrackerType`` behaves like a real tracker type: it declares fields, builds a "client"
bound to the credentials, answers whoami from a token-to-identity table, records reported issues
and comments under the authenticated identity, and raises library-style exceptions that its
``classify_error`` maps onto ours. A host can unit-test its integration with it; the core's own
tests use it for every resolution branch.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..model import ClientSettings, Credentials, Field, Identity, IssueDraft, ReportedIssue, Tracker
from ..plugins import hookimpl
from ..trackertype import TrackerFailure, TrackerType, classify_http_status

__all__ = ["MemoryTrackerType", "MemoryTrackerBackend", "MemoryTrackerHTTPError", "MemoryClient"]


class MemoryTrackerHTTPError(Exception):
    """What the in-memory "client library" raises: an HTTP status, like a real one."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP {status}")


@dataclass
class RecordedIssue:
    id: str
    title: str
    body: str
    reporter: str
    labels: tuple[str, ...]
    comments: list[tuple[str, str]] = field(default_factory=list)


class MemoryTrackerBackend:
    """The "server": which credentials are whom, and what was filed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._identities: dict[tuple[str | None, str], str] = {}
        self.issues: dict[str, RecordedIssue] = {}
        self.calls: list[tuple[str, str | None]] = []
        self.fail_status: int | None = None
        self._ids = itertools.count(1)

    def add_user(self, login: str, token: str, username: str | None = None) -> None:
        self._identities[(username, token)] = login

    def authenticate(self, credentials: Credentials) -> str:
        if self.fail_status is not None:
            raise MemoryTrackerHTTPError(self.fail_status)
        login = self._identities.get((credentials.api_username, credentials.api_password.reveal()))
        if login is None:
            raise MemoryTrackerHTTPError(401)
        return login

    def file(self, login: str, draft: IssueDraft) -> RecordedIssue:
        with self._lock:
            issue = RecordedIssue(str(next(self._ids)), draft.title, draft.body, login, draft.labels)
            self.issues[issue.id] = issue
        return issue


@dataclass
class MemoryClient:
    """The authenticated "client" ``build_client`` returns."""

    backend: MemoryTrackerBackend
    credentials: Credentials = field(repr=False)
    settings: ClientSettings

    def call(self, what: str) -> str:
        login = self.backend.authenticate(self.credentials)
        self.backend.calls.append((what, login))
        return login


class MemoryTrackerType(TrackerType):
    """A tracker type served from memory. ``service`` sets what ``service_url`` returns."""

    name: ClassVar[str] = "memory"
    title: ClassVar[str] = "In-memory tracker (tests)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_username", "User name", "optional; some credentials need one", required=False),
        Field("api_password", "API token", "the token itself", secret=True),
    )

    def __init__(self, backend: MemoryTrackerBackend | None = None, *, name: str | None = None) -> None:
        self.backend = backend or MemoryTrackerBackend()
        if name is not None:
            self.name = name  # type: ignore[misc]
        self.built = 0

    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        self.built += 1
        return MemoryClient(self.backend, credentials, settings)

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        return Identity(login=client.call("whoami"))

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        login = client.call("report")
        issue = self.backend.file(login, draft)
        return ReportedIssue(id=issue.id, url=f"{tracker.url}/issues/{issue.id}")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        login = client.call("comment")
        self.backend.issues[issue_id].comments.append((login, text))

    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, MemoryTrackerHTTPError):
            return classify_http_status(exc.status)
        return super().classify_error(exc)


class MemoryTrackerPlugin:
    """A plugin object registering one :class:`MemoryTrackerType`."""

    def __init__(self, tracker_type: MemoryTrackerType) -> None:
        self.tracker_type = tracker_type

    @hookimpl
    def tokenproviders_register_tracker_types(self, register: Any) -> None:
        register(self.tracker_type)
