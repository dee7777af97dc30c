"""Broken: puts the Authorization header it sent into the failure it reports (so into errors)."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import TrackerFailure, hookimpl


class LeakyYouTrackType(YouTrackType):
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        failure = super().classify_error(exc)
        request = getattr(exc, "request", None)
        if failure is None or request is None:
            return failure
        # The mistake under test: "helpful" detail that echoes the credentials sent.
        sent = request.headers.get("Authorization")
        return TrackerFailure(failure.kind, f"{failure.detail} (sent Authorization: {sent})", failure.status)


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(LeakyYouTrackType())
