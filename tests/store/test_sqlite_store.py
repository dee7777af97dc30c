"""The SQLite token store and the memory store's sealing: the TokenStore contract, schema, WAL."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tokenproviders import ALL_TENANTS, Credentials, PersonalTokenUnusableError, Resolver, Secret
from tokenproviders.crypto import AssociatedData, KeyRing
from tokenproviders.errors import InvalidInputError, KeyMismatchError, SecretUnreadableError, StoreError
from tokenproviders.stores import MemoryTokenStore, TokenStore, _sqlite_base
from tokenproviders.stores.sqlite import SCHEMA_VERSION, SQLiteDatabase, SQLiteTokenStore

from .conftest import SERVICE_URL, TRACKER_URL, make_tracker

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
URL = "https://jira.example.com"


def creds(value: str, user: str | None = None) -> Credentials:
    return Credentials(Secret(value), user)


@pytest.fixture(params=["sqlite", "memory-sealed", "memory-plain"])
def store(request: pytest.FixtureRequest, db: SQLiteDatabase, keyring: KeyRing) -> TokenStore:
    if request.param == "sqlite":
        return db.tokens
    if request.param == "memory-sealed":
        return MemoryTokenStore(keyring=keyring)
    return MemoryTokenStore()


# -- the TokenStore contract, for every store ---------------------------------------------
def test_implements_the_protocol(store: TokenStore) -> None:
    assert isinstance(store, TokenStore)


def test_put_get_keeps_every_field(store: TokenStore) -> None:
    expires = NOW + timedelta(days=30)
    info = store.put("alice", URL, "acme", creds("tok-1", "alice@x"), label="laptop", expires_at=expires, now=NOW)
    assert (info.owner, info.url, info.scope, info.label, info.version) == ("alice", URL, "acme", "laptop", 1)
    assert info.created_at == NOW and info.updated_at == NOW and info.last_used_at is None
    assert info.expires_at == expires and info.api_username == "alice@x"
    token = store.get("alice", URL, "acme")
    assert token is not None and token.credentials is not None
    assert token.credentials.api_password.reveal() == "tok-1"
    assert token.credentials.api_username == "alice@x"
    assert token.info() == info
    assert store.get("alice", URL, ALL_TENANTS) is None


def test_replace_keeps_id_and_created_bumps_version(store: TokenStore) -> None:
    first = store.put("alice", URL, "acme", creds("tok-1"), now=NOW)
    later = NOW + timedelta(hours=1)
    second = store.put("alice", URL, "acme", creds("tok-2"), label="new", now=later)
    assert second.id == first.id and second.version == 2
    assert second.created_at == NOW and second.updated_at == later and second.label == "new"
    token = store.get("alice", URL, "acme")
    assert token is not None and token.credentials is not None
    assert token.credentials.api_password.reveal() == "tok-2"
    assert len(store.list()) == 1


def test_lookup_prefers_candidates_in_order_and_opens_the_winner(store: TokenStore) -> None:
    candidates = [(URL, "acme"), (URL, ALL_TENANTS), (SERVICE_URL, "acme"), (SERVICE_URL, ALL_TENANTS)]
    assert store.lookup("alice", candidates) is None
    for position, (url, scope) in reversed(list(enumerate(candidates))):
        store.put("alice", url, scope, creds(f"tok-{position}"), now=NOW)
        token = store.lookup("alice", candidates)
        assert token is not None and token.credentials is not None
        assert (token.url, token.scope) == (url, scope)
        assert token.credentials.api_password.reveal() == f"tok-{position}"
    assert store.lookup("bob", candidates) is None
    assert store.lookup("alice", []) is None


def test_delete_and_list(store: TokenStore) -> None:
    store.put("alice", URL, "acme", creds("a"), now=NOW)
    store.put("alice", URL, ALL_TENANTS, creds("b"), now=NOW)
    store.put("bob", URL, "acme", creds("c"), now=NOW)
    assert [(t.owner, t.scope) for t in store.list()] == [("alice", "*"), ("alice", "acme"), ("bob", "acme")]
    assert [t.scope for t in store.list("alice")] == ["*", "acme"]
    removed = store.delete("alice", URL, "acme")
    assert removed is not None and removed.scope == "acme"
    assert store.delete("alice", URL, "acme") is None
    assert store.get("alice", URL, "acme") is None
    assert len(store.list()) == 2


def test_mark_used(store: TokenStore) -> None:
    info = store.put("alice", URL, "acme", creds("a"), now=NOW)
    assert info.id is not None
    used = NOW + timedelta(minutes=5)
    store.mark_used(info.id, used)
    [listed] = store.list("alice")
    assert listed.last_used_at == used


def test_sealed_stores_record_the_key_id(store: TokenStore, keyring: KeyRing) -> None:
    info = store.put("alice", URL, "acme", creds("a"), now=NOW)
    # A memory store given no key ring seals with its own ephemeral key.
    assert info.key_id == (store.keyring if isinstance(store, MemoryTokenStore) else keyring).primary_id


def test_lookup_of_an_unreadable_secret_names_the_token(db: SQLiteDatabase) -> None:
    info = db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    other = db.tokens.put("bob", URL, "acme", creds("b"), now=NOW)
    with db._core.transaction() as conn:  # a blob copied onto another row
        conn.execute(
            "UPDATE tokens SET secret = (SELECT secret FROM tokens WHERE id = ?) WHERE id = ?", (other.id, info.id)
        )
    with pytest.raises(SecretUnreadableError) as caught:
        db.tokens.lookup("alice", [(URL, "acme")])
    assert caught.value.token == info
    assert caught.value.key_id == info.key_id
    assert db.tokens.info("alice", URL, "acme") == info  # metadata stays readable


def test_memory_store_seals_like_the_sqlite_store(db: SQLiteDatabase, keyring: KeyRing) -> None:
    memory = MemoryTokenStore(keyring=keyring)
    memory.put("alice", URL, "acme", creds("same-format"), now=NOW)
    [entry] = memory.backend.scan()
    aad = AssociatedData.for_token(owner="alice", scope="acme", url=URL, field="api_password")
    assert keyring.open(entry.secret, aad) == "same-format"
    db.tokens.put("alice", URL, "acme", creds("same-format"), now=NOW)
    [row] = db._core.read("SELECT secret FROM tokens")
    assert row[0][:4] == entry.secret[:4]  # same header: version, key id
    assert keyring.open(row[0], aad) == "same-format"


def test_memory_store_without_key_seals_with_an_ephemeral_key() -> None:
    store = MemoryTokenStore()
    store.put("alice", URL, "acme", creds("plain-canary"), now=NOW)
    assert "'ephemeral'" in repr(store)
    [entry] = store.backend.scan()
    assert b"plain-canary" not in entry.secret
    assert store.get("alice", URL, "acme") == store.lookup("alice", [(URL, "acme")])


# -- SQLite specifics ---------------------------------------------------------------------
def test_unique_owner_url_scope(db: SQLiteDatabase) -> None:
    db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), db._core.transaction() as conn:
        conn.execute(
            "INSERT INTO tokens (owner, url, scope, created_at, updated_at, key_id, secret)"
            " VALUES ('alice', ?, 'acme', 'x', 'x', 'k1', x'00')",
            (URL,),
        )


def test_wal_mode_busy_timeout_and_private_file(db: SQLiteDatabase, db_path: Path) -> None:
    assert db._core.read_one("PRAGMA journal_mode")[0] == "wal"
    assert db._core.read_one("PRAGMA busy_timeout")[0] == 5000
    assert db._core.read_one("PRAGMA foreign_keys")[0] == 1
    db.directory.add_member("alice", "acme")
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert db.schema_version == SCHEMA_VERSION


def test_lookup_is_one_indexed_query_on_the_most_specific_hit_and_two_otherwise(db: SQLiteDatabase) -> None:
    for sql, params in (
        (db.tokens.backend._sql_for(3), ["a"] + ["x"] * 6),
        (db.tokens.backend._exact_sql, ["a", "x", "y"]),
    ):
        plan = " ".join(str(row[3]) for row in db._core.read("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING INDEX" in plan and "SCAN" not in plan
    statements: list[str] = []
    db._core.conn.set_trace_callback(statements.append)
    try:
        db.tokens.put("alice", URL, ALL_TENANTS, creds("a"), now=NOW)
        db.tokens.put("bob", URL, "acme", creds("b"), now=NOW)
        statements.clear()
        found = db.tokens.lookup("bob", [(URL, "acme"), (URL, ALL_TENANTS)])
        assert found is not None and found.scope == "acme"
        assert len(statements) == 1 and statements[0].startswith("SELECT")
        statements.clear()
        found = db.tokens.lookup("alice", [(URL, "acme"), (URL, ALL_TENANTS)])
        assert found is not None and found.scope == ALL_TENANTS
    finally:
        db._core.conn.set_trace_callback(None)
    assert len(statements) == 2 and all(s.startswith("SELECT") for s in statements)


def test_a_write_is_one_transaction(db: SQLiteDatabase) -> None:
    statements: list[str] = []
    db._core.conn.set_trace_callback(statements.append)
    try:
        db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    finally:
        db._core.conn.set_trace_callback(None)
    # A read of the current version outside, then one compare-and-swap transaction.
    begin = statements.index("BEGIN IMMEDIATE")
    assert all(s.startswith("SELECT") for s in statements[:begin]) and statements[-1] == "COMMIT"
    assert statements.count("BEGIN IMMEDIATE") == 1


def test_a_failing_write_changes_nothing(db: SQLiteDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    before = db.dump()

    def explode(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM tokens")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db._core.write(explode, "test")
    assert db.dump() == before


def test_put_rejects_naive_times(db: SQLiteDatabase) -> None:
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        db.tokens.put("alice", URL, "acme", creds("a"), now=datetime(2024, 1, 1))


def test_put_many_imports_in_batches(db: SQLiteDatabase) -> None:
    from tokenproviders import PersonalToken

    tokens = [PersonalToken(owner=f"user{i}", url=URL, scope="acme", credentials=creds(f"tok-{i}")) for i in range(25)]
    assert db.tokens.put_many(tokens, now=NOW, batch_size=10) == 25
    assert len(db.tokens) == 25
    token = db.tokens.get("user7", URL, "acme")
    assert token is not None and token.credentials is not None
    assert token.credentials.api_password.reveal() == "tok-7"


@pytest.mark.parametrize("background", [True, False])
def test_mark_used_is_buffered_and_flushed(db_path: Path, keyring: KeyRing, background: bool) -> None:
    db = SQLiteDatabase(db_path, keyring, flush_interval=3600, background_writes=background)
    info = db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    assert info.id is not None
    db.tokens.mark_used(info.id, NOW + timedelta(minutes=1))
    db.tokens.mark_used(info.id, NOW + timedelta(minutes=2))
    db.tokens.mark_used(info.id, NOW + timedelta(seconds=30))  # older: ignored
    assert db._core.read_one("SELECT last_used_at FROM tokens")[0] is None
    db.flush()
    assert db._core.read_one("SELECT last_used_at FROM tokens")[0].startswith("2024-05-01T12:02:00")
    db.close()


def test_mark_used_keeps_utc_order_across_offsets_and_refuses_naive_times(db_path: Path, keyring: KeyRing) -> None:
    db = SQLiteDatabase(db_path, keyring, flush_interval=3600)
    info = db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    assert info.id is not None
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        db.tokens.mark_used(info.id, datetime(2024, 5, 1, 13, 0))
    berlin = timezone(timedelta(hours=2))
    db.tokens.mark_used(info.id, datetime(2024, 5, 1, 14, 5, tzinfo=berlin))  # 12:05 UTC
    db.tokens.mark_used(info.id, NOW + timedelta(minutes=3))  # 12:03 UTC: older, ignored
    db.flush()
    assert db._core.read_one("SELECT last_used_at FROM tokens")[0] == "2024-05-01T12:05:00.000000+00:00"
    db.close()


@pytest.mark.parametrize("background", [True, False])
def test_a_full_buffer_is_flushed_without_being_asked(db_path: Path, keyring: KeyRing, background: bool) -> None:
    flushed = threading.Event()
    connections: list[sqlite3.Connection] = []
    with SQLiteDatabase(db_path, keyring, flush_size=3, flush_interval=3600, background_writes=background) as db:
        db._core.before_flush.append(lambda conn: (connections.append(conn), flushed.set()))
        ids = [db.tokens.put(f"user{i}", URL, "acme", creds("a"), now=NOW).id for i in range(3)]
        for token_id in ids:
            assert token_id is not None
            db.tokens.mark_used(token_id, NOW)
        assert flushed.wait(timeout=60)
        with db._core._flush_lock:  # held by a flush until it has committed
            pass
        # The writer thread uses its own connection; inline flushes use the shared one.
        assert (connections[0] is not db._core.conn) == background
        assert db._core.read_one("SELECT count(*) FROM tokens WHERE last_used_at IS NOT NULL")[0] == 3


def test_reopen_keeps_everything(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        db.tokens.put("alice", URL, "acme", creds("persisted"), now=NOW)
    with SQLiteDatabase(db_path, keyring) as db:
        token = db.tokens.get("alice", URL, "acme")
        assert token is not None and token.credentials is not None
        assert token.credentials.api_password.reveal() == "persisted"


def test_a_key_ring_sharing_no_key_is_refused_without_writing(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        db.tokens.put("alice", URL, "acme", creds("persisted"), now=NOW)
        before = db.dump()
    stranger = KeyRing.generate("someone-elses-key")
    with pytest.raises(KeyMismatchError, match="none of the keys"):
        SQLiteDatabase(db_path, stranger)
    with SQLiteDatabase(db_path, keyring) as db:
        assert db.dump() == before


def test_closed_database_says_so(db_path: Path, keyring: KeyRing) -> None:
    db = SQLiteDatabase(db_path, keyring)
    db.close()
    db.close()
    with pytest.raises(StoreError, match="closed"):
        db.tokens.list()


def test_not_a_database_is_a_store_error(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        SQLiteDatabase(path, keyring)


# -- schema versions and migrations -------------------------------------------------------
def test_a_newer_schema_is_refused(db_path: Path, keyring: KeyRing) -> None:
    SQLiteDatabase(db_path, keyring).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer") as caught:
        SQLiteDatabase(db_path, keyring)
    assert "upgrade tokenproviders" in caught.value.hint


def test_migrations_run_once_in_order(db_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        db.tokens.put("alice", URL, "acme", creds("kept"), now=NOW)
    step = SCHEMA_VERSION + 1
    monkeypatch.setattr(_sqlite_base, "SCHEMA_VERSION", step)
    monkeypatch.setitem(_sqlite_base.MIGRATIONS, step, ("ALTER TABLE tokens ADD COLUMN note TEXT",))
    with SQLiteDatabase(db_path, keyring) as db:
        assert db.schema_version == step
        assert "note" in [row[1] for row in db._core.read("PRAGMA table_info(tokens)")]
        token = db.tokens.get("alice", URL, "acme")
        assert token is not None and token.credentials is not None
        assert token.credentials.api_password.reveal() == "kept"
    with SQLiteDatabase(db_path, keyring) as db:  # not applied twice
        assert db.schema_version == step


# -- through the resolver -----------------------------------------------------------------
def test_resolver_over_sqlite(resolver: Resolver, db: SQLiteDatabase, backend: object) -> None:
    tracker = make_tracker()
    assert resolver.resolve("alice", tracker).source == "bot"
    resolver.tokens.set(owner="alice", url=SERVICE_URL, credentials=creds("svc"), scope=ALL_TENANTS)
    resolution = resolver.resolve("alice", tracker)
    assert resolution.source == "personal" and resolution.matched_url == SERVICE_URL
    resolver.tokens.set(owner="alice", url=TRACKER_URL, credentials=creds("own"), scope="acme")
    resolution = resolver.resolve("alice", tracker)
    assert resolution.matched_url == TRACKER_URL and resolution.credentials.api_password.reveal() == "own"
    with db._core.transaction() as conn:
        conn.execute("UPDATE tokens SET secret = x'00' WHERE url = ? AND scope = 'acme'", (TRACKER_URL,))
    with pytest.raises(PersonalTokenUnusableError, match="cannot be decrypted"):
        resolver.resolve("alice", tracker)


def test_store_objects_are_typed(db: SQLiteDatabase) -> None:
    assert isinstance(db.tokens, SQLiteTokenStore)


def test_a_primary_added_after_opening_is_recorded_before_it_seals(db: SQLiteDatabase, keyring: KeyRing) -> None:
    keyring.add_key("k2")
    db.tokens.put("alice", URL, "acme", creds("a"), now=NOW)
    recorded = {row[0]: row[1] for row in db.dump()["keys"]}
    assert recorded["k2"] == keyring.check_value("k2")
    db.directory.add_tracker(make_tracker())
    assert db.key_status() == {"k2": 2, "k1": 0}
