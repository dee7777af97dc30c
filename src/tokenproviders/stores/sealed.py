"""The one sealing layer: a :class:`~tokenproviders.stores.TokenStore` over any row backend.

:class:`SealedTokenStore` owns everything that touches keys or plaintext, for every backend
(memory, SQLite, PostgreSQL, an ORM): the associated data a blob is bound to, sealing and
opening, version handling, key checks, rotation, key status and retirement, and the policy for
buffering last-used stamps and audit rows. A backend (:mod:`tokenproviders.stores.rows`) only
stores and queries rows.

Bot credentials kept by a directory are sealed with :func:`seal_bot_secret` and opened with
:func:`open_bot_secret`: their associated data binds tenant, tracker id, field, ``base_url``
and ``api_url``, so a blob moved to another tracker, or left in place when an admin points the
tracker elsewhere, fails to open. :func:`reseal_bot_secret` moves a blob to a new binding when
an admin changes the URLs.
"""

from __future__ import annotations

import hmac
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final

from ..errors import (
    ConfigurationError,
    InvalidInputError,
    KeyInUseError,
    KeyMismatchError,
    SecretUnreadableError,
    StoreError,
)
from ..model import Credentials, PersonalToken, Secret, TokenInfo, _make_personal_token, _trusted_credentials
from .rows import (
    AuditRow,
    BotSecretRow,
    BotSecretRows,
    KeyCheckRow,
    RowBackend,
    SecretUpdate,
    TokenRow,
    VersionConflict,
)

if TYPE_CHECKING:
    from ..crypto import AssociatedData, KeyRing

__all__ = [
    "SealedTokenStore",
    "RotationProgress",
    "RotationReport",
    "BotBinding",
    "SECRET_FIELD",
    "token_aad",
    "bot_aad",
    "seal_bot_secret",
    "open_bot_secret",
    "reseal_bot_secret",
    "upgrade_legacy_bot_secret",
]

logger = logging.getLogger("tokenproviders.stores.sealed")

#: The one token field that is sealed; ``api_username`` is metadata that listings show.
SECRET_FIELD: Final = "api_password"
_CAS_ATTEMPTS: Final = 64
_MAX_FAILURES: Final = 100


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# -- associated data: the one spelling ---------------------------------------------------------
def token_aad(owner: str, scope: str, url: str) -> AssociatedData:
    """What a personal token's sealed ``api_password`` is bound to (its ``encode()`` is
    :func:`~tokenproviders.crypto.encode_token_aad`, which the resolve path uses)."""
    from ..crypto import AssociatedData  # crypto loads when something is sealed, not at import

    return AssociatedData.for_token(owner=owner, scope=scope, url=url, field=SECRET_FIELD)


@dataclass(frozen=True)
class BotBinding:
    """The identity a tracker's bot credential is sealed for: a copy to another tracker, or a
    changed ``base_url``/``api_url``, no longer opens."""

    tenant: str
    tracker: str
    base_url: str
    api_url: str | None = None


def bot_aad(binding: BotBinding, field: str = SECRET_FIELD) -> AssociatedData:
    """Tenant, tracker id, field, ``base_url`` and ``api_url`` (``""`` when there is none)."""
    from ..crypto import AssociatedData

    return AssociatedData("bot", (binding.tenant, binding.tracker, field, binding.base_url, binding.api_url or ""))


def seal_bot_secret(keyring: KeyRing, secret: Secret | str, binding: BotBinding, field: str = SECRET_FIELD) -> bytes:
    """Seal a tracker's bot credential under the primary key, bound to ``binding``."""
    return keyring.seal(secret, bot_aad(binding, field))


def open_bot_secret(keyring: KeyRing, blob: bytes, binding: BotBinding, field: str = SECRET_FIELD) -> Secret:
    """Open a bot credential; :class:`SecretUnreadableError` if it was sealed for another binding."""
    return keyring.open_secret(blob, bot_aad(binding, field))


def reseal_bot_secret(
    keyring: KeyRing, blob: bytes, old: BotBinding, new: BotBinding, field: str = SECRET_FIELD
) -> bytes:
    """The blob re-sealed for ``new`` (an admin changed the tracker's URLs): it must open under
    ``old``, so a blob that was already misplaced is refused, not laundered."""
    return keyring.seal(open_bot_secret(keyring, blob, old, field), bot_aad(new, field))


def upgrade_legacy_bot_secret(keyring: KeyRing, blob: bytes, binding: BotBinding, field: str = SECRET_FIELD) -> bytes:
    """For a schema migration only: a blob sealed before URLs were bound (tenant, tracker id,
    field), re-sealed for ``binding``."""
    from ..crypto import AssociatedData

    legacy = AssociatedData.for_bot(tenant=binding.tenant, tracker=binding.tracker, field=field)
    return keyring.seal(keyring.open_secret(blob, legacy), bot_aad(binding, field))


# -- rotation reports --------------------------------------------------------------------------
@dataclass(frozen=True)
class RotationProgress:
    """What a rotation's progress callback receives after every batch."""

    processed: int
    failed: int
    remaining: int


@dataclass(frozen=True)
class RotationReport:
    """The outcome of a rotation: ``processed`` rows re-sealed under ``primary``; ``failed``
    could not be opened (described in ``failures``, first 100, no secrets); ``conflicts``
    changed concurrently and were left to the concurrent writer; ``remaining`` rows are still
    under other keys."""

    primary: str
    processed: int
    failed: int
    conflicts: int
    remaining: int
    seconds: float
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    failures: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every row is sealed under the primary key."""
        return self.remaining == 0


def _info(row: TokenRow) -> TokenInfo:
    # Positional, in TokenInfo's field order.
    return TokenInfo(
        row.owner,
        row.url,
        row.scope,
        row.id,
        row.label,
        row.expires_at,
        row.created_at,
        row.updated_at,
        row.last_used_at,
        row.version,
        row.key_id,
        row.api_username,
    )


def _aad_of(row: TokenRow | BotSecretRow) -> AssociatedData:
    if isinstance(row, BotSecretRow):
        return bot_aad(BotBinding(row.tenant, row.tracker, row.base_url, row.api_url))
    return token_aad(row.owner, row.scope, row.url)


def _describe(row: TokenRow | BotSecretRow) -> str:
    if isinstance(row, BotSecretRow):
        return f"bot credentials of tracker {row.tenant}/{row.tracker}"
    return f"personal token #{row.id} of {row.owner!r} for {row.url} ({row.scope})"


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise InvalidInputError(f"{what} must be a timezone-aware datetime")


class SealedTokenStore:
    """A :class:`~tokenproviders.stores.TokenStore` that seals every secret with ``keyring``
    and keeps rows in ``backend`` (a :class:`~tokenproviders.stores.rows.RowBackend`).

    :param backend: where the rows live; it never sees a key or a plaintext.
    :param keyring: seals and opens; its keys are checked against the backend's key-check
        values when the store is built (``check_keys=False`` defers that to the first seal).
    :param flush_size: buffered last-used stamps and audit rows written per batch.
    :param flush_interval: seconds after which buffered writes are flushed by the next call
        that buffers one (and always by :meth:`flush`, :meth:`list`, :meth:`close`).
    :param audit_max_rows: keep at most this many audit rows (``None``: no row limit).
    :param audit_max_age: drop audit rows older than this (``None``: no age limit).
    :param clock: the current time (timezone-aware), injectable for tests.
    """

    def __init__(
        self,
        backend: RowBackend,
        keyring: KeyRing,
        *,
        flush_size: int = 1024,
        flush_interval: float = 1.0,
        audit_max_rows: int | None = 100_000,
        audit_max_age: timedelta | None = timedelta(days=90),
        clock: Callable[[], datetime] = _utc_now,
        check_keys: bool = True,
    ) -> None:
        from ..crypto import KeyRing, encode_token_aad

        if not isinstance(keyring, KeyRing):
            raise ConfigurationError("a sealed token store needs a KeyRing: nothing is stored without a key")
        if flush_size < 1:
            raise InvalidInputError("flush_size must be at least 1")
        self.backend = backend
        self.keyring = keyring
        self._token_aad = encode_token_aad
        self.flush_size = flush_size
        self.flush_interval = flush_interval
        self.audit_max_rows = audit_max_rows
        self.audit_max_age = audit_max_age
        self.clock = clock
        self._checked: set[str] = set()
        self._buffer_lock = threading.Lock()
        self._stamps: dict[int, datetime] = {}
        self._audit: list[AuditRow] = []
        self._since: float | None = None
        if check_keys:
            self.check_keys()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.backend).__name__}, sealed with key {self.keyring.primary_id!r})"

    # -- reading (the resolve path) ------------------------------------------------------------
    def _opened(self, row: TokenRow) -> PersonalToken:
        try:
            secret = self.keyring.open_secret(row.secret, self._token_aad(row.owner, row.scope, row.url, SECRET_FIELD))
        except SecretUnreadableError as exc:
            raise SecretUnreadableError(exc.message, hint=exc.hint, key_id=exc.key_id, token=_info(row)) from None
        api_username = row.api_username or None
        return _make_personal_token(
            row.owner,
            row.url,
            row.scope,
            row.id,
            row.label,
            row.expires_at,
            row.created_at,
            row.updated_at,
            row.last_used_at,
            row.version,
            row.key_id,
            api_username,
            _trusted_credentials(secret, api_username),
        )

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
        if not candidates:
            return None
        row = self.backend.lookup(owner, candidates)
        return self._opened(row) if row is not None else None

    def get(self, owner: str, url: str, scope: str) -> PersonalToken | None:
        row = self.backend.get(owner, url, scope)
        return self._opened(row) if row is not None else None

    def info(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        """The token's metadata without opening its secret (works without its key)."""
        self.flush()
        row = self.backend.get(owner, url, scope)
        return _info(row) if row is not None else None

    def rows(self, *, owner: str | None = None, batch_size: int = 1000) -> list[TokenRow]:
        """Every token row (sealed blobs as stored), in id order: for export and copying."""
        self.flush()
        found: list[TokenRow] = []
        after = 0
        while batch := self.backend.scan(after_id=after, limit=batch_size, owner=owner):
            found += batch
            after = batch[-1].id
        return found

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        return sorted((_info(row) for row in self.rows(owner=owner)), key=lambda t: (t.owner, t.url, t.scope))

    def __len__(self) -> int:
        return sum(self.backend.count_by_key().values())

    # -- writing ------------------------------------------------------------------------------
    def put(
        self,
        owner: str,
        url: str,
        scope: str,
        credentials: Credentials,
        *,
        label: str = "",
        expires_at: datetime | None = None,
        now: datetime,
    ) -> TokenInfo:
        if not isinstance(credentials, Credentials):
            raise InvalidInputError("put() takes a Credentials object")
        _aware(now, "now")
        _aware(expires_at, "expires_at")
        keyring = self._sealing_keyring()
        blob = keyring.seal(credentials.api_password, token_aad(owner, scope, url))
        for attempt in range(_CAS_ATTEMPTS):
            current = self.backend.get(owner, url, scope)
            row = TokenRow(
                id=current.id if current else 0,
                owner=owner,
                url=url,
                scope=scope,
                label=label,
                expires_at=expires_at,
                created_at=current.created_at if current else now,
                updated_at=now,
                version=current.version + 1 if current else 1,
                key_id=keyring.primary_id,
                api_username=credentials.api_username,
                secret=blob,
            )
            try:
                stored = self.backend.put(row, expected_version=current.version if current else None)
            except VersionConflict:
                # Another writer got there first: back off a little (jittered), then replace what it wrote.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            logger.debug("stored personal token #%s of %r for %s (%s)", stored.id, owner, url, scope)
            return _info(stored)
        raise StoreError(
            f"the personal token of {owner!r} for {url} ({scope}) kept changing concurrently; nothing was stored",
            hint="try again",
        )

    def delete(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        row = self.backend.delete(owner, url, scope)
        return _info(row) if row is not None else None

    # -- buffered writes ----------------------------------------------------------------------
    def mark_used(self, token_id: int, when: datetime) -> None:
        """Buffered: written by the flush that follows (see ``flush_size``/``flush_interval``)."""
        if when.utcoffset() is None:
            _aware(when, "when")
        with self._buffer_lock:
            previous = self._stamps.get(token_id)
            if previous is None or previous < when:
                self._stamps[token_id] = when
            due = self._due()
        if due:
            self._flush_quietly()

    def record_audit(self, row: AuditRow) -> None:
        """Buffer one audit row (written with the next flush, then pruned by retention)."""
        with self._buffer_lock:
            self._audit.append(row)
            due = self._due()
        if due:
            self._flush_quietly()

    def _due(self) -> bool:
        """Under the buffer lock, after buffering: is a flush due?"""
        now = time.monotonic()
        if self._since is None:
            self._since = now
        return len(self._stamps) + len(self._audit) >= self.flush_size or now - self._since >= self.flush_interval

    def _flush_quietly(self) -> None:
        # On the resolve path: a failed flush keeps its rows for the next one, never raises.
        try:
            self.flush()
        except StoreError as exc:
            logger.warning("could not write last-used times and audit rows yet: %s", exc.message)

    def flush(self) -> None:
        """Write buffered stamps and audit rows now (each one batch), then apply retention."""
        with self._buffer_lock:
            stamps, self._stamps = self._stamps, {}
            audit, self._audit = self._audit, []
            self._since = None
        try:
            if stamps:
                self.backend.write_stamps(stamps)
                stamps = {}
            if audit:
                self.backend.append_audit(audit)
                audit = []
                self.prune_audit()
        except BaseException:
            with self._buffer_lock:  # put back what was not written
                for token_id, when in stamps.items():
                    if self._stamps.get(token_id, when) <= when:
                        self._stamps[token_id] = when
                self._audit[:0] = audit
            raise

    def prune_audit(self) -> int:
        """Apply the retention limits to the stored audit rows; return how many were deleted."""
        if self.audit_max_rows is None and self.audit_max_age is None:
            return 0
        before = self.clock() - self.audit_max_age if self.audit_max_age is not None else None
        return self.backend.prune_audit(max_rows=self.audit_max_rows, before=before)

    def close(self) -> None:
        """Flush buffered writes and close the backend (idempotent)."""
        try:
            self.flush()
        finally:
            self.backend.close()

    # -- keys ---------------------------------------------------------------------------------
    def _sealing_keyring(self) -> KeyRing:
        """The key ring, once its primary key's check value is recorded in the backend."""
        if self.keyring.primary_id not in self._checked:
            self.check_keys()
        return self.keyring

    def check_keys(self) -> dict[str, str]:
        """Check the key ring against the key-check values the backend recorded.

        Records keys seen for the first time. Returns ``{key_id: "ok" | "recorded" |
        "retired"}``. Raises :class:`KeyMismatchError` when a key differs from the one recorded
        under its id (or the ring shares no key with the store), and
        :class:`ConfigurationError` when the primary key was retired here."""
        keyring = self.keyring
        recorded = {row.key_id: row for row in self.backend.key_checks()}
        status: dict[str, str] = {}
        for key_id, row in recorded.items():
            if row.retired_at is not None:
                if key_id == keyring.primary_id:
                    raise ConfigurationError(
                        f"the primary key {key_id!r} was retired in the token store",
                        hint="make another key primary (add a new key), then rotate",
                    )
                keyring.retire(key_id)
                status[key_id] = "retired"
        new: list[str] = []
        for key_id in keyring.key_ids:
            if key_id in recorded:
                self._compare(key_id, recorded[key_id].check_value)
                status[key_id] = "ok"
            else:
                new.append(key_id)
        live = {key_id for key_id, row in recorded.items() if row.retired_at is None}
        if new and live and not (live & set(keyring.key_ids)):
            # A ring sharing no key with the store is the wrong key file, not a rotation.
            raise KeyMismatchError(
                f"the key ring ({keyring.source}) has none of the keys the token store was sealed with"
                f" ({', '.join(sorted(live))})",
                hint="load the key file that belongs to this store; add new keys beside the old ones",
            )
        now = self.clock()
        for key_id in new:
            # The backend returns the recorded row: another process may have won with another key.
            row = self.backend.add_key_check(KeyCheckRow(key_id, keyring.check_value(key_id), now))
            self._compare(key_id, row.check_value)
            status[key_id] = "recorded"
        return status

    def _compare(self, key_id: str, recorded: bytes) -> None:
        if not hmac.compare_digest(self.keyring.check_value(key_id), bytes(recorded)):
            raise KeyMismatchError(
                f"key {key_id!r} of the key ring ({self.keyring.source}) is not the key the token store"
                " recorded under that id"
            )
        self._checked.add(key_id)

    def key_status(self) -> dict[str, int]:
        """How many sealed rows each key id seals; keys of the ring that seal nothing show 0."""
        counts: dict[str, int] = dict.fromkeys(self.keyring.key_ids, 0)
        for key_id, rows in self.backend.count_by_key().items():
            counts[key_id] = counts.get(key_id, 0) + rows
        return counts

    def retire_key(self, key_id: str) -> None:
        """Retire a key: refused while any row is sealed under it, or if it is the primary.
        The store remembers the id as retired; delete the key from the key file afterwards."""
        keyring = self.keyring
        if key_id == keyring.primary_id:
            raise KeyInUseError(
                f"key {key_id!r} is the primary key and cannot be retired",
                hint="add a new primary key, rotate, then retire this one",
            )
        check = keyring.check_value(key_id) if key_id in keyring else b""
        now = self.clock()
        used = self.backend.retire_key(key_id, check, now)
        if used:
            self.record_audit(
                AuditRow(0, now, "key.retire", "refused", detail=f"key {key_id} still seals {used} row(s)")
            )
            self.flush()
            raise KeyInUseError(f"key {key_id!r} still seals {used} row(s) and cannot be retired")
        self.record_audit(AuditRow(0, now, "key.retire", "ok", detail=f"key {key_id} retired"))
        self.flush()
        keyring.retire(key_id)
        logger.info("retired key %r", key_id)

    def rotate(
        self,
        batch_size: int = 1000,
        progress: Callable[[RotationProgress], None] | None = None,
        *,
        allow_unsaved_primary: bool = False,
    ) -> RotationReport:
        """Re-seal every row not under the primary key, under the primary key.

        One backend transaction per batch of ``batch_size`` rows; each row is replaced only if
        its blob is still the one read (compare-and-swap), so a concurrent ``put`` is never
        overwritten. Safe to interrupt: committed batches stay done and a re-run continues with
        the rest. ``progress`` is called after every batch. Rows that cannot be opened are
        counted as failed and left as they are. Refused while the primary key exists only in
        this process's memory (see :attr:`KeyRing.unsaved_ids`) unless ``allow_unsaved_primary``.
        """
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        keyring = self.keyring
        if keyring.primary_id in keyring.unsaved_ids and not allow_unsaved_primary:
            raise ConfigurationError(
                f"the primary key {keyring.primary_id!r} was added to the key ring ({keyring.source}) but"
                " never saved: re-sealing every row under it would leave them readable only while this"
                " process lives, so nothing was re-sealed",
                hint="write the key file first: keyring.write_key_file(path, replace=True) (or store the key"
                " where the key ring is loaded from, then keyring.mark_saved()), and rotate again",
            )
        self.check_keys()
        primary = keyring.primary_id
        started = time.monotonic()
        before = self.key_status()
        total = sum(rows for key_id, rows in before.items() if key_id != primary)
        failures: list[str] = []
        counts = [0, 0, 0]  # processed, failed, conflicts

        def reseal(rows: Sequence[TokenRow | BotSecretRow], replace: Callable[[Sequence[SecretUpdate]], int]) -> None:
            updates: list[SecretUpdate] = []
            for row in rows:
                aad = _aad_of(row)
                try:
                    blob = keyring.seal(keyring.open_secret(row.secret, aad), aad)
                except SecretUnreadableError as exc:
                    counts[1] += 1
                    if len(failures) < _MAX_FAILURES:
                        failures.append(f"{_describe(row)}: {exc.message}")
                    continue
                updates.append(SecretUpdate(row.id, row.secret, blob, primary))
            if updates:
                changed = replace(updates)
                counts[0] += changed
                counts[2] += len(updates) - changed
            if progress is not None:
                progress(RotationProgress(counts[0], counts[1], max(total - sum(counts), 0)))

        after = 0
        while batch := self.backend.scan(after_id=after, limit=batch_size, key_id_not=primary):
            after = batch[-1].id
            reseal(batch, self.backend.replace_secrets)
        if isinstance(self.backend, BotSecretRows):
            after = 0
            while bots := self.backend.scan_bot_secrets(after_id=after, limit=batch_size, key_id_not=primary):
                after = bots[-1].id
                reseal(bots, self.backend.replace_bot_secrets)
        processed, failed, conflicts = counts
        after_status = self.key_status()
        remaining = sum(rows for key_id, rows in after_status.items() if key_id != primary)
        if total or failed or processed:  # a run that had nothing to do leaves no trace
            self.record_audit(
                AuditRow(
                    0,
                    self.clock(),
                    "key.rotate",
                    "unreadable" if failed else "ok",
                    detail=f"{processed} row(s) re-sealed under key {primary}, {failed} failed,"
                    f" {conflicts} changed concurrently, {remaining} remaining",
                )
            )
            self.flush()
        logger.info(
            "rotation to key %r: %d re-sealed, %d failed, %d conflicts, %d remaining",
            primary,
            processed,
            failed,
            conflicts,
            remaining,
        )
        return RotationReport(
            primary=primary,
            processed=processed,
            failed=failed,
            conflicts=conflicts,
            remaining=remaining,
            seconds=time.monotonic() - started,
            before=before,
            after=after_status,
            failures=tuple(failures),
        )
