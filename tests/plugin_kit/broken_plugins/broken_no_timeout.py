"""Broken: ignores ClientSettings.timeout, so a hung tracker hangs the host."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl


class PatientYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        client = super().build_client(tracker, credentials, settings)
        client.timeout = None  # the mistake under test: wait forever
        return client


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(PatientYouTrackType())
