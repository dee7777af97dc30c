"""Broken: remembers the first whoami answer on the client, so a warm client never notices that
its token was revoked or the tracker is down."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import Identity, Tracker, hookimpl


class MemoYouTrackType(YouTrackType):
    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        identity: Identity | None = getattr(client, "identity", None)
        if identity is None:  # the mistake under test: the answer is kept for the client's lifetime
            identity = client.identity = super().whoami(client, tracker)
        return identity


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(MemoYouTrackType())
