"""The row protocol: what a token-store backend implements (memory, SQLite, PostgreSQL, an ORM).

A backend stores and queries plain rows. It never sees a key or a plaintext secret: the one
sealing layer (:class:`tokenproviders.stores.sealed.SealedTokenStore`) builds the associated
data, seals and opens, checks expiry and keys, rotates, and decides when buffered last-used
stamps and audit rows are written. A backend only writes what it is handed, in one transaction
per call, and reports a lost race instead of hiding it.

Times are timezone-aware :class:`~datetime.datetime` objects; a backend may store them in any
form that gives them back equal (to the microsecond).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError, StoreError

__all__ = [
    "TokenRow",
    "KeyCheckRow",
    "AuditRow",
    "SecretUpdate",
    "VersionConflict",
    "KeyRetired",
    "TokenRows",
    "KeyCheckRows",
    "StampRows",
    "AuditRows",
    "RowBackend",
    "BotSecretRow",
    "BotSecretRows",
]


@dataclass(frozen=True, slots=True)
class TokenRow:
    """One personal token as a backend keeps it. ``secret`` is the sealed blob of the
    ``api_password``; ``last_used_at`` comes from the stamps structure (read-only here: a put
    never writes it). ``id`` is assigned by the backend on insert (give 0) and never reused."""

    id: int
    owner: str
    url: str
    scope: str
    label: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    key_id: str
    api_username: str | None
    secret: bytes
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BotSecretRow:
    """A tracker's sealed bot credential with what it is bound to (for rotation)."""

    id: int
    tenant: str
    tracker: str
    base_url: str
    api_url: str | None
    key_id: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class KeyCheckRow:
    """A key id's check value as recorded (``KeyRing.check_value``), and when it was retired."""

    key_id: str
    check_value: bytes
    added_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit entry; never holds a secret. ``id`` is assigned by the backend (give 0)."""

    id: int
    at: datetime
    action: str
    outcome: str
    user: str | None = None
    tenant: str | None = None
    tracker: str | None = None
    source: str | None = None
    token_id: int | None = None
    scope: str | None = None
    matched_url: str | None = None
    fallback_from: str | None = None
    principal: str | None = None
    correlation_id: str | None = None
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SecretUpdate:
    """A re-sealed blob for row ``id``, to be written only if the row still holds ``old_secret``."""

    id: int
    old_secret: bytes
    new_secret: bytes
    key_id: str


class VersionConflict(StoreError):
    """A compare-and-swap write found another version than expected (a concurrent writer won)."""

    def __init__(self, message: str = "the row was changed concurrently", *, current: TokenRow | None = None) -> None:
        super().__init__(message)
        self.current = current


class KeyRetired(ConfigurationError):
    """A write sealed under a key the backend has recorded as retired; nothing was written."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"key {key_id!r}, the primary key of this key ring, was retired in the token store after the key"
            " ring was loaded; nothing was stored",
            hint="reload the key ring (its key file or provider now names a newer primary key)",
        )
        self.key_id = key_id


@runtime_checkable
class TokenRows(Protocol):
    """Personal-token rows, unique on ``(owner, url, scope)``."""

    def get(self, owner: str, url: str, scope: str) -> TokenRow | None:
        """The row at exactly this key, with its ``last_used_at``, or ``None``."""
        ...

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> TokenRow | None:
        """The row of the first existing ``(url, scope)`` candidate (best first), in one query
        (the resolve path: one indexed read), or ``None``."""
        ...

    def put(self, row: TokenRow, *, expected_version: int | None) -> TokenRow:
        """Write ``row`` in one transaction and return it as stored. ``expected_version=None``
        inserts (a new id, version 1); raises :class:`VersionConflict` if the key exists.
        Otherwise replaces the row only if its version is still ``expected_version`` (keeping
        id and ``created_at``, version + 1), else raises :class:`VersionConflict` (also if the
        row is gone). Raises :class:`KeyRetired` if ``row.key_id`` is recorded as retired."""
        ...

    def delete(self, owner: str, url: str, scope: str, *, expected_version: int | None = None) -> TokenRow | None:
        """Remove the row (only at ``expected_version`` if given, else :class:`VersionConflict`)
        and its stamp; return what was removed, or ``None`` if there was none."""
        ...

    def scan(
        self, *, after_id: int = 0, limit: int = 1000, owner: str | None = None, key_id_not: str | None = None
    ) -> list[TokenRow]:
        """Up to ``limit`` rows with ``id > after_id`` in id order, optionally only ``owner``'s
        or only those not sealed under ``key_id_not`` (rotation, listing, export)."""
        ...

    def replace_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        """Re-sealed blobs, in one transaction: each row whose ``secret`` is still
        ``old_secret`` gets ``new_secret`` and ``key_id`` (its version is unchanged); return how
        many rows changed. Raises :class:`KeyRetired` like :meth:`put`."""
        ...

    def count_by_key(self) -> dict[str, int]:
        """How many sealed rows (tokens, and bot credentials if the backend holds a directory)
        each key id seals."""
        ...


@runtime_checkable
class KeyCheckRows(Protocol):
    """Key-check values (meta rows): which key was first used under each key id."""

    def key_checks(self) -> list[KeyCheckRow]:
        """Every recorded key id."""
        ...

    def add_key_check(self, row: KeyCheckRow) -> KeyCheckRow:
        """Record ``row`` unless its key id is recorded already; return the recorded row
        (the caller compares check values, so two processes racing both see the winner)."""
        ...

    def retire_key(self, key_id: str, check_value: bytes, when: datetime) -> int:
        """In one transaction: if any sealed row uses ``key_id`` change nothing and return their
        count; else record ``key_id`` as retired at ``when`` (adding it if unknown) and return 0."""
        ...


@runtime_checkable
class StampRows(Protocol):
    """Last-used times in a narrow structure keyed by token id, written in batches."""

    def write_stamps(self, stamps: Mapping[int, datetime]) -> None:
        """In one transaction, set each token's last-used time to the later of the stored and
        the given time; stamps of tokens that no longer exist are dropped. Costs O(len(stamps))."""
        ...


@runtime_checkable
class AuditRows(Protocol):
    """The audit trail: appended in batches, read in id order, pruned by retention."""

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Append ``rows`` in one transaction (ids assigned in order, never reused)."""
        ...

    def scan_audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        """Up to ``limit`` entries with ``id > after_id``, in id order."""
        ...

    def prune_audit(self, *, max_rows: int | None, before: datetime | None) -> int:
        """Delete entries older than ``before`` and all but the newest ``max_rows``; return how
        many were deleted."""
        ...


@runtime_checkable
class BotSecretRows(Protocol):
    """A backend that also keeps a directory's sealed bot credentials: rotation covers them."""

    def scan_bot_secrets(
        self, *, after_id: int = 0, limit: int = 1000, key_id_not: str | None = None
    ) -> list[BotSecretRow]:
        """Up to ``limit`` sealed bot credentials with ``id > after_id`` in id order."""
        ...

    def replace_bot_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        """Like :meth:`TokenRows.replace_secrets`, for bot credentials."""
        ...


@runtime_checkable
class RowBackend(TokenRows, KeyCheckRows, StampRows, AuditRows, Protocol):
    """Everything :class:`~tokenproviders.stores.sealed.SealedTokenStore` needs from a backend."""

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...
