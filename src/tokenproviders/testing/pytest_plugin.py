"""The tokenproviders pytest plugin (``pytest11`` entry point): opt-in fixtures, none autouse."""

from __future__ import annotations
