"""Broken: takes a permanent token or a login and password, and logs the password of the second
kind at DEBUG. (``FakeYouTrackWithLogin`` also accepts Basic authentication.)"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from tokenproviders_youtrack import YouTrackType
from tokenproviders_youtrack.testing import FakeYouTrack

from tokenproviders import ClientSettings, Credentials, Field, Tracker, hookimpl
from tokenproviders.testing import AuthResult, RecordedRequest, basic_credentials

logger = logging.getLogger("broken_second_kind_logs")


class TwoKindYouTrackType(YouTrackType):
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_username", "Login", help="With a password instead of a token", required=False),
        Field("api_password", "Permanent token or password", help="perm:... or the password", secret=True),
    )

    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        client = super().build_client(tracker, credentials, settings)
        if credentials.api_username:
            password = credentials.api_password.reveal()
            logger.debug("signing in as %s with %s", credentials.api_username, password)  # the mistake
            del client.session.headers["Authorization"]
            client.session.auth = (credentials.api_username, password)
        return client


class FakeYouTrackWithLogin(FakeYouTrack):
    def _authenticate(self, request: RecordedRequest) -> AuthResult:
        basic = basic_credentials(request)
        if basic is not None:
            return AuthResult(presented=True, user=self._user_by_password(*basic))
        return super()._authenticate(request)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(TwoKindYouTrackType())
