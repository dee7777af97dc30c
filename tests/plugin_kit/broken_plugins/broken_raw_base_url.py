"""Broken: builds its API URL from the raw ``base_url``, not from the normalized ``tracker.url``
the token was matched on, so another spelling of the same URL sends the token to another host."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackClient, YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl


class RawURLYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        client = super().build_client(tracker, credentials, settings)
        raw = (tracker.api_url or f"{tracker.base_url.rstrip('/')}/api").rstrip("/")  # the mistake under test
        return YouTrackClient(client.session, raw, client.timeout)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(RawURLYouTrackType())
