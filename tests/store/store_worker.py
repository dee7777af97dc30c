"""Worker processes for the store's multi-process tests (run as a script, not collected).

``python store_worker.py churn DB KEYS INDEX ITERATIONS``
    sets, resolves and deletes tokens through a Resolver; prints a JSON summary on stdout.
``python store_worker.py rotate-crash DB KEYS UPDATES``
    rotates, and kills the process (``os._exit(3)``) when the UPDATES-th re-seal statement
    starts, i.e. in the middle of a batch's transaction.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from tokenproviders import Credentials, Plugins, Resolver, Secret, Tracker
from tokenproviders.crypto import KeyRing
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

TRACKER = Tracker(tenant="acme", id="main", type="memory", base_url="https://tracker.example.com/acme")
OWNERS_PER_WORKER = 5
SHARED = "shared"


def wait_for_start(db_path: str) -> None:
    """Start together with the other workers: the parent creates DB.go once all are running."""
    go = Path(db_path + ".go")
    for _ in range(6000):
        if go.exists():
            return
        time.sleep(0.01)
    raise TimeoutError("the parent never said go")


def churn(db_path: str, key_file: str, index: int, iterations: int) -> dict[str, object]:
    keyring = KeyRing.from_key_file(key_file)
    expected: dict[str, str | None] = {}
    resolves = shared_puts = 0
    with SQLiteDatabase(db_path, keyring, busy_timeout=2.0) as db:
        wait_for_start(db_path)
        plugins = Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(MemoryTrackerType())])
        resolver = Resolver(db.directory, db.tokens, plugins=plugins)
        resolver.plugins.register(db.audit.observer())
        for i in range(iterations):
            owner = f"w{index}-{i % OWNERS_PER_WORKER}"
            value = f"tok-{index}-{i}"
            resolver.tokens.set(owner=owner, url=TRACKER.base_url, credentials=Credentials(Secret(value)), scope="acme")
            expected[owner] = value
            resolution = resolver.resolve(owner, TRACKER)
            resolves += 1
            if resolution.credentials.api_password.reveal() != value:
                raise AssertionError(f"{owner} resolved another value than it just set")
            if i % 3 == 2:
                resolver.tokens.delete(owner, TRACKER.base_url, "acme")
                expected[owner] = None
            resolver.tokens.set(
                owner=SHARED, url=TRACKER.base_url, credentials=Credentials(Secret(f"tok-shared-{index}-{i}")),
                scope="acme",
            )
            shared_puts += 1
            shared = resolver.resolve(SHARED, TRACKER)
            resolves += 1
            if not shared.credentials.api_password.reveal().startswith("tok-shared-"):
                raise AssertionError("the shared token resolved to something unexpected")
    return {"expected": expected, "resolves": resolves, "shared_puts": shared_puts}


def rotate_crash(db_path: str, key_file: str, updates: int) -> None:
    keyring = KeyRing.from_key_file(key_file)
    db = SQLiteDatabase(db_path, keyring)
    seen = 0

    def trace(statement: str) -> None:
        nonlocal seen
        if statement.startswith("UPDATE tokens SET secret"):
            seen += 1
            if seen >= updates:
                os._exit(3)  # no commit, no close, no cleanup: a crash

    db._core.conn.set_trace_callback(trace)
    db.rotate(batch_size=50)
    os._exit(0)  # reaching here means the crash point was never hit


def main(argv: list[str]) -> int:
    command = argv[0]
    try:
        if command == "churn":
            print(json.dumps(churn(argv[1], argv[2], int(argv[3]), int(argv[4]))))
        elif command == "rotate-crash":
            rotate_crash(argv[1], argv[2], int(argv[3]))
        else:
            print(f"unknown command {command}", file=sys.stderr)
            return 2
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
