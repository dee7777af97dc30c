"""The pytest plugin's fixtures, used the way a host's integration tests use them."""

from __future__ import annotations

import stat
import sys
import textwrap
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    Credentials,
    InvalidInputError,
    MemoryTokenStore,
    NotAuthorizedError,
    Plugins,
    Resolver,
    Secret,
    SecretUnreadableError,
    hookimpl,
)
from tokenproviders.crypto import AssociatedData, KeyRing
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV, TRACE_ENV
from tokenproviders.stores import TokenStore
from tokenproviders.testing import FAKES, MemoryTrackerType, World
from tokenproviders.testing.fakes import FakeGitHub, FakeJira

from .contract_runner import run_pytest

NOW_AAD = AssociatedData.for_token(owner="alice", scope="acme", url="https://x.test", field="api_password")


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV):
        monkeypatch.delenv(name, raising=False)


# -- key ring and stores ----------------------------------------------------------------------
def test_tp_keyring_seals_and_opens(tp_keyring: KeyRing) -> None:
    blob = tp_keyring.seal(Secret("s3cret"), NOW_AAD)
    assert b"s3cret" not in blob
    assert tp_keyring.open(blob, NOW_AAD) == "s3cret"
    assert tp_keyring.primary_id == "test-key"


def test_tp_key_file_is_private_and_loads(tp_key_file: Path) -> None:
    assert stat.S_IMODE(tp_key_file.stat().st_mode) == 0o600
    assert KeyRing.from_key_file(tp_key_file).key_ids == ("test-key",)


def test_the_key_ring_and_the_key_file_hold_different_keys(tp_keyring: KeyRing, tp_key_file: Path) -> None:
    other = KeyRing.from_key_file(tp_key_file)
    blob = tp_keyring.seal(Secret("s3cret"), NOW_AAD)
    with pytest.raises(SecretUnreadableError):
        other.open(blob, NOW_AAD)


FRESH_KEYS_SUITE = '''
from tokenproviders.crypto import AssociatedData, KeyRing

AAD = AssociatedData.for_token(owner="alice", scope="acme", url="https://x.test", field="api_password")
SEEN = {}


def test_first(tp_keyring, tp_key_file):
    SEEN["ring"] = tp_keyring
    SEEN["blob"] = tp_keyring.seal("sealed-in-the-first-test", AAD)
    SEEN["file"] = KeyRing.from_key_file(tp_key_file).check_value("test-key")


def test_second(tp_keyring, tp_key_file):
    assert tp_keyring is not SEEN["ring"]
    assert tp_keyring.check_value("test-key") != SEEN["ring"].check_value("test-key")
    assert KeyRing.from_key_file(tp_key_file).check_value("test-key") != SEEN["file"]
    try:
        tp_keyring.open(SEEN["blob"], AAD)
    except Exception:
        pass
    else:
        raise AssertionError("the second test's key opens the first test's blob")
'''


def test_each_test_gets_a_fresh_key(tmp_path: Path) -> None:
    """Two tests of one session: the second one's key ring and key file hold new keys."""
    (tmp_path / "test_keys.py").write_text(FRESH_KEYS_SUITE)
    outcomes = run_pytest(["test_keys.py"], cwd=tmp_path, pythonpath=[], report=tmp_path / "r.xml")
    assert {name: (o.outcome, o.message) for name, o in outcomes.items()} == {
        "test_first": ("passed", ""),
        "test_second": ("passed", ""),
    }


def test_tp_memory_store_starts_empty(tp_memory_store: MemoryTokenStore) -> None:
    assert isinstance(tp_memory_store, TokenStore)
    assert tp_memory_store.list() == []


def test_tp_sqlite_store_seals_what_it_stores(
    tp_sqlite_db: Any, tp_sqlite_store: TokenStore, tp_world: World, tp_memory_tracker: MemoryTrackerType
) -> None:
    resolver = Resolver(tp_world.directory, tp_sqlite_store, plugins=tp_world.plugins)
    tracker = tp_world.tracker("acme/bugs")
    tp_memory_tracker.backend.add_user("alice", "alice-sqlite-token-77")
    secret = Credentials(api_password=Secret("alice-sqlite-token-77"))
    resolver.tokens.set(owner="alice", url=tracker.base_url, scope="acme", credentials=secret)
    assert resolver.resolve("alice", tracker).source == "personal"
    assert resolver.verify("alice", tracker).login == "alice"
    assert "alice-sqlite-token-77" not in repr(tp_sqlite_db.dump())


class TestRunOnSQLite:
    """A suite switches every world to the SQLite store by overriding ``tp_store``."""

    @pytest.fixture
    def tp_store(self, tp_sqlite_store: TokenStore) -> TokenStore:
        return tp_sqlite_store

    def test_the_world_uses_the_overridden_store(self, tp_world: World, tp_sqlite_store: TokenStore) -> None:
        assert tp_world.store is tp_sqlite_store
        assert tp_world.resolver.store is tp_sqlite_store


# -- the world ---------------------------------------------------------------------------------
def test_the_default_world(tp_world: World, tp_resolver: Resolver, tp_directory: Any) -> None:
    assert tp_world.resolver is tp_resolver and tp_world.directory is tp_directory
    assert set(tp_directory.tenants_of("alice")) == {"acme", "beta"}
    assert set(tp_directory.tenants_of("bob")) == {"acme"}
    acme, beta = tp_world.tracker("acme/bugs"), tp_world.tracker("beta/bugs")
    assert tp_resolver.verify("bob", acme).login == "acme-bot"
    assert tp_resolver.verify("alice", beta).login == "beta-bot"
    with pytest.raises(NotAuthorizedError):
        tp_resolver.resolve("bob", beta)


def test_a_personal_token_overrides_the_bot(tp_world: World, tp_memory_tracker: MemoryTrackerType) -> None:
    tracker = tp_world.tracker("acme/bugs")
    tp_memory_tracker.backend.add_user("alice", "alice-token")
    credentials = Credentials(api_password=Secret("alice-token"))
    tp_world.resolver.tokens.set(owner="alice", url=tracker.base_url, scope=ALL_TENANTS, credentials=credentials)
    issue = tp_world.resolver.report_issue("alice", tracker, title="Login fails")
    assert tp_memory_tracker.backend.issues[issue.id].reporter == "alice"
    assert issue.resolution is not None and issue.resolution.source == "personal"


WITH_TOKENS = {
    "tenants": {
        "acme": {
            "members": ["alice", "bob"],
            "trackers": [{"id": "bugs", "type": "memory", "bot": {"login": "bot", "api_password": "bot-pw"}}],
        },
        "beta": {"members": ["alice"], "trackers": [{"id": "bugs", "type": "memory"}]},
    },
    "tokens": [
        {"owner": "alice", "tracker": "acme/bugs", "scope": "*", "api_password": "alice-pw", "login": "alice"},
        {"owner": "alice", "tracker": "beta/bugs", "service": True, "api_password": "alice-svc", "login": "al"},
    ],
}


@pytest.mark.parametrize("tp_world_spec", [WITH_TOKENS])
def test_a_test_describes_its_own_world(tp_world: World, tp_resolver: Resolver) -> None:
    """Parametrizing ``tp_world_spec`` overrides the description for one test."""
    acme, beta = tp_world.tracker("acme/bugs"), tp_world.tracker("beta/bugs")
    assert tp_resolver.verify("alice", acme).login == "alice"
    assert tp_resolver.verify("bob", acme).login == "bot"
    beta_resolution = tp_resolver.resolve("alice", beta)
    assert beta_resolution.matched_url == "https://memory.example"  # the service-wide token
    assert tp_resolver.verify("alice", beta).login == "al"
    assert [t.owner for t in tp_world.tokens] == ["alice", "alice"]


def test_tp_make_world_builds_several_worlds(tp_make_world: Callable[..., World]) -> None:
    one = tp_make_world({"tenants": {"acme": {"members": ["alice"]}}})
    two = tp_make_world({"tenants": {"acme": {"members": ["bob"]}}})
    assert set(one.directory.tenants_of("alice")) == {"acme"}
    assert set(two.directory.tenants_of("alice")) == set()
    assert one.store is not two.store


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"tenant": {}}, "unknown key(s) tenant"),
        ({"tenants": {"acme": {"member": ["alice"]}}}, "unknown key(s) member"),
        ({"tenants": {"acme": {"trackers": [{"id": "x"}]}}}, "needs 'id' and 'type'"),
        ({"tenants": {"acme": {"trackers": [{"id": "x", "type": "memory", "bot": {"token": "t"}}]}}}, "token"),
        ({"tenants": {"acme": {"members": ["a"]}}, "tokens": [{"owner": "a", "api_password": "p"}]}, "exactly one"),
    ],
)
def test_a_mistyped_description_fails_loudly(tp_make_world: Callable[..., World], spec: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        tp_make_world(spec)
    assert message in str(caught.value)


# -- fakes in a world --------------------------------------------------------------------------
jira_and_github = pytest.mark.skipif(
    find_spec("tokenproviders_jira") is None or find_spec("tokenproviders_github") is None,
    reason="needs the jira and github plugins",
)

# [start world]
FAKE_WORLD = {
    "tenants": {
        "acme": {
            "members": ["alice", "bob"],
            "trackers": [
                {
                    "id": "jira",
                    "type": "jira",
                    "base_url": "{fake}",
                    "options": {"project": "ACME"},
                    "bot": {"login": "acme-bot", "api_username": "bot@acme.test", "api_password": "jira-bot-token"},
                },
                {
                    "id": "web",
                    "type": "github",
                    "base_url": "{fake}/acme/web",
                    "api_url": "{fake}",
                    "bot": {"login": "acme-bot", "api_password": "ghp_bot"},
                },
            ],
        }
    },
    "tokens": [
        {"owner": "alice", "tracker": "acme/jira", "api_username": "alice@acme.test", "api_password": "jira-alice"},
        {"owner": "alice", "tracker": "acme/web", "api_password": "ghp_alice"},
    ],
}


@jira_and_github
@pytest.mark.parametrize("tp_world_spec", [FAKE_WORLD])
def test_trackers_on_fake_servers(tp_world: World, fake_jira: FakeJira, fake_github: FakeGitHub) -> None:
    resolver = tp_world.resolver
    jira, web = tp_world.tracker("acme/jira"), tp_world.tracker("acme/web")
    assert tp_world.fakes == {"jira": fake_jira, "github": fake_github}
    assert jira.base_url == fake_jira.url
    mine = resolver.report_issue("alice", jira, title="Cart total is wrong")
    bots = resolver.report_issue("bob", jira, title="Checkout times out")
    assert fake_jira.issues[mine.id].reporter == "alice"
    assert fake_jira.issues[bots.id].reporter == "acme-bot"
    resolver.add_comment("alice", web, resolver.report_issue("bob", web, title="Typo").id, "Fixed in #2")
    [issue] = fake_github.issues.values()
    assert (issue.reporter, [c.author for c in issue.comments]) == ("acme-bot", ["alice"])
    assert all(r.identity in ("alice", "acme-bot") for r in fake_github.requests)


# [end world]


def test_fake_fixtures_record_requests(fake_jira: FakeJira, tp_start_fake: Callable[..., Any]) -> None:
    import urllib.request

    other = tp_start_fake(FakeGitHub)
    for fake in (fake_jira, other):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{fake.url}/nowhere", timeout=5)
        assert [r.path for r in fake.requests] == ["/nowhere"]


# -- per-test plugins --------------------------------------------------------------------------
class Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def tokenproviders_resolved(self, resolution: Any) -> None:
        self.seen.append(resolution.user)


def test_tp_register_plugin_adds_a_plugin_to_the_worlds_plugins(
    tp_register_plugin: Callable[..., str], tp_world: World, tp_plugins: Plugins
) -> None:
    observer = Observer()
    name = tp_register_plugin(observer, "observer")
    assert name == "observer" and tp_plugins.manager.get_plugin("observer") is observer
    tp_world.resolver.resolve("bob", tp_world.tracker("acme/bugs"))
    assert observer.seen == ["bob"]


SHARED_PLUGINS_SUITE = '''
import pytest
from tokenproviders import Plugins, hookimpl

SHARED = Plugins(load_entry_points=False)


class Observer:
    @hookimpl
    def tokenproviders_resolved(self, resolution):
        pass


def test_registers_then_fails(tp_register_plugin):
    tp_register_plugin(Observer(), "temporary", plugins=SHARED)
    assert SHARED.manager.has_plugin("temporary")
    raise AssertionError("this test fails on purpose")


def test_the_plugin_is_gone_afterwards():
    assert not SHARED.manager.has_plugin("temporary")
    assert "temporary" not in {info.name for info in SHARED.list()}


FAKES = []


def test_starts_fakes(fake_redmine, tp_start_fake):
    from tokenproviders.testing.fakes import FakeGitLab
    FAKES.extend([fake_redmine, tp_start_fake(FakeGitLab)])


def test_the_fakes_were_stopped():
    for fake in FAKES:
        with pytest.raises(RuntimeError, match="not running"):
            fake.url


def test_no_fixture_of_the_plugin_is_autouse(request):
    assert [n for n in request.fixturenames if n.startswith(("tp_", "fake_"))] == []
'''


def test_per_test_registration_and_fakes_end_with_the_test_even_when_it_fails(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SHARED_PLUGINS_SUITE))
    outcomes = run_pytest(["test_suite.py"], cwd=tmp_path, pythonpath=[], report=tmp_path / "r.xml")
    assert {name: o.outcome for name, o in outcomes.items()} == {
        "test_registers_then_fails": "failed",
        "test_the_plugin_is_gone_afterwards": "passed",
        "test_starts_fakes": "passed",
        "test_the_fakes_were_stopped": "passed",
        "test_no_fixture_of_the_plugin_is_autouse": "passed",
    }


def test_a_suite_that_uses_no_fixture_is_untouched(tmp_path: Path) -> None:
    """The plugin is active (it is installed) yet a suite that asks for nothing gets nothing."""
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_nothing_of_ours_runs(request):
                assert [n for n in request.fixturenames if n.startswith(("tp_", "fake_"))] == []
                for module in ("tokenproviders.testing.fakes", "tokenproviders.testing.world",
                               "tokenproviders.testing.contract", "tokenproviders.stores.sqlite"):
                    assert module not in sys.modules, module
            """
        )
    )
    outcomes = run_pytest(["test_plain.py"], cwd=tmp_path, pythonpath=[], report=tmp_path / "r.xml")
    assert {name: o.outcome for name, o in outcomes.items()} == {"test_nothing_of_ours_runs": "passed"}
    plugin = sys.modules["tokenproviders.testing.pytest_plugin"]
    assert [name for name in vars(plugin) if name.startswith("pytest_")] == []


def test_every_shipped_fake_has_a_running_fixture(request: pytest.FixtureRequest) -> None:
    for type_name, fake_class in FAKES.items():
        fake = request.getfixturevalue(f"fake_{type_name}")
        assert isinstance(fake, fake_class)
        assert fake.url.startswith("http://127.0.0.1:")
