"""Broken: sends only the first word of the token, so a password with an inner space is
accepted but never works."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import ClientSettings, Credentials, Secret, Tracker, hookimpl


class SplittingYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        first_word = credentials.api_password.reveal().split()[0]  # the mistake under test
        return super().build_client(tracker, Credentials(api_password=Secret(first_word)), settings)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(SplittingYouTrackType())
