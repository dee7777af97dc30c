"""Security model: the key rotation runbook in Python (steps 2, 4, 5 and 6)."""

from __future__ import annotations

import json
import stat
import tempfile
from pathlib import Path


def rotate(key_file: Path, db_path: Path) -> dict[str, int]:
    # [start rotate]
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    ring = KeyRing.from_key_file(key_file)
    old_id = ring.primary_id
    ring.add_key()                               # a fresh random key, now the primary
    ring.write_key_file(key_file, replace=True)  # atomic replace, mode 0600; deploy it everywhere
    with SQLiteDatabase(db_path, ring) as db:
        report = db.rotate(batch_size=1000, progress=lambda p: print(p.processed, p.remaining))
        assert report.complete, report.failures  # failures: rows whose key was lost or damaged
        status = db.key_status()                 # {key_id: rows}; the old key must show 0
        db.retire_key(old_id)                    # refused while a row still uses it
    ring.write_key_file(key_file, replace=True)  # the old key's material is gone, its id retired
    # [end rotate]
    return status


def check() -> None:
    from _check import memory_plugins

    from tokenproviders import ALL_TENANTS, Credentials, Resolver, Secret, TokenProvidersError, Tracker
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    plugins, _ = memory_plugins("jira")
    with tempfile.TemporaryDirectory() as tmp:
        key_file, db_path = Path(tmp) / "keys.json", Path(tmp) / "tokens.db"
        old_ring = KeyRing.generate_key_file(key_file)
        old_id = old_ring.primary_id
        jira = Tracker(tenant="acme", id="jira", type="jira", base_url="https://acme.atlassian.example",
                       bot_credentials=Credentials(api_password=Secret("bot-token")))
        with SQLiteDatabase(db_path, old_ring) as db:
            db.directory.add_member("alice", "acme")
            db.directory.add_tracker(jira)
            Resolver(directory=db.directory, store=db.tokens, plugins=plugins).tokens.set(
                owner="alice", url=jira.base_url, scope=ALL_TENANTS,
                credentials=Credentials(api_password=Secret("alice-token")))

        status = rotate(key_file, db_path)

        document = json.loads(key_file.read_text())
        new_id = document["primary"]
        assert status == {old_id: 0, new_id: 2}, status  # the token and the bot, re-sealed
        assert [key["id"] for key in document["keys"]] == [new_id] and document["retired"] == [old_id]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        with SQLiteDatabase(db_path, KeyRing.from_key_file(key_file)) as db:
            resolver = Resolver(directory=db.directory, store=db.tokens, plugins=plugins)
            tracker = db.directory.get_tracker("acme", "jira")
            assert resolver.resolve("alice", tracker).credentials.api_password.reveal() == "alice-token"
            assert tracker.bot_credentials is not None
            assert tracker.bot_credentials.api_password.reveal() == "bot-token"
        # A process still holding the old key ring is refused: its primary key was retired.
        try:
            SQLiteDatabase(db_path, old_ring).close()
        except TokenProvidersError as exc:
            assert "retired" in str(exc), exc
        else:
            raise AssertionError("a key ring whose primary key was retired opened the database")


if __name__ == "__main__":
    check()
    print("key_rotation: ok")
