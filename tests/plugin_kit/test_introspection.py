"""Introspection for hosts without the CLI: ``list_plugins()`` and ``TOKENPROVIDERS_TRACE_HOOKS``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest

import tokenproviders
from tokenproviders import Plugins, hookimpl, list_plugins
from tokenproviders import plugins as plugins_module
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV, TRACE_ENV
from tokenproviders.testing import MemoryTrackerPlugin, MemoryTrackerType, build_world


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV):
        monkeypatch.delenv(name, raising=False)


class _EntryPoint:
    """Stands in for an installed entry point (name, value, dist, load)."""

    def __init__(self, name: str, value: str, target: Any = None, error: Exception | None = None) -> None:
        self.name, self.value, self.group = name, value, "tokenproviders"
        self.dist = type("Dist", (), {"name": f"tokenproviders-{name}", "version": "9.8.7"})()
        self._target, self._error = target, error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._target


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_EntryPoint]]:
    """The real entry points plus the ones a test appends."""
    extra: list[_EntryPoint] = []
    real = metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        return [*real(**kwargs), *extra] if kwargs.get("group") == "tokenproviders" else real(**kwargs)

    monkeypatch.setattr(plugins_module.metadata, "entry_points", entry_points)
    yield extra


def test_list_plugins_shows_each_tracker_type_with_version_title_and_fields(installed: list[_EntryPoint]) -> None:
    installed.append(_EntryPoint("memory", "memory_plugin:plugin", MemoryTrackerPlugin(MemoryTrackerType())))
    listing = {info.name: info for info in tokenproviders.list_plugins()}
    info = listing["memory"]
    assert (info.distribution, info.version, info.broken) == ("tokenproviders-memory", "9.8.7", None)
    assert info.tracker_types == ["memory"]
    [described] = info.types
    assert described.title == MemoryTrackerType.title
    assert [(f.name, f.required, f.secret) for f in described.fields] == [
        ("api_username", False, False),
        ("api_password", True, True),
    ]
    as_dict = info.as_dict()
    assert as_dict["types"][0]["fields"][1] == {
        "name": "api_password",
        "label": "API token",
        "help": "the token itself",
        "required": True,
        "secret": True,
    }
    assert listing["personal"].builtin and listing["bot"].builtin


def test_list_plugins_lists_a_plugin_that_fails_to_import_with_the_reason(installed: list[_EntryPoint]) -> None:
    installed.append(_EntryPoint("trac", "tokenproviders_trac", error=ImportError("No module named 'trac_client'")))
    listing = {info.name: info for info in list_plugins()}
    assert listing["trac"].broken == "failed to import: ImportError: No module named 'trac_client'"
    assert listing["trac"].version == "9.8.7"
    assert listing["trac"].types == []


def test_list_plugins_lists_a_plugin_whose_type_is_malformed_with_the_reason(installed: list[_EntryPoint]) -> None:
    class Nameless(MemoryTrackerType):
        name = "Not A Name"

    installed.append(_EntryPoint("nameless", "nameless:plugin", MemoryTrackerPlugin(Nameless())))
    broken = {info.name: info.broken for info in list_plugins()}
    assert broken["nameless"] is not None
    assert "must be lower-case letters" in broken["nameless"]


def test_installed_tracker_plugins_are_listed_with_their_fields() -> None:
    """Whatever tracker plugins this environment has, each is listed with its declaration."""
    plugins = Plugins()
    listed = {t.name: t for info in plugins.list() for t in info.types}
    assert set(listed) == set(plugins.tracker_types)
    for name, tracker_type in plugins.tracker_types.items():
        assert listed[name].fields == tuple(tracker_type.fields)
        assert listed[name].title == tracker_type.title


class Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def tokenproviders_resolved(self, resolution: Any) -> None:
        self.seen.append(resolution.source)


def test_trace_env_logs_every_hook_call_and_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TRACE_ENV, "1")
    caplog.set_level(logging.DEBUG, logger="tokenproviders.hooks")
    observer = Observer()
    plugins = Plugins(load_entry_points=False, extra=[observer])
    world = build_world(
        {
            "tenants": {"acme": {"members": ["alice"], "trackers": [{"id": "bugs", "type": "memory"}]}},
            "tokens": [{"owner": "alice", "tracker": "acme/bugs", "api_password": "alice-token-2f9c"}],
        },
        plugins=plugins,
    )
    resolution = world.resolver.resolve("alice", world.tracker("acme/bugs"))
    assert resolution.source == "personal" and observer.seen == ["personal"]
    traced = "\n".join(r.getMessage() for r in caplog.records if r.name == "tokenproviders.hooks")
    # relayed calls (firstresult credentials) and one-implementation calls (registration, observers)
    assert "tokenproviders_credentials [hook]" in traced
    assert "finish tokenproviders_credentials --> Resolution(" in traced
    assert "tokenproviders_register_tracker_types (plugin 'tokenproviders-testing-memory' only)" in traced
    assert "tokenproviders_resolved (plugin" in traced
    assert "finish tokenproviders_resolved --> None" in traced
    assert "alice-token-2f9c" not in traced  # results are traced, their secrets are not
    assert "Secret('**********')" in traced


def test_without_the_trace_env_nothing_is_traced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tokenproviders.hooks")
    world = build_world(plugins=Plugins(load_entry_points=False))
    world.resolver.resolve("alice", world.tracker("acme/bugs"))
    assert [r for r in caplog.records if r.name == "tokenproviders.hooks"] == []


@pytest.mark.parametrize("value", ["", "0"])
def test_trace_env_off_values(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str) -> None:
    monkeypatch.setenv(TRACE_ENV, value)
    caplog.set_level(logging.DEBUG, logger="tokenproviders.hooks")
    world = build_world(plugins=Plugins(load_entry_points=False))
    world.resolver.resolve("bob", world.tracker("acme/bugs"))
    assert [r for r in caplog.records if r.name == "tokenproviders.hooks"] == []


def test_a_traced_observer_that_raises_is_traced_by_type_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing:
        @hookimpl
        def tokenproviders_resolved(self, resolution: Any) -> None:
            raise RuntimeError(f"observer saw {resolution.credentials.api_password.reveal()}")

    monkeypatch.setenv(TRACE_ENV, "1")
    caplog.set_level(logging.DEBUG, logger="tokenproviders.hooks")
    world = build_world(plugins=Plugins(load_entry_points=False, extra=[Failing()]))
    world.resolver.resolve("bob", world.tracker("acme/bugs"))  # an observer cannot fail a resolution
    traced = "\n".join(r.getMessage() for r in caplog.records if r.name == "tokenproviders.hooks")
    assert "raised tokenproviders_resolved --> RuntimeError" in traced
    assert "acme-bot-secret" not in traced
