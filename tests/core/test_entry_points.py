"""Discovery through real entry points, from the installed test distribution
``tests/distributions/tokenproviders-testplugin``: a working tracker type, a plugin that fails
to import, one that puts itself before personal tokens, one with a misspelled hook and one that
claims the built-in ``personal`` name. The host keeps working through all of them.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
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
from tokenproviders.plugins import BLOCK_ENV, ENTRY_POINT_GROUP, LOAD_ENV

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


@pytest.mark.parametrize("blocked", ["personal,bot", "dist:tokenproviders"])
def test_built_in_sources_cannot_be_blocked(
    version: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, blocked: str
) -> None:
    monkeypatch.setenv(BLOCK_ENV, blocked)
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


# -- plugins from distributions made in a temporary directory ------------------------------------
# A real ``*.dist-info`` with ``entry_points.txt`` beside the plugin's module, in a directory put on
# sys.path: importlib.metadata discovers it exactly like an installed distribution. Where on
# sys.path the directory goes decides the enumeration order.

_TYPE_MODULE = '''
from tokenproviders import Field, Identity, ReportedIssue, TrackerType, hookimpl


class {cls}(TrackerType):
    name = {type_name!r}
    title = {title!r}
    fields = (Field("api_password", "Token", secret=True),)

    def build_client(self, tracker, credentials, settings):
        return object()

    def whoami(self, client, tracker):
        return Identity(login="nobody")

    def report_issue(self, client, tracker, draft):
        return ReportedIssue(id="1", url=tracker.url + "/issues/1")

    def add_comment(self, client, tracker, issue_id, text):
        return None


@hookimpl
def tokenproviders_register_tracker_types(register):
    register({cls}())
'''


def type_module(type_name: str, title: str) -> str:
    """The source of a plugin module registering one tracker type ``type_name``."""
    return _TYPE_MODULE.format(cls="ClashType", type_name=type_name, title=title)


class TmpDists:
    """Makes distributions in a temporary directory and puts them on sys.path."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.modules: list[str] = []

    def make(
        self, dist: str, entry_points: dict[str, str], modules: dict[str, str], *, version: str = "1.0"
    ) -> Path:
        """A distribution ``dist`` in a directory of its own (not yet on sys.path)."""
        where = self.root / dist
        info = where / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
        for module, source in modules.items():
            (where / f"{module}.py").write_text(source)
            self.modules.append(module)
        return where

    def install(self, *dirs: Path, first: bool = True) -> None:
        """Put ``dirs`` on sys.path, in this order, before (``first``) or after everything else."""
        paths = [str(d) for d in dirs]
        self.monkeypatch.setattr(sys, "path", [*paths, *sys.path] if first else [*sys.path, *paths])
        importlib.invalidate_caches()

    def forget_modules(self) -> None:
        for module in self.modules:
            sys.modules.pop(module, None)


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmpDists]:
    made = TmpDists(tmp_path, monkeypatch)
    yield made
    made.forget_modules()


def _env_without_switches() -> dict[str, str]:
    env = dict(os.environ)
    for name in (BLOCK_ENV, LOAD_ENV):
        env.pop(name, None)
    return env


# -- F15: a plugin cannot end the host ------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "shown"),
    [
        ("raise SystemExit(3)", "SystemExit: 3"),
        ("import sys; sys.exit('bye')", "SystemExit: bye"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("raise GeneratorExit", "GeneratorExit"),
    ],
    ids=["SystemExit", "sys.exit", "KeyboardInterrupt", "GeneratorExit"],
)
def test_a_plugin_that_exits_at_import_is_broken_not_fatal(
    version: str, dists: TmpDists, statement: str, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    dists.install(dists.make("tp-exits", {"exits": "tp_exits_at_import"}, {"tp_exits_at_import": statement + "\n"}))
    with caplog.at_level(logging.WARNING, logger="tokenproviders.plugins"):
        plugins = Plugins()
    info = _listing(plugins)["exits"]
    assert info.distribution == "tp-exits" and info.version == "1.0"
    assert info.broken == f"failed to import: {shown}"
    assert not plugins.manager.has_plugin("exits")
    assert "'exits' is broken" in caplog.text
    _host_works(plugins)


def test_a_plugin_that_exits_while_registering_its_types_is_broken_not_fatal(version: str, dists: TmpDists) -> None:
    source = (
        "import sys\nfrom tokenproviders import hookimpl\n\n"
        "@hookimpl\ndef tokenproviders_register_tracker_types(register):\n    sys.exit(2)\n"
    )
    dists.install(dists.make("tp-exits-late", {"exits-late": "tp_exits_late"}, {"tp_exits_late": source}))
    plugins = Plugins()
    assert plugins.broken()["exits-late"] == "registering tracker types failed: SystemExit: 2"
    assert not plugins.manager.has_plugin("exits-late")
    _host_works(plugins)


_HOST = """
from tokenproviders import Plugins
plugins = Plugins()
print("host alive;", plugins.broken().get("interrupts"))
"""


@pytest.mark.parametrize(
    ("statement", "survives"),
    [
        # A plugin raising KeyboardInterrupt itself: the host (in its main thread, with Python's
        # own SIGINT handler) lists it as broken and keeps going.
        ("raise KeyboardInterrupt", True),
        # A real Ctrl-C (SIGINT delivered while the plugin imports) still stops the host.
        ("import signal; signal.raise_signal(signal.SIGINT)", False),
    ],
    ids=["raised-by-the-plugin", "real-ctrl-c"],
)
def test_only_a_real_ctrl_c_stops_a_host_loading_plugins(
    version: str, dists: TmpDists, statement: str, survives: bool
) -> None:
    where = dists.make("tp-interrupts", {"interrupts": "tp_interrupts"}, {"tp_interrupts": statement + "\n"})
    env = _env_without_switches()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(where), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-c", _HOST], env=env, capture_output=True, text=True, check=False
    )
    if survives:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "host alive; failed to import: KeyboardInterrupt"
    else:
        assert done.returncode != 0
        assert "host alive" not in done.stdout
        assert done.stderr.rstrip().endswith("KeyboardInterrupt"), done.stderr


# -- F16: two distributions, one name ---------------------------------------------------------------


def _two_clashing(dists: TmpDists, order: str) -> None:
    """``tp-clash-alpha`` and ``tp-clash-beta`` both declare the entry-point name ``clash`` (each
    registering tracker type ``clash``), on sys.path in ``order``."""
    alpha = dists.make("tp-clash-alpha", {"clash": "tp_clash_alpha"}, {"tp_clash_alpha": type_module("clash", "Alpha")})
    beta = dists.make("tp-clash-beta", {"clash": "tp_clash_beta"}, {"tp_clash_beta": type_module("clash", "Beta")})
    dists.install(*((alpha, beta) if order == "alpha-first" else (beta, alpha)))
    listed = [ep.dist.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP, name="clash")]
    expected = ["tp-clash-alpha", "tp-clash-beta"]
    assert listed == (expected if order == "alpha-first" else expected[::-1])


ORDERS = pytest.mark.parametrize("order", ["alpha-first", "beta-first"])


@ORDERS
@pytest.mark.parametrize("allow", [None, "clash"], ids=["no-allow-list", "allowed-by-name"])
def test_an_entry_point_name_declared_by_two_distributions_loads_neither(
    version: str,
    dists: TmpDists,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    order: str,
    allow: str | None,
) -> None:
    _two_clashing(dists, order)
    if allow is not None:
        monkeypatch.setenv(LOAD_ENV, f"{allow},testplugin")
    with caplog.at_level(logging.WARNING, logger="tokenproviders.plugins"):
        plugins = Plugins()
    listing = _listing(plugins)
    assert "clash" not in listing
    for dist in ("tp-clash-alpha", "tp-clash-beta"):
        info = listing[f"{dist}:clash"]
        assert info.distribution == dist and not info.blocked
        assert info.broken is not None
        assert "declared by several distributions (tp-clash-alpha, tp-clash-beta)" in info.broken
        assert "none is loaded" in info.broken and "dist:" in info.broken
        assert info.conflict is not None and "tp-clash-alpha, tp-clash-beta" in info.conflict
        assert not plugins.manager.has_plugin(info.name)
    assert "tp-clash-alpha:clash" in caplog.text and "tp-clash-beta:clash" in caplog.text
    # Neither module was even imported.
    assert "tp_clash_alpha" not in sys.modules and "tp_clash_beta" not in sys.modules
    with pytest.raises(UnknownTrackerTypeError) as excinfo:
        plugins.tracker_type("clash")
    assert "tp-clash-alpha:clash" in excinfo.value.message and "tp-clash-beta:clash" in excinfo.value.message
    _host_works(plugins)


@ORDERS
@pytest.mark.parametrize(
    ("switch", "value"),
    [
        (BLOCK_ENV, "dist:tp-clash-beta"),
        (BLOCK_ENV, "dist:TP_Clash.Beta"),  # distribution names compare normalized (PEP 503)
        (LOAD_ENV, "dist:tp-clash-alpha,testplugin"),
    ],
    ids=["block-beta", "block-beta-unnormalized", "allow-alpha"],
)
def test_the_operator_picks_one_distribution(
    version: str, dists: TmpDists, monkeypatch: pytest.MonkeyPatch, order: str, switch: str, value: str
) -> None:
    _two_clashing(dists, order)
    monkeypatch.setenv(switch, value)
    plugins = Plugins()
    listing = _listing(plugins)
    chosen = listing["clash"]
    assert (chosen.distribution, chosen.broken, chosen.blocked) == ("tp-clash-alpha", None, False)
    assert chosen.conflict is not None and "tp-clash-beta" in chosen.conflict
    assert chosen.tracker_types == ["clash"]
    other = listing["tp-clash-beta:clash"]
    assert other.blocked and other.broken is None
    assert plugins.tracker_type("clash").title == "Alpha"
    assert "tp_clash_beta" not in sys.modules
    _host_works(plugins)


def test_block_and_allow_arguments_take_distributions_too(version: str, dists: TmpDists) -> None:
    _two_clashing(dists, "beta-first")
    assert Plugins(block=["dist:tp-clash-alpha"]).tracker_type("clash").title == "Beta"
    dists.forget_modules()
    only = Plugins(allow=["dist:tokenproviders-testplugin"])
    listing = _listing(only)
    assert only.tracker_type("testplugin").name == "testplugin"
    assert listing["tp-clash-alpha:clash"].blocked and listing["tp-clash-beta:clash"].blocked
    # Every entry point of the allowed distribution loads (its broken ones stay broken).
    assert listing["testplugin-broken"].broken and not listing["testplugin-broken"].blocked


@ORDERS
def test_a_tracker_type_registered_by_two_distributions_is_refused(
    version: str, dists: TmpDists, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    alpha = dists.make("tp-dup-alpha", {"dup-alpha": "tp_dup_alpha"}, {"tp_dup_alpha": type_module("dup", "Alpha")})
    beta = dists.make("tp-dup-beta", {"dup-beta": "tp_dup_beta"}, {"tp_dup_beta": type_module("dup", "Beta")})
    dists.install(*((alpha, beta) if order == "alpha-first" else (beta, alpha)))
    plugins = Plugins()
    broken = plugins.broken()
    for name in ("dup-alpha", "dup-beta"):
        assert "tracker type 'dup' is registered by plugins 'dup-alpha' (tp-dup-alpha 1.0)" in broken[name]
        assert "and 'dup-beta' (tp-dup-beta 1.0)" in broken[name]
        assert not plugins.manager.has_plugin(name)
    with pytest.raises(UnknownTrackerTypeError) as excinfo:
        plugins.tracker_type("dup")
    assert "tp-dup-alpha" in excinfo.value.message and "tp-dup-beta" in excinfo.value.message
    assert "dist:" in excinfo.value.hint
    assert_actionable(excinfo.value)
    _host_works(plugins)
    dists.forget_modules()
    monkeypatch.setenv(BLOCK_ENV, "dist:tp-dup-alpha")
    assert Plugins().tracker_type("dup").title == "Beta"


@ORDERS
def test_a_second_jira_distribution_does_not_replace_the_real_one(
    version: str, dists: TmpDists, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    try:
        real = metadata.distribution("tokenproviders-jira")
    except metadata.PackageNotFoundError:
        pytest.fail("tokenproviders-jira is not installed (the nox 'tests' session installs every plugin)")
    evil = dists.make("evil-jira", {"jira": "evil_jira"}, {"evil_jira": type_module("jira", "Evil Jira")})
    dists.install(evil, first=order == "alpha-first")
    assert {ep.dist.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP, name="jira")} == {
        "evil-jira", real.name
    }
    for allow in (None, "jira"):
        if allow is not None:
            monkeypatch.setenv(LOAD_ENV, allow)
        plugins = Plugins()
        with pytest.raises(UnknownTrackerTypeError) as excinfo:
            plugins.tracker_type("jira")
        assert "evil-jira:jira" in excinfo.value.message and f"{real.name}:jira" in excinfo.value.message
        assert "evil_jira" not in sys.modules
    monkeypatch.delenv(LOAD_ENV)
    monkeypatch.setenv(BLOCK_ENV, "dist:evil-jira")
    jira = Plugins().tracker_type("jira")
    assert type(jira).__module__.startswith("tokenproviders_jira")
