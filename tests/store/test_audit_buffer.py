"""The write-behind buffer of audit entries and last-used times: nothing lost at exit or when
idle, the resolve path never waits for another process's write lock, and the buffer is bounded."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tokenproviders import Credentials, Resolver, Secret
from tokenproviders.crypto import KeyRing
from tokenproviders.stores import _sqlite_base
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend

from .conftest import TRACKER_URL, make_plugins, make_tracker

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
#: Generous bounds for things that take milliseconds; a regression takes the full lock wait.
PATIENCE = 20.0


def _resolver(db: SQLiteDatabase) -> Resolver:
    db.directory.add_member("alice", "acme")
    db.directory.add_tracker(make_tracker())
    resolver = Resolver(db.directory, db.tokens, plugins=make_plugins(MemoryTrackerBackend()))
    resolver.plugins.register(db.audit.observer(), name="audit")
    return resolver


def _audit_rows(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=PATIENCE)
    try:
        return int(conn.execute("SELECT count(*) FROM audit WHERE action = 'resolve'").fetchone()[0])
    finally:
        conn.close()


@contextmanager
def write_lock_held_by_another_process(path: Path) -> Iterator[None]:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("COMMIT")
        other.close()


# -- nothing lost at exit or when idle -----------------------------------------------------
CHILD = """
import sys, time, os
from tokenproviders import Credentials, Plugins, Resolver, Secret, Tracker
from tokenproviders.crypto import KeyRing
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType
db = SQLiteDatabase(sys.argv[1], KeyRing({"k1": bytes(32)}, "k1"), flush_interval=float(sys.argv[3]))
t = Tracker(tenant="acme", id="j", type="memory", base_url="https://j.test",
            bot_credentials=Credentials(Secret("bot")))
db.directory.add_tracker(t)
db.directory.add_member("alice", "acme")
r = Resolver(db.directory, db.tokens,
             plugins=Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(MemoryTrackerType())]))
r.plugins.register(db.audit.observer())
for _ in range(int(sys.argv[2])):
    r.resolve("alice", t)
"""


def _run_child(path: Path, resolutions: int, flush_interval: float, ending: str) -> None:
    code = CHILD + textwrap.dedent(ending)
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(resolutions), str(flush_interval)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_buffered_entries_are_written_when_the_process_exits_without_closing(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    _run_child(path, 500, 3600, "")  # the interpreter simply exits: no close(), no flush()
    assert _audit_rows(path) == 500


def test_an_idle_process_writes_its_entries_after_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    # The process goes idle after a few resolutions and later dies without any cleanup: the
    # entries must have been written by then, flush_interval after they were buffered.
    ending = f"""
    import sqlite3
    deadline = time.monotonic() + {PATIENCE}
    while time.monotonic() < deadline:
        time.sleep(0.02)
        probe = sqlite3.connect(sys.argv[1])
        rows = probe.execute("SELECT count(*) FROM audit WHERE action = 'resolve'").fetchone()[0]
        probe.close()
        if rows:
            break
    os._exit(0)
    """
    _run_child(path, 3, 0.05, ending)
    assert _audit_rows(path) == 3


def test_the_idle_flush_also_writes_last_used_times(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring, flush_interval=0.05) as db:
        info = db.tokens.put("alice", TRACKER_URL, "acme", Credentials(Secret("a")), now=NOW)
        assert info.id is not None
        db.tokens.mark_used(info.id, NOW)
        deadline = time.monotonic() + PATIENCE
        conn = sqlite3.connect(db_path)
        try:
            while conn.execute("SELECT last_used_at FROM tokens").fetchone()[0] is None:
                assert time.monotonic() < deadline, "the idle buffer was never flushed"
                time.sleep(0.01)
        finally:
            conn.close()
    timers = [t for t in threading.enumerate() if t.name == "tokenproviders-sqlite-flush-timer"]
    assert all(not t.is_alive() or t.daemon for t in timers)


# -- the resolve path never waits for the write lock ----------------------------------------
def test_resolve_does_not_wait_while_another_process_holds_the_write_lock(db_path: Path, keyring: KeyRing) -> None:
    # busy_timeout and lock_wait far above PATIENCE: a flush that waited would show.
    db = SQLiteDatabase(db_path, keyring, flush_size=1, flush_interval=0.01, busy_timeout=60, lock_wait=120)
    try:
        resolver = _resolver(db)
        resolver.tokens.set("alice", TRACKER_URL, Credentials(Secret("alice-token")), scope="acme")
        resolver.resolve("alice", make_tracker())
        db.flush()
        before = db.audit.count()
        done = threading.Event()

        def resolve_some() -> None:
            for _ in range(20):
                assert resolver.resolve("alice", make_tracker()).source == "personal"
            done.set()

        with write_lock_held_by_another_process(db_path):
            worker = threading.Thread(target=resolve_some, daemon=True)
            worker.start()
            assert done.wait(PATIENCE), "resolve() waited for another process's write lock"
            worker.join()
            assert db._core.read_one("SELECT count(*) FROM audit")[0] == before  # still buffered
        db.flush()  # an explicit flush may wait, and writes everything that was kept
        assert db.audit.count() == before + 20
        assert db._core.read_one("SELECT last_used_at FROM tokens")[0] is not None
    finally:
        db.close()


def test_mark_used_does_not_wait_either(db_path: Path, keyring: KeyRing) -> None:
    db = SQLiteDatabase(db_path, keyring, flush_size=1, busy_timeout=60, lock_wait=120)
    try:
        info = db.tokens.put("alice", TRACKER_URL, "acme", Credentials(Secret("a")), now=NOW)
        assert info.id is not None
        with write_lock_held_by_another_process(db_path):
            marked = threading.Event()
            worker = threading.Thread(target=lambda: (db.tokens.mark_used(info.id, NOW), marked.set()), daemon=True)
            worker.start()
            assert marked.wait(PATIENCE), "mark_used() waited for another process's write lock"
        db.flush()
        assert db._core.read_one("SELECT last_used_at FROM tokens")[0] is not None
    finally:
        db.close()


def test_an_explicit_flush_waits_for_the_lock(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring, flush_interval=3600) as db:
        resolver = _resolver(db)
        resolver.resolve("alice", make_tracker())
        other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.2, lambda: other.execute("COMMIT"))
        release.start()
        db.flush()
        release.join()
        other.close()
        assert db._core.read_one("SELECT count(*) FROM audit WHERE action = 'resolve'")[0] == 1


# -- the buffer is bounded -----------------------------------------------------------------
def test_a_full_buffer_drops_the_oldest_entries_and_says_how_many(
    db_path: Path, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_sqlite_base, "MAX_PENDING", 5)
    db = SQLiteDatabase(db_path, keyring, flush_size=1, flush_interval=3600, busy_timeout=60, lock_wait=120)
    try:
        resolver = _resolver(db)
        db.flush()
        caplog.set_level(logging.WARNING, logger="tokenproviders.stores.sqlite")
        with write_lock_held_by_another_process(db_path):
            for user in ("alice",) * 8:
                resolver.resolve(user, make_tracker())
            assert len(db._core.pending_audit) == 5
        full = [r.getMessage() for r in caplog.records if "is full" in r.getMessage()]
        assert len(full) == 1 and "5 entries" in full[0]
        db.flush()
        assert any("dropped 3 audit entries" in r.getMessage() for r in caplog.records)
        entries = db.audit.query(action="resolve")
        assert len(entries) == 5
    finally:
        db.close()


def test_a_failed_idle_flush_is_retried_until_it_succeeds(
    db_path: Path, keyring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    with SQLiteDatabase(db_path, keyring, flush_interval=0.05) as db:
        info = db.tokens.put("alice", TRACKER_URL, "acme", Credentials(Secret("a")), now=NOW)
        assert info.id is not None
        failures = [sqlite3.OperationalError("disk I/O error")] * 2

        def flaky(conn: sqlite3.Connection) -> None:
            if failures:
                raise failures.pop()

        db._core.before_flush.append(flaky)
        db.tokens.mark_used(info.id, NOW)
        deadline = time.monotonic() + PATIENCE
        conn = sqlite3.connect(db_path)
        try:
            while conn.execute("SELECT last_used_at FROM tokens").fetchone()[0] is None:
                assert time.monotonic() < deadline, "the failed flush was never retried"
                time.sleep(0.01)
        finally:
            conn.close()
        assert not failures
        assert any("disk I/O error" in r.getMessage() for r in caplog.records)
