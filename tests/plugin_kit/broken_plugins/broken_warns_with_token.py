"""Broken: warns about a token with a space in it, and quotes the token in the warning."""

from __future__ import annotations

import logging
from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl

logger = logging.getLogger("broken_warns_with_token")


class WarningYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        if " " in credentials.api_password.reveal():
            logger.warning("token %r has a space: was it pasted whole?", credentials.api_password.reveal())
        return super().build_client(tracker, credentials, settings)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(WarningYouTrackType())
