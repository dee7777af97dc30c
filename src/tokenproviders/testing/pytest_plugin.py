"""The tokenproviders pytest plugin (``pytest11`` entry point): opt-in fixtures, none autouse.

Installed with the core, it does nothing until a test asks for one of its fixtures: it defines
no hooks and no autouse fixture, and what a fixture needs (fakes, stores, key ring) is imported
when that fixture first runs. Fixtures are named ``tp_*`` (and ``fake_<type>``), so they stay out
of the way of a suite's own ``resolver`` or ``directory``; a conftest fixture of the same name
overrides one of these, as usual in pytest.

Key ring and stores
    ``tp_keyring``: a fresh in-memory :class:`~tokenproviders.crypto.KeyRing` (one random key).
    ``tp_key_file``: the path of a fresh 0600 key file (``KeyRing.from_key_file`` reads it).
    ``tp_memory_store``: an empty :class:`~tokenproviders.MemoryTokenStore`.
    ``tp_sqlite_db``: a :class:`~tokenproviders.stores.sqlite.SQLiteDatabase` in ``tmp_path``
    sealed by ``tp_keyring``, closed after the test. ``tp_sqlite_store``: its token store.
    ``tp_store``: the store the world uses; ``tp_memory_store`` unless you override it.

Plugins
    ``tp_plugins``: a fresh :class:`~tokenproviders.Plugins` with the installed plugins.
    ``tp_register_plugin``: ``register(plugin, name=None, plugins=None)`` registers a plugin (into
    ``tp_plugins`` by default) for this test only; it is unregistered afterwards, pass or fail.
    ``tp_memory_tracker``: the in-memory tracker type (``type: memory``), registered in
    ``tp_plugins``; its ``backend`` records issues and comments.

A world (see :mod:`tokenproviders.testing.world` for the description's keys)
    ``tp_world_spec``: the description; override it in a conftest or a test module.
    ``tp_world``: the :class:`~tokenproviders.testing.world.World` built from it.
    ``tp_make_world``: ``make(spec, **build_world_kwargs)`` builds more worlds in one test.
    ``tp_directory``, ``tp_resolver``: the world's directory and resolver.

Fake trackers (started before the test, stopped after it; ``.requests`` records every request)
    ``fake_jira``, ``fake_github``, ``fake_gitlab``, ``fake_redmine``, ``fake_bugzilla``,
    ``fake_azureboards``; ``tp_start_fake(FakeClass, *args)`` starts any other
    :class:`~tokenproviders.testing.fakes.FakeTracker` for the length of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from tokenproviders import Directory, Plugins, Resolver
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores import MemoryTokenStore, TokenStore
    from tokenproviders.stores.sqlite import SQLiteDatabase
    from tokenproviders.testing.fakes import (
        FakeAzureBoards,
        FakeBugzilla,
        FakeGitHub,
        FakeGitLab,
        FakeJira,
        FakeRedmine,
        FakeTracker,
    )
    from tokenproviders.testing.memory_tracker import MemoryTrackerType
    from tokenproviders.testing.world import World

F = TypeVar("F", bound="FakeTracker")

__all__ = [
    "tp_keyring",
    "tp_key_file",
    "tp_memory_store",
    "tp_sqlite_db",
    "tp_sqlite_store",
    "tp_store",
    "tp_plugins",
    "tp_register_plugin",
    "tp_memory_tracker",
    "tp_world_spec",
    "tp_world",
    "tp_make_world",
    "tp_directory",
    "tp_resolver",
    "tp_start_fake",
    "fake_jira",
    "fake_github",
    "fake_gitlab",
    "fake_redmine",
    "fake_bugzilla",
    "fake_azureboards",
]


# -- key ring and stores ---------------------------------------------------------------------
@pytest.fixture
def tp_keyring() -> KeyRing:
    """A fresh in-memory key ring holding one random AES-256 key (id ``test-key``)."""
    from tokenproviders.crypto import KeyRing

    return KeyRing.generate("test-key")


@pytest.fixture
def tp_key_file(tmp_path: Path) -> Path:
    """The path of a fresh key file (mode 0600, one random key) in ``tmp_path``."""
    from tokenproviders.crypto import KeyRing

    path = tmp_path / "tokenproviders-keys.json"
    KeyRing.generate_key_file(path, key_id="test-key")
    return path


@pytest.fixture
def tp_memory_store() -> MemoryTokenStore:
    """An empty in-memory token store."""
    from tokenproviders.stores import MemoryTokenStore

    return MemoryTokenStore()


@pytest.fixture
def tp_sqlite_db(tmp_path: Path, tp_keyring: KeyRing) -> Iterator[SQLiteDatabase]:
    """A new SQLite database (tokens, directory, audit) in ``tmp_path``, sealed by
    ``tp_keyring``; closed after the test."""
    from tokenproviders.stores.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "tokenproviders.db", tp_keyring)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def tp_sqlite_store(tp_sqlite_db: SQLiteDatabase) -> TokenStore:
    """The token store of ``tp_sqlite_db`` (secrets sealed with AES-256-GCM)."""
    store: TokenStore = tp_sqlite_db.tokens
    return store


@pytest.fixture
def tp_store(tp_memory_store: MemoryTokenStore) -> TokenStore:
    """The store ``tp_world`` uses: ``tp_memory_store``. To run a suite against SQLite::

        @pytest.fixture
        def tp_store(tp_sqlite_store):
            return tp_sqlite_store
    """
    return tp_memory_store


# -- plugins ---------------------------------------------------------------------------------
@pytest.fixture
def tp_plugins() -> Plugins:
    """A fresh plugin manager with the installed plugins (entry points), for this test only."""
    from tokenproviders import Plugins

    return Plugins()


@pytest.fixture
def tp_register_plugin(tp_plugins: Plugins) -> Iterator[Callable[..., str]]:
    """``register(plugin, name=None, plugins=None) -> name``: register ``plugin`` (a module or
    an object with ``@hookimpl`` methods) into ``plugins`` (default ``tp_plugins``) for this
    test only. Every plugin registered this way is unregistered after the test, even when it
    fails, so a shared ``Plugins`` (say, a host's session-wide one) is left as it was."""
    registered: list[tuple[Plugins, str]] = []

    def register(plugin: object, name: str | None = None, plugins: Plugins | None = None) -> str:
        target = plugins if plugins is not None else tp_plugins
        plugin_name = target.register(plugin, name)
        registered.append((target, plugin_name))
        return plugin_name

    try:
        yield register
    finally:
        for target, plugin_name in reversed(registered):
            if target.manager.has_plugin(plugin_name):
                target.unregister(plugin_name)


@pytest.fixture
def tp_memory_tracker(tp_plugins: Plugins) -> MemoryTrackerType:
    """The in-memory tracker type (``type: memory``), registered in ``tp_plugins``.

    No HTTP and no client library: ``.backend.add_user(login, token)`` says who a token is,
    ``.backend.issues`` holds what was reported (with the reporter's login), ``.backend.fail_status
    = 401`` makes every call fail like a tracker answering 401.
    """
    from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

    installed = tp_plugins.tracker_types.get("memory")
    if isinstance(installed, MemoryTrackerType):
        return installed
    tracker_type = MemoryTrackerType()
    tp_plugins.register(MemoryTrackerPlugin(tracker_type), name="tokenproviders-testing-memory")
    return tracker_type


# -- the world -------------------------------------------------------------------------------
@pytest.fixture
def tp_world_spec() -> Any:
    """The description ``tp_world`` is built from (default: ``DEFAULT_WORLD``: alice in acme and
    beta, bob in acme, one in-memory tracker with bot credentials per tenant). Override it::

        @pytest.fixture
        def tp_world_spec():
            return {"tenants": {"acme": {"members": ["alice"], "trackers": [
                {"id": "jira", "type": "jira", "base_url": "{fake}",
                 "bot": {"login": "bot", "api_username": "bot@acme.test", "api_password": "b0t"}}]}}}
    """
    from tokenproviders.testing.world import DEFAULT_WORLD

    return DEFAULT_WORLD


def _fake_starter(request: pytest.FixtureRequest) -> Callable[[str], FakeTracker]:
    def fake_for(type_name: str) -> FakeTracker:
        from tokenproviders.testing.fakes import FakeTracker

        try:
            fake = request.getfixturevalue(f"fake_{type_name}")
        except pytest.FixtureLookupError:
            raise LookupError(
                f"no fixture 'fake_{type_name}' serves trackers of type {type_name!r}; define one"
                " (e.g. with tp_start_fake) or give the tracker a base_url"
            ) from None
        if not isinstance(fake, FakeTracker):
            raise TypeError(f"fixture 'fake_{type_name}' returned {type(fake).__name__}, not a FakeTracker")
        return fake

    return fake_for


@pytest.fixture
def tp_make_world(
    request: pytest.FixtureRequest, tp_plugins: Plugins, tp_memory_tracker: MemoryTrackerType
) -> Callable[..., World]:
    """``make(spec, **kwargs) -> World``: build a world from a description in the test itself.

    Trackers whose ``base_url`` mentions ``{fake}`` start the ``fake_<type>`` fixture. By
    default every world shares ``tp_plugins``, ``tp_memory_tracker`` and gets a new memory store;
    pass ``store=``, ``settings=``, ``policies=``, ``clock=`` or ``plugins=`` to change that.
    """
    from tokenproviders.testing.world import build_world

    def make(spec: Any, **kwargs: Any) -> World:
        kwargs.setdefault("plugins", tp_plugins)
        kwargs.setdefault("memory", tp_memory_tracker)
        kwargs.setdefault("fake_for", _fake_starter(request))
        return build_world(spec, **kwargs)

    return make


@pytest.fixture
def tp_world(tp_make_world: Callable[..., World], tp_world_spec: Any, tp_store: TokenStore) -> World:
    """The world ``tp_world_spec`` describes, with ``tp_store`` as its token store."""
    return tp_make_world(tp_world_spec, store=tp_store)


@pytest.fixture
def tp_directory(tp_world: World) -> Directory:
    """The directory of ``tp_world`` (a :class:`~tokenproviders.MemoryDirectory`)."""
    return tp_world.directory


@pytest.fixture
def tp_resolver(tp_world: World) -> Resolver:
    """The resolver of ``tp_world``: its directory, ``tp_store`` and ``tp_plugins``."""
    return tp_world.resolver


# -- fake trackers ---------------------------------------------------------------------------
@pytest.fixture
def tp_start_fake() -> Iterator[Callable[..., Any]]:
    """``start(FakeClass, *args, **kwargs) -> fake``: start a fake tracker server (any
    :class:`~tokenproviders.testing.fakes.FakeTracker` subclass, yours included) that is
    stopped after the test."""
    started: list[FakeTracker] = []

    def start(fake_class: type[F], *args: Any, **kwargs: Any) -> F:
        fake = fake_class(*args, **kwargs)
        fake.start()
        started.append(fake)
        return fake

    try:
        yield start
    finally:
        for fake in reversed(started):
            fake.stop()


@pytest.fixture
def fake_jira() -> Iterator[FakeJira]:
    """A fake Jira (REST API v2) on 127.0.0.1, for this test. ``.url``, ``.add_user(...)``,
    ``.requests``, ``.issues``, ``.fail_with(status)``, ``.hang()``."""
    from tokenproviders.testing.fakes import FakeJira

    with FakeJira() as fake:
        yield fake


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A fake GitHub (and GitHub Enterprise under ``/api/v3``) on 127.0.0.1, for this test."""
    from tokenproviders.testing.fakes import FakeGitHub

    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    """A fake GitLab (``/api/v4``) on 127.0.0.1, for this test."""
    from tokenproviders.testing.fakes import FakeGitLab

    with FakeGitLab() as fake:
        yield fake


@pytest.fixture
def fake_redmine() -> Iterator[FakeRedmine]:
    """A fake Redmine (JSON REST API) on 127.0.0.1, for this test."""
    from tokenproviders.testing.fakes import FakeRedmine

    with FakeRedmine() as fake:
        yield fake


@pytest.fixture
def fake_bugzilla() -> Iterator[FakeBugzilla]:
    """A fake Bugzilla 5.x (REST API under ``/rest``) on 127.0.0.1, for this test."""
    from tokenproviders.testing.fakes import FakeBugzilla

    with FakeBugzilla() as fake:
        yield fake


@pytest.fixture
def fake_azureboards() -> Iterator[FakeAzureBoards]:
    """A fake Azure DevOps organization host (Azure Boards work items) on 127.0.0.1, for this test."""
    from tokenproviders.testing.fakes import FakeAzureBoards

    with FakeAzureBoards() as fake:
        yield fake
