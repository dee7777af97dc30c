"""An in-memory token store: fast, thread-safe, gone when the process ends.

:class:`MemoryRows` is the row backend (:mod:`tokenproviders.stores.rows`) held in dicts;
:class:`MemoryTokenStore` is the sealing layer over it
(:class:`~tokenproviders.stores.sealed.SealedTokenStore`), so memory seals exactly as every
other store does (same blob format, same associated data, same key checks and rotation) and
opens only the winner of a lookup. Without a key ring it seals with an ephemeral key that lives
as long as the store and is never written anywhere.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .rows import AuditRow, KeyCheckRow, KeyRetired, SecretUpdate, TokenRow, VersionConflict
from .sealed import SealedTokenStore, _utc_now

if TYPE_CHECKING:
    from ..crypto import KeyRing

__all__ = ["MemoryTokenStore", "MemoryRows"]

_Key = tuple[str, str, str]


class MemoryRows:
    """A :class:`~tokenproviders.stores.rows.RowBackend` in dicts, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[_Key, TokenRow] = {}
        self._key_of: dict[int, _Key] = {}
        self._used: dict[int, datetime] = {}
        self._ids = itertools.count(1)
        self._checks: dict[str, KeyCheckRow] = {}
        self._audit: list[AuditRow] = []
        self._audit_ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"MemoryRows({len(self._rows)} tokens)"

    # -- tokens --------------------------------------------------------------------------------
    def _with_stamp(self, row: TokenRow) -> TokenRow:
        used = self._used.get(row.id)
        return row if used is None else replace(row, last_used_at=used)

    def get(self, owner: str, url: str, scope: str) -> TokenRow | None:
        row = self._rows.get((owner, url, scope))
        return self._with_stamp(row) if row is not None else None

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> TokenRow | None:
        rows = self._rows
        for url, scope in candidates:
            row = rows.get((owner, url, scope))
            if row is not None:
                return self._with_stamp(row)
        return None

    def _refuse_retired(self, key_id: str) -> None:
        check = self._checks.get(key_id)
        if check is not None and check.retired_at is not None:
            raise KeyRetired(key_id)

    def put(self, row: TokenRow, *, expected_version: int | None) -> TokenRow:
        key = (row.owner, row.url, row.scope)
        with self._lock:
            self._refuse_retired(row.key_id)
            current = self._rows.get(key)
            if expected_version is None:
                if current is not None:
                    raise VersionConflict(current=current)
                stored = replace(row, id=next(self._ids), version=1, last_used_at=None)
            else:
                if current is None or current.version != expected_version:
                    raise VersionConflict(current=current)
                stored = replace(
                    row, id=current.id, created_at=current.created_at, version=current.version + 1, last_used_at=None
                )
            self._rows[key] = stored
            self._key_of[stored.id] = key
            return self._with_stamp(stored)

    def delete(self, owner: str, url: str, scope: str, *, expected_version: int | None = None) -> TokenRow | None:
        key = (owner, url, scope)
        with self._lock:
            current = self._rows.get(key)
            if current is None:
                return None
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(current=current)
            del self._rows[key]
            self._key_of.pop(current.id, None)
            used = self._used.pop(current.id, None)
        return current if used is None else replace(current, last_used_at=used)

    def scan(
        self, *, after_id: int = 0, limit: int = 1000, owner: str | None = None, key_id_not: str | None = None
    ) -> list[TokenRow]:
        with self._lock:
            rows = [
                row
                for row in self._rows.values()
                if row.id > after_id
                and (owner is None or row.owner == owner)
                and (key_id_not is None or row.key_id != key_id_not)
            ]
            rows.sort(key=lambda row: row.id)
            return [self._with_stamp(row) for row in rows[:limit]]

    def replace_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        changed = 0
        with self._lock:
            for update in updates:
                self._refuse_retired(update.key_id)
            for update in updates:
                key = self._key_of.get(update.id)
                current = self._rows.get(key) if key is not None else None
                if key is not None and current is not None and current.secret == update.old_secret:
                    self._rows[key] = replace(current, secret=update.new_secret, key_id=update.key_id)
                    changed += 1
        return changed

    def count_by_key(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for row in self._rows.values():
                counts[row.key_id] = counts.get(row.key_id, 0) + 1
        return counts

    # -- key checks ----------------------------------------------------------------------------
    def key_checks(self) -> list[KeyCheckRow]:
        with self._lock:
            return list(self._checks.values())

    def add_key_check(self, row: KeyCheckRow) -> KeyCheckRow:
        with self._lock:
            return self._checks.setdefault(row.key_id, row)

    def retire_key(self, key_id: str, check_value: bytes, when: datetime) -> int:
        with self._lock:
            used = sum(1 for row in self._rows.values() if row.key_id == key_id)
            if used:
                return used
            current = self._checks.get(key_id)
            if current is None:
                self._checks[key_id] = KeyCheckRow(key_id, check_value, when, when)
            elif current.retired_at is None:
                self._checks[key_id] = replace(current, retired_at=when)
            return 0

    # -- stamps and audit ----------------------------------------------------------------------
    def write_stamps(self, stamps: Mapping[int, datetime]) -> None:
        with self._lock:
            used = self._used
            for token_id, when in stamps.items():
                if token_id in self._key_of:
                    previous = used.get(token_id)
                    if previous is None or previous < when:
                        used[token_id] = when

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        with self._lock:
            self._audit.extend(replace(row, id=next(self._audit_ids)) for row in rows)

    def scan_audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        with self._lock:
            return [row for row in self._audit if row.id > after_id][:limit]

    def prune_audit(self, *, max_rows: int | None, before: datetime | None) -> int:
        with self._lock:
            kept = [row for row in self._audit if before is None or row.at >= before]
            if max_rows is not None and len(kept) > max_rows:
                kept = kept[len(kept) - max_rows :]
            deleted = len(self._audit) - len(kept)
            self._audit = kept
            return deleted

    def close(self) -> None:
        pass


class MemoryTokenStore(SealedTokenStore):
    """The sealing layer over :class:`MemoryRows`.

    :param keyring: seal secrets with it; ``None`` seals with an ephemeral key generated here,
        which is never written anywhere (so nothing is ever kept unsealed, even in memory).

    Last-used stamps are written at once (a dict update costs less than buffering it).
    """

    def __init__(
        self,
        *,
        keyring: KeyRing | None = None,
        audit_max_rows: int | None = 100_000,
        audit_max_age: timedelta | None = timedelta(days=90),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if keyring is None:
            from ..crypto import KeyRing

            keyring = KeyRing.generate("ephemeral")
        super().__init__(
            MemoryRows(),
            keyring,
            flush_size=1,
            audit_max_rows=audit_max_rows,
            audit_max_age=audit_max_age,
            clock=clock,
        )

    def __len__(self) -> int:
        assert isinstance(self.backend, MemoryRows)
        return len(self.backend)

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self)} tokens, sealed with key {self.keyring.primary_id!r})"
