"""Key rotation: every row re-sealed, resumable after a crash, idempotent, CAS-safe; key status and retirement."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tokenproviders import ALL_TENANTS, Credentials, PersonalToken, Secret
from tokenproviders.crypto import AssociatedData, KeyRing
from tokenproviders.errors import ConfigurationError, KeyInUseError, SecretUnreadableError
from tokenproviders.stores.sealed import BotBinding, bot_aad
from tokenproviders.stores.sqlite import RotationProgress, SQLiteDatabase

from .conftest import make_tracker

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)
URL = "https://tracker.example.com/acme"
TOKENS = 230
WORKER = Path(__file__).with_name("store_worker.py")


def fill(db: SQLiteDatabase, count: int = TOKENS) -> None:
    tokens = (
        PersonalToken(
            owner=f"user{i}",
            url=URL,
            scope="acme" if i % 2 else ALL_TENANTS,
            credentials=Credentials(Secret(f"tok-{i}")),
        )
        for i in range(count)
    )
    db.tokens.put_many(tokens, now=NOW)
    for tenant, tracker_id in (("acme", "main"), ("globex", "gx"), ("initech", "it")):
        db.directory.add_tracker(make_tracker(tenant, tracker_id, bot=f"bot-{tenant}"))


def sealed_rows(db: SQLiteDatabase) -> dict[tuple[str, int], tuple[str, bytes, AssociatedData]]:
    rows: dict[tuple[str, int], tuple[str, bytes, AssociatedData]] = {}
    for row_id, key_id, blob, owner, url, scope in db._core.read(
        "SELECT id, key_id, secret, owner, url, scope FROM tokens"
    ):
        aad = AssociatedData.for_token(owner=owner, scope=scope, url=url, field="api_password")
        rows[("token", row_id)] = (key_id, blob, aad)
    for row_id, key_id, blob, tenant, tracker, base_url, api_url in db._core.read(
        "SELECT row_id, key_id, bot_secret, tenant, id, base_url, api_url FROM trackers WHERE bot_secret IS NOT NULL"
    ):
        aad = bot_aad(BotBinding(tenant, tracker, base_url, api_url))
        rows[("bot", row_id)] = (key_id, blob, aad)
    return rows


def values(db: SQLiteDatabase) -> dict[tuple[str, int], str]:
    return {where: db.keyring.open(blob, aad) for where, (_, blob, aad) in sealed_rows(db).items()}


def add_saved_key(keyring: KeyRing, key_file: Path, key_id: str = "k2") -> str:
    """Add a primary key and write the key file, as rotation requires (it refuses a primary
    key that exists only in memory)."""
    new = keyring.add_key(key_id)
    keyring.write_key_file(key_file, replace=True)
    return new


def expected_values(count: int = TOKENS) -> set[str]:
    return {f"tok-{i}" for i in range(count)} | {"bot-acme", "bot-globex", "bot-initech"}


def test_rotation_reseals_every_row_under_the_new_key(db: SQLiteDatabase, keyring: KeyRing, key_file: Path) -> None:
    fill(db)
    before = sealed_rows(db)
    old_values = values(db)
    old = keyring.primary_id
    new = add_saved_key(keyring, key_file)
    progress: list[RotationProgress] = []
    report = db.rotate(batch_size=40, progress=progress.append)
    assert report.complete and report.processed == TOKENS + 3 and report.failed == report.conflicts == 0
    assert report.before == {new: 0, old: TOKENS + 3} and report.after == {new: TOKENS + 3, old: 0}
    after = sealed_rows(db)
    assert after.keys() == before.keys()
    for where, (key_id, blob, _) in after.items():
        assert key_id == new and blob[2:4] == b"k2"
        assert blob != before[where][1]
    assert values(db) == old_values and set(old_values.values()) == expected_values()
    assert [p.processed for p in progress] == sorted(p.processed for p in progress)
    assert progress[-1] == RotationProgress(processed=TOKENS + 3, failed=0, remaining=0)
    assert all(p.processed + p.remaining == TOKENS + 3 for p in progress)
    assert db.key_status() == {new: TOKENS + 3, old: 0}


def test_the_old_key_alone_opens_nothing_after_rotation(db: SQLiteDatabase, keyring: KeyRing, key_file: Path) -> None:
    fill(db, 20)
    old = keyring.primary_id
    old_only = KeyRing({old: keyring._keys[old]}, old)
    add_saved_key(keyring, key_file)
    db.rotate()
    rows = sealed_rows(db)
    assert rows
    for _, blob, aad in rows.values():
        with pytest.raises(SecretUnreadableError, match="'k2'"):
            old_only.open(blob, aad)


def test_rotated_file_keeps_no_old_blobs(db_path: Path, keyring: KeyRing, key_file: Path) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        fill(db, 50)
        old_blobs = [blob for _, blob, _ in sealed_rows(db).values()]
        add_saved_key(keyring, key_file)
        db.rotate(batch_size=7)
    data = db_path.read_bytes()
    wal = db_path.with_name(db_path.name + "-wal")
    data += wal.read_bytes() if wal.exists() else b""
    assert not [blob for blob in old_blobs if blob[4:] in data]


def test_a_second_run_does_nothing(db: SQLiteDatabase, keyring: KeyRing, key_file: Path) -> None:
    fill(db, 30)
    add_saved_key(keyring, key_file)
    db.rotate()
    snapshot = db.dump()
    progress: list[RotationProgress] = []
    report = db.rotate(progress=progress.append)
    assert (report.processed, report.failed, report.remaining) == (0, 0, 0)
    assert progress == []
    assert db.dump() == snapshot


def test_nothing_to_rotate_on_a_fresh_key(db: SQLiteDatabase) -> None:
    fill(db, 5)
    snapshot = db.dump()
    assert db.rotate().processed == 0
    assert db.dump() == snapshot


def test_a_crash_mid_run_then_a_rerun_loses_nothing(
    db: SQLiteDatabase, keyring: KeyRing, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(db)
    before = values(db)
    add_saved_key(keyring, key_file)
    real_seal = KeyRing.seal
    calls = 0

    def failing_seal(self: KeyRing, plaintext: Any, aad: AssociatedData) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 95:
            raise RuntimeError("injected crash")
        return real_seal(self, plaintext, aad)

    monkeypatch.setattr(KeyRing, "seal", failing_seal)
    with pytest.raises(RuntimeError, match="injected crash"):
        db.rotate(batch_size=40)
    monkeypatch.setattr(KeyRing, "seal", real_seal)
    status = db.key_status()
    assert status == {"k2": 80, "k1": TOKENS + 3 - 80}  # two committed batches, the third rolled back
    report = db.rotate(batch_size=40)
    assert report.complete and report.processed == TOKENS + 3 - 80
    assert values(db) == before


def test_a_process_killed_inside_a_batch_transaction_then_a_rerun_loses_nothing(db_path: Path, key_file: Path) -> None:
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as db:
        fill(db)
        before = values(db)
    keyring = KeyRing.from_key_file(key_file)
    keyring.add_key("k2")
    keyring.write_key_file(key_file, replace=True)
    crashed = subprocess.run(
        [sys.executable, str(WORKER), "rotate-crash", str(db_path), str(key_file), "120"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 3, crashed.stderr
    with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as db:
        assert db.key_status() == {"k2": 100, "k1": TOKENS + 3 - 100}  # batches of 50: two committed
        report = db.rotate()
        assert report.complete and report.processed == TOKENS + 3 - 100
        assert values(db) == before


def test_a_concurrent_edit_is_not_lost(
    db_path: Path, db: SQLiteDatabase, keyring: KeyRing, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(db, 10)
    add_saved_key(keyring, key_file)
    other = SQLiteDatabase(db_path, keyring)
    real_seal = KeyRing.seal
    edited = False

    def seal_with_a_concurrent_edit(self: KeyRing, plaintext: Any, aad: AssociatedData) -> bytes:
        nonlocal edited
        if not edited and aad.parts[0] == "user3":
            edited = True  # another process replaces user3's token between rotation's read and write
            other.tokens.put("user3", URL, "acme", Credentials(Secret("edited-meanwhile")), now=NOW)
        return real_seal(self, plaintext, aad)

    monkeypatch.setattr(KeyRing, "seal", seal_with_a_concurrent_edit)
    report = db.rotate()
    other.close()
    assert edited and report.conflicts == 1 and report.processed == 10 + 3 - 1
    token = db.tokens.get("user3", URL, "acme")
    assert token is not None and token.credentials is not None
    assert token.credentials.api_password.reveal() == "edited-meanwhile"
    assert token.version == 2


def test_unreadable_rows_are_reported_and_left(db: SQLiteDatabase, keyring: KeyRing, key_file: Path) -> None:
    fill(db, 10)
    with db._core.transaction() as conn:
        conn.execute(
            "UPDATE tokens SET secret = (SELECT secret FROM tokens WHERE owner = 'user1') WHERE owner = 'user2'"
        )
    add_saved_key(keyring, key_file)
    report = db.rotate()
    assert report.failed == 1 and report.remaining == 1 and not report.complete
    assert "user2" in report.failures[0] and "k1" in report.failures[0]
    assert "tok-" not in repr(report)
    with pytest.raises(KeyInUseError, match="1 row"):
        db.retire_key("k1")


def test_key_status_and_retirement(db_path: Path, keyring: KeyRing, key_file: Path) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        fill(db, 10)
        old_blob, old_aad = next(iter((blob, aad) for _, blob, aad in sealed_rows(db).values()))
        assert db.key_status() == {"k1": 13}
        add_saved_key(keyring, key_file)
        assert db.key_status() == {"k2": 0, "k1": 13}
        with pytest.raises(KeyInUseError, match="13 row"):
            db.retire_key("k1")
        with pytest.raises(KeyInUseError, match="primary"):
            db.retire_key("k2")
        db.rotate()
        db.retire_key("k1")
        assert db.key_status() == {"k2": 13}
        assert keyring.retired_ids == {"k1"}
        with pytest.raises(SecretUnreadableError, match="'k1' was retired"):
            keyring.open(old_blob, old_aad)
        assert db.dump()["keys"][0][0] == "k1" and db.dump()["keys"][0][3] is not None
    # A key ring that still holds the retired key: the database drops it ...
    stale = KeyRing([("k2", keyring._keys["k2"]), ("k1", bytes(32))], "k2")
    with SQLiteDatabase(db_path, stale) as db:
        assert db.check_keys() == {"k1": "retired", "k2": "ok"}
        assert "k1" not in stale
    # ... and refuses it as the primary.
    with pytest.raises(ConfigurationError, match="primary key 'k1' was retired"):
        SQLiteDatabase(db_path, KeyRing({"k1": bytes(32)}, "k1"))
