"""Key life cycle across processes: a retired key seals nothing more; an unsaved key re-seals nothing."""

from __future__ import annotations

import json
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


# -- 4. a primary key that exists only in memory -------------------------------------------
def test_rotation_refuses_a_primary_key_that_was_never_saved(db: SQLiteDatabase, keyring: KeyRing) -> None:
    db.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
    db.directory.add_tracker(make_tracker(bot="bot-1"))
    before = db.dump()
    keyring.add_key("k2")
    assert keyring.unsaved_ids == {"k2"}
    with pytest.raises(ConfigurationError, match="never saved") as caught:
        db.rotate()
    assert "write_key_file(path, replace=True)" in caught.value.hint
    assert db.dump() == before  # nothing re-sealed, not even the new key recorded
    assert db.key_status() == {"k2": 0, "k1": 2}


def test_rotation_to_a_saved_primary_key_survives_the_process(
    db_path: Path, key_file: Path, keyring: KeyRing
) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        db.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
        keyring.add_key("k2")
        keyring.write_key_file(key_file, replace=True)
        assert keyring.unsaved_ids == frozenset()
        assert db.rotate().complete
    # The next process loads the key file and opens everything.
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as db:
        token = db.tokens.get("alice", TRACKER_URL, "acme")
        assert token is not None and token.credentials is not None
        assert token.credentials.api_password.reveal() == "a"


def test_rotation_may_be_told_to_accept_an_unsaved_primary(db: SQLiteDatabase, keyring: KeyRing) -> None:
    db.tokens.put("alice", TRACKER_URL, "acme", creds("a"), now=NOW)
    keyring.add_key("k2")
    assert db.rotate(allow_unsaved_primary=True).complete
    assert db.key_status() == {"k2": 1, "k1": 0}


def test_which_keys_count_as_saved(tmp_path: Path) -> None:
    generated = KeyRing.generate("g1")
    assert generated.unsaved_ids == {"g1"}  # only in memory
    generated.write_key_file(tmp_path / "g.json")
    assert generated.unsaved_ids == frozenset()
    assert KeyRing.generate_key_file(tmp_path / "h.json", key_id="h1").unsaved_ids == frozenset()
    loaded = KeyRing.from_key_file(tmp_path / "g.json")
    assert loaded.unsaved_ids == frozenset()
    env = KeyRing.from_env(env={"TOKENPROVIDERS_KEYS": json.dumps(loaded.to_document())})
    assert env.unsaved_ids == frozenset()
    given = KeyRing({"m1": bytes(32)}, "m1")  # the caller holds the key it passed
    assert given.unsaved_ids == frozenset()
    loaded.add_key("g2", primary=False)
    loaded.add_key("g3")
    assert loaded.unsaved_ids == {"g2", "g3"}
    loaded.set_primary("g1")
    loaded.retire("g2")  # a retired key needs no saving
    assert loaded.unsaved_ids == {"g3"}
    loaded.mark_saved()  # a host that stored to_document() itself
    assert loaded.unsaved_ids == frozenset()
