"""Several processes set, resolve and delete tokens on one SQLite file at once: nothing is lost,
and no "database is locked" reaches a caller."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tokenproviders import Credentials, Secret
from tokenproviders.crypto import KeyRing
from tokenproviders.stores.sqlite import SQLiteDatabase

from .store_worker import OWNERS_PER_WORKER, SHARED, TRACKER

WORKER = Path(__file__).with_name("store_worker.py")
PROCESSES = 4
ITERATIONS = 300


def prepare(db_path: Path, key_file: Path) -> None:
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as db:
        db.directory.add_tracker(TRACKER)
        for index in range(PROCESSES):
            for owner in range(OWNERS_PER_WORKER):
                db.directory.add_member(f"w{index}-{owner}", "acme")
        db.directory.add_member(SHARED, "acme")


def test_processes_share_one_file_without_losing_anything(db_path: Path, key_file: Path) -> None:
    prepare(db_path, key_file)
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "churn", str(db_path), str(key_file), str(index), str(ITERATIONS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    Path(f"{db_path}.go").touch()
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=240)
            assert "locked" not in err.lower()
            assert worker.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as db:
        for result in results:
            for owner, value in result["expected"].items():
                token = db.tokens.get(owner, TRACKER.url, "acme")
                if value is None:
                    assert token is None, owner
                else:
                    assert token is not None and token.credentials is not None, owner
                    assert token.credentials.api_password.reveal() == value
        shared = db.tokens.get(SHARED, TRACKER.url, "acme")
        assert shared is not None
        assert shared.version == sum(r["shared_puts"] for r in results) == PROCESSES * ITERATIONS  # no lost update
        assert len(db.audit.query(action="resolve", limit=10**6)) == sum(r["resolves"] for r in results)
        assert db.tokens.list(SHARED)[0].last_used_at is not None


def test_threads_share_one_database(db: SQLiteDatabase) -> None:
    now = datetime.now(timezone.utc)
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for i in range(50):
                db.tokens.put(f"t{index}", TRACKER.url, "acme", Credentials(Secret(f"v{index}-{i}")), now=now)
                token = db.tokens.lookup(f"t{index}", [(TRACKER.url, "acme")])
                assert token is not None and token.credentials is not None
                assert token.credentials.api_password.reveal() == f"v{index}-{i}"
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert [t.version for t in db.tokens.list()] == [50] * 4


def test_a_long_writer_elsewhere_is_waited_for(db_path: Path, key_file: Path) -> None:
    """Another connection holds the write lock longer than SQLite's busy timeout: the write
    still succeeds (retried), instead of surfacing "database is locked"."""
    prepare(db_path, key_file)
    keyring = KeyRing.from_key_file(key_file)
    with SQLiteDatabase(db_path, keyring, busy_timeout=0.05) as db:
        holder = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")

        def release() -> None:
            time.sleep(0.3)  # six busy timeouts
            holder.execute("COMMIT")
            holder.close()

        thread = threading.Thread(target=release)
        thread.start()
        try:
            db.tokens.put("w0-0", TRACKER.url, "acme", Credentials(Secret("v")), now=datetime.now(timezone.utc))
        finally:
            thread.join()
        assert db.tokens.get("w0-0", TRACKER.url, "acme") is not None
