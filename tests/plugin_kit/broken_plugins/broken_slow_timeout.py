"""Broken: waits 20 s for every answer whatever ClientSettings.timeout says (a hard-coded timeout)."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl


class SlowYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        client = super().build_client(tracker, credentials, settings)
        client.timeout = 20.0  # the mistake under test: bounded, but not by settings.timeout
        return client


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(SlowYouTrackType())
