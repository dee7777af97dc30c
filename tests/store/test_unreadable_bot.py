"""One unreadable bot blob fails only where that tracker's bot credentials are used."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from tokenproviders import Credentials, Resolver, Secret
from tokenproviders.crypto import KeyRing
from tokenproviders.errors import SecretUnreadableError
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.stores.sqlite_directory import SealedBotSecret
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend

from .conftest import TRACKER_URL, make_plugins, make_tracker

GOOD_URL = "https://tracker.example.com/good"


@pytest.fixture
def damaged(db: SQLiteDatabase) -> SQLiteDatabase:
    """Tenant acme: 'main' (bot blob copied from 'good', so it cannot be opened), 'good', 'nobot'."""
    db.directory.add_member("alice", "acme")
    db.directory.add_tracker(make_tracker(bot="main-bot"))
    good = dataclasses.replace(make_tracker(tracker_id="good", bot="good-bot"), base_url=GOOD_URL)
    db.directory.add_tracker(good)
    db.directory.add_tracker(dataclasses.replace(make_tracker(tracker_id="nobot", bot=None), base_url=GOOD_URL + "2"))
    with db._core.transaction() as conn:
        conn.execute(
            "UPDATE trackers SET bot_secret = (SELECT bot_secret FROM trackers WHERE id = 'good') WHERE id = 'main'"
        )
    return db


def _resolver(db: SQLiteDatabase) -> Resolver:
    return Resolver(db.directory, db.tokens, plugins=make_plugins(MemoryTrackerBackend()))


def test_listing_opens_no_secret(damaged: SQLiteDatabase) -> None:
    trackers = {t.id: t for t in damaged.directory.trackers_of("acme")}
    assert set(trackers) == {"main", "good", "nobot"}
    assert [t.id for t in damaged.directory.list_trackers()] == ["good", "main", "nobot"]
    main = trackers["main"].bot_credentials
    assert main is not None and isinstance(main.api_password, SealedBotSecret)
    assert main.api_username == "bot"  # metadata is there without opening anything
    assert repr(main.api_password) == "Secret('**********')"
    with pytest.raises(TypeError):
        pickle.dumps(main.api_password)
    good = trackers["good"].bot_credentials
    assert good is not None and good.api_password.reveal() == "good-bot"
    assert good.api_password == Secret("good-bot")


def test_only_the_damaged_trackers_bot_fails_and_it_names_the_tracker(damaged: SQLiteDatabase) -> None:
    trackers = {t.id: t for t in damaged.directory.trackers_of("acme")}
    bot = trackers["main"].bot_credentials
    assert bot is not None
    for use in (bot.api_password.reveal, lambda: bool(bot.api_password)):
        with pytest.raises(SecretUnreadableError, match="acme/main") as caught:
            use()
        assert caught.value.key_id == damaged.keyring.primary_id
        assert "set the tracker's bot credentials again" in (caught.value.hint or "")
    resolver = _resolver(damaged)
    with pytest.raises(SecretUnreadableError, match="acme/main"):
        resolver.resolve("alice", resolver.tracker("acme", "main"))
    assert resolver.resolve("alice", resolver.tracker("acme", "good")).source == "bot"


def test_the_rest_of_the_tenant_keeps_working(damaged: SQLiteDatabase) -> None:
    resolver = _resolver(damaged)
    assert {choice.url for choice in resolver.trackers_for("alice")} >= {TRACKER_URL, GOOD_URL}
    info = resolver.tokens.set("alice", GOOD_URL, Credentials(Secret("alice-good")), scope="acme")
    assert info.id is not None
    # Even on the damaged tracker, a personal token is stored and used (no bot needed).
    resolver.tokens.set("alice", TRACKER_URL, Credentials(Secret("alice-main")), scope="acme")
    resolution = resolver.resolve("alice", resolver.tracker("acme", "main"))
    assert resolution.source == "personal" and resolution.credentials.api_password.reveal() == "alice-main"


def test_the_damaged_bot_credentials_can_be_set_again(damaged: SQLiteDatabase) -> None:
    tracker = _resolver(damaged).tracker("acme", "main")
    damaged.directory.update_tracker(dataclasses.replace(tracker, bot_credentials=Credentials(Secret("new"), "bot")))
    repaired = damaged.directory.get_tracker("acme", "main")
    assert repaired.bot_credentials is not None and repaired.bot_credentials.api_password.reveal() == "new"


def test_get_tracker_opens_at_once(damaged: SQLiteDatabase) -> None:
    with pytest.raises(SecretUnreadableError, match="acme/main"):
        damaged.directory.get_tracker("acme", "main")
    good = damaged.directory.get_tracker("acme", "good")
    assert good.bot_credentials is not None and not isinstance(good.bot_credentials.api_password, SealedBotSecret)


def test_listing_never_opens_a_blob(damaged: SQLiteDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("a listing opened a sealed blob")

    monkeypatch.setattr(KeyRing, "open_secret", refuse)
    assert {t.id for t in damaged.directory.trackers_of("acme")} == {"main", "good", "nobot"}
    assert len(damaged.directory.list_trackers()) == 3
    assert len(_resolver(damaged).trackers_for("alice")) >= 2
