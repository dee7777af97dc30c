"""Broken: logs the token at DEBUG when it builds a client, and shows it in the client's repr."""

from __future__ import annotations

import logging
from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl

logger = logging.getLogger("broken_logs_secret")


class ChattyYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        logger.debug("building a client with token %s", credentials.api_password.reveal())  # the mistake
        return super().build_client(tracker, credentials, settings)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(ChattyYouTrackType())
