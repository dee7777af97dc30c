"""A working tracker type, ``testplugin``, registered through the ``tokenproviders`` entry point.

Its "client" is a plain object; whoami answers the part of the token before the first ``:``.
No client library, no network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tokenproviders import (
    ClientSettings,
    Credentials,
    Field,
    Identity,
    IssueDraft,
    ReportedIssue,
    Tracker,
    TrackerType,
    hookimpl,
)


@dataclass
class EchoClient:
    tracker_url: str
    credentials: Credentials = field(repr=False)
    timeout: float

    @property
    def login(self) -> str:
        return self.credentials.api_password.reveal().split(":", 1)[0]


class EchoTrackerType(TrackerType):
    name: ClassVar[str] = "testplugin"
    title: ClassVar[str] = "Echo tracker (tokenproviders-testplugin)"
    fields: ClassVar[tuple[Field, ...]] = (Field("api_password", "Token", "login:anything", secret=True),)

    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        return EchoClient(tracker.url, credentials, settings.timeout)

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        return Identity(login=client.login)

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        return ReportedIssue(id="1", url=f"{tracker.url}/issues/1")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        return None


@hookimpl
def tokenproviders_register_tracker_types(register: Callable[[TrackerType], None]) -> None:
    register(EchoTrackerType())
