"""Broken: its requests session trusts the environment, so requests replaces the token in the
Authorization header with the credentials of the host's ~/.netrc (a ``default`` entry matches
every host) and sends them to the tracker."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackClient, YouTrackType

from tokenproviders import ClientSettings, Credentials, Tracker, hookimpl


class NetrcYouTrackType(YouTrackType):
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        import requests

        client = super().build_client(tracker, credentials, settings)
        session = requests.Session()  # the mistake under test: trust_env stays on
        session.headers.update(client.session.headers)
        session.verify = client.session.verify
        for prefix, adapter in client.session.adapters.items():
            session.mount(prefix, adapter)
        return YouTrackClient(session, client.api_url, client.timeout)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(NetrcYouTrackType())
