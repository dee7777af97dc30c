"""The embedded default store: personal tokens, a directory and an audit trail in one SQLite file.

::

    from tokenproviders import Resolver
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    with SQLiteDatabase("tokens.db", KeyRing.load(key_file="keys.json")) as db:
        resolver = Resolver(directory=db.directory, store=db.tokens)
        resolver.plugins.register(db.audit.observer())
        ...

:class:`SQLiteDatabase` opens (and creates whole, mode 0600, or migrates) the file and exposes
``.tokens`` (a :class:`SQLiteTokenStore`, the :class:`~tokenproviders.stores.TokenStore`),
``.directory`` (a :class:`~tokenproviders.stores.sqlite_directory.SQLiteDirectory`) and
``.audit`` (an :class:`~tokenproviders.stores.audit.AuditLog`), plus key management: ``rotate``,
``key_status``, ``retire_key`` and ``check_keys``. Every secret in it is sealed by the key ring
(:mod:`tokenproviders.crypto`); the file never holds one in the clear. The tokens are the one
sealing layer (:class:`~tokenproviders.stores.sealed.SealedTokenStore`) over
:class:`SQLiteRows`, which only stores and queries rows; rotation and key status cover the
directory's bot credentials too.

The schema (``PRAGMA user_version`` is its version; ``dump()`` returns the same rows)::

    keys(key_id, check_value, added_at, retired_at)
    tokens(id, owner, url, scope, label, expires_at, created_at, updated_at, last_used_at,
           version, key_id, api_username, secret)            UNIQUE (owner, url, scope)
    tenants(id, name, created_at)
    members(user, tenant, added_at)                         PRIMARY KEY (user, tenant)
    trackers(row_id, tenant, id, type, base_url, api_url, name, options, verify_tls, ca_bundle,
             bot_username, bot_secret, key_id, created_at, updated_at, bound_urls)
                                                            UNIQUE (tenant, id)
    audit(id, at, action, outcome, user, tenant, tracker, source, token_id, scope, matched_url,
          fallback_from, principal, correlation_id, error, detail)

Token ids are ``AUTOINCREMENT`` (schema version 2): an id is never given to another token after
its token is deleted, so audit entries that name it stay unambiguous; audit entry ids neither
(schema version 3). Times are UTC ISO-8601 text
with microseconds. ``secret`` and ``bot_secret`` are sealed blobs.
To compare a database before and after an operation from a shell:
``sqlite3 tokens.db .dump`` (or ``SQLiteDatabase.dump()`` in Python).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final

from ..audit import current_acting
from ..crypto import KeyRing
from ..errors import InvalidInputError, MissingKeyError, StoreError
from ..model import Credentials, PersonalToken, TokenInfo
from ._sqlite_base import (
    AUDIT_COLUMNS,
    AUDIT_INSERT,
    SCHEMA_VERSION,
    TABLES,
    SQLiteCore,
    from_db_time,
    to_db_time,
    utc_now,
)
from .audit import AuditEntry, AuditLog
from .rows import AuditRow, BotSecretRow, KeyCheckRow, SecretUpdate, TokenRow, VersionConflict
from .sealed import RotationProgress, RotationReport, SealedTokenStore, _info, token_aad
from .sqlite_directory import SQLiteDirectory

__all__ = [
    "SQLiteDatabase",
    "SQLiteTokenStore",
    "SQLiteRows",
    "SQLiteDirectory",
    "AuditLog",
    "AuditEntry",
    "RotationProgress",
    "RotationReport",
    "SCHEMA_VERSION",
]

logger = logging.getLogger("tokenproviders.stores.sqlite")

_COLUMNS: Final = (
    "owner, url, scope, id, label, expires_at, created_at, updated_at, last_used_at, version, key_id, api_username"
)
_LOOKUP_COLUMNS: Final = (
    "id, label, expires_at, created_at, updated_at, last_used_at, version, key_id, api_username, secret"
)


_parse_time = datetime.fromisoformat  # from_db_time without the call, on the resolve path

#: The time columns of a token row: (index, column, may be NULL).
_TOKEN_TIMES: Final = (
    (5, "expires_at", True),
    (6, "created_at", False),
    (7, "updated_at", False),
    (8, "last_used_at", True),
)


def _times(row: Sequence[Any]) -> tuple[datetime | None, datetime, datetime, datetime | None]:
    """A token row's expiry, creation, update and last-use times, checked with the other
    metadata columns; a :class:`StoreError` naming the row if any is malformed."""
    try:
        expires = None if row[5] is None else _parse_time(row[5])
        created = _parse_time(row[6])
        updated = _parse_time(row[7])
        last = None if row[8] is None else _parse_time(row[8])
    except (TypeError, ValueError):
        raise _malformed_token(row) from None
    if (
        created.tzinfo is None
        or updated.tzinfo is None
        or (expires is not None and expires.tzinfo is None)  # would not compare with "now"
        or (last is not None and last.tzinfo is None)
        or type(row[9]) is not int
        or type(row[4]) is not str
        or type(row[10]) is not str
        or (row[11] is not None and type(row[11]) is not str)
    ):
        raise _malformed_token(row)
    return expires, created, updated, last


def _token_problem(row: Sequence[Any]) -> tuple[str, str]:
    """Which column of a token row is malformed, and how (the slow path, for the error only)."""
    for index, column, nullable in _TOKEN_TIMES:
        if row[index] is None and nullable:
            continue
        try:
            parsed = datetime.fromisoformat(row[index])
        except (TypeError, ValueError):
            return column, "is not an ISO-8601 date-time"
        if parsed.tzinfo is None:
            return column, "has no UTC offset"
    for index, column, kind, nullable in (
        (9, "version", int, False),
        (4, "label", str, False),
        (10, "key_id", str, False),
        (11, "api_username", str, True),
    ):
        if type(row[index]) is not kind and not (nullable and row[index] is None):
            return column, "is not an integer" if kind is int else "is not text"
    return "metadata", "is not what a token row holds"


def _malformed_token(row: Sequence[Any]) -> StoreError:
    # Names the row and the column, never the value: a damaged column may hold anything.
    column, what = _token_problem(row)
    owner, url, scope = row[0], row[1], row[2]
    whose = (
        f" (the personal token of {owner!r} for {url}, scope {scope!r})"
        if all(type(value) is str for value in (owner, url, scope))
        else ""
    )
    return StoreError(
        f"the tokens row #{row[3]}{whose} of the token database is malformed: its {column} {what}",
        hint="delete the token and set it again, or restore the database",
        table="tokens",
        row=str(row[3]),
    )


def _token(row: Sequence[Any]) -> TokenRow:
    """A row of ``_COLUMNS, secret`` as a :class:`TokenRow` (:class:`StoreError` if malformed)."""
    expires, created, updated, last = _times(row)
    # Positional, in TokenRow's field order: this is the resolve path.
    return TokenRow(
        row[3], row[0], row[1], row[2], row[4], expires, created, updated, row[9], row[10], row[11], row[12], last
    )


def _db_time(value: datetime | None) -> str | None:
    return to_db_time(value) if value is not None else None


class SQLiteRows:
    """Token rows, key checks, last-used stamps and the audit trail in the SQLite file: a
    :class:`~tokenproviders.stores.rows.RowBackend`. It never sees a key or a plaintext.

    ``SQLiteRows(path)`` opens (creating or migrating) the file on its own connection;
    :class:`SQLiteDatabase` shares its :class:`SQLiteCore` instead (``core=``).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, core: SQLiteCore | None = None, **options: Any
    ) -> None:
        if core is None:
            if path is None:
                raise InvalidInputError("SQLiteRows needs a path or a core")
            core = SQLiteCore(path, None, **options)
            self._owned = True
        else:
            self._owned = False
        self._core = core
        self._lookup_sql: dict[int, str] = {}
        self._exact_sql = f"SELECT {_LOOKUP_COLUMNS} FROM tokens WHERE owner = ? AND url = ? AND scope = ?"  # noqa: S608 - constant SQL

    def __repr__(self) -> str:
        return f"SQLiteRows({self._core.path!r})"

    @property
    def path(self) -> str:
        return self._core.path

    def close(self) -> None:
        if self._owned:
            self._core.close()

    # -- tokens --------------------------------------------------------------------------
    def get(self, owner: str, url: str, scope: str) -> TokenRow | None:
        row = self._core.read_one(
            f"SELECT {_COLUMNS}, secret FROM tokens WHERE owner = ? AND url = ? AND scope = ?",  # noqa: S608 - constant SQL, values bound
            (owner, url, scope),
        )
        return _token(row) if row is not None else None

    def _sql_for(self, count: int) -> str:
        sql = self._lookup_sql.get(count)
        if sql is None:
            # ?1 is the owner; candidate i is (?{2i+2}, ?{2i+3}). SQLite ranks the (at most
            # ``count``) matching rows itself and returns only the best one, with its rank
            # instead of its url and scope (the caller has those).
            pairs = [(2 * i + 2, 2 * i + 3) for i in range(count)]
            terms = " OR ".join(f"(url = ?{u} AND scope = ?{s})" for u, s in pairs)
            rank = " ".join(f"WHEN url = ?{u} AND scope = ?{s} THEN {i}" for i, (u, s) in enumerate(pairs))
            sql = (
                f"SELECT CASE {rank} END AS rank, {_LOOKUP_COLUMNS} FROM tokens"  # noqa: S608 - constant SQL
                f" WHERE owner = ?1 AND ({terms}) ORDER BY rank LIMIT 1"
            )
            self._lookup_sql[count] = sql
        return sql

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> TokenRow | None:
        if not candidates:
            return None
        # The most specific candidate (the tracker's own URL in its tenant) is the common hit:
        # probe it with the plain unique-index equality first, which costs exactly one indexed
        # read; only on a miss let SQLite rank the remaining candidates in one more query.
        url, scope = candidates[0]
        core = self._core
        with core.lock:
            if core.closed:
                core._check_open()
            try:
                rows = core.conn.execute(self._exact_sql, (owner, url, scope)).fetchall()
            except sqlite3.Error:
                rows = None  # busy or worse: read() retries, or raises our error
        if rows is None:
            rows = core.read(self._exact_sql, (owner, url, scope))
        if rows:
            return _token((owner, url, scope, *rows[0]))
        rest = candidates[1:]
        if not rest:
            return None
        params: list[str] = [owner]
        for url, scope in rest:
            params.append(url)
            params.append(scope)
        rows = core.read(self._sql_for(len(rest)), params)
        if not rows:
            return None
        row = rows[0]
        url, scope = rest[row[0]]
        return _token((owner, url, scope, *row[1:]))

    def _refuse_retired(self, conn: sqlite3.Connection, key_id: str) -> None:
        self._core.refuse_retired(conn, key_id)

    def put(self, row: TokenRow, *, expected_version: int | None) -> TokenRow:
        key = (row.owner, row.url, row.scope)

        def run(conn: sqlite3.Connection) -> Any:
            self._refuse_retired(conn, row.key_id)
            if expected_version is None:
                changed = conn.execute(
                    "INSERT INTO tokens (owner, url, scope, label, expires_at, created_at, updated_at, version,"
                    " key_id, api_username, secret) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)"
                    " ON CONFLICT (owner, url, scope) DO NOTHING",
                    (
                        *key,
                        row.label,
                        _db_time(row.expires_at),
                        to_db_time(row.created_at),
                        to_db_time(row.updated_at),
                        row.key_id,
                        row.api_username,
                        row.secret,
                    ),
                ).rowcount
            else:
                changed = conn.execute(
                    "UPDATE tokens SET label = ?, expires_at = ?, updated_at = ?, version = version + 1,"
                    " key_id = ?, api_username = ?, secret = ?"
                    " WHERE owner = ? AND url = ? AND scope = ? AND version = ?",
                    (
                        row.label,
                        _db_time(row.expires_at),
                        to_db_time(row.updated_at),
                        row.key_id,
                        row.api_username,
                        row.secret,
                        *key,
                        expected_version,
                    ),
                ).rowcount
            if not changed:
                raise VersionConflict()
            return conn.execute(
                f"SELECT {_COLUMNS}, secret FROM tokens WHERE owner = ? AND url = ? AND scope = ?",  # noqa: S608 - constant SQL, values bound
                key,
            ).fetchone()

        return _token(self._core.write(run, "store a personal token"))

    def put_rows(self, rows: Sequence[TokenRow]) -> None:
        """Create or replace many rows in one transaction (bulk import; no compare-and-swap)."""

        def run(conn: sqlite3.Connection) -> None:
            for key_id in {row.key_id for row in rows}:
                self._refuse_retired(conn, key_id)
            conn.executemany(
                _UPSERT,
                [
                    (
                        r.owner,
                        r.url,
                        r.scope,
                        r.label,
                        _db_time(r.expires_at),
                        to_db_time(r.created_at),
                        to_db_time(r.updated_at),
                        r.key_id,
                        r.api_username,
                        r.secret,
                    )
                    for r in rows
                ],
            )

        self._core.write(run, "import personal tokens")

    def delete(self, owner: str, url: str, scope: str, *, expected_version: int | None = None) -> TokenRow | None:
        def run(conn: sqlite3.Connection) -> Any:
            row = conn.execute(
                f"SELECT {_COLUMNS}, secret FROM tokens WHERE owner = ? AND url = ? AND scope = ?",  # noqa: S608 - constant SQL, values bound
                (owner, url, scope),
            ).fetchone()
            if row is None:
                return None
            if expected_version is not None and row[9] != expected_version:
                raise VersionConflict(current=_token(row))
            conn.execute("DELETE FROM tokens WHERE id = ?", (row[3],))
            return row

        row = self._core.write(run, "delete a personal token")
        if row is None:
            return None
        try:
            return _token(row)
        except StoreError:  # a malformed row is gone all the same
            return TokenRow(row[3], owner, url, scope, "", None, utc_now(), utc_now(), 0, "", None, b"")

    def scan(
        self, *, after_id: int = 0, limit: int = 1000, owner: str | None = None, key_id_not: str | None = None
    ) -> list[TokenRow]:
        where, params = ["id > ?"], [after_id]
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)  # type: ignore[arg-type]
        if key_id_not is not None:
            where.append("key_id != ?")
            params.append(key_id_not)  # type: ignore[arg-type]
        rows = self._core.read(
            f"SELECT {_COLUMNS}, secret FROM tokens WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",  # noqa: S608 - constant SQL, values bound
            [*params, limit],
        )
        return [_token(row) for row in rows]

    def scan_listing(self, owner: str | None = None) -> list[TokenRow]:
        """Every token row, a malformed one skipped with a logged error naming it."""
        if owner is None:
            rows = self._core.read(f"SELECT {_COLUMNS}, secret FROM tokens ORDER BY id")  # noqa: S608 - constant SQL
        else:
            rows = self._core.read(f"SELECT {_COLUMNS}, secret FROM tokens WHERE owner = ? ORDER BY id", (owner,))  # noqa: S608 - constant SQL, values bound
        found: list[TokenRow] = []
        for row in rows:
            try:
                found.append(_token(row))
            except StoreError as exc:
                logger.error("skipped a personal token: %s", exc.message)
        return found

    def replace_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            for key_id in {update.key_id for update in updates}:
                self._refuse_retired(conn, key_id)
            return int(
                conn.executemany(
                    "UPDATE tokens SET secret = ?, key_id = ? WHERE id = ? AND secret = ?",
                    [(u.new_secret, u.key_id, u.id, u.old_secret) for u in updates],
                ).rowcount
            )

        changed: int = self._core.write(run, "re-seal personal tokens")
        return changed

    def count_by_key(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sql in (
            "SELECT key_id, count(*) FROM tokens GROUP BY key_id",
            "SELECT key_id, count(*) FROM trackers WHERE key_id IS NOT NULL GROUP BY key_id",
        ):
            for key_id, rows in self._core.read(sql):
                counts[key_id] = counts.get(key_id, 0) + int(rows)
        return counts

    def scan_bot_secrets(
        self, *, after_id: int = 0, limit: int = 1000, key_id_not: str | None = None
    ) -> list[BotSecretRow]:
        rows = self._core.read(
            "SELECT row_id, tenant, id, base_url, api_url, key_id, bot_secret FROM trackers"
            " WHERE bot_secret IS NOT NULL AND row_id > ? AND key_id IS NOT ? ORDER BY row_id LIMIT ?",
            (after_id, key_id_not, limit),
        )
        return [BotSecretRow(*row) for row in rows]

    def replace_bot_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            for key_id in {update.key_id for update in updates}:
                self._refuse_retired(conn, key_id)
            return int(
                conn.executemany(
                    "UPDATE trackers SET bot_secret = ?, key_id = ? WHERE row_id = ? AND bot_secret = ?",
                    [(u.new_secret, u.key_id, u.id, u.old_secret) for u in updates],
                ).rowcount
            )

        changed: int = self._core.write(run, "re-seal bot credentials")
        return changed

    def count_tokens(self) -> int:
        return int(self._core.read_one("SELECT count(*) FROM tokens")[0])

    # -- key checks ----------------------------------------------------------------------
    def key_checks(self) -> list[KeyCheckRow]:
        return [
            KeyCheckRow(row[0], bytes(row[1]), _parse_time(row[2]), from_db_time(row[3]))
            for row in self._core.read("SELECT key_id, check_value, added_at, retired_at FROM keys")
        ]

    def add_key_check(self, row: KeyCheckRow) -> KeyCheckRow:
        def run(conn: sqlite3.Connection) -> Any:
            conn.execute(
                "INSERT INTO keys (key_id, check_value, added_at, retired_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key_id) DO NOTHING",
                (row.key_id, row.check_value, to_db_time(row.added_at), _db_time(row.retired_at)),
            )
            return conn.execute(
                "SELECT key_id, check_value, added_at, retired_at FROM keys WHERE key_id = ?", (row.key_id,)
            ).fetchone()

        found = self._core.write(run, "record key-check values")
        return KeyCheckRow(found[0], bytes(found[1]), _parse_time(found[2]), from_db_time(found[3]))

    def retire_key(self, key_id: str, check_value: bytes, when: datetime) -> int:
        def run(conn: sqlite3.Connection) -> int:
            used = conn.execute(
                "SELECT (SELECT count(*) FROM tokens WHERE key_id = ?1)"
                " + (SELECT count(*) FROM trackers WHERE key_id = ?1)",
                (key_id,),
            ).fetchone()[0]
            if used:
                return int(used)
            conn.execute(
                "INSERT INTO keys (key_id, check_value, added_at, retired_at) VALUES (?1, ?2, ?3, ?3)"
                " ON CONFLICT (key_id) DO UPDATE SET retired_at = coalesce(retired_at, ?3)",
                (key_id, check_value, to_db_time(when)),
            )
            return 0

        used: int = self._core.write(run, "retire a key")
        return used

    # -- stamps and audit ----------------------------------------------------------------
    def write_stamps(self, stamps: Mapping[int, datetime]) -> None:
        self._core.write(lambda conn: write_stamps(conn, stamps), "record last-used times")

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        self._core.write(
            lambda conn: conn.executemany(AUDIT_INSERT, [audit_values(r) for r in rows]), "append audit rows"
        )

    def scan_audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        rows = self._core.read(
            f"SELECT id, {', '.join(AUDIT_COLUMNS)} FROM audit WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608 - constant SQL
            (after_id, limit),
        )
        return [AuditRow(row[0], _parse_time(row[1]), *row[2:]) for row in rows]

    def prune_audit(self, *, max_rows: int | None, before: datetime | None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            removed = 0
            if before is not None:
                removed += conn.execute("DELETE FROM audit WHERE at < ?", (to_db_time(before),)).rowcount
            if max_rows is not None:
                removed += conn.execute(
                    "DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?", (max_rows,)
                ).rowcount
            return removed

        removed: int = self._core.write(run, "apply audit retention")
        return removed


def write_stamps(conn: sqlite3.Connection, stamps: Mapping[int, datetime]) -> None:
    """Inside a write transaction: each token's last-used time becomes the later of the two."""
    conn.executemany(
        "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
        [(to_db_time(when), token_id) for token_id, when in sorted(stamps.items())],
    )


def audit_values(row: AuditRow) -> tuple[Any, ...]:
    """An audit row as the values of ``AUDIT_COLUMNS``."""
    return (
        to_db_time(row.at),
        row.action,
        row.outcome,
        row.user,
        row.tenant,
        row.tracker,
        row.source,
        row.token_id,
        row.scope,
        row.matched_url,
        row.fallback_from,
        row.principal,
        row.correlation_id,
        row.error,
        row.detail,
    )


class SQLiteTokenStore(SealedTokenStore):
    """Personal tokens in SQLite: the sealing layer over :class:`SQLiteRows`.

    ``lookup`` runs one indexed query over the candidates and opens only the winner's secret.
    ``mark_used`` and audit rows go to the database's write-behind buffer (see
    :meth:`SQLiteDatabase.flush`). Obtain it as ``SQLiteDatabase(...).tokens``.
    """

    backend: SQLiteRows

    def __init__(self, core: SQLiteCore) -> None:
        assert core.keyring is not None
        super().__init__(
            SQLiteRows(core=core),
            core.keyring,
            flush_size=core.flush_size,
            flush_interval=core.flush_interval,
            audit_max_rows=None,  # the database's AuditLog applies retention at every flush
            audit_max_age=None,
            clock=core.clock,
            check_keys=False,
        )
        self._core = core
        self._checked = core.checked_keys  # one record of checked keys for tokens and bots

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({self._core.path!r})"

    def __len__(self) -> int:
        return self.backend.count_tokens()

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        self.flush()
        return sorted((_info(row) for row in self.backend.scan_listing(owner)), key=lambda t: (t.owner, t.url, t.scope))

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
        try:
            return super().put(owner, url, scope, credentials, label=label, expires_at=expires_at, now=now)
        except StoreError as exc:
            if getattr(exc, "table", None) != "tokens":
                raise
        # The row is malformed (its metadata cannot be read): setting the token again repairs it.
        keyring = self._sealing_keyring()
        blob = keyring.seal(credentials.api_password, token_aad(owner, scope, url))
        self.backend.put_rows(
            [
                TokenRow(
                    0,
                    owner,
                    url,
                    scope,
                    label,
                    expires_at,
                    now,
                    now,
                    1,
                    keyring.primary_id,
                    credentials.api_username,
                    blob,
                )
            ]
        )
        info = self.info(owner, url, scope)
        assert info is not None
        return info

    def put_many(self, tokens: Iterable[PersonalToken], *, now: datetime, batch_size: int = 5000) -> int:
        """Create or replace many tokens (bulk import), one transaction per ``batch_size``.

        Each token's ``owner``, ``url``, ``scope``, ``label``, ``expires_at`` and
        ``credentials`` are used; URLs must already be normalized. Returns how many were written.
        """
        keyring = self._sealing_keyring()
        to_db_time(now)  # refuses a naive time
        written = 0
        batch: list[TokenRow] = []
        for token in tokens:
            if token.credentials is None:
                raise InvalidInputError(f"token of {token.owner!r} for {token.url} has no credentials")
            blob = keyring.seal(token.credentials.api_password, token_aad(token.owner, token.scope, token.url))
            batch.append(
                TokenRow(
                    0,
                    token.owner,
                    token.url,
                    token.scope,
                    token.label,
                    token.expires_at,
                    now,
                    now,
                    1,
                    keyring.primary_id,
                    token.credentials.api_username,
                    blob,
                )
            )
            if len(batch) >= batch_size:
                self.backend.put_rows(batch)
                written += len(batch)
                batch = []
        if batch:
            self.backend.put_rows(batch)
            written += len(batch)
        return written

    def mark_used(self, token_id: int, when: datetime) -> None:
        """Buffered: written with the next flush (at most ``flush_interval`` seconds later,
        also when the process goes idle; on ``list``, ``close`` and at exit). Never waits for
        another process's write lock."""
        if when.tzinfo is None:
            to_db_time(when)  # raises the usual error for a naive datetime
        self._core.buffer_used(token_id, when)

    def record_audit(self, row: AuditRow) -> None:
        acting_now = current_acting()
        if acting_now is not None and row.principal is None and row.correlation_id is None:
            row = replace(row, principal=acting_now.principal, correlation_id=acting_now.correlation_id)
        self._core.buffer_audit(audit_values(row))

    def flush(self) -> None:
        self._core.flush()

    def close(self) -> None:
        self._core.close()

    def _sealing_keyring(self) -> KeyRing:
        return self._core.sealing_keyring()


_UPSERT: Final = (
    "INSERT INTO tokens (owner, url, scope, label, expires_at, created_at, updated_at, key_id, api_username, secret)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (owner, url, scope) DO UPDATE SET label = excluded.label, expires_at = excluded.expires_at,"
    " updated_at = excluded.updated_at, key_id = excluded.key_id, api_username = excluded.api_username,"
    " secret = excluded.secret, version = version + 1"
)


class SQLiteDatabase:
    """One SQLite file holding personal tokens, the directory and the audit trail.

    :param path: the database file (``:memory:`` works). An existing file must be a
        tokenproviders database that group and others cannot write (nor its ``-wal`` and
        ``-shm``): an empty file, another SQLite database, a file that is not SQLite, or a file
        with a mode such as 0666 is refused with a :class:`StoreError` and left as it is. An
        older schema is migrated.
    :param create: create the database if ``path`` does not exist (the default): it is built
        under a temporary name beside ``path``, mode 0600 whatever the umask, and moved into
        place complete, so a failure (a full disk) leaves nothing behind and processes creating
        it at once share one database. With ``create=False`` a missing file is a
        :class:`StoreError` and nothing is created.
    :param keyring: the :class:`~tokenproviders.crypto.KeyRing`; required, nothing is stored
        without a key. Its keys are checked against the key-check values the database recorded.
    :param busy_timeout: seconds SQLite waits for another connection's lock per attempt.
    :param lock_wait: seconds in all before a locked database becomes a :class:`StoreError`.
    :param synchronous: ``FULL`` (default: a committed token survives power loss) or ``NORMAL``.
    :param audit_max_rows: keep at most this many audit entries (``None``: no row limit).
    :param audit_max_age: drop audit entries older than this (``None``: no age limit); at
        least one limit is required.
    :param flush_size: buffered audit entries and last-used times written per transaction.
    :param flush_interval: seconds after which buffered writes are flushed (by the next call
        that buffers one, or by a timer if none comes); the resolve path's flushes never wait
        for another process's write lock, and the buffer is flushed at interpreter exit.
    :param background_writes: flush buffered writes from a writer thread with its own
        connection instead of inline in the call that fills the buffer (see ``_sqlite_base``
        for the trade-off under the GIL).
    :param clock: the current time (timezone-aware), injectable for tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        keyring: KeyRing,
        *,
        busy_timeout: float = 5.0,
        lock_wait: float | None = None,
        synchronous: str = "FULL",
        audit_max_rows: int | None = 100_000,
        audit_max_age: timedelta | None = timedelta(days=90),
        flush_size: int = 1024,
        flush_interval: float = 1.0,
        background_writes: bool = False,
        clock: Callable[[], datetime] = utc_now,
        create: bool = True,
    ) -> None:
        if not isinstance(keyring, KeyRing):
            raise MissingKeyError("the SQLite token database needs a KeyRing; nothing is stored without a key")
        self._core = SQLiteCore(
            path,
            keyring,
            create=create,
            busy_timeout=busy_timeout,
            lock_wait=lock_wait,
            synchronous=synchronous,
            clock=clock,
            flush_size=flush_size,
            flush_interval=flush_interval,
            background_writes=background_writes,
        )
        self._core.check_keys = self.check_keys
        try:
            self.tokens = SQLiteTokenStore(self._core)
            self.directory = SQLiteDirectory(self._core)
            self.audit = AuditLog(self._core, max_rows=audit_max_rows, max_age=audit_max_age)
            self.check_keys()
            if self._core.schema_version >= 4:  # bot credentials bound to their URLs
                self.directory.upgrade_legacy_bot_secrets()
        except BaseException:
            self._core.close()
            raise

    # -- plumbing ------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._core.path

    @property
    def keyring(self) -> KeyRing:
        return self.tokens.keyring

    @property
    def schema_version(self) -> int:
        return self._core.schema_version

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self.path!r}, primary key {self.keyring.primary_id!r})"

    def __enter__(self) -> SQLiteDatabase:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def flush(self) -> None:
        """Write buffered audit entries and last-used times now."""
        self._core.flush()

    def close(self) -> None:
        """Flush buffered writes and close the connection (idempotent)."""
        self._core.close()

    def dump(self, *, audit: bool = True) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a stable order, plus ``schema`` (the version).

        Sealed blobs appear as stored (ciphertext). Meant for tests that compare a database
        before and after an operation that should have changed nothing.
        """
        self._core.flush()
        snapshot: dict[str, list[tuple[Any, ...]]] = {"schema": [(self.schema_version,)]}
        for table, order in TABLES:
            if table == "audit" and not audit:
                continue
            snapshot[table] = [tuple(row) for row in self._core.read(f"SELECT * FROM {table} ORDER BY {order}")]  # noqa: S608 - constant SQL, values bound
        return snapshot

    # -- keys ----------------------------------------------------------------------------
    def check_keys(self) -> dict[str, str]:
        """Check the key ring against the key-check values recorded in the database.

        Records keys seen for the first time. Returns ``{key_id: "ok" | "recorded" |
        "retired"}``. Raises :class:`KeyMismatchError` when a key differs from the one recorded
        under its id, and :class:`ConfigurationError` when the primary key was retired here.
        """
        return self.tokens.check_keys()

    def key_status(self) -> dict[str, int]:
        """How many sealed rows (tokens and bot credentials) each key id seals; keys of the
        key ring that seal nothing are listed with 0."""
        return self.tokens.key_status()

    def retire_key(self, key_id: str) -> None:
        """Retire a key: refused while any row is sealed under it, or if it is the primary.

        The database remembers the id as retired (a key ring that still holds it is refused as
        primary and the key is dropped from it); delete the key from the key file afterwards.
        Other processes that loaded their key ring earlier and still have this key as primary
        are refused at their next write (a :class:`ConfigurationError` asking them to reload the
        key ring), so no blob sealed under it is written after it was retired.
        """
        self.tokens.retire_key(key_id)

    def rotate(
        self,
        batch_size: int = 1000,
        progress: Callable[[RotationProgress], None] | None = None,
        *,
        allow_unsaved_primary: bool = False,
    ) -> RotationReport:
        """Re-seal every row (personal tokens and bot credentials) not under the primary key,
        under the primary key: see :meth:`SealedTokenStore.rotate
        <tokenproviders.stores.sealed.SealedTokenStore.rotate>` (batched, compare-and-swap,
        resumable, refused while the primary key is unsaved unless ``allow_unsaved_primary``).
        """
        report = self.tokens.rotate(batch_size, progress, allow_unsaved_primary=allow_unsaved_primary)
        if report.processed:
            self._checkpoint()
        return report

    def _checkpoint(self) -> None:
        # Copy the re-sealed pages into the main file and empty the WAL, so blobs sealed under
        # the old key do not linger there (secure_delete zeroes them in the main file).
        try:
            self._core.read("PRAGMA wal_checkpoint(TRUNCATE)")
        except StoreError as exc:
            logger.warning("could not truncate the WAL after rotation: %s", exc)
