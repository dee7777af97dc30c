"""Token ids are never reused (schema version 2), and a version 1 database migrates to it."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tokenproviders import Credentials, Resolver, Secret
from tokenproviders.crypto import KeyRing
from tokenproviders.stores import _sqlite_base
from tokenproviders.stores.sqlite import SQLiteDatabase

from .conftest import TRACKER_URL, make_plugins, make_tracker

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def creds(value: str) -> Credentials:
    return Credentials(Secret(value))


def _resolver(db: SQLiteDatabase) -> Resolver:
    from tokenproviders.testing.memory_tracker import MemoryTrackerBackend

    resolver = Resolver(db.directory, db.tokens, plugins=make_plugins(MemoryTrackerBackend()))
    resolver.plugins.register(db.audit.observer(), name="audit")
    return resolver


def test_a_deleted_tokens_id_is_not_given_to_the_next_token(db: SQLiteDatabase) -> None:
    db.directory.add_member("alice", "acme")
    db.directory.add_member("bob", "acme")
    db.directory.add_tracker(make_tracker(bot=None))
    resolver = _resolver(db)
    alice = resolver.tokens.set("alice", TRACKER_URL, creds("alice-token"), scope="acme")
    resolver.resolve("alice", make_tracker(bot=None))
    resolver.tokens.delete("alice", TRACKER_URL, "acme")
    bob = resolver.tokens.set("bob", TRACKER_URL, creds("bob-token"), scope="acme")
    resolver.resolve("bob", make_tracker(bot=None))
    assert bob.id != alice.id
    assert [entry.user for entry in db.audit.query(token_id=bob.id, action="resolve")] == ["bob"]
    assert [entry.user for entry in db.audit.query(token_id=alice.id, action="resolve")] == ["alice"]


def test_even_the_highest_id_is_not_reused_after_reopening(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        first = db.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
        db.tokens.delete("alice", TRACKER_URL, "acme")
    with SQLiteDatabase(db_path, keyring) as db:
        second = db.tokens.put("bob", TRACKER_URL, "acme", creds("b"), now=NOW)
    assert second.id is not None and first.id is not None and second.id > first.id


def _table_sql(path: Path, table: str) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0])


def test_a_version_1_database_migrates_keeping_ids_and_data(
    db_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A version 1 file, written by this code with the schema stopped at version 1.
    with monkeypatch.context() as patch:
        patch.setattr(_sqlite_base, "SCHEMA_VERSION", 1)
        with SQLiteDatabase(db_path, keyring) as db:
            assert db.schema_version == 1
            ids = {
                owner: db.tokens.put(owner, TRACKER_URL, "acme", creds(f"{owner}-token"), now=NOW).id
                for owner in ("alice", "bob", "carol")
            }
            # Rows as version 1 wrote them (this code writes version 3 audit entries).
            def version_1_rows(conn: sqlite3.Connection) -> None:
                conn.execute("INSERT INTO tenants (id, created_at) VALUES ('acme', 'x')")
                conn.execute(
                    "INSERT INTO members (user, tenant, added_at) VALUES ('alice', 'acme', 'x'), ('carol', 'acme', 'x')"
                )
                conn.execute(  # an audit entry naming carol's token (the highest id)
                    "INSERT INTO audit (at, user, tenant, tracker, source, token_id, scope, matched_url)"
                    " VALUES (?, 'carol', 'acme', 'main', 'personal', ?, 'acme', ?)",
                    (NOW.isoformat(), ids["carol"], TRACKER_URL),
                )

            db._core.write(version_1_rows, "write version 1 rows")
            db.tokens.delete("carol", TRACKER_URL, "acme")
            db.tokens.delete("bob", TRACKER_URL, "acme")
            before = db.dump()
    assert "AUTOINCREMENT" not in _table_sql(db_path, "tokens").upper()

    with SQLiteDatabase(db_path, keyring) as db:
        assert db.schema_version == _sqlite_base.SCHEMA_VERSION
        after = db.dump()
        assert after["tokens"] == before["tokens"]  # same ids, same rows, blobs untouched
        assert {table: rows for table, rows in after.items() if table not in ("schema", "audit")} == {
            table: rows for table, rows in before.items() if table not in ("schema", "audit")
        }
        token = db.tokens.get("alice", TRACKER_URL, "acme")
        assert token is not None and token.id == ids["alice"] and token.credentials is not None
        assert token.credentials.api_password.reveal() == "alice-token"
        dave = db.tokens.put("dave", TRACKER_URL, "acme", creds("d"), now=NOW)
        # Neither bob's id (deleted) nor carol's (deleted, but named by the audit trail) comes back.
        assert dave.id is not None and dave.id > max(i for i in ids.values() if i is not None)
        assert [entry.user for entry in db.audit.query(token_id=dave.id)] == []
        assert db._core.read_one("PRAGMA integrity_check")[0] == "ok"
        assert [row[1] for row in db._core.read("PRAGMA index_list(tokens)") if row[1] == "tokens_by_key"]
    assert "AUTOINCREMENT" in _table_sql(db_path, "tokens").upper()


def test_a_failing_migration_leaves_the_version_1_file_as_it_was(
    db_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(_sqlite_base, "SCHEMA_VERSION", 1)
        with SQLiteDatabase(db_path, keyring) as db:
            db.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
            before = db.dump()
    broken = (*_sqlite_base.MIGRATIONS[2][:-1], "SELECT no_such_function()")
    with monkeypatch.context() as patch:
        patch.setitem(_sqlite_base.MIGRATIONS, 2, broken)
        with pytest.raises(Exception, match="no_such_function"):
            SQLiteDatabase(db_path, keyring)
    assert "AUTOINCREMENT" not in _table_sql(db_path, "tokens").upper()
    with monkeypatch.context() as patch:
        patch.setattr(_sqlite_base, "SCHEMA_VERSION", 1)
        with SQLiteDatabase(db_path, keyring) as db:
            assert db.dump() == before
