"""PostgresDirectory against a real PostgreSQL server (libpq's environment; skipped without one
except under ``CI=true``, as in test_store_contract_postgres). Each test gets its own schema."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from tokenproviders import Credentials, Resolver, Secret, Tracker, acting, find_tracker
from tokenproviders.crypto import KeyRing
from tokenproviders.errors import NotAuthorizedError, SecretUnreadableError, StoreError, UnknownTrackerError
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend

from .conftest import SERVICE_URL, TRACKER_URL, make_plugins, make_tracker
from .test_store_contract_postgres import schema  # noqa: F401 - the fixture

pytestmark = pytest.mark.postgresql

KEYS = [("k1", b"\x01" * 32)]


def _keyring() -> KeyRing:
    return KeyRing(list(KEYS), "k1")


@pytest.fixture
def rows(schema: str) -> Iterator[object]:  # noqa: F811 - the fixture imported above
    from tokenproviders.stores.postgres import PostgresRows

    opened = PostgresRows("", schema=schema, max_size=2)
    yield opened
    opened.close()


@pytest.fixture
def directory(rows: object) -> object:
    from tokenproviders.stores.postgres_directory import PostgresDirectory

    return PostgresDirectory(rows, _keyring())  # type: ignore[arg-type]


def _sql(schema_name: str, text: str, *params: object) -> list[tuple[object, ...]]:
    import psycopg
    from psycopg import sql

    with psycopg.connect("", autocommit=True) as conn:
        cursor = conn.execute(sql.SQL(text).format(s=sql.Identifier(schema_name)), params)
        return cursor.fetchall() if cursor.description else []


def _resolver(directory: object, rows: object, backend: MemoryTrackerBackend) -> Resolver:
    from tokenproviders.stores.sealed import SealedTokenStore

    return Resolver(directory, SealedTokenStore(rows, _keyring()), plugins=make_plugins(backend))  # type: ignore[arg-type]


def test_round_trip(directory: object, schema: str) -> None:  # noqa: F811
    d = directory
    assert d.add_tenant("acme", "Acme") is True and d.add_tenant("acme") is False  # type: ignore[attr-defined]
    d.add_member("alice", "acme")  # type: ignore[attr-defined]
    assert d.add_members([("bob", "acme"), ("alice", "globex"), ("alice", "acme")]) == 2  # type: ignore[attr-defined]
    tracker = make_tracker()
    tracker = Tracker(
        tenant="acme",
        id="main",
        type="memory",
        base_url=TRACKER_URL,
        api_url=f"{SERVICE_URL}/api",
        name="Main",
        options={"project": "X", "n": [1, 2]},
        bot_credentials=Credentials(Secret("bot-password-1"), "bot"),
    )
    d.add_tracker(tracker)  # type: ignore[attr-defined]
    d.add_tracker(make_tracker("globex", "gx", bot=None))  # type: ignore[attr-defined]
    assert d.tenants_of("alice") == frozenset({"acme", "globex"})  # type: ignore[attr-defined]
    assert d.list_tenants() == ["acme", "globex"] and d.members_of("acme") == ["alice", "bob"]  # type: ignore[attr-defined]
    (listed,) = d.trackers_of("acme")  # type: ignore[attr-defined]
    assert listed == tracker  # the lazy secret compares by value
    assert listed.bot_credentials.api_password.reveal() == "bot-password-1"
    assert d.get_tracker("acme", "main") == tracker  # type: ignore[attr-defined]
    assert d.trackers_of("globex")[0].bot_credentials is None  # type: ignore[attr-defined]
    stored = _sql(schema, "SELECT bot_secret FROM {s}.tokenproviders_trackers WHERE id = 'main'")
    assert b"bot-password-1" not in bytes(stored[0][0])  # type: ignore[arg-type]
    with pytest.raises(Exception, match="already has a tracker"):
        d.add_tracker(tracker)  # type: ignore[attr-defined]
    d.remove_tracker("globex", "gx")  # type: ignore[attr-defined]
    with pytest.raises(UnknownTrackerError):
        d.remove_tracker("globex", "gx")  # type: ignore[attr-defined]
    assert d.remove_member("bob", "acme") is True and d.remove_member("bob", "acme") is False  # type: ignore[attr-defined]
    assert d.remove_tenant("acme") == {"members": 1, "trackers": 1, "tokens": 0}  # type: ignore[attr-defined]
    assert d.tenants_of("alice") == frozenset({"globex"})  # type: ignore[attr-defined]


def test_memberships_decide_through_a_real_resolver(directory: object, rows: object) -> None:
    backend = MemoryTrackerBackend()
    directory.add_member("alice", "acme")  # type: ignore[attr-defined]
    directory.add_tracker(make_tracker())  # type: ignore[attr-defined]
    resolver = _resolver(directory, rows, backend)
    tracker = find_tracker(directory, "acme", "main")  # type: ignore[arg-type]
    resolution = resolver.resolve(user="alice", tracker=tracker)
    assert resolution.source == "bot" and resolution.credentials == Credentials(Secret("bot-password-1"), "bot")
    with pytest.raises(NotAuthorizedError):
        resolver.resolve(user="mallory", tracker=tracker)
    directory.remove_member("alice", "acme")  # type: ignore[attr-defined]
    with pytest.raises(NotAuthorizedError):
        resolver.resolve(user="alice", tracker=tracker)


@pytest.mark.parametrize("edit", ["copied", "base_url", "api_url"])
def test_a_moved_or_rebound_bot_blob_fails_to_open_and_is_never_sent(
    directory: object,
    rows: object,
    schema: str,  # noqa: F811
    edit: str,
) -> None:
    backend = MemoryTrackerBackend()
    backend.add_user("bot-a", "bot-password-a", "bot")
    backend.add_user("bot-b", "bot-password-b", "bot")
    directory.add_member("alice", "acme")  # type: ignore[attr-defined]
    directory.add_tracker(make_tracker(bot="bot-password-a"))  # type: ignore[attr-defined]
    directory.add_tracker(  # type: ignore[attr-defined]
        Tracker(
            tenant="acme",
            id="other",
            type="memory",
            base_url=f"{SERVICE_URL}/other",
            bot_credentials=Credentials(Secret("bot-password-b"), "bot"),
        )
    )
    if edit == "copied":
        _sql(
            schema,
            "UPDATE {s}.tokenproviders_trackers SET bot_secret ="
            " (SELECT bot_secret FROM {s}.tokenproviders_trackers WHERE id = 'main') WHERE id = 'other'",
        )
        victim = "other"
    else:
        _sql(schema, f"UPDATE {{s}}.tokenproviders_trackers SET {edit} = 'https://evil.example.net' WHERE id = 'main'")
        victim = "main"
    resolver = _resolver(directory, rows, backend)
    tracker = find_tracker(directory, "acme", victim)  # type: ignore[arg-type]
    with pytest.raises(SecretUnreadableError, match=f"acme/{victim}"):
        resolver.verify(user="alice", tracker=tracker)
    with pytest.raises(SecretUnreadableError):
        directory.get_tracker("acme", victim)  # type: ignore[attr-defined]
    assert backend.calls == []  # nothing was sent anywhere
    untouched = "main" if victim == "other" else "other"
    assert resolver.verify(user="alice", tracker=find_tracker(directory, "acme", untouched)).login.startswith("bot-")  # type: ignore[arg-type]


def test_admin_url_changes_reseal_the_bot_secret(directory: object, schema: str) -> None:  # noqa: F811
    directory.add_tracker(make_tracker())  # type: ignore[attr-defined]
    (before,) = _sql(schema, "SELECT bot_secret FROM {s}.tokenproviders_trackers")
    changed = directory.change_tracker("acme", "main", base_url=f"{SERVICE_URL}/moved")  # type: ignore[attr-defined]
    assert changed.base_url == f"{SERVICE_URL}/moved"
    assert changed.bot_credentials.api_password.reveal() == "bot-password-1"
    (after,) = _sql(schema, "SELECT bot_secret FROM {s}.tokenproviders_trackers")
    assert bytes(after[0]) != bytes(before[0])  # type: ignore[arg-type]
    # update_tracker with a listed tracker and new api_url: re-sealed again, still opens
    import dataclasses

    listed = directory.trackers_of("acme")[0]  # type: ignore[attr-defined]
    directory.update_tracker(dataclasses.replace(listed, api_url=f"{SERVICE_URL}/api/v4"))  # type: ignore[attr-defined]
    assert directory.get_tracker("acme", "main").bot_credentials.api_password.reveal() == "bot-password-1"  # type: ignore[attr-defined]
    # a name-only change keeps the blob as it is
    (sealed,) = _sql(schema, "SELECT bot_secret FROM {s}.tokenproviders_trackers")
    directory.change_tracker("acme", "main", name="Renamed")  # type: ignore[attr-defined]
    assert _sql(schema, "SELECT bot_secret FROM {s}.tokenproviders_trackers") == [sealed]
    details = _sql(schema, "SELECT detail FROM {s}.tokenproviders_audit WHERE action = 'tracker.change' ORDER BY id")
    assert details[0][0] == f"base_url={SERVICE_URL}/moved; bot credentials re-sealed for the new URLs"
    assert details[2][0] == "name changed"


def test_set_bot_credentials_and_admin_changes_are_audited(directory: object, schema: str) -> None:  # noqa: F811
    with acting("admin@host", correlation_id="req-1"):
        directory.add_member("alice", "acme")  # type: ignore[attr-defined]
        directory.add_tracker(make_tracker(bot=None))  # type: ignore[attr-defined]
        directory.set_bot_credentials("acme", "main", Credentials(Secret("new-bot"), "bot"))  # type: ignore[attr-defined]
        directory.set_bot_credentials("acme", "main", None)  # type: ignore[attr-defined]
        directory.remove_member("alice", "acme")  # type: ignore[attr-defined]
    assert directory.trackers_of("acme")[0].bot_credentials is None  # type: ignore[attr-defined]
    audit = _sql(schema, "SELECT action, principal, correlation_id, detail FROM {s}.tokenproviders_audit ORDER BY id")
    assert [row[0] for row in audit] == [
        "tenant.add",
        "member.grant",
        "tracker.add",
        "tracker.change",
        "tracker.change",
        "member.revoke",
    ]
    assert {(row[1], row[2]) for row in audit} == {("admin@host", "req-1")}
    assert audit[3][3] == "bot_username changed; bot credentials added"
    assert audit[4][3] == "bot_username changed; bot credentials removed"
    assert "new-bot" not in repr(audit)


def test_a_malformed_row_fails_alone_with_its_name(directory: object, schema: str) -> None:  # noqa: F811
    directory.add_tracker(make_tracker())  # type: ignore[attr-defined]
    directory.add_tracker(make_tracker("acme", "second"))  # type: ignore[attr-defined]
    _sql(schema, "UPDATE {s}.tokenproviders_trackers SET options = '[1]' WHERE id = 'main'")
    assert [t.id for t in directory.trackers_of("acme")] == ["second"]  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match=r"trackers row acme/main .* options is not a JSON object"):
        find_tracker(directory, "acme", "main")  # type: ignore[arg-type]
    _sql(schema, "UPDATE {s}.tokenproviders_trackers SET base_url = 'ftp://x' WHERE id = 'second'")
    broken = directory.broken_trackers("acme")  # type: ignore[attr-defined]
    assert set(broken) == {("acme", "main"), ("acme", "second")}
    assert "base_url is not a valid http(s) URL" in broken[("acme", "second")].message


def test_retire_refuses_a_key_sealing_a_bot_secret(directory: object, rows: object) -> None:
    from tokenproviders.stores.sealed import SealedTokenStore

    directory.add_tracker(make_tracker())  # type: ignore[attr-defined]
    assert rows.count_by_key() == {"k1": 1}  # type: ignore[attr-defined]
    store = SealedTokenStore(rows, _keyring())  # type: ignore[arg-type]
    assert rows.retire_key("k1", b"check", datetime.now(timezone.utc)) == 1  # type: ignore[attr-defined]
    assert store.key_status()


_ADMIN_WORKER = """
import sys
from tokenproviders import Credentials, Secret
from tokenproviders.crypto import KeyRing
from tokenproviders.stores.postgres import PostgresRows
from tokenproviders.stores.postgres_directory import PostgresDirectory

schema, index, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = PostgresRows("", schema=schema, max_size=1)
directory = PostgresDirectory(rows, KeyRing([("k1", bytes.fromhex(sys.argv[4]))], "k1"))
for step in range(rounds):
    directory.add_member(f"user-{index}-{step}", "acme")
    directory.set_bot_credentials("acme", "main", Credentials(Secret(f"bot-{index}-{step}"), "bot"))
    directory.change_tracker("acme", "main", name=f"name-{index}-{step}")
rows.close()
"""


def test_concurrent_admin_writes_from_several_processes(directory: object, schema: str) -> None:  # noqa: F811
    processes, rounds = 4, 10
    directory.add_tracker(make_tracker())  # type: ignore[attr-defined]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _ADMIN_WORKER, schema, str(index), str(rounds), KEYS[0][1].hex()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(processes)
    ]
    failures = [(worker.communicate(timeout=300), worker.returncode) for worker in workers]
    assert [failure for failure in failures if failure[1] != 0] == []  # no error reached a caller
    assert len(directory.members_of("acme")) == processes * rounds  # type: ignore[attr-defined]
    tracker = directory.get_tracker("acme", "main")  # type: ignore[attr-defined]
    assert tracker.bot_credentials.api_password.reveal().startswith("bot-")
    changes = _sql(schema, "SELECT count(*) FROM {s}.tokenproviders_audit WHERE action = 'tracker.change'")
    assert changes == [(2 * processes * rounds,)]
    grants = _sql(schema, "SELECT count(*) FROM {s}.tokenproviders_audit WHERE action = 'member.grant'")
    assert grants == [(processes * rounds,)]
