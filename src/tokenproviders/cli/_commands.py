"""The root command with every subcommand attached (importing the modules registers them)."""

from __future__ import annotations

from . import _acting, _demo, _inspect, _keys, _setup, _tokens
from ._app import cli

__all__ = ["cli"]

# The modules register their commands on ``cli`` when imported.
_ = (_acting, _demo, _inspect, _keys, _setup, _tokens)
