"""Shared by the snippets' self-checks: an in-memory stand-in for real tracker plugins.

The snippets show host code as a host writes it; their ``check()`` functions run it against
:class:`~tokenproviders.testing.memory_tracker.MemoryTrackerType` registered under real type
names, so no tracker server or client library is needed. ``tests/docs`` runs every snippet.
"""

from __future__ import annotations

from tokenproviders import Plugins
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType


def memory_plugins(*names: str) -> tuple[Plugins, dict[str, MemoryTrackerType]]:
    """Plugins with one in-memory tracker type per name, and those types (to add identities)."""
    types = {name: MemoryTrackerType(name=name) for name in names}
    plugins = Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(t) for t in types.values()])
    return plugins, types
