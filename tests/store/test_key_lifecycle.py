"""Key life cycle across processes: a retired key seals nothing more; an unsaved key re-seals nothing."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from tokenproviders import Credentials, PersonalToken, Secret
from tokenproviders.crypto import KeyRing
from tokenproviders.errors import ConfigurationError
from tokenproviders.stores.sqlite import SQLiteDatabase

from .conftest import TRACKER_URL, make_tracker

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def creds(value: str) -> Credentials:
    return Credentials(Secret(value))


def _operator_rotates_and_retires(key_file: Path, db_path: Path) -> None:
    """What 'keys generate', 'keys rotate' and 'keys retire k1' do, from another process."""
    ring = KeyRing.from_key_file(key_file)
    ring.add_key("k2")
    ring.write_key_file(key_file, replace=True)
    with SQLiteDatabase(db_path, ring) as ops:
        assert ops.rotate().complete
        ops.retire_key("k1")


# -- 1. a key retired by another process -------------------------------------------------
def test_a_worker_cannot_seal_under_a_key_retired_by_another_process(key_file: Path, db_path: Path) -> None:
    worker = SQLiteDatabase(db_path, KeyRing.from_key_file(key_file))  # a long-running host, primary k1
    try:
        worker.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
        worker.directory.add_tracker(make_tracker(bot="bot-1"))
        _operator_rotates_and_retires(key_file, db_path)
        before = worker.dump(audit=False)

        with pytest.raises(ConfigurationError, match="retired") as caught:
            worker.tokens.put("bob", TRACKER_URL, "acme", creds("b"), now=NOW)
        assert "reload the key ring" in caught.value.hint
        with pytest.raises(ConfigurationError, match="retired"):
            worker.tokens.put("alice", TRACKER_URL, "acme", creds("a2"), now=NOW)  # a replacement too
        with pytest.raises(ConfigurationError, match="retired"):
            worker.tokens.put_many(
                [PersonalToken(owner="carol", url=TRACKER_URL, scope="acme", credentials=creds("c"))], now=NOW
            )
        with pytest.raises(ConfigurationError, match="retired"):
            worker.directory.add_tracker(make_tracker("globex", "gx", bot="bot-2"))
        with pytest.raises(ConfigurationError, match="retired"):
            worker.directory.update_tracker(make_tracker(bot="bot-3"))
        with pytest.raises(ConfigurationError, match="retired"):
            worker.directory.add_tracker(make_tracker(bot="bot-3"), replace=True)
        assert worker.dump(audit=False) == before  # nothing was written under k1

        # What needs no sealing still works: deleting, and a tracker without bot credentials.
        worker.directory.add_tracker(make_tracker("initech", "it", bot=None))
        assert worker.tokens.delete("alice", TRACKER_URL, "acme") is not None
    finally:
        worker.close()

    # Every row a fresh process opens is readable: no blob names the retired key.
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as fresh:
        assert fresh.key_status() == {"k2": 1}
        tracker = fresh.directory.get_tracker("acme", "main")
        assert tracker.bot_credentials is not None and tracker.bot_credentials.api_password.reveal() == "bot-1"


def test_a_worker_that_reloads_its_key_ring_writes_again(key_file: Path, db_path: Path) -> None:
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as worker:
        worker.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
        _operator_rotates_and_retires(key_file, db_path)
        with pytest.raises(ConfigurationError, match="retired"):
            worker.tokens.put("bob", TRACKER_URL, "acme", creds("b"), now=NOW)
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as reloaded:
        reloaded.tokens.put("bob", TRACKER_URL, "acme", creds("b"), now=NOW)
        assert reloaded.key_status() == {"k2": 2}
