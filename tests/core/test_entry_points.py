"""Discovery through real entry points, from the installed test distribution
``tests/distributions/tokenproviders-testplugin``: a working tracker type, a plugin that fails
to import, one that puts itself before personal tokens, one with a misspelled hook and one that
claims the built-in ``personal`` name. The host keeps working through all of them.
"""

from __future__ import annotations

import logging
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tokenproviders import (
    ALL_TENANTS,
    MemoryDirectory,
    PluginInfo,
    Plugins,
    Resolver,
    Tracker,
    UnknownTrackerTypeError,
    list_plugins,
)
from tokenproviders import sources as builtin_sources
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV

from .core_world import assert_actionable, creds

DISTRIBUTION = "tokenproviders-testplugin"
SOURCE = Path(__file__).parents[1] / "distributions" / DISTRIBUTION
THIRD_PARTY = ("testplugin", "testplugin-broken", "testplugin-greedy", "testplugin-typo")
IMPOSTOR = f"{DISTRIBUTION}:personal"


@pytest.fixture(scope="module")
def version() -> str:
    """The installed test distribution's version; a missing install is a failure, not a skip."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.fail(
            f"the test distribution {DISTRIBUTION} is not installed in this environment ({sys.executable}),"
            f" so plugin discovery through real entry points cannot be tested. Install it with:\n"
            f"    {sys.executable} -m pip install {SOURCE}\n"
            "(the nox 'tests' session installs every tests/distributions/* itself)",
            pytrace=False,
        )


def _listing(plugins: Plugins) -> dict[str, PluginInfo]:
    return {info.name: info for info in plugins.list()}


def _host_works(plugins: Plugins) -> None:
    """Built-in sources are the real ones and resolve as usual, with a third-party type."""
    assert plugins.manager.get_plugin("personal") is builtin_sources.personal_source
    assert plugins.manager.get_plugin("bot") is builtin_sources.bot_source
    plugins.manager.check_pending()
    directory = MemoryDirectory(memberships=[("alice", "acme"), ("bob", "acme")])
    tracker = Tracker(
        tenant="acme", id="echo", type="testplugin", base_url="https://echo.test/acme",
        bot_credentials=creds("echo-bot:secret"),
    )
    directory.add_tracker(tracker)
    resolver = Resolver(directory, plugins=plugins)
    resolver.tokens.set("alice", "https://echo.test", creds("alice:secret"), scope=ALL_TENANTS)
    assert resolver.resolve("alice", tracker).source == "personal"
    assert resolver.verify("alice", tracker).login == "alice"
    assert resolver.resolve("bob", tracker).source == "bot"
    assert resolver.report_issue("bob", tracker, "It broke").url == "https://echo.test/acme/issues/1"


def test_third_party_tracker_type_is_discovered_and_usable(version: str) -> None:
    plugins = Plugins()
    info = _listing(plugins)["testplugin"]
    assert (info.distribution, info.version) == (DISTRIBUTION, version)
    assert info.tracker_types == ["testplugin"]
    assert info.broken is None and not info.blocked and not info.builtin
    assert "tokenproviders_register_tracker_types" in info.hooks
    assert plugins.tracker_type("testplugin").title == "Echo tracker (tokenproviders-testplugin)"
    _host_works(plugins)


def test_built_ins_are_listed_first_with_the_core_version(version: str) -> None:
    listing = list_plugins()
    assert [info.name for info in listing[:2]] == ["bot", "personal"]
    for info in listing[:2]:
        assert info.builtin and info.distribution == "tokenproviders"
        assert info.version == metadata.version("tokenproviders")
        assert info.hooks == ["tokenproviders_credentials"]


def test_broken_plugins_are_listed_with_reasons_and_the_host_keeps_working(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tokenproviders.plugins"):
        plugins = Plugins()
    listing = _listing(plugins)
    broken = plugins.broken()
    assert "ImportError: tokenproviders-testplugin: this plugin is broken on purpose" in broken["testplugin-broken"]
    assert "may not use tryfirst/trylast" in broken["testplugin-greedy"]
    assert "unknown hook(s) tokenproviders_credential " in broken["testplugin-typo"]
    assert "reserved for a built-in source" in broken[IMPOSTOR]
    for name in ("testplugin-broken", "testplugin-greedy", "testplugin-typo", IMPOSTOR):
        assert listing[name].version == version and listing[name].distribution == DISTRIBUTION
        assert not plugins.manager.has_plugin(name)
        assert any(name in record.getMessage() for record in caplog.records), name
    assert listing["personal"].builtin and listing["personal"].broken is None
    _host_works(plugins)


def test_an_unknown_type_error_names_the_broken_plugins(version: str) -> None:
    with pytest.raises(UnknownTrackerTypeError) as excinfo:
        Plugins().tracker_type("gitea")
    assert "broken plugins:" in excinfo.value.message and "testplugin-broken" in excinfo.value.message
    assert_actionable(excinfo.value)


def test_block_list(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, " testplugin , testplugin-broken")
    plugins = Plugins()
    listing = _listing(plugins)
    for name in ("testplugin", "testplugin-broken"):
        assert listing[name].blocked and listing[name].broken is None
        assert not plugins.manager.has_plugin(name)
    with pytest.raises(UnknownTrackerTypeError):
        plugins.tracker_type("testplugin")
    assert listing["testplugin-greedy"].broken  # not blocked, still refused
    assert Plugins(block=[]).tracker_type("testplugin").name == "testplugin"  # an explicit argument wins


def test_built_in_sources_cannot_be_blocked(
    version: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(BLOCK_ENV, "personal,bot")
    with caplog.at_level(logging.WARNING, logger="tokenproviders.plugins"):
        plugins = Plugins()
    assert "cannot be blocked" in caplog.text
    assert plugins.tracker_type("testplugin").name == "testplugin"
    _host_works(plugins)


def test_allow_list_loads_only_the_named_plugins(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("tokenproviders_testplugin.greedy", "tokenproviders_testplugin.typo"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setenv(LOAD_ENV, "testplugin")
    plugins = Plugins()
    listing = _listing(plugins)
    assert plugins.tracker_type("testplugin").name == "testplugin"
    for name in ("testplugin-broken", "testplugin-greedy", "testplugin-typo"):
        assert listing[name].blocked and listing[name].broken is None
    # Not allowed means not imported at all.
    assert "tokenproviders_testplugin.greedy" not in sys.modules
    assert "tokenproviders_testplugin.typo" not in sys.modules
    _host_works(plugins)
    assert set(Plugins(allow=["testplugin-greedy"]).broken()) >= {"testplugin-greedy"}


def test_without_entry_points_only_the_built_ins_load(version: str) -> None:
    plugins = Plugins(load_entry_points=False)
    assert [info.name for info in plugins.list()] == ["bot", "personal"]
    assert plugins.tracker_types == {}
