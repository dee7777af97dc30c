"""Broken: follows redirects, so a 307 re-sends the issue (and requests would send other
credential headers) to whatever server the Location names."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackClient, YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl


class FollowingClient(YouTrackClient):
    def call(self, method: str, path: str, payload: Any = None, fields: str = "id") -> Any:
        response = self.session.request(  # the mistake under test: requests follows redirects by default
            method, f"{self.api_url}{path}", params={"fields": fields}, json=payload, timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()


class FollowingYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        client = super().build_client(tracker, credentials, settings)
        return FollowingClient(client.session, client.api_url, client.timeout)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(FollowingYouTrackType())
