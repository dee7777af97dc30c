"""Broken: maps HTTP 401 to "unavailable", so a revoked token looks like a tracker outage."""

from __future__ import annotations

from typing import Any

from tokenproviders_youtrack import YouTrackType

from tokenproviders import TrackerFailure, hookimpl


class Wrong401YouTrackType(YouTrackType):
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        failure = super().classify_error(exc)
        if failure is not None and failure.status == 401:
            return TrackerFailure("unavailable", failure.detail, failure.status)  # the mistake under test
        return failure


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(Wrong401YouTrackType())
