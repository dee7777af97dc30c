"""Proof that nothing leaks: not to disk, logs, reprs, exception messages or tracebacks with locals.

Canary tokens are kept only as module constants and :class:`Secret` objects, so the frames the
tracebacks below capture hold masked values unless the library under test leaks them.
"""

from __future__ import annotations

import base64
import logging
import pickle
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tokenproviders import (
    ALL_TENANTS,
    Credentials,
    CredentialsRejectedError,
    InvalidCredentialsError,
    NotAuthorizedError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    Resolver,
    Secret,
    StoreError,
    Tracker,
)
from tokenproviders.crypto import AssociatedData, KeyRing
from tokenproviders.errors import (
    InvalidInputError,
    KeyInUseError,
    KeyMismatchError,
    MissingKeyError,
    SecretUnreadableError,
)
from tokenproviders.stores import MemoryTokenStore
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend

from .conftest import SERVICE_URL, TRACKER_URL, make_plugins, make_tracker

CANARIES = {
    "alice": "ghp_Canary+Alice/Token=9f8e7d6c5b4a3210",
    "bob": "glpat-canary bob ü&token?0123456789",
    "bot": "bot-canary-password%40-xyz-777",
    "rejected": "ghp_canary-rejected-token-4242",
    "expiring": "ghp_canary-expiring-token-1313",
    "service": "ghp_canary-service-token-5555",
}
SECRETS = {name: Secret(value) for name, value in CANARIES.items()}


def text_forms(value: str) -> list[str]:
    raw = value.encode("utf-8")
    return [
        value,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        quote(value, safe=""),
        quote_plus(value),
        repr(value)[1:-1],
    ]


def leaks_in(text: str) -> list[str]:
    return [f"{name} as {form!r}" for name, value in CANARIES.items() for form in text_forms(value) if form in text]


def leaks_in_bytes(data: bytes) -> list[str]:
    found = []
    for name, value in CANARIES.items():
        for form in text_forms(value):
            for encoded in {form.encode("utf-8"), form.encode("utf-16-le")}:
                if encoded in data:
                    found.append(f"{name} as {form!r}")
    return found


def creds(name: str, user: str | None = None) -> Credentials:
    return Credentials(SECRETS[name], user)


# -- on disk ------------------------------------------------------------------------------
def test_database_file_and_wal_hold_no_token(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / "tokens.db"
    now = datetime.now(timezone.utc)
    db = SQLiteDatabase(path, keyring)
    try:
        db.directory.add_tracker(make_tracker(bot=None))
        db.directory.add_tracker(
            Tracker(
                tenant="globex", id="gx", type="memory", base_url=SERVICE_URL + "/gx", bot_credentials=creds("bot", "b")
            )
        )
        for name in CANARIES:
            db.tokens.put(name, TRACKER_URL, ALL_TENANTS, creds(name, f"{name}@example.com"), label=name, now=now)
        db.tokens.put("alice", SERVICE_URL, "acme", creds("service"), now=now)
        db.tokens.delete("alice", SERVICE_URL, "acme")  # deleted rows leave no trace either
        wal = path.with_name(path.name + "-wal")
        assert wal.exists() and wal.stat().st_size > 0  # the tokens are in the WAL now
        data = path.read_bytes() + wal.read_bytes()
        assert leaks_in_bytes(data) == []
        assert b"alice@example.com" in data  # sanity: the search does see plain metadata
        keyring.add_key("k2")
        db.rotate(allow_unsaved_primary=True)  # a throwaway database: the key need not outlive the test
        db.tokens.put("bob", TRACKER_URL, ALL_TENANTS, creds("bob"), now=now)
        assert leaks_in_bytes(path.read_bytes() + wal.read_bytes()) == []
    finally:
        db.close()
    assert leaks_in_bytes(b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())) == []


def test_pickling_a_secret_raises() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SECRETS["alice"])
    with pytest.raises(TypeError):
        pickle.dumps(creds("alice"))


# -- the whole lifecycle at DEBUG ---------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Lifecycle:
    """Runs every operation, success and failure, collecting what a person could see."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.shown: list[Any] = []
        self.errors: list[BaseException] = []

    def show(self, *objects: Any) -> Any:
        self.shown.extend(objects)
        return objects[-1] if objects else None

    def expect(self, error: type[BaseException], action: Callable[[], Any]) -> None:
        try:
            action()
        except error as exc:
            self.errors.append(exc)
        else:
            raise AssertionError(f"expected {error.__name__}")

    def run(self) -> None:
        tmp = self.tmp_path
        clock = Clock()
        self.expect(MissingKeyError, lambda: KeyRing.load(env={}))
        key_file = tmp / "keys.json"
        keyring = self.show(KeyRing.generate_key_file(key_file, key_id="k1"))
        db = self.show(SQLiteDatabase(tmp / "tokens.db", keyring, clock=clock, flush_size=1))
        backend = MemoryTrackerBackend()
        backend.add_user("alice", SECRETS["alice"].reveal())
        backend.add_user("bob", SECRETS["bob"].reveal())
        backend.add_user("alice", SECRETS["service"].reveal())
        backend.add_user("bot", SECRETS["bot"].reveal(), "bot")
        plugins = make_plugins(backend)
        plugins.enable_tracing()
        resolver = self.show(Resolver(db.directory, db.tokens, plugins=plugins, clock=clock))
        resolver.plugins.register(db.audit.observer(), name="audit")
        for user in ("alice", "bob"):
            db.directory.add_member(user, "acme")
        tracker = self.show(
            Tracker(tenant="acme", id="main", type="memory", base_url=TRACKER_URL, bot_credentials=creds("bot", "bot"))
        )
        db.directory.add_tracker(tracker)
        self.show(db.directory.get_tracker("acme", "main"), db.directory.list_trackers(), db.directory)

        # personal tokens: set (verified), resolve, client, whoami, report, comment
        self.show(resolver.tokens.set("alice", TRACKER_URL, creds("alice"), scope="acme", label="laptop", verify=True))
        self.show(resolver.tokens.set("alice", SERVICE_URL, creds("service"), scope=ALL_TENANTS))
        self.show(resolver.resolve("alice", tracker), resolver.verify("alice", tracker))
        self.show(resolver.client("alice", tracker))
        issue = self.show(resolver.report_issue("alice", tracker, title="Broken", body="steps"))
        self.show(resolver.add_comment("alice", tracker, issue.id, "more"))
        self.show(db.tokens.get("alice", TRACKER_URL, "acme"), db.tokens.list(), resolver.tokens.list("alice"))
        self.show(resolver.resolve("bob", tracker), resolver.verify("bob", tracker))  # the bot

        # failures: rejected, not authorized, invalid, expired
        self.expect(
            CredentialsRejectedError,
            lambda: resolver.tokens.set("bob", TRACKER_URL, creds("rejected"), scope="acme", verify=True),
        )
        resolver.tokens.set("bob", TRACKER_URL, creds("rejected"), scope="acme")
        self.expect(PersonalTokenRejectedError, lambda: resolver.verify("bob", tracker))
        self.expect(NotAuthorizedError, lambda: resolver.resolve("carol", tracker))
        self.expect(
            InvalidCredentialsError,
            lambda: resolver.tokens.set("bob", TRACKER_URL, Credentials(Secret("")), scope="acme"),
        )
        resolver.tokens.set(
            "bob", TRACKER_URL, creds("expiring"), scope=ALL_TENANTS, expires_at=clock.now + timedelta(hours=1)
        )
        resolver.tokens.delete("bob", TRACKER_URL, "acme")
        clock.now += timedelta(hours=2)
        self.expect(PersonalTokenUnusableError, lambda: resolver.resolve("bob", tracker))

        # a blob copied onto another row cannot be opened, and says so without the secret
        with db._core.transaction() as conn:
            conn.execute(
                "UPDATE tokens SET secret = (SELECT secret FROM tokens WHERE owner = 'bob')"
                " WHERE owner = 'alice' AND scope = 'acme'"
            )
        self.expect(PersonalTokenUnusableError, lambda: resolver.resolve("alice", tracker))

        # keys: rotation, status, refused retirement, wrong key, unknown key
        keyring.add_key("k2")
        keyring.write_key_file(key_file, replace=True)
        self.show(db.rotate(batch_size=2, progress=self.show), db.key_status(), db.check_keys())
        self.expect(KeyInUseError, lambda: db.retire_key("k1"))
        self.show(db.audit.query(limit=1000), db.dump())
        db.close()
        self.expect(StoreError, lambda: db.tokens.list())
        wrong = KeyRing([("k2", bytes(32))], "k2")
        self.expect(KeyMismatchError, lambda: SQLiteDatabase(tmp / "tokens.db", wrong))
        k2_only = KeyRing.from_key_file(key_file)
        k2_only.retire("k1")
        with SQLiteDatabase(tmp / "tokens.db", k2_only) as reopened:
            self.show(reopened.tokens.get("alice", SERVICE_URL, ALL_TENANTS))
            # sealed under k1, which this ring retired
            self.expect(SecretUnreadableError, lambda: reopened.tokens.get("alice", TRACKER_URL, "acme"))
        # the memory store, sealed and not, and sealing refusals
        for store in (MemoryTokenStore(keyring=k2_only), MemoryTokenStore()):
            self.show(store)
            store.put("alice", TRACKER_URL, "acme", creds("alice"), now=clock.now)
            self.show(store.get("alice", TRACKER_URL, "acme"), store.list())
        aad = AssociatedData.for_token(owner="a", scope="b", url="c", field="d")
        self.expect(InvalidInputError, lambda: k2_only.seal(Secret(CANARIES["alice"] * 20_000), aad))
        self.expect(TypeError, lambda: pickle.dumps(SECRETS["alice"]))
        self.show(SECRETS["alice"], f"{SECRETS['alice']}", f"{SECRETS['alice']!r}", f"{SECRETS['alice']:>40}")


def test_whole_lifecycle_at_debug_leaks_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    lifecycle = Lifecycle(tmp_path)
    lifecycle.run()
    assert len(lifecycle.errors) >= 12
    assert len(caplog.records) > 20  # DEBUG really was on, hook tracing included
    findings: list[str] = []
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    for record in caplog.records:
        text = formatter.format(record) + repr(record.args) + repr(record.__dict__)
        findings += [f"log record {record.name}: {leak}" for leak in leaks_in(text)]
    for shown in lifecycle.shown:
        findings += [f"repr/str of {type(shown).__name__}: {leak}" for leak in leaks_in(repr(shown) + str(shown))]
    for error in lifecycle.errors:
        rendered = "".join(
            traceback.TracebackException(type(error), error, error.__traceback__, capture_locals=True).format()
        )
        assert "Traceback" in rendered or error.__traceback__ is None
        for where, text in (
            ("message", str(error)),
            ("repr", repr(error)),
            ("args", repr(error.args)),
            ("traceback with locals", rendered),
        ):
            findings += [f"{type(error).__name__} {where}: {leak}" for leak in leaks_in(text)]
    assert findings == []


def test_the_leak_checks_do_find_leaks() -> None:
    """The searches above are not vacuous: each form of a canary is found."""
    value = CANARIES["bob"]
    for form in text_forms(value):
        assert leaks_in(f"... {form} ...")
        assert leaks_in_bytes(f"... {form} ...".encode())
    rendered = "".join(
        traceback.TracebackException.from_exception(_raise_with_local(value), capture_locals=True).format()
    )
    assert leaks_in(rendered)


def _raise_with_local(token: str) -> BaseException:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return exc
