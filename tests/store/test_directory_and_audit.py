"""The embedded directory (tenants, members, trackers with sealed bot credentials) and the audit trail."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tokenproviders import (
    ALL_TENANTS,
    Credentials,
    Directory,
    NotAuthorizedError,
    Plugins,
    Resolver,
    Secret,
    Tracker,
    find_tracker,
)
from tokenproviders.crypto import KeyRing
from tokenproviders.errors import ConfigurationError, InvalidInputError, SecretUnreadableError, UnknownTrackerError
from tokenproviders.stores.sqlite import AuditEntry, SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend

from .conftest import TRACKER_URL, make_plugins, make_tracker


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


# -- directory ----------------------------------------------------------------------------
def test_implements_the_directory_protocol(db: SQLiteDatabase) -> None:
    assert isinstance(db.directory, Directory)
    assert db.directory.tenants_of("nobody") == frozenset()
    assert db.directory.trackers_of("none") == ()


def test_tenants_and_members(db: SQLiteDatabase) -> None:
    directory = db.directory
    assert directory.add_tenant("acme", "Acme Inc.") is True
    assert directory.add_tenant("acme") is False
    directory.add_member("alice", "acme")
    directory.add_member("alice", "globex")  # creates the tenant
    directory.add_member("bob", "acme")
    assert directory.list_tenants() == ["acme", "globex"] and directory.tenants() == {"acme", "globex"}
    assert directory.tenants_of("alice") == {"acme", "globex"}
    assert directory.members_of("acme") == ["alice", "bob"]
    assert directory.remove_member("alice", "globex") is True
    assert directory.remove_member("alice", "globex") is False
    assert directory.tenants_of("alice") == {"acme"}


def test_ids_are_validated(db: SQLiteDatabase) -> None:
    with pytest.raises(InvalidInputError):
        db.directory.add_member("alice", ALL_TENANTS)
    with pytest.raises(InvalidInputError):
        db.directory.add_tenant(" acme")
    with pytest.raises(InvalidInputError):
        db.directory.add_member("", "acme")


def test_trackers_round_trip_with_sealed_bot_credentials(db: SQLiteDatabase) -> None:
    tracker = Tracker(
        tenant="acme",
        id="jira",
        type="memory",
        base_url="https://jira.example.com/",
        api_url="https://api.example.com",
        name="Jira",
        bot_credentials=Credentials(Secret("bot-pass"), "bot@acme"),
        options={"project": "OPS", "labels": ["a", "b"]},
        ca_bundle="/etc/ca.pem",
    )
    db.directory.add_tracker(tracker)
    loaded = db.directory.get_tracker("acme", "jira")
    assert loaded == tracker
    assert loaded.bot_credentials is not None and loaded.bot_credentials.api_password.reveal() == "bot-pass"
    assert db.directory.trackers_of("acme") == (tracker,)
    assert find_tracker(db.directory, "acme", "jira") == tracker
    [row] = db._core.read("SELECT bot_username, bot_secret, key_id FROM trackers")
    assert row[0] == "bot@acme" and b"bot-pass" not in row[1] and row[2] == db.keyring.primary_id
    unverified = replace(tracker, id="legacy", ca_bundle=None, verify_tls=False)
    db.directory.add_tracker(unverified)
    assert db.directory.get_tracker("acme", "legacy") == unverified


def test_tracker_without_bot_credentials(db: SQLiteDatabase) -> None:
    db.directory.add_tracker(make_tracker(bot=None))
    assert db.directory.get_tracker("acme", "main").bot_credentials is None
    assert db.key_status() == {db.keyring.primary_id: 0}


def test_add_update_remove_trackers(db: SQLiteDatabase) -> None:
    directory = db.directory
    directory.add_tracker(make_tracker())
    with pytest.raises(InvalidInputError, match="already has a tracker"):
        directory.add_tracker(make_tracker())
    directory.update_tracker(make_tracker(bot="bot-password-2"))
    bot = directory.get_tracker("acme", "main").bot_credentials
    assert bot is not None and bot.api_password.reveal() == "bot-password-2"
    directory.add_tracker(make_tracker(bot="bot-password-3"), replace=True)
    directory.add_tracker(make_tracker("globex", "gx"))
    assert [(t.tenant, t.id) for t in directory.list_trackers()] == [("acme", "main"), ("globex", "gx")]
    assert [t.id for t in directory.list_trackers("globex")] == ["gx"]
    directory.remove_tracker("acme", "main")
    with pytest.raises(UnknownTrackerError):
        directory.remove_tracker("acme", "main")
    with pytest.raises(UnknownTrackerError):
        directory.update_tracker(make_tracker())
    with pytest.raises(UnknownTrackerError, match="has no tracker"):
        directory.get_tracker("acme", "main")


def test_options_must_be_json(db: SQLiteDatabase) -> None:
    tracker = Tracker(tenant="acme", id="x", type="memory", base_url="https://x.example.com", options={"o": object()})
    with pytest.raises(InvalidInputError, match="JSON"):
        db.directory.add_tracker(tracker)
    assert db.directory.list_trackers() == []


def test_bot_blob_moved_to_another_tracker_fails(db: SQLiteDatabase) -> None:
    db.directory.add_tracker(make_tracker(bot="pw-acme"))
    db.directory.add_tracker(make_tracker("globex", "gx", bot="pw-globex"))
    with db._core.transaction() as conn:
        conn.execute(
            "UPDATE trackers SET bot_secret = (SELECT bot_secret FROM trackers WHERE tenant = 'acme')"
            " WHERE tenant = 'globex'"
        )
    with pytest.raises(SecretUnreadableError, match="globex/gx") as caught:
        db.directory.get_tracker("globex", "gx")
    assert caught.value.key_id == db.keyring.primary_id
    assert db.directory.get_tracker("acme", "main").bot_credentials is not None


def test_remove_tenant_cascades(db: SQLiteDatabase) -> None:
    now = datetime(2024, 5, 1, tzinfo=timezone.utc)
    db.directory.add_member("alice", "acme")
    db.directory.add_member("alice", "globex")
    db.directory.add_tracker(make_tracker())
    db.tokens.put("alice", TRACKER_URL, "acme", Credentials(Secret("a")), now=now)
    db.tokens.put("alice", TRACKER_URL, ALL_TENANTS, Credentials(Secret("b")), now=now)
    assert db.directory.remove_tenant("acme") == {"members": 1, "trackers": 1, "tokens": 1}
    assert db.directory.list_tenants() == ["globex"]
    assert [t.scope for t in db.tokens.list()] == [ALL_TENANTS]
    with pytest.raises(InvalidInputError, match="no tenant"):
        db.directory.remove_tenant("acme")


def test_revoked_membership_disappears_at_once_across_connections(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring) as first, SQLiteDatabase(db_path, keyring) as second:
        first.directory.add_member("alice", "acme")
        first.directory.add_tracker(make_tracker())
        assert second.directory.tenants_of("alice") == {"acme"}
        first.directory.remove_member("alice", "acme")
        assert second.directory.tenants_of("alice") == frozenset()


# -- audit --------------------------------------------------------------------------------
def test_observer_records_every_resolution_without_secrets(resolver: Resolver, db: SQLiteDatabase) -> None:
    tracker = make_tracker()
    resolver.resolve("alice", tracker)
    resolver.tokens.set(owner="alice", url=TRACKER_URL, credentials=Credentials(Secret("tok-a")), scope="acme")
    resolver.resolve("alice", tracker)
    resolver.resolve("bob", tracker)
    with pytest.raises(NotAuthorizedError):
        resolver.resolve("carol", tracker)
    entries = db.audit.query(action="resolve")
    assert [(e.user, e.source, e.outcome) for e in entries] == [
        ("carol", None, "refused"),
        ("bob", "bot", "ok"),
        ("alice", "personal", "ok"),
        ("alice", "bot", "ok"),
    ]
    personal = entries[2]
    assert isinstance(personal, AuditEntry)
    assert (personal.tenant, personal.tracker, personal.scope, personal.matched_url) == (
        "acme",
        "main",
        "acme",
        TRACKER_URL,
    )
    assert personal.token_id == db.tokens.list("alice")[0].id
    assert personal.at.tzinfo is not None
    dump = repr(db.dump())
    assert "tok-a" not in dump and "bot-password-1" not in dump


def test_query_filters(resolver: Resolver, db: SQLiteDatabase) -> None:
    audit_db = db.audit
    tracker, other = make_tracker(), make_tracker("globex", "gx")
    for _ in range(3):
        resolver.resolve("alice", tracker)
    resolver.resolve("alice", other)
    resolver.resolve("bob", tracker)
    assert len(audit_db.query(user="alice", action="resolve")) == 4
    assert len(audit_db.query(user="alice", tenant="globex", action="resolve")) == 1
    assert len(audit_db.query(tracker="main")) == 5  # the tracker's addition too
    assert len(audit_db.query(source="personal")) == 0
    assert len(audit_db.query(limit=2)) == 2
    assert audit_db.query(since=datetime.now(timezone.utc) + timedelta(hours=1)) == []
    assert len(audit_db.query(until=datetime.now(timezone.utc) + timedelta(hours=1), action="resolve")) == 5
    with pytest.raises(InvalidInputError):
        audit_db.query(limit=0)


def test_retention_by_rows(tmp_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(tmp_path / "a.db", keyring, audit_max_rows=10, audit_max_age=None, flush_size=4) as db:
        db.directory.add_member("alice", "acme")
        db.directory.add_tracker(make_tracker())
        resolver = Resolver(db.directory, db.tokens, plugins=_plugins())
        resolver.plugins.register(db.audit.observer())
        for _ in range(25):
            resolver.resolve("alice", make_tracker())
        assert db.audit.count() == 10
        assert len(db.audit.query(limit=1000)) == 10


def test_retention_by_age(tmp_path: Path, keyring: KeyRing) -> None:
    clock = Clock()
    with SQLiteDatabase(
        tmp_path / "a.db", keyring, audit_max_rows=None, audit_max_age=timedelta(days=7), clock=clock
    ) as db:
        db.directory.add_member("alice", "acme")
        db.directory.add_tracker(make_tracker())
        resolver = Resolver(db.directory, db.tokens, plugins=_plugins(), clock=clock)
        resolver.plugins.register(db.audit.observer())
        resolver.resolve("alice", make_tracker())
        db.flush()
        clock.now += timedelta(days=8)
        resolver.resolve("alice", make_tracker())
        assert db.audit.count() == 1
        assert db.audit.query()[0].at == clock.now
        clock.now += timedelta(days=8)
        assert db.audit.prune() == 1
        assert db.audit.count() == 0


def test_retention_must_be_bounded(tmp_path: Path, keyring: KeyRing) -> None:
    with pytest.raises(ConfigurationError, match="retention"):
        SQLiteDatabase(tmp_path / "a.db", keyring, audit_max_rows=None, audit_max_age=None)


def test_buffered_entries_are_written_on_close(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / "a.db"
    with SQLiteDatabase(path, keyring, flush_size=1000, flush_interval=3600) as db:
        db.directory.add_member("alice", "acme")
        db.directory.add_tracker(make_tracker())
        resolver = Resolver(db.directory, db.tokens, plugins=_plugins())
        resolver.plugins.register(db.audit.observer())
        resolver.resolve("alice", make_tracker())
        assert db._core.read_one("SELECT count(*) FROM audit WHERE action = 'resolve'")[0] == 0
    with SQLiteDatabase(path, keyring) as db:
        assert len(db.audit.query(action="resolve")) == 1


def _plugins() -> Plugins:
    return make_plugins(MemoryTrackerBackend())


def test_add_members_in_bulk(db: SQLiteDatabase) -> None:
    assert db.directory.add_members([("alice", "acme"), ("bob", "acme"), ("alice", "globex")]) == 3
    assert db.directory.add_members([("alice", "acme"), ("carol", "acme")]) == 1
    assert db.directory.members_of("acme") == ["alice", "bob", "carol"]
    assert db.directory.list_tenants() == ["acme", "globex"]
    with pytest.raises(InvalidInputError):
        db.directory.add_members([("dave", ALL_TENANTS)])
    assert db.directory.tenants_of("dave") == frozenset()
