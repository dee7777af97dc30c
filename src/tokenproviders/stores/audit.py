"""The audit trail: every action, refusal and admin change, in the token database, never a secret.

:meth:`AuditLog.observer` returns a plugin whose ``tokenproviders_audit`` hook records each
:class:`~tokenproviders.AuditEvent` of a resolver: resolve, verify, report and comment, and
personal tokens set and deleted, each with its outcome (``ok``, ``refused``, ``rejected``,
``unavailable``, or the kind of error), also when it failed. The database's own admin changes
(tenants, memberships and trackers changed through
:class:`~tokenproviders.stores.sqlite_directory.SQLiteDirectory`, keys rotated and retired) are
written into the same trail by the database itself, in the transaction that makes the change,
whether or not the observer is registered. Each entry says when (UTC, to the microsecond), what,
how it ended, for which user, tenant and tracker, with which credentials (source, personal
token id, scope and matched URL, never a secret), by whom (``principal``) and as part of which
user action (``correlation_id``), both from :func:`tokenproviders.acting`.

Events from the resolver are buffered and written in batches so the resolve path stays fast and
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
    db.audit.query(outcome="refused")
    db.audit.query(correlation_id=request_id)   # every call of one user action
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..audit import AuditEvent, current_acting
from ..errors import ConfigurationError, InvalidInputError
from ..model import Resolution
from ..plugins import hookimpl
from ._sqlite_base import AUDIT_COLUMNS, AUDIT_INSERT, SQLiteCore, to_db_time

__all__ = ["AuditLog", "AuditEntry", "AuditObserver", "record_change"]

_COLUMNS = "id, " + ", ".join(AUDIT_COLUMNS)


@dataclass(frozen=True)
class AuditEntry:
    """One recorded :class:`~tokenproviders.AuditEvent`, with its id in the trail.

    The fields mean what the event's do. ``token_id``, ``scope`` and ``matched_url`` are set
    for personal tokens; ``fallback_from`` says why a personal token was skipped, if one was.
    Entries written before schema version 3 are successful resolutions (``action="resolve"``,
    ``outcome="ok"``) without principal or correlation id.
    """

    id: int
    at: datetime
    user: str | None
    tenant: str | None
    tracker: str | None
    source: str | None
    token_id: int | None = None
    scope: str | None = None
    matched_url: str | None = None
    fallback_from: str | None = None
    action: str = "resolve"
    outcome: str = "ok"
    principal: str | None = None
    correlation_id: str | None = None
    error: str | None = None
    detail: str | None = None


def _row(event: AuditEvent) -> tuple[Any, ...]:
    """The event as a row of ``AUDIT_COLUMNS``."""
    return (
        to_db_time(event.at),
        event.action,
        event.outcome,
        event.user,
        event.tenant,
        event.tracker,
        event.source,
        event.token_id,
        event.scope,
        event.matched_url,
        event.fallback_from,
        event.principal,
        event.correlation_id,
        event.error,
        event.detail,
    )


def record_change(core: SQLiteCore, conn: sqlite3.Connection, action: str, **fields: Any) -> None:
    """Inside the write transaction that makes an admin change: write its audit entry (with
    the principal and correlation id of the current :func:`~tokenproviders.acting` block) and
    apply the retention limits. The change and its entry are committed, or rolled back, together."""
    acting_now = current_acting()
    if acting_now is not None:
        fields.setdefault("principal", acting_now.principal)
        fields.setdefault("correlation_id", acting_now.correlation_id)
    fields.setdefault("outcome", "ok")
    event = AuditEvent(action=action, at=core.clock(), **fields)
    conn.execute(AUDIT_INSERT, _row(event))
    for hook in core.before_flush:
        hook(conn)


class AuditObserver:
    """The plugin object that records audit events into an :class:`AuditLog`."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def __repr__(self) -> str:
        return f"AuditObserver({self.log!r})"

    @hookimpl
    def tokenproviders_audit(self, event: AuditEvent) -> None:
        self.log.record(event)


class AuditLog:
    """Audit events recorded in the token database, with bounded retention and a query API."""

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

    def record(self, event: AuditEvent | Resolution) -> None:
        """Buffer one event (written with the next flush). A
        :class:`~tokenproviders.Resolution` is recorded as a successful ``resolve``."""
        if isinstance(event, Resolution):
            tracker = event.tracker
            acting_now = current_acting()
            event = AuditEvent(
                "resolve",
                "ok",
                self._core.clock(),
                user=event.user,
                tenant=tracker.tenant,
                tracker=tracker.id,
                source=event.source,
                token_id=event.token_id,
                scope=event.scope,
                matched_url=event.matched_url,
                fallback_from=event.fallback_from,
                principal=acting_now.principal if acting_now is not None else None,
                correlation_id=acting_now.correlation_id if acting_now is not None else None,
            )
        elif not isinstance(event, AuditEvent):
            raise InvalidInputError(f"record() takes an AuditEvent, not {type(event).__name__}")
        self._core.buffer_audit(_row(event))

    def record_change(self, action: str, *, outcome: str = "ok", **fields: Any) -> None:
        """Write the entry of an admin change now, in its own transaction: for changes made
        outside the database, such as a key added to a key file (``action="key.generate"``).
        ``fields`` are those of :class:`~tokenproviders.AuditEvent`; principal and correlation
        id default to those of the current :func:`~tokenproviders.acting` block."""
        self._core.write(
            lambda conn: record_change(self._core, conn, action, outcome=outcome, **fields),
            "record an admin change in the audit trail",
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
        *,
        action: str | None = None,
        outcome: str | None = None,
        principal: str | None = None,
        correlation_id: str | None = None,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first (by the time of the event, so an
        entry buffered before a later one was written directly still comes before it), at most
        ``limit``.

        ``since`` is inclusive and ``until`` exclusive (timezone-aware datetimes). ``action``
        and ``outcome`` take the words of :data:`~tokenproviders.audit.ACTIONS` and
        :data:`~tokenproviders.audit.OUTCOMES`; ``correlation_id`` finds every call of one user
        action.
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
            ("action", action),
            ("outcome", outcome),
            ("principal", principal),
            ("correlation_id", correlation_id),
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
        sql = f"SELECT {_COLUMNS} FROM audit{where} ORDER BY at DESC, id DESC LIMIT ?"  # noqa: S608 - values bound
        rows = self._core.read(sql, (*params, limit))
        return [_entry(row) for row in rows]


def _entry(row: Any) -> AuditEntry:
    (entry_id, at, action, outcome, user, tenant, tracker, source, token_id, scope, matched_url, fallback_from,
     principal, correlation_id, error, detail) = row  # fmt: skip
    return AuditEntry(
        id=entry_id,
        at=datetime.fromisoformat(at),
        user=user,
        tenant=tenant,
        tracker=tracker,
        source=source,
        token_id=token_id,
        scope=scope,
        matched_url=matched_url,
        fallback_from=fallback_from,
        action=action,
        outcome=outcome,
        principal=principal,
        correlation_id=correlation_id,
        error=error,
        detail=detail,
    )
