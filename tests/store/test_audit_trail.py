"""The audit trail records every action with its outcome, every refusal and every admin change,
by whom and grouped per user action, never a secret, within its retention bounds.

A real SQLite file, a real resolver with the installed GitHub plugin talking to the fake GitHub
server, and the in-memory tracker type where a plugin's own behaviour is the point.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tokenproviders import (
    AuditEvent,
    ClientSettings,
    Credentials,
    CredentialsRejectedError,
    Identity,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    Plugins,
    Resolution,
    Resolver,
    Secret,
    Tracker,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
    acting,
    hookimpl,
)
from tokenproviders import audit as audit_module
from tokenproviders.crypto import KeyRing
from tokenproviders.errors import InvalidInputError, KeyInUseError
from tokenproviders.stores import _sqlite_base
from tokenproviders.stores.sqlite import AuditEntry, SQLiteDatabase
from tokenproviders.testing.fakes import FakeGitHub
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend, MemoryTrackerPlugin, MemoryTrackerType
from tokenproviders.trackertype import TrackerFailure

BOT_TOKEN = "ghp_bot0000000000000000000000000000000001"
ALICE_TOKEN = "ghp_alice000000000000000000000000000000002"
REVOKED_TOKEN = "ghp_revoked0000000000000000000000000000003"
ECHOED_TOKEN = "echoed-secret-4242-never-in-the-trail"


class Clock:
    """Moves on by a millisecond each time it is read, so the trail's order is the calls' order."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class EchoError(Exception):
    """A client library's error carrying the server's answer, which quotes the token."""


class EchoingType(MemoryTrackerType):
    """A tracker type whose failure text quotes the server's answer, which echoed the token."""

    name: ClassVar[str] = "echoing"
    title: ClassVar[str] = "Echoes the token in its errors"

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        raise EchoError(f"invalid token {client.credentials.api_password.reveal()}")

    def report_issue(self, client: Any, tracker: Tracker, draft: Any) -> Any:
        raise EchoError(f"invalid token {client.credentials.api_password.reveal()}")

    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, EchoError):
            return TrackerFailure("rejected", f"HTTP 401: the server said {exc}", 401)
        return super().classify_error(exc)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("octo-bot", token=BOT_TOKEN)
        fake.add_user("alice-gh", token=ALICE_TOKEN)
        yield fake


class World:
    def __init__(self, db: SQLiteDatabase, github: FakeGitHub, clock: Clock, key_file: Path) -> None:
        self.db = db
        self.github = github
        self.clock = clock
        self.key_file = key_file
        plugins = Plugins(extra=[MemoryTrackerPlugin(EchoingType(MemoryTrackerBackend()))])
        if "github" not in plugins.tracker_types:
            pytest.skip("the tokenproviders-github plugin is not installed")
        self.resolver = Resolver(
            db.directory, db.tokens, plugins=plugins, settings=ClientSettings(timeout=5, retries=0), clock=clock
        )
        self.resolver.plugins.register(db.audit.observer(), name="audit")
        self.gh = Tracker(
            tenant="acme",
            id="gh",
            type="github",
            base_url=f"{github.url}/octo/widgets",
            bot_credentials=Credentials(Secret(BOT_TOKEN)),
        )
        self.bare = Tracker(tenant="acme", id="bare", type="github", base_url=f"{github.url}/octo/bare")
        self.echo = Tracker(tenant="acme", id="echo", type="echoing", base_url="https://echo.example.com/acme")
        for user in ("alice", "bob"):
            db.directory.add_member(user, "acme")
        for tracker in (self.gh, self.bare, self.echo):
            db.directory.add_tracker(tracker)

    def entries(self, **filters: Any) -> list[AuditEntry]:
        """Oldest first."""
        return list(reversed(self.db.audit.query(limit=1000, **filters)))

    def raw_bytes(self) -> bytes:
        path = Path(self.db.path)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


@pytest.fixture
def world(tmp_path: Path, key_file: Path, keyring: KeyRing, github: FakeGitHub) -> Iterator[World]:
    clock = Clock()
    with SQLiteDatabase(tmp_path / "audit.db", keyring, clock=clock) as db:
        yield World(db, github, clock, key_file)


def _outcomes(entries: list[AuditEntry]) -> list[tuple[Any, ...]]:
    return [(e.action, e.outcome, e.user, e.source, e.error) for e in entries]


# -- each action, with its outcome ------------------------------------------------------------
def test_each_action_writes_one_entry_with_its_outcome(world: World) -> None:
    resolver, gh, fake = world.resolver, world.gh, world.github
    resolver.resolve("bob", gh)
    resolver.client("bob", gh)
    assert resolver.verify("bob", gh).login == "octo-bot"
    issue = resolver.report_issue("bob", gh, "Crash on save")
    resolver.add_comment("bob", gh, issue.id, "It crashes on every save")
    for status, error in ((503, TrackerUnavailableError), (404, TrackerURLError), (422, TrackerRequestError)):
        fake.fail_with(status)
        with pytest.raises(error):
            resolver.report_issue("bob", gh, "Fails")
        fake.reset_faults()
    fake.fail_with(401)
    with pytest.raises(CredentialsRejectedError):
        resolver.add_comment("bob", gh, issue.id, "again")
    fake.reset_faults()

    entries = world.entries(user="bob", tracker="gh")
    assert _outcomes(entries) == [
        ("resolve", "ok", "bob", "bot", None),
        ("resolve", "ok", "bob", "bot", None),  # client(): resolved, handed out in a client
        ("verify", "ok", "bob", "bot", None),
        ("report", "ok", "bob", "bot", None),
        ("comment", "ok", "bob", "bot", None),
        ("report", "unavailable", "bob", "bot", "TrackerUnavailableError"),
        ("report", "not_found", "bob", "bot", "TrackerURLError"),
        ("report", "request", "bob", "bot", "TrackerRequestError"),
        ("comment", "rejected", "bob", "bot", "CredentialsRejectedError"),
    ]
    assert entries[2].detail == "the tracker knows the credentials as octo-bot"
    assert entries[3].detail == f"filed issue {issue.id}"
    assert entries[4].detail == f"commented on issue {issue.id}"
    assert entries[5].detail is not None and "unavailable" in entries[5].detail and "; " not in entries[5].detail
    assert all((e.tenant, e.principal, e.correlation_id) == ("acme", None, None) for e in entries)
    # When, to the millisecond of this clock (kept to the microsecond), in UTC.
    times = [e.at for e in entries]
    assert times == sorted(set(times)) and all(t.utcoffset() == timedelta(0) for t in times)
    assert times[0].microsecond % 1000 == 0 and times[-1] < world.clock.now


def test_a_dry_run_resolve_and_a_rejected_report_are_told_apart(world: World) -> None:
    resolver = world.resolver
    info = resolver.tokens.set("alice", world.github.url, Credentials(Secret(REVOKED_TOKEN)), scope="acme")
    resolution = resolver.resolve("alice", world.gh)
    with pytest.raises(PersonalTokenRejectedError):
        resolver.report_issue("alice", world.gh, "Crash")
    resolved, reported = world.entries(user="alice", tracker="gh")
    assert (resolved.action, resolved.outcome) == ("resolve", "ok")
    assert (reported.action, reported.outcome, reported.error) == ("report", "rejected", "PersonalTokenRejectedError")
    for entry in (resolved, reported):
        assert (entry.source, entry.token_id, entry.scope, entry.matched_url) == (
            "personal",
            info.id,
            "acme",
            resolution.matched_url,
        )


def test_a_fallback_after_a_rejected_token_records_the_credentials_acted_with(world: World) -> None:
    from tokenproviders import Policies, Policy

    resolver = world.resolver
    resolver.policies = Policies(default=Policy(fallback_on_unusable=True))
    resolver.tokens.set("alice", world.github.url, Credentials(Secret(REVOKED_TOKEN)), scope="acme")
    issue = resolver.report_issue("alice", world.gh, "Crash")
    assert issue.resolution is not None and issue.resolution.source == "bot"
    (entry,) = world.entries(user="alice", tracker="gh")
    assert (entry.action, entry.outcome, entry.source, entry.token_id) == ("report", "ok", "bot", None)
    assert entry.fallback_from is not None and "rejected by the tracker (HTTP 401)" in entry.fallback_from


# -- refusals ---------------------------------------------------------------------------------
def test_refusals_are_recorded(world: World) -> None:
    resolver, clock = world.resolver, world.clock
    with pytest.raises(NotAuthorizedError):
        resolver.resolve("carol", world.gh)  # not a member
    with pytest.raises(NotAuthorizedError):
        resolver.report_issue("carol", world.gh, "Crash")
    with pytest.raises(NoCredentialsError):
        resolver.resolve("bob", world.bare)  # no token, no bot
    info = resolver.tokens.set(
        "alice",
        world.bare.base_url,
        Credentials(Secret(ALICE_TOKEN)),
        scope="acme",
        expires_at=clock.now + timedelta(hours=1),
    )
    clock.now += timedelta(hours=2)
    with pytest.raises(PersonalTokenUnusableError):
        resolver.verify("alice", world.bare)  # an expired token

    refused = world.entries(outcome="refused")
    assert [(e.action, e.user, e.tracker, e.error) for e in refused] == [
        ("resolve", "carol", "gh", "NotAuthorizedError"),
        ("report", "carol", "gh", "NotAuthorizedError"),
        ("resolve", "bob", "bare", "NoCredentialsError"),
        ("verify", "alice", "bare", "PersonalTokenUnusableError"),
    ]
    assert all(e.tenant == "acme" for e in refused)
    assert refused[0].detail is not None and "'carol' is not authorized for tenant 'acme'" in refused[0].detail
    assert (refused[3].source, refused[3].token_id) == ("personal", info.id)
    assert "expired" in (refused[3].detail or "")


def test_invalid_input_is_recorded_without_the_invalid_value_breaking_the_trail(world: World) -> None:
    with pytest.raises(InvalidInputError):
        world.resolver.resolve("bad\udc80user\n", world.gh)
    world.resolver.resolve("bob", world.gh)
    invalid, ok = world.entries(action="resolve")
    assert (invalid.outcome, invalid.user, invalid.tracker) == ("invalid", None, "gh")
    assert invalid.detail is not None and "\n" not in invalid.detail and "\udc80" not in invalid.detail
    assert ok.outcome == "ok"


# -- admin changes ----------------------------------------------------------------------------
def test_admin_changes_are_recorded_with_the_principal(world: World, keyring: KeyRing) -> None:
    db, resolver = world.db, world.resolver
    before = db.audit.count()
    other = Tracker(tenant="globex", id="gl", type="github", base_url=f"{world.github.url}/globex/app")
    with acting(principal="root") as act:
        db.directory.add_member("dave", "acme")
        db.directory.remove_member("dave", "acme")
        db.directory.add_tracker(other)  # creates tenant globex
        db.directory.add_tracker(replace(other, api_url="https://evil.example.net", name="App"), replace=True)
        db.directory.update_tracker(replace(other, verify_tls=False, bot_credentials=Credentials(Secret(BOT_TOKEN))))
        db.directory.update_tracker(replace(other, verify_tls=False, bot_credentials=Credentials(Secret(BOT_TOKEN))))
        db.directory.remove_tracker("globex", "gl")
        info = resolver.tokens.set("alice", world.github.url, Credentials(Secret(ALICE_TOKEN)), scope="acme")
        resolver.tokens.set("alice", world.github.url, Credentials(Secret(ALICE_TOKEN)), scope="acme")
        resolver.tokens.delete("alice", world.github.url, "acme")
        keyring.add_key("k2")
        keyring.write_key_file(world.key_file, replace=True)
        with pytest.raises(KeyInUseError):
            db.retire_key("k1")  # bot credentials are still sealed under it
        db.rotate()
        db.retire_key("k1")
        db.directory.remove_tenant("globex")
    changes = world.entries(principal="root")
    assert db.audit.count() == before + len(changes)
    assert [(e.action, e.outcome, e.user, e.tenant, e.tracker) for e in changes] == [
        ("member.grant", "ok", "dave", "acme", None),
        ("member.revoke", "ok", "dave", "acme", None),
        ("tenant.add", "ok", None, "globex", None),
        ("tracker.add", "ok", None, "globex", "gl"),
        ("tracker.change", "ok", None, "globex", "gl"),
        ("tracker.change", "ok", None, "globex", "gl"),
        ("tracker.change", "ok", None, "globex", "gl"),
        ("tracker.remove", "ok", None, "globex", "gl"),
        ("token.set", "ok", "alice", None, None),
        ("token.set", "ok", "alice", None, None),
        ("token.delete", "ok", "alice", None, None),
        ("key.retire", "refused", None, None, None),
        ("key.rotate", "ok", None, None, None),
        ("key.retire", "ok", None, None, None),
        ("tenant.remove", "ok", None, "globex", None),
    ]
    assert {e.correlation_id for e in changes} == {act.correlation_id}
    details = [e.detail for e in changes]
    assert details[3] == (
        f"type=github base_url={other.base_url} api_url=none verify_tls=True ca_bundle=none; without bot credentials"
    )
    assert details[4] == "api_url=https://evil.example.net; name changed"
    assert details[5] == "api_url=none; name changed; verify_tls=False; bot credentials added"
    assert details[6] == "nothing changed"  # the same bot password, sealed again
    assert details[8:11] == ["stored version 1", "stored version 2", "deleted version 2"]
    assert [(e.token_id, e.scope, e.matched_url) for e in changes[8:11]] == [(info.id, "acme", world.github.url)] * 3
    assert details[11] == "key k1 still seals 1 row(s)"  # the bot password of tracker gh
    assert details[12] == "1 row(s) re-sealed under key k2, 0 failed, 0 changed concurrently, 0 remaining"
    assert details[13] == "key k1 retired"
    assert details[14] == "0 members removed, 0 trackers removed, 0 tokens removed"


def test_a_failed_admin_change_leaves_no_entry(world: World) -> None:
    before = world.db.audit.count()
    with pytest.raises(InvalidInputError):
        world.db.directory.add_tracker(world.gh)  # the id is taken
    assert world.db.directory.remove_member("nobody", "acme") is False
    assert world.db.audit.count() == before


# -- who, and which calls belong together ------------------------------------------------------
def test_a_correlation_id_groups_the_calls_of_one_user_action(world: World) -> None:
    resolver, gh = world.resolver, world.gh
    with acting(principal="web:bob", correlation_id="req-42"):
        for _ in range(3):
            resolver.resolve("bob", gh)  # a host asking three times for one report
        with acting(correlation_id="req-43"):
            resolver.report_issue("bob", gh, "Crash")  # resolves inside: still one entry
    resolver.resolve("bob", gh)
    grouped = world.entries(correlation_id="req-42")
    assert [(e.action, e.principal) for e in grouped] == [("resolve", "web:bob")] * 3
    assert [(e.action, e.principal) for e in world.entries(correlation_id="req-43")] == [("report", "web:bob")]
    last = world.db.audit.query(limit=1)[0]
    assert (last.principal, last.correlation_id) == (None, None)


def test_acting_makes_a_correlation_id_and_checks_what_it_is_given() -> None:
    with acting() as first, acting(principal="root") as inner:
        assert inner.correlation_id == first.correlation_id and inner.principal == "root"
    with acting() as second:
        assert second.correlation_id != first.correlation_id and second.principal is None
    for bad in ("", " padded", "line\nbreak", "x" * 201):
        with pytest.raises(InvalidInputError), acting(principal=bad):
            pass
        with pytest.raises(InvalidInputError), acting(correlation_id=bad):
            pass
    assert audit_module.current_acting() is None


def test_each_thread_has_its_own_principal(world: World) -> None:
    resolver, gh = world.resolver, world.gh
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        inside.wait(30)
        resolver.resolve("alice", gh)
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with acting(principal="root"):
        inside.set()
        done.wait(30)
        resolver.resolve("bob", gh)
    thread.join()
    assert {(e.user, e.principal) for e in world.entries(action="resolve")} == {("alice", None), ("bob", "root")}


# -- bounded, and never a secret -------------------------------------------------------------
def test_retention_bounds_every_kind_of_entry(tmp_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(tmp_path / "r.db", keyring, audit_max_rows=10, audit_max_age=None, flush_size=3) as db:
        plugins = Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(MemoryTrackerType())])
        resolver = Resolver(db.directory, db.tokens, plugins=plugins)
        resolver.plugins.register(db.audit.observer())
        tracker = Tracker(tenant="acme", id="t", type="memory", base_url="https://t.example.com")
        db.directory.add_tracker(tracker)
        for index in range(30):
            db.directory.add_member(f"user{index}", "acme")  # written at once, in the change's transaction
            assert db._core.read_one("SELECT count(*) FROM audit")[0] <= 10
            with pytest.raises(NoCredentialsError):
                resolver.resolve(f"user{index}", tracker)  # buffered
        assert db.audit.count() == 10
        newest = db.audit.query(limit=10)
        assert newest[0].user == "user29" and newest[0].outcome == "refused"


def test_no_secret_reaches_the_database_file(world: World) -> None:
    resolver = world.resolver
    resolver.tokens.set("alice", world.github.url, Credentials(Secret(REVOKED_TOKEN)), scope="acme")
    with pytest.raises(PersonalTokenRejectedError):
        resolver.report_issue("alice", world.gh, "Crash")
    with pytest.raises(CredentialsRejectedError):
        resolver.tokens.set(
            "alice", world.github.url, Credentials(Secret(f"{REVOKED_TOKEN}-2")), scope="acme", verify=True
        )
    resolver.tokens.set("bob", world.echo.base_url, Credentials(Secret(ECHOED_TOKEN)), scope="acme")
    with pytest.raises(PersonalTokenRejectedError) as caught:
        resolver.report_issue("bob", world.echo, "Crash")
    assert ECHOED_TOKEN in caught.value.message  # the plugin's failure text quoted the token...
    with pytest.raises(CredentialsRejectedError):
        resolver.tokens.verify("bob", world.echo.base_url, Credentials(Secret(ECHOED_TOKEN + "-new")), scope="acme")
    world.github.fail_with(503)
    with pytest.raises(TrackerUnavailableError):
        resolver.report_issue("bob", world.gh, "Crash")
    world.github.reset_faults()
    failed = world.entries(user="bob", tracker="echo")
    assert [(e.action, e.outcome) for e in failed] == [("report", "rejected"), ("verify", "rejected")]
    for entry in failed:  # ...the trail does not
        assert entry.detail is not None and "invalid token **********" in entry.detail, entry.detail
    assert [(e.action, e.outcome) for e in world.entries(action="verify")] == [("verify", "rejected")]
    assert ("token.set", "rejected") in [(e.action, e.outcome) for e in world.entries(user="alice")]
    world.db.close()
    data = world.raw_bytes()
    for secret in (BOT_TOKEN, ALICE_TOKEN, REVOKED_TOKEN, f"{REVOKED_TOKEN}-2", ECHOED_TOKEN):
        assert secret.encode() not in data, secret


# -- observers ---------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.resolutions: list[Resolution] = []

    @hookimpl
    def tokenproviders_audit(self, event: AuditEvent) -> None:
        self.events.append(event)

    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution) -> None:
        self.resolutions.append(resolution)


class Broken:
    @hookimpl
    def tokenproviders_audit(self, event: AuditEvent) -> None:
        raise RuntimeError("observer bug")


def test_observers_see_events_and_cannot_change_the_action(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    world.resolver.plugins.register(Broken(), name="broken")
    world.resolver.plugins.register(recorder, name="recorder")
    caplog.set_level(logging.ERROR, logger="tokenproviders.audit")
    issue = world.resolver.report_issue("bob", world.gh, "Crash")
    with pytest.raises(NotAuthorizedError) as caught:
        world.resolver.report_issue("carol", world.gh, "Crash")
    assert caught.value.message.startswith("'carol' is not authorized")  # passed on as it was
    assert [(e.action, e.outcome) for e in recorder.events] == [("report", "ok"), ("report", "refused")]
    assert recorder.events[0].detail == f"filed issue {issue.id}"
    # tokenproviders_resolved is still called for every resolution, also the one a report makes.
    assert [r.user for r in recorder.resolutions] == ["bob"]
    assert sum("'broken' failed" in r.getMessage() for r in caplog.records) == 2
    assert [e.action for e in world.entries(action="report")] == ["report", "report"]


def test_without_an_observer_no_event_is_built(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real_event, real_resolved = audit_module._event, audit_module._resolved_event

    def event(*args: Any) -> AuditEvent:
        built.append("event")
        return real_event(*args)

    def resolved(*args: Any) -> AuditEvent:
        built.append("resolved")
        return real_resolved(*args)

    monkeypatch.setattr(audit_module, "_event", event)
    monkeypatch.setattr(audit_module, "_resolved_event", resolved)
    world.resolver.plugins.unregister("audit")
    world.resolver.resolve("bob", world.gh)
    world.resolver.report_issue("bob", world.gh, "Crash")
    with pytest.raises(NotAuthorizedError):
        world.resolver.resolve("carol", world.gh)
    assert built == []
    world.resolver.plugins.register(world.db.audit.observer(), name="audit")
    world.resolver.resolve("bob", world.gh)
    world.resolver.report_issue("bob", world.gh, "Crash")
    assert built == ["resolved", "event"]


def test_an_event_refuses_what_it_cannot_store() -> None:
    now = datetime.now(timezone.utc)
    with pytest.raises(InvalidInputError):
        AuditEvent("reslove", "ok", now)
    with pytest.raises(InvalidInputError):
        AuditEvent("resolve", "fine", now)
    with pytest.raises(InvalidInputError):
        AuditEvent("resolve", "ok", now.replace(tzinfo=None))
    with pytest.raises(InvalidInputError):
        AuditEvent("resolve", "ok", now, user=Secret("x"))  # type: ignore[arg-type]
    long = AuditEvent("resolve", "error", now, detail="x\x1b[2J" + "y" * 1000)
    assert long.detail is not None and len(long.detail) == audit_module.MAX_DETAIL and "\x1b" not in long.detail


# -- the schema --------------------------------------------------------------------------------
def test_a_version_2_trail_migrates_to_successful_resolutions(db_path: Path, keyring: KeyRing) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    for version in (1, 2):
        for statement in _sqlite_base.MIGRATIONS[version]:
            conn.execute(statement)
    conn.execute(
        "INSERT INTO audit (at, user, tenant, tracker, source, token_id, scope, matched_url, fallback_from)"
        " VALUES ('2024-05-01T12:00:00.000000+00:00', 'alice', 'acme', 'main', 'personal', 7, '*',"
        " 'https://tracker.example.com', NULL)"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with SQLiteDatabase(db_path, keyring, audit_max_age=None) as db:
        assert db.schema_version == _sqlite_base.SCHEMA_VERSION == 4
        (old,) = db.audit.query()
        assert old == AuditEntry(
            id=1,
            at=datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
            user="alice",
            tenant="acme",
            tracker="main",
            source="personal",
            token_id=7,
            scope="*",
            matched_url="https://tracker.example.com",
            action="resolve",
            outcome="ok",
        )
        db.directory.add_member("bob", "acme")
        db.audit.prune()
        assert [(e.id, e.action) for e in db.audit.query()] == [(3, "member.grant"), (2, "tenant.add"), (1, "resolve")]
