"""Broken: a "helpful" format check whose message quotes the token that was pasted."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import Credentials, InvalidCredentialsError, hookimpl


class EchoingYouTrackType(YouTrackType):
    def validate_credentials(self, credentials: Credentials) -> None:
        if credentials.api_password.reveal() != credentials.api_password.reveal().strip():
            raise InvalidCredentialsError(  # the mistake under test: the message quotes the token
                f"the token {credentials.api_password.reveal()!r} has spaces or a line break around it"
            )
        super().validate_credentials(credentials)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(EchoingYouTrackType())
