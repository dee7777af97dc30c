"""Bot credentials in SQLite are bound to the tracker's base_url and api_url (issue 12)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from tokenproviders.crypto import AssociatedData, KeyRing
from tokenproviders.errors import SecretUnreadableError
from tokenproviders.stores.sqlite import SQLiteDatabase

from .conftest import make_tracker


def test_a_tracker_pointed_elsewhere_in_the_file_no_longer_opens_its_bot_credentials(
    db: SQLiteDatabase, db_path: Path
) -> None:
    db.directory.add_tracker(make_tracker())
    assert db.directory.get_tracker("acme", "main").bot_credentials is not None
    db.close()
    with sqlite3.connect(db_path) as conn:  # whoever can write the file, not an admin
        conn.execute("UPDATE trackers SET base_url = 'https://evil.example.net' WHERE id = 'main'")
        conn.execute("UPDATE trackers SET api_url = 'https://evil.example.net/api' WHERE id = 'main'")
    with SQLiteDatabase(db_path, db.keyring) as reopened, pytest.raises(SecretUnreadableError, match="acme/main"):
        reopened.directory.get_tracker("acme", "main")


def test_an_admin_changing_the_urls_reseals_the_bot_credentials(db: SQLiteDatabase) -> None:
    db.directory.add_tracker(make_tracker())
    tracker = db.directory.get_tracker("acme", "main")
    moved = dataclasses.replace(tracker, base_url="https://jira2.example.com", api_url="https://jira2.example.com/api")
    db.directory.update_tracker(moved)
    bot = db.directory.get_tracker("acme", "main").bot_credentials
    assert bot is not None and bot.api_password.reveal() == "bot-password-1"


def test_bot_credentials_sealed_before_urls_were_bound_are_upgraded_when_opened(
    db_path: Path, keyring: KeyRing
) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        db.directory.add_tracker(make_tracker())
    legacy = keyring.seal(
        "old-bot-password", AssociatedData.for_bot(tenant="acme", tracker="main", field="api_password")
    )
    with sqlite3.connect(db_path) as conn:  # as schema 3 left it
        conn.execute("UPDATE trackers SET bot_secret = ?, bound_urls = 0 WHERE id = 'main'", (legacy,))
    with SQLiteDatabase(db_path, keyring) as db:
        bot = db.directory.get_tracker("acme", "main").bot_credentials
        assert bot is not None and bot.api_password.reveal() == "old-bot-password"
        assert db._core.read("SELECT bound_urls FROM trackers") == [(1,)]
