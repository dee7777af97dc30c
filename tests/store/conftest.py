"""Fixtures of the encrypted store's tests: key rings, a database, a resolver over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tokenproviders import Credentials, Plugins, Resolver, Secret, Tracker
from tokenproviders.crypto import KeyRing
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV, TRACE_ENV
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend, MemoryTrackerPlugin, MemoryTrackerType

TRACKER_URL = "https://tracker.example.com/acme"
SERVICE_URL = "https://tracker.example.com"


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV, "TOKENPROVIDERS_KEYS", "TOKENPROVIDERS_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path, key_id="k1")
    return path


@pytest.fixture
def keyring(key_file: Path) -> KeyRing:
    return KeyRing.from_key_file(key_file)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tokens.db"


@pytest.fixture
def db(db_path: Path, keyring: KeyRing) -> Iterator[SQLiteDatabase]:
    with SQLiteDatabase(db_path, keyring) as database:
        yield database


class ServiceMemoryTrackerType(MemoryTrackerType):
    """The memory tracker type with a service URL, so service-wide tokens can be tested."""

    def service_url(self, tracker: Tracker) -> str | None:
        return SERVICE_URL


@pytest.fixture
def backend() -> MemoryTrackerBackend:
    return MemoryTrackerBackend()


def make_plugins(backend: MemoryTrackerBackend) -> Plugins:
    return Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(ServiceMemoryTrackerType(backend))])


def make_tracker(tenant: str = "acme", tracker_id: str = "main", bot: str | None = "bot-password-1") -> Tracker:
    return Tracker(
        tenant=tenant,
        id=tracker_id,
        type="memory",
        base_url=TRACKER_URL if tenant == "acme" else f"{SERVICE_URL}/{tenant}",
        bot_credentials=Credentials(Secret(bot), "bot") if bot is not None else None,
    )


@pytest.fixture
def resolver(db: SQLiteDatabase, backend: MemoryTrackerBackend) -> Resolver:
    db.directory.add_member("alice", "acme")
    db.directory.add_member("alice", "globex")
    db.directory.add_member("bob", "acme")
    db.directory.add_tracker(make_tracker())
    db.directory.add_tracker(make_tracker("globex", "gx"))
    resolver = Resolver(db.directory, db.tokens, plugins=make_plugins(backend))
    resolver.plugins.register(db.audit.observer(), name="audit")
    return resolver
