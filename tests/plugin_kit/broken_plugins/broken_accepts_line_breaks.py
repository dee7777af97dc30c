"""Broken: overrides validate_credentials without calling super(), so a pasted line break or
header injection is stored and sent."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import Credentials, InvalidCredentialsError, hookimpl


class LaxYouTrackType(YouTrackType):
    def validate_credentials(self, credentials: Credentials) -> None:
        # The mistake under test: its own check only, the core's (line breaks, Latin-1) skipped.
        if not credentials.api_password.reveal().startswith("perm:"):
            raise InvalidCredentialsError("a YouTrack permanent token starts with perm:")


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(LaxYouTrackType())
