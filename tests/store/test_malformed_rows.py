"""Rows whose non-secret columns were damaged behind the store's back (raw sqlite3 UPDATEs).

A damaged row fails alone, with a :class:`StoreError` that names it (table and id) and never
quotes the damaged value: listing a tenant's trackers skips it with a logged error and the other
trackers still resolve; a damaged personal token fails only that token, never as a silent bot.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from tokenproviders import ALL_TENANTS, Credentials, Resolver, Secret, StoreError, Tracker
from tokenproviders.stores.sqlite import SQLiteDatabase

from .conftest import SERVICE_URL, TRACKER_URL, make_tracker

SECOND_URL = f"{SERVICE_URL}/second"
#: Put into damaged columns: an error or log line that quotes the damaged value shows this.
PLANTED = "planted-s3cr3t-value"
STORE_LOGGER = "tokenproviders.stores.sqlite"


def _damage(path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            assert conn.execute(sql, params).rowcount == 1
    finally:
        conn.close()


@pytest.fixture
def second(db: SQLiteDatabase, resolver: Resolver) -> Tracker:
    """A second tracker of acme, next to acme/main."""
    tracker = Tracker(
        tenant="acme", id="second", type="memory", base_url=SECOND_URL,
        bot_credentials=Credentials(Secret("bot-password-2"), "bot"),
    )
    db.directory.add_tracker(tracker)
    return tracker


def _error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == STORE_LOGGER and r.levelno >= logging.ERROR]


# -- trackers ---------------------------------------------------------------------------------

TRACKER_DAMAGE = [
    ("options", "options = 'not json {'"),
    ("options", f"options = '\"{PLANTED}\"'"),  # JSON, but not an object
    ("options", "options = '[[\"project\", \"X\"]]'"),  # dict() would take pairs: still not an object
    ("base_url", f"base_url = 'not a url {PLANTED}'"),
    ("base_url", "base_url = 'ftp://tracker.example.com/acme'"),
    ("base_url", "base_url = 42"),
    ("api_url", f"api_url = 'https://someone:{PLANTED}@tracker.example.com/api'"),
    ("verify_tls", "verify_tls = 'no'"),  # bool('no') is True: a typed value, not a truthy one
    ("verify_tls", "verify_tls = 0, ca_bundle = '/etc/ca.pem'"),  # contradictory pair
    ("type", "type = ''"),
    ("name", "name = X'00'"),  # a blob: TEXT columns turn numbers into text themselves
    ("bot_username", "bot_username = X'00ff'"),
]


@pytest.mark.parametrize(("column", "damage"), TRACKER_DAMAGE, ids=[d for _, d in TRACKER_DAMAGE])
def test_a_damaged_tracker_row_fails_alone_and_is_named(
    db: SQLiteDatabase,
    db_path: Path,
    resolver: Resolver,
    second: Tracker,
    caplog: pytest.LogCaptureFixture,
    column: str,
    damage: str,
) -> None:
    resolver.tokens.set("alice", SECOND_URL, Credentials(Secret("alice-secret-2")), scope="acme")
    _damage(db_path, f"UPDATE trackers SET {damage} WHERE tenant = 'acme' AND id = 'main'")

    with caplog.at_level(logging.ERROR, logger=STORE_LOGGER):
        listed = db.directory.trackers_of("acme")
    assert [t.id for t in listed] == ["second"]
    (line,) = _error_lines(caplog)
    assert "trackers row acme/main" in line and column in line and PLANTED not in line
    assert [(t.tenant, t.id) for t in db.directory.list_trackers()] == [("acme", "second"), ("globex", "gx")]

    for lookup in (lambda: db.directory.get_tracker("acme", "main"), lambda: resolver.tracker("acme", "main")):
        with pytest.raises(StoreError) as excinfo:
            lookup()
        error = excinfo.value
        assert (error.table, error.row) == ("trackers", "acme/main")
        assert "acme/main" in error.message and column in error.message
        assert PLANTED not in str(error)

    # The tenant's other tracker, the drop-down and other tenants keep working.
    assert resolver.resolve("alice", second).source == "personal"
    assert resolver.resolve("bob", second).source == "bot"
    assert resolver.resolve("alice", db.directory.get_tracker("globex", "gx")).source == "bot"
    assert {c.url for c in resolver.trackers_for("alice")} >= {SECOND_URL}
    # The row can be removed (and added again).
    db.directory.remove_tracker("acme", "main")
    db.directory.add_tracker(make_tracker())
    assert resolver.resolve("bob", resolver.tracker("acme", "main")).source == "bot"


def test_the_listing_of_every_tenant_skips_a_damaged_tracker_and_names_it(
    db: SQLiteDatabase, db_path: Path, resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    _damage(db_path, "UPDATE trackers SET options = 'nope' WHERE tenant = 'globex'")
    with caplog.at_level(logging.ERROR, logger=STORE_LOGGER):
        assert [(t.tenant, t.id) for t in db.directory.list_trackers()] == [("acme", "main")]
    assert any("trackers row globex/gx" in line for line in _error_lines(caplog))
    broken = db.directory.broken_trackers()
    assert list(broken) == [("globex", "gx")] and "options" in broken["globex", "gx"].message
    assert db.directory.broken_trackers("acme") == {}


# -- personal tokens ------------------------------------------------------------------------

TOKEN_DAMAGE = [
    ("expires_at", f"expires_at = '{PLANTED}'"),
    ("expires_at", "expires_at = 42"),
    ("expires_at", "expires_at = '2030-01-01T00:00:00'"),  # no UTC offset: would not compare with now
    ("expires_at", "expires_at = X'00'"),
    ("created_at", "created_at = 'yesterday'"),
    ("updated_at", "updated_at = '2024-01-01'"),
    ("last_used_at", "last_used_at = 'never'"),
    ("version", "version = 'two'"),
    ("label", "label = X'01'"),
    ("api_username", "api_username = X'0c'"),
]


@pytest.mark.parametrize(("column", "damage"), TOKEN_DAMAGE, ids=[d for _, d in TOKEN_DAMAGE])
def test_a_damaged_token_row_fails_only_that_token(
    db: SQLiteDatabase,
    db_path: Path,
    resolver: Resolver,
    second: Tracker,
    caplog: pytest.LogCaptureFixture,
    column: str,
    damage: str,
) -> None:
    main = resolver.tracker("acme", "main")
    gx = resolver.tracker("globex", "gx")
    damaged = resolver.tokens.set("alice", TRACKER_URL, Credentials(Secret("alice-main-secret")), scope="acme")
    resolver.tokens.set("alice", SECOND_URL, Credentials(Secret("alice-second-secret")), scope=ALL_TENANTS)
    resolver.tokens.set("alice", gx.url, Credentials(Secret("alice-gx-secret")), scope="globex")
    resolver.tokens.set("bob", TRACKER_URL, Credentials(Secret("bob-main-secret")), scope="acme")
    _damage(db_path, f"UPDATE tokens SET {damage} WHERE id = ?", damaged.id)

    # Resolving with it fails, naming the row; never the bot instead.
    with pytest.raises(StoreError) as excinfo:
        resolver.resolve("alice", main)
    error = excinfo.value
    assert (error.table, error.row) == ("tokens", str(damaged.id))
    assert f"#{damaged.id}" in error.message and column in error.message
    assert "alice-main-secret" not in str(error) and PLANTED not in str(error)
    with pytest.raises(StoreError):
        db.tokens.info("alice", TRACKER_URL, "acme")

    # Every other token, and every other user, is unaffected.
    assert resolver.resolve("alice", second).credentials.api_password == Secret("alice-second-secret")
    assert resolver.resolve("alice", gx).credentials.api_password == Secret("alice-gx-secret")
    assert resolver.resolve("bob", main).credentials.api_password == Secret("bob-main-secret")

    # Listings skip it with a logged error that names it.
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=STORE_LOGGER):
        assert [t.url for t in resolver.tokens.list("alice")] == [gx.url, SECOND_URL]
        assert len(db.tokens.list()) == 3
    lines = _error_lines(caplog)
    assert lines and all(f"tokens row #{damaged.id}" in line and PLANTED not in line for line in lines)

    # Its owner can delete it, and then set it again.
    removed = resolver.tokens.delete("alice", TRACKER_URL, scope="acme")
    assert removed.id == damaged.id
    assert resolver.resolve("alice", main).source == "bot"
    resolver.tokens.set("alice", TRACKER_URL, Credentials(Secret("alice-main-secret")), scope="acme")
    assert resolver.resolve("alice", main).source == "personal"


def test_setting_a_damaged_expiry_again_repairs_it(db: SQLiteDatabase, db_path: Path, resolver: Resolver) -> None:
    main = resolver.tracker("acme", "main")
    info = resolver.tokens.set("alice", TRACKER_URL, Credentials(Secret("alice-main-secret")), scope="acme")
    _damage(db_path, "UPDATE tokens SET expires_at = 'soon' WHERE id = ?", info.id)
    with pytest.raises(StoreError):
        resolver.resolve("alice", main)
    resolver.tokens.set("alice", TRACKER_URL, Credentials(Secret("alice-main-secret")), scope="acme")
    assert resolver.resolve("alice", main).source == "personal"
