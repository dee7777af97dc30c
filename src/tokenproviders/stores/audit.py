"""The audit trail: every resolution, recorded in the token database, never a secret.

:meth:`AuditLog.observer` returns a plugin whose ``tokenproviders_resolved`` hook records each
resolution: when, which user, tenant, tracker and source, and which personal token (id, scope,
matched URL), plus why a personal token was skipped under a fallback policy. Credentials are
never read. Entries are buffered and written in batches so the resolve path stays fast and
never waits for another process's write lock (see
:class:`~tokenproviders.stores.sqlite.SQLiteDatabase`'s ``flush_size`` and ``flush_interval``,
and ``tokenproviders.stores._sqlite_base`` for the details): a timer writes them within
``flush_interval`` seconds even when the process goes idle, and they are written at interpreter
exit; a process killed outright loses at most its last ``flush_interval`` seconds. While the
database cannot be written, at most 100,000 entries wait; beyond that the oldest are dropped
with a logged warning that counts them. Retention is bounded by row count and/or age and
applied on every write. Obtain it as ``SQLiteDatabase(...).audit``::

    resolver.plugins.register(db.audit.observer())
    db.audit.query(user="alice", since=datetime(2024, 5, 1, tzinfo=timezone.utc))
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import ConfigurationError, InvalidInputError
from ..model import Resolution
from ..plugins import hookimpl
from ._sqlite_base import SQLiteCore, to_db_time

__all__ = ["AuditLog", "AuditEntry", "AuditObserver"]

_COLUMNS = "id, at, user, tenant, tracker, source, token_id, scope, matched_url, fallback_from"


@dataclass(frozen=True)
class AuditEntry:
    """One recorded resolution. ``token_id``, ``scope`` and ``matched_url`` are set for personal
    tokens; ``fallback_from`` says why a personal token was skipped, if one was."""

    id: int
    at: datetime
    user: str
    tenant: str
    tracker: str
    source: str
    token_id: int | None = None
    scope: str | None = None
    matched_url: str | None = None
    fallback_from: str | None = None


class AuditObserver:
    """The plugin object that records resolutions into an :class:`AuditLog`."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def __repr__(self) -> str:
        return f"AuditObserver({self.log!r})"

    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution) -> None:
        self.log.record(resolution)


class AuditLog:
    """Resolutions recorded in the token database, with bounded retention and a query API."""

    def __init__(
        self,
        core: SQLiteCore,
        *,
        max_rows: int | None = 100_000,
        max_age: timedelta | None = timedelta(days=90),
    ) -> None:
        if max_rows is None and max_age is None:
            raise ConfigurationError("the audit trail needs a retention limit: max_rows, max_age or both")
        if max_rows is not None and max_rows < 1:
            raise ConfigurationError("audit max_rows must be at least 1")
        if max_age is not None and max_age <= timedelta(0):
            raise ConfigurationError("audit max_age must be positive")
        self._core = core
        self.max_rows = max_rows
        self.max_age = max_age
        core.before_flush.append(self._prune)

    def __repr__(self) -> str:
        return f"AuditLog({self._core.path!r}, max_rows={self.max_rows}, max_age={self.max_age})"

    def observer(self) -> AuditObserver:
        """A plugin to register: ``resolver.plugins.register(db.audit.observer())``."""
        return AuditObserver(self)

    def record(self, resolution: Resolution) -> None:
        """Buffer one resolution (written with the next flush)."""
        tracker = resolution.tracker
        self._core.buffer_audit(
            (
                to_db_time(self._core.clock()),
                resolution.user,
                tracker.tenant,
                tracker.id,
                resolution.source,
                resolution.token_id,
                resolution.scope,
                resolution.matched_url,
                resolution.fallback_from,
            )
        )

    def flush(self) -> None:
        self._core.flush()

    def _prune(self, conn: sqlite3.Connection) -> int:
        removed = 0
        if self.max_age is not None:
            cutoff = to_db_time(self._core.clock() - self.max_age)
            removed += conn.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount
        if self.max_rows is not None:
            removed += conn.execute(
                "DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?", (self.max_rows,)
            ).rowcount
        return removed

    def prune(self) -> int:
        """Apply the retention limits now; returns how many entries were removed."""
        self._core.flush()
        removed: int = self._core.write(self._prune, "prune the audit trail")
        return removed

    def count(self) -> int:
        """How many entries are kept (after flushing buffered ones)."""
        self._core.flush()
        return int(self._core.read_one("SELECT count(*) FROM audit")[0])

    def query(
        self,
        user: str | None = None,
        tenant: str | None = None,
        tracker: str | None = None,
        source: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        token_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first, at most ``limit``.

        ``since`` is inclusive and ``until`` exclusive (timezone-aware datetimes).
        """
        if not isinstance(limit, int) or limit < 1:
            raise InvalidInputError("limit must be a positive integer")
        self._core.flush()
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("user", user),
            ("tenant", tenant),
            ("tracker", tracker),
            ("source", source),
            ("token_id", token_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(to_db_time(since))
        if until is not None:
            clauses.append("at < ?")
            params.append(to_db_time(until))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._core.read(f"SELECT {_COLUMNS} FROM audit{where} ORDER BY id DESC LIMIT ?", (*params, limit))  # noqa: S608 - constant SQL, values bound
        return [
            AuditEntry(row[0], datetime.fromisoformat(row[1]), *row[2:]) for row in rows
        ]
