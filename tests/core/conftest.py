"""Fixtures of the core's tests; the helpers live in core_world.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokenproviders import Resolver
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV, TRACE_ENV

from .core_world import World, build_world


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's plugin switches must not leak into the core's tests."""
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def world() -> Iterator[World]:
    yield build_world()


@pytest.fixture
def resolver(world: World) -> Resolver:
    return world.resolver()
