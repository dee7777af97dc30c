"""Broken: its client's repr shows the token."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackClient, YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl


class ReprClient(YouTrackClient):
    def __repr__(self) -> str:
        return f"<YouTrackClient {self.api_url} {self.session.headers['Authorization']}>"  # the mistake


class LeakyReprYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        client = super().build_client(tracker, credentials, settings)
        return ReprClient(client.session, client.api_url, client.timeout)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(LeakyReprYouTrackType())
