"""Broken: imports its client library (requests) when the plugin module is imported."""

from __future__ import annotations

from typing import Any

import requests  # noqa: F401 - the mistake under test: an eager import of the client library
from tokenproviders_youtrack import YouTrackType

from tokenproviders import hookimpl


@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(YouTrackType())
