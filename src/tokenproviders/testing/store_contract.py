"""``StoreContract``: one test suite every token-store backend passes (memory, SQLite,
PostgreSQL, a host's own).

Subclass it as ``Test<Name>Store`` and provide:

``backend_opener`` (a pytest fixture)
    yields a zero-argument callable that opens a backend
    (:class:`~tokenproviders.stores.rows.RowBackend`) on fresh, empty storage that every call
    shares; clean the storage up after the ``yield``. With ``multi_process = True`` (the
    default) the callable must pickle (e.g. ``functools.partial(MyRows.connect, dsn)``): the
    concurrency test calls it in 8 other processes.
:meth:`raw_dump`
    every byte the backend stores, as it is stored (rows, files): the suite checks that no
    plaintext secret is in it.

::

    class TestMyStore(StoreContract):
        multi_process = False

        @pytest.fixture
        def backend_opener(self):
            rows = MyRows()
            yield lambda: rows

        def raw_dump(self, backend):
            return repr(vars(backend)).encode()

Everything is tested through :class:`~tokenproviders.stores.sealed.SealedTokenStore`, the one
sealing layer, so a backend passes by storing and querying rows as
:mod:`tokenproviders.stores.rows` documents.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest

from ..crypto import KeyRing
from ..errors import KeyInUseError, KeyMismatchError, PersonalTokenUnusableError, SecretUnreadableError
from ..model import ALL_TENANTS, Credentials, Secret
from ..stores.rows import AuditRow, RowBackend, SecretUpdate, VersionConflict
from ..stores.sealed import RotationProgress, SealedTokenStore
from .world import build_world

__all__ = ["StoreContract"]

_NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
_URL = "https://tracker.example.com/acme/repo"
_PROCESSES = 8
_ROUNDS = 25


def _ring(keys: Sequence[tuple[str, bytes]], primary: str) -> KeyRing:
    return KeyRing(list(keys), primary)


class _FailAfter:
    """A backend proxy whose ``replace_secrets`` fails after ``batches`` successful calls: a
    crash in the middle of a rotation."""

    def __init__(self, backend: RowBackend, batches: int) -> None:
        self._backend = backend
        self._left = batches

    def replace_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        if self._left == 0:
            raise RuntimeError("simulated crash during rotation")
        self._left -= 1
        return self._backend.replace_secrets(updates)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _worker(opener: Callable[[], RowBackend], keys: list[tuple[str, bytes]], index: int) -> str | None:
    """One of the concurrent processes: sets, resolves and deletes; returns a traceback or None."""
    try:
        store = SealedTokenStore(opener(), _ring(keys, keys[0][0]))
        try:
            now = _NOW
            for round_ in range(_ROUNDS):
                own = f"worker-{index}"
                store.put(own, _URL, "acme", Credentials(Secret(f"{own}-{round_}")), now=now)
                store.put("shared", _URL, "acme", Credentials(Secret(f"{own}-{round_}")), now=now)
                token = store.lookup(own, [(_URL, "acme"), (_URL, ALL_TENANTS)])
                assert token is not None and token.credentials is not None
                assert token.credentials.api_password.reveal() == f"{own}-{round_}"
                assert token.id is not None
                store.mark_used(token.id, now + timedelta(seconds=round_))
                shared = store.lookup("shared", [(_URL, "acme")])
                assert shared is not None and shared.credentials is not None
                assert shared.credentials.api_password.reveal().startswith("worker-")
                store.put(own, "https://tracker.example.com/tmp", "acme", Credentials(Secret("tmp")), now=now)
                assert store.delete(own, "https://tracker.example.com/tmp", "acme") is not None
        finally:
            store.close()
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        return traceback.format_exc()
    return None


class StoreContract:
    """The suite a token-store backend passes (see the module docstring)."""

    #: Set to ``False`` for a backend that lives in one process (memory).
    multi_process: ClassVar[bool] = True
    #: Rows per rotation batch in the rotation tests.
    rotation_batch: ClassVar[int] = 3

    # -- what a subclass provides -------------------------------------------------------------
    @pytest.fixture
    def backend_opener(self) -> Iterator[Callable[[], RowBackend]]:
        raise NotImplementedError("a StoreContract subclass provides the backend_opener fixture")

    def raw_dump(self, backend: RowBackend) -> bytes:
        """Every byte ``backend`` stores, as stored."""
        raise NotImplementedError("a StoreContract subclass implements raw_dump")

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture
    def keys(self) -> list[tuple[str, bytes]]:
        return [("k1", os.urandom(32))]

    @pytest.fixture
    def backend(self, backend_opener: Callable[[], RowBackend]) -> Iterator[RowBackend]:
        backend = backend_opener()
        yield backend
        backend.close()

    @pytest.fixture
    def store(self, backend: RowBackend, keys: list[tuple[str, bytes]]) -> SealedTokenStore:
        return SealedTokenStore(backend, _ring(keys, "k1"), clock=lambda: _NOW)

    # -- round trips --------------------------------------------------------------------------
    def test_round_trip(self, store: SealedTokenStore) -> None:
        info = store.put(
            "alice", _URL, "acme", Credentials(Secret("s3cret"), "alice@x"), label="work", expires_at=_NOW, now=_NOW
        )
        assert (info.version, info.label, info.api_username, info.key_id) == (1, "work", "alice@x", "k1")
        token = store.get("alice", _URL, "acme")
        assert token is not None and token.credentials == Credentials(Secret("s3cret"), "alice@x")
        assert (token.id, token.expires_at, token.created_at, token.updated_at) == (info.id, _NOW, _NOW, _NOW)
        later = _NOW + timedelta(hours=1)
        again = store.put("alice", _URL, "acme", Credentials(Secret("n3w")), now=later)
        assert (again.id, again.version, again.created_at, again.updated_at) == (info.id, 2, _NOW, later)
        assert store.get("alice", _URL, ALL_TENANTS) is None
        assert store.get("bob", _URL, "acme") is None

    def test_lookup_returns_the_first_existing_candidate(self, store: SealedTokenStore) -> None:
        service = "https://tracker.example.com"
        store.put("alice", service, ALL_TENANTS, Credentials(Secret("wide")), now=_NOW)
        candidates = [(_URL, "acme"), (_URL, ALL_TENANTS), (service, "acme"), (service, ALL_TENANTS)]
        found = store.lookup("alice", candidates)
        assert found is not None and found.credentials is not None
        assert (found.url, found.scope, found.credentials.api_password.reveal()) == (service, ALL_TENANTS, "wide")
        store.put("alice", _URL, ALL_TENANTS, Credentials(Secret("narrow")), now=_NOW)
        found = store.lookup("alice", candidates)
        assert found is not None and (found.url, found.scope) == (_URL, ALL_TENANTS)
        assert store.lookup("bob", candidates) is None
        assert store.lookup("alice", []) is None

    def test_delete_list_and_last_used(self, store: SealedTokenStore) -> None:
        info = store.put("alice", _URL, "acme", Credentials(Secret("a")), now=_NOW)
        store.put("bob", _URL, "acme", Credentials(Secret("b")), now=_NOW)
        assert info.id is not None
        store.mark_used(info.id, _NOW + timedelta(minutes=1))
        store.mark_used(info.id, _NOW)  # an older stamp never wins
        store.flush()
        assert [(t.owner, t.last_used_at) for t in store.list()] == [
            ("alice", _NOW + timedelta(minutes=1)),
            ("bob", None),
        ]
        assert [t.owner for t in store.list("bob")] == ["bob"]
        removed = store.delete("alice", _URL, "acme")
        assert removed is not None and removed.id == info.id
        assert store.delete("alice", _URL, "acme") is None
        again = store.put("alice", _URL, "acme", Credentials(Secret("a")), now=_NOW)
        assert again.id != info.id  # ids are never reused
        assert again.last_used_at is None

    def test_compare_and_swap_detects_a_concurrent_write(self, store: SealedTokenStore) -> None:
        store.put("alice", _URL, "acme", Credentials(Secret("a")), now=_NOW)
        row = store.backend.get("alice", _URL, "acme")
        assert row is not None
        store.put("alice", _URL, "acme", Credentials(Secret("b")), now=_NOW)  # the concurrent writer
        with pytest.raises(VersionConflict):
            store.backend.put(row, expected_version=row.version)
        with pytest.raises(VersionConflict):
            store.backend.put(replace(row, id=0), expected_version=None)
        with pytest.raises(VersionConflict):
            store.backend.delete("alice", _URL, "acme", expected_version=row.version)
        token = store.get("alice", _URL, "acme")
        assert token is not None and token.version == 2 and token.credentials == Credentials(Secret("b"))

    # -- nothing in the clear, nothing moved ----------------------------------------------------
    def test_no_plaintext_in_the_raw_rows(self, store: SealedTokenStore) -> None:
        canary = "canary-" + os.urandom(8).hex()
        store.put("alice", _URL, "acme", Credentials(Secret(canary), "alice-login"), now=_NOW)
        store.flush()
        raw = self.raw_dump(store.backend)
        assert b"alice-login" in raw  # the dump really shows the rows
        assert canary.encode() not in raw
        assert canary.encode("utf-16-le") not in raw

    def _world_with_tokens(self, store: SealedTokenStore) -> Any:
        return build_world(
            {
                "tenants": {
                    "acme": {
                        "members": ["alice", "bob"],
                        "trackers": [{"id": "bugs", "type": "memory", "bot": {"api_password": "bot-secret"}}],
                    }
                },
                "tokens": [
                    {"owner": "alice", "tracker": "acme/bugs", "api_password": "alice-secret"},
                    {"owner": "bob", "tracker": "acme/bugs", "api_password": "bob-secret"},
                ],
            },
            store=store,
        )

    def test_swapped_rows_are_refused_never_the_bot(self, store: SealedTokenStore) -> None:
        world = self._world_with_tokens(store)
        tracker = world.trackers["acme/bugs"]
        assert world.resolver.resolve("alice", tracker).source == "personal"
        alice = store.backend.get("alice", tracker.url, "acme")
        bob = store.backend.get("bob", tracker.url, "acme")
        assert alice is not None and bob is not None
        swapped = [
            SecretUpdate(alice.id, alice.secret, bob.secret, bob.key_id),
            SecretUpdate(bob.id, bob.secret, alice.secret, alice.key_id),
        ]
        assert store.backend.replace_secrets(swapped) == 2
        for user in ("alice", "bob"):
            with pytest.raises(PersonalTokenUnusableError):
                world.resolver.resolve(user, tracker)

    def test_tampered_rows_are_refused_never_the_bot(self, store: SealedTokenStore) -> None:
        world = self._world_with_tokens(store)
        tracker = world.trackers["acme/bugs"]
        alice = store.backend.get("alice", tracker.url, "acme")
        assert alice is not None
        flipped = alice.secret[:-1] + bytes([alice.secret[-1] ^ 1])
        assert store.backend.replace_secrets([SecretUpdate(alice.id, alice.secret, flipped, alice.key_id)]) == 1
        with pytest.raises(PersonalTokenUnusableError):
            world.resolver.resolve("alice", tracker)
        with pytest.raises(SecretUnreadableError):
            store.get("alice", tracker.url, "acme")
        assert world.resolver.resolve("bob", tracker).source == "personal"

    # -- keys -----------------------------------------------------------------------------------
    def test_a_different_key_under_a_known_id_is_refused(
        self, store: SealedTokenStore, backend_opener: Callable[[], RowBackend]
    ) -> None:
        store.put("alice", _URL, "acme", Credentials(Secret("a")), now=_NOW)
        other = backend_opener()
        try:
            with pytest.raises(KeyMismatchError):
                SealedTokenStore(other, _ring([("k1", os.urandom(32))], "k1"))
        finally:
            other.close()

    def _filled(self, store: SealedTokenStore, count: int) -> None:
        for index in range(count):
            store.put(f"user{index}", _URL, "acme", Credentials(Secret(f"secret-{index}")), now=_NOW)

    def test_rotation_crashes_mid_run_then_resumes(
        self, store: SealedTokenStore, keys: list[tuple[str, bytes]]
    ) -> None:
        self._filled(store, 10)
        ring = _ring([*keys, ("k2", os.urandom(32))], "k2")
        crashing = SealedTokenStore(_FailAfter(store.backend, 2), ring)
        seen: list[RotationProgress] = []
        with pytest.raises(RuntimeError, match="simulated crash"):
            crashing.rotate(batch_size=self.rotation_batch, progress=seen.append)
        assert [p.processed for p in seen] == [3, 6]
        assert crashing.key_status() == {"k2": 6, "k1": 4}
        # A concurrent put under the new key during the pause is kept, not overwritten.
        resumed = SealedTokenStore(store.backend, ring)
        resumed.put("user9", _URL, "acme", Credentials(Secret("changed")), now=_NOW)
        report = resumed.rotate(batch_size=self.rotation_batch)
        assert report.complete and report.failed == 0 and report.processed == 3
        assert resumed.key_status() == {"k2": 10, "k1": 0}
        for index in range(9):
            token = resumed.get(f"user{index}", _URL, "acme")
            assert token is not None and token.credentials == Credentials(Secret(f"secret-{index}"))
        token = resumed.get("user9", _URL, "acme")
        assert token is not None and token.credentials == Credentials(Secret("changed"))
        assert resumed.rotate().processed == 0  # nothing left to do
        resumed.retire_key("k1")
        assert "k1" not in resumed.keyring

    def test_a_stale_reseal_never_overwrites_a_put(self, store: SealedTokenStore) -> None:
        self._filled(store, 1)
        row = store.backend.get("user0", _URL, "acme")
        assert row is not None
        store.put("user0", _URL, "acme", Credentials(Secret("new")), now=_NOW)
        assert store.backend.replace_secrets([SecretUpdate(row.id, row.secret, row.secret[::-1], "k1")]) == 0
        token = store.get("user0", _URL, "acme")
        assert token is not None and token.credentials == Credentials(Secret("new"))

    def test_a_key_in_use_cannot_be_retired(self, store: SealedTokenStore, keys: list[tuple[str, bytes]]) -> None:
        self._filled(store, 2)
        ring = _ring([*keys, ("k2", os.urandom(32))], "k2")
        newer = SealedTokenStore(store.backend, ring)
        with pytest.raises(KeyInUseError):
            newer.retire_key("k1")
        with pytest.raises(KeyInUseError):
            newer.retire_key("k2")
        assert newer.key_status() == {"k2": 0, "k1": 2}

    # -- retention ------------------------------------------------------------------------------
    def test_audit_retention(self, backend: RowBackend, keys: list[tuple[str, bytes]]) -> None:
        now = [_NOW]
        store = SealedTokenStore(
            backend, _ring(keys, "k1"), audit_max_rows=5, audit_max_age=timedelta(days=1), clock=lambda: now[0]
        )
        for minute in range(8):
            store.record_audit(AuditRow(0, _NOW + timedelta(minutes=minute), "resolve", "ok", user=f"u{minute}"))
        store.flush()
        kept = backend.scan_audit()
        assert [row.user for row in kept] == ["u3", "u4", "u5", "u6", "u7"]
        assert [row.id for row in kept] == sorted({row.id for row in kept})
        now[0] = _NOW + timedelta(days=1, minutes=5)
        store.record_audit(AuditRow(0, now[0], "resolve", "ok", user="late"))
        store.flush()
        assert [row.user for row in backend.scan_audit()] == ["u5", "u6", "u7", "late"]

    # -- many processes -------------------------------------------------------------------------
    def test_many_processes_lose_nothing(
        self, store: SealedTokenStore, backend_opener: Callable[[], RowBackend], keys: list[tuple[str, bytes]]
    ) -> None:
        if not self.multi_process:
            pytest.skip("this backend lives in one process (multi_process = False)")
        context = multiprocessing.get_context("spawn")
        with context.Pool(_PROCESSES) as pool:
            errors = pool.starmap(_worker, [(backend_opener, keys, index) for index in range(_PROCESSES)])
        assert [error for error in errors if error] == []
        for index in range(_PROCESSES):
            token = store.get(f"worker-{index}", _URL, "acme")
            assert token is not None and token.credentials == Credentials(Secret(f"worker-{index}-{_ROUNDS - 1}"))
            assert token.version == _ROUNDS
            assert token.last_used_at == _NOW + timedelta(seconds=_ROUNDS - 1)
        shared = store.get("shared", _URL, "acme")
        assert shared is not None and shared.version == _PROCESSES * _ROUNDS  # no lost update
        assert store.backend.scan(owner="worker-0", limit=10) == [store.backend.get("worker-0", _URL, "acme")]
