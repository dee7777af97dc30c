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
(:mod:`tokenproviders.crypto`); the file never holds one in the clear.

The schema (``PRAGMA user_version`` is its version; ``dump()`` returns the same rows)::

    keys(key_id, check_value, added_at, retired_at)
    tokens(id, owner, url, scope, label, expires_at, created_at, updated_at, last_used_at,
           version, key_id, api_username, secret)            UNIQUE (owner, url, scope)
    tenants(id, name, created_at)
    members(user, tenant, added_at)                         PRIMARY KEY (user, tenant)
    trackers(row_id, tenant, id, type, base_url, api_url, name, options, verify_tls, ca_bundle,
             bot_username, bot_secret, key_id, created_at, updated_at)   UNIQUE (tenant, id)
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

import hmac
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final

from ..crypto import AssociatedData, KeyRing, encode_token_aad
from ..errors import (
    ConfigurationError,
    InvalidInputError,
    KeyInUseError,
    KeyMismatchError,
    SecretUnreadableError,
    StoreError,
)
from ..model import Credentials, PersonalToken, TokenInfo, _make_personal_token, _trusted_credentials
from ._sqlite_base import SCHEMA_VERSION, TABLES, SQLiteCore, to_db_time, utc_now
from .audit import AuditEntry, AuditLog, record_change
from .sqlite_directory import SQLiteDirectory

__all__ = [
    "SQLiteDatabase",
    "SQLiteTokenStore",
    "SQLiteDirectory",
    "AuditLog",
    "AuditEntry",
    "RotationProgress",
    "RotationReport",
    "SCHEMA_VERSION",
]

logger = logging.getLogger("tokenproviders.stores.sqlite")

#: The one token field that is sealed; ``api_username`` is metadata that listings show.
SECRET_FIELD: Final = "api_password"

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


def _info(row: Sequence[Any]) -> TokenInfo:
    expires, created, updated, last = _times(row)
    # Positional, in TokenInfo's field order.
    return TokenInfo(row[0], row[1], row[2], row[3], row[4], expires, created, updated, last, row[9], row[10], row[11])


def _listed(rows: Iterable[Sequence[Any]]) -> list[TokenInfo]:
    """Token rows as listed: a malformed one is skipped with a logged error naming it."""
    infos: list[TokenInfo] = []
    for row in rows:
        try:
            infos.append(_info(row))
        except StoreError as exc:
            logger.error("skipped a personal token: %s", exc.message)
    return infos


def token_aad(owner: str, scope: str, url: str) -> AssociatedData:
    """What a personal token's sealed ``api_password`` is bound to."""
    return AssociatedData("token", (owner, scope, url, SECRET_FIELD))


class SQLiteTokenStore:
    """Personal tokens in SQLite: a :class:`~tokenproviders.stores.TokenStore`.

    ``lookup`` runs one indexed query over the candidates and opens only the winner's secret.
    ``mark_used`` is buffered (see :meth:`SQLiteDatabase.flush`). Obtain it as
    ``SQLiteDatabase(...).tokens``.
    """

    def __init__(self, core: SQLiteCore) -> None:
        self._core = core
        self._lookup_sql: dict[int, str] = {}
        self._exact_sql = (
            f"SELECT {_LOOKUP_COLUMNS} FROM tokens WHERE owner = ? AND url = ? AND scope = ?"  # noqa: S608 - constant SQL
        )

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({self._core.path!r})"

    def __len__(self) -> int:
        return int(self._core.read_one("SELECT count(*) FROM tokens")[0])

    # -- reading -------------------------------------------------------------------------
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

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
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
            return self._opened((owner, url, scope, *rows[0]))
        rest = candidates[1:]
        if not rest:
            return None
        params: list[str] = [owner]
        for url, scope in rest:
            params.append(url)
            params.append(scope)
        rows = self._core.read(self._sql_for(len(rest)), params)
        if not rows:
            return None
        row = rows[0]
        url, scope = rest[row[0]]
        return self._opened((owner, url, scope, *row[1:]))

    def _opened(self, row: Sequence[Any]) -> PersonalToken:
        owner, url, scope, api_username = row[0], row[1], row[2], row[11] or None
        expires, created, updated, last = _times(row)
        try:
            secret = self._core.keyring.open_secret(row[12], encode_token_aad(owner, scope, url, SECRET_FIELD))
        except SecretUnreadableError as exc:
            raise SecretUnreadableError(exc.message, hint=exc.hint, key_id=exc.key_id, token=_info(row)) from None
        # Positional, in PersonalToken's field order: this is the resolve path.
        return _make_personal_token(
            owner,
            url,
            scope,
            row[3],
            row[4],
            expires,
            created,
            updated,
            last,
            row[9],
            row[10],
            api_username,
            _trusted_credentials(secret, api_username),
        )

    def get(self, owner: str, url: str, scope: str) -> PersonalToken | None:
        row = self._core.read_one(
            f"SELECT {_COLUMNS}, secret FROM tokens WHERE owner = ? AND url = ? AND scope = ?", (owner, url, scope)  # noqa: S608 - constant SQL, values bound
        )
        return self._opened(row) if row is not None else None

    def info(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        """The token's metadata without opening its secret (works without its key)."""
        self._core.flush()
        row = self._core.read_one(
            f"SELECT {_COLUMNS} FROM tokens WHERE owner = ? AND url = ? AND scope = ?", (owner, url, scope)  # noqa: S608 - constant SQL, values bound
        )
        return _info(row) if row is not None else None

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        self._core.flush()
        if owner is None:
            rows = self._core.read(f"SELECT {_COLUMNS} FROM tokens ORDER BY owner, url, scope")  # noqa: S608 - constant SQL, values bound
        else:
            rows = self._core.read(f"SELECT {_COLUMNS} FROM tokens WHERE owner = ? ORDER BY url, scope", (owner,))  # noqa: S608 - constant SQL, values bound
        return _listed(rows)

    # -- writing -------------------------------------------------------------------------
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
        when = to_db_time(now)
        expires = to_db_time(expires_at) if expires_at is not None else None
        # Seal before taking the write lock: the lock is held only for the statements.
        keyring = self._core.sealing_keyring()
        blob = keyring.seal(credentials.api_password, token_aad(owner, scope, url))
        values = (owner, url, scope, label, expires, when, when, keyring.primary_id, credentials.api_username, blob)

        def run(conn: sqlite3.Connection) -> Any:
            self._core.refuse_retired(conn, values[7])
            conn.execute(_UPSERT, values)
            return conn.execute(
                f"SELECT {_COLUMNS} FROM tokens WHERE owner = ? AND url = ? AND scope = ?", (owner, url, scope)  # noqa: S608 - constant SQL, values bound
            ).fetchone()

        info = _info(self._core.write(run, "store a personal token"))
        logger.debug("stored personal token #%s of %r for %s (%s)", info.id, owner, url, scope)
        return info

    def put_many(self, tokens: Iterable[PersonalToken], *, now: datetime, batch_size: int = 5000) -> int:
        """Create or replace many tokens (bulk import), one transaction per ``batch_size``.

        Each token's ``owner``, ``url``, ``scope``, ``label``, ``expires_at`` and
        ``credentials`` are used; URLs must already be normalized. Returns how many were written.
        """
        keyring = self._core.sealing_keyring()
        when = to_db_time(now)
        written = 0
        batch: list[tuple[Any, ...]] = []

        def flush(conn: sqlite3.Connection) -> None:
            self._core.refuse_retired(conn, keyring.primary_id)
            conn.executemany(_UPSERT, batch)

        for token in tokens:
            if token.credentials is None:
                raise InvalidInputError(f"token of {token.owner!r} for {token.url} has no credentials")
            expires = to_db_time(token.expires_at) if token.expires_at is not None else None
            batch.append(
                (
                    token.owner,
                    token.url,
                    token.scope,
                    token.label,
                    expires,
                    when,
                    when,
                    keyring.primary_id,
                    token.credentials.api_username,
                    keyring.seal(token.credentials.api_password, token_aad(token.owner, token.scope, token.url)),
                )
            )
            if len(batch) >= batch_size:
                self._core.write(flush, "import personal tokens")
                written += len(batch)
                batch = []
        if batch:
            self._core.write(flush, "import personal tokens")
            written += len(batch)
        return written

    def delete(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        def run(conn: sqlite3.Connection) -> Any:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM tokens WHERE owner = ? AND url = ? AND scope = ?", (owner, url, scope)  # noqa: S608 - constant SQL, values bound
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM tokens WHERE id = ?", (row[3],))
            return row

        row = self._core.write(run, "delete a personal token")
        if row is None:
            return None
        logger.debug("deleted personal token #%s of %r for %s (%s)", row[3], owner, url, scope)
        try:
            return _info(row)
        except StoreError:
            return TokenInfo(owner, url, scope, row[3])  # a malformed row is gone all the same

    def mark_used(self, token_id: int, when: datetime) -> None:
        """Buffered: written with the next flush (at most ``flush_interval`` seconds later,
        also when the process goes idle; on ``list``, ``close`` and at exit). Never waits for
        another process's write lock."""
        if when.tzinfo is None:
            to_db_time(when)  # raises the usual error for a naive datetime
        self._core.buffer_used(token_id, when)


_UPSERT: Final = (
    "INSERT INTO tokens (owner, url, scope, label, expires_at, created_at, updated_at, key_id, api_username, secret)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (owner, url, scope) DO UPDATE SET label = excluded.label, expires_at = excluded.expires_at,"
    " updated_at = excluded.updated_at, key_id = excluded.key_id, api_username = excluded.api_username,"
    " secret = excluded.secret, version = version + 1"
)


@dataclass(frozen=True)
class RotationProgress:
    """What a rotation's progress callback receives after every batch."""

    processed: int
    failed: int
    remaining: int


@dataclass(frozen=True)
class RotationReport:
    """The outcome of :meth:`SQLiteDatabase.rotate`.

    ``processed`` rows were re-sealed under ``primary``; ``failed`` could not be opened (each
    described in ``failures``, first 100, no secrets); ``conflicts`` changed concurrently and
    were left to the concurrent writer; ``remaining`` rows are still under other keys.
    """

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


@dataclass(frozen=True)
class _SealedTable:
    """How rotation finds, opens and updates the sealed column of one table."""

    name: str
    select: str
    update: str
    what: str

    def aad(self, row: Sequence[Any]) -> AssociatedData:
        if self.name == "tokens":
            return token_aad(row[2], row[4], row[3])
        return AssociatedData("bot", (row[2], row[3], SECRET_FIELD))

    def describe(self, row: Sequence[Any]) -> str:
        if self.name == "tokens":
            return f"personal token #{row[0]} of {row[2]!r} for {row[3]} ({row[4]})"
        return f"bot credentials of tracker {row[2]}/{row[3]}"


_SEALED_TABLES: Final = (
    _SealedTable(
        "tokens",
        "SELECT id, secret, owner, url, scope FROM tokens WHERE key_id = ? AND id > ? ORDER BY id LIMIT ?",
        "UPDATE tokens SET secret = ?, key_id = ? WHERE id = ? AND secret = ?",
        "personal tokens",
    ),
    _SealedTable(
        "trackers",
        "SELECT row_id, bot_secret, tenant, id FROM trackers WHERE key_id = ? AND row_id > ? ORDER BY row_id LIMIT ?",
        "UPDATE trackers SET bot_secret = ?, key_id = ? WHERE row_id = ? AND bot_secret = ?",
        "bot credentials",
    ),
)
_MAX_FAILURES: Final = 100


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
        except BaseException:
            self._core.close()
            raise

    # -- plumbing ------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._core.path

    @property
    def keyring(self) -> KeyRing:
        return self._core.keyring

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
        keyring = self._core.keyring
        recorded = {
            row[0]: (row[1], row[2]) for row in self._core.read("SELECT key_id, check_value, retired_at FROM keys")
        }
        status: dict[str, str] = {}
        new: list[str] = []
        for key_id, (_, retired_at) in recorded.items():
            if retired_at is not None:
                if key_id == keyring.primary_id:
                    raise ConfigurationError(
                        f"the primary key {key_id!r} was retired in the token database {self.path!r}",
                        hint="make another key primary (add a new key), then rotate",
                    )
                keyring.retire(key_id)
                status[key_id] = "retired"
        for key_id in keyring.key_ids:
            check = keyring.check_value(key_id)
            if key_id in recorded:
                if not hmac.compare_digest(check, recorded[key_id][0]):
                    raise KeyMismatchError(
                        f"key {key_id!r} of the key ring ({keyring.source}) is not the key the token"
                        f" database {self.path!r} recorded under that id",
                    )
                status[key_id] = "ok"
                self._core.checked_keys.add(key_id)
            else:
                new.append(key_id)
        live = {key_id for key_id, (_, retired_at) in recorded.items() if retired_at is None}
        if new and live and not (live & set(keyring.key_ids)):
            # A key ring sharing no key with the database is the wrong key file, not a rotation
            # (which adds a key beside the old ones): refuse before writing anything.
            raise KeyMismatchError(
                f"the key ring ({keyring.source}) has none of the keys the token database"
                f" {self.path!r} was sealed with ({', '.join(sorted(live))})",
                hint="load the key file that belongs to this database; add new keys beside the old ones",
            )
        if new:
            now = to_db_time(self._core.clock())

            def run(conn: sqlite3.Connection) -> None:
                for key_id in new:
                    conn.execute(
                        "INSERT INTO keys (key_id, check_value, added_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (key_id) DO NOTHING",
                        (key_id, keyring.check_value(key_id), now),
                    )

            self._core.write(run, "record key-check values")
            # Another process may have recorded a different key under the same id meanwhile.
            for key_id in new:
                row = self._core.read_one("SELECT check_value FROM keys WHERE key_id = ?", (key_id,))
                if not hmac.compare_digest(keyring.check_value(key_id), row[0]):
                    raise KeyMismatchError(
                        f"key {key_id!r} is not the key the token database {self.path!r} recorded under that id"
                    )
                status[key_id] = "recorded"
                self._core.checked_keys.add(key_id)
        return status

    def key_status(self) -> dict[str, int]:
        """How many sealed rows (tokens and bot credentials) each key id seals; keys of the
        key ring that seal nothing are listed with 0."""
        counts: dict[str, int] = dict.fromkeys(self._core.keyring.key_ids, 0)
        for sql in (
            "SELECT key_id, count(*) FROM tokens GROUP BY key_id",
            "SELECT key_id, count(*) FROM trackers WHERE key_id IS NOT NULL GROUP BY key_id",
        ):
            for key_id, rows in self._core.read(sql):
                counts[key_id] = counts.get(key_id, 0) + int(rows)
        return counts

    def retire_key(self, key_id: str) -> None:
        """Retire a key: refused while any row is sealed under it, or if it is the primary.

        The database remembers the id as retired (a key ring that still holds it is refused as
        primary and the key is dropped from it); delete the key from the key file afterwards.
        Other processes that loaded their key ring earlier and still have this key as primary
        are refused at their next write (a :class:`ConfigurationError` asking them to reload the
        key ring), so no blob sealed under it is written after it was retired.
        """
        keyring = self._core.keyring
        if key_id == keyring.primary_id:
            raise KeyInUseError(
                f"key {key_id!r} is the primary key and cannot be retired",
                hint="add a new primary key, rotate, then retire this one",
            )
        now = to_db_time(self._core.clock())
        check = keyring.check_value(key_id) if key_id in keyring else b""

        def run(conn: sqlite3.Connection) -> int:
            used = conn.execute(
                "SELECT (SELECT count(*) FROM tokens WHERE key_id = ?1)"
                " + (SELECT count(*) FROM trackers WHERE key_id = ?1)",
                (key_id,),
            ).fetchone()[0]
            if used:
                record_change(
                    self._core, conn, "key.retire", outcome="refused", detail=f"key {key_id} still seals {used} row(s)"
                )
                return int(used)
            conn.execute(
                "INSERT INTO keys (key_id, check_value, added_at, retired_at) VALUES (?1, ?2, ?3, ?3)"
                " ON CONFLICT (key_id) DO UPDATE SET retired_at = coalesce(retired_at, ?3)",
                (key_id, check, now),
            )
            record_change(self._core, conn, "key.retire", detail=f"key {key_id} retired")
            return 0

        used = self._core.write(run, "retire a key")
        if used:
            raise KeyInUseError(f"key {key_id!r} still seals {used} row(s) and cannot be retired")
        keyring.retire(key_id)
        logger.info("retired key %r in %s", key_id, self.path)

    def rotate(
        self,
        batch_size: int = 1000,
        progress: Callable[[RotationProgress], None] | None = None,
        *,
        allow_unsaved_primary: bool = False,
    ) -> RotationReport:
        """Re-seal every row not under the primary key, under the primary key.

        Works in batches of ``batch_size`` rows, one transaction per batch; each row is updated
        only if its blob is still the one read (compare-and-swap), so a concurrent edit is never
        lost. Safe to interrupt: committed batches stay done and a re-run continues with the
        rest; a run with nothing to do changes nothing. ``progress`` is called after every
        batch. Rows that cannot be opened are counted as failed and left as they are.

        Refused (:class:`ConfigurationError`, nothing changed) while the primary key exists
        only in this process's memory (it is in the key ring's
        :attr:`~tokenproviders.crypto.KeyRing.unsaved_ids`: added with ``add_key`` and not yet
        written): every row would be sealed under a key that vanishes when the process exits.
        Write the key file first (``keyring.write_key_file(path, replace=True)``);
        ``allow_unsaved_primary=True`` skips the check (for throwaway databases and tests).
        """
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        keyring = self._core.keyring
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
        processed = failed = conflicts = 0
        failures: list[str] = []
        for table in _SEALED_TABLES:
            key_ids = [
                row[0]
                for row in self._core.read(
                    f"SELECT DISTINCT key_id FROM {table.name} WHERE key_id IS NOT NULL AND key_id != ?", (primary,)  # noqa: S608 - constant SQL, values bound
                )
            ]
            for key_id in sorted(key_ids):
                after = 0
                while True:
                    rows = self._core.read(table.select, (key_id, after, batch_size))
                    if not rows:
                        break
                    after = rows[-1][0]
                    updates: list[tuple[bytes, str, int, bytes]] = []
                    for row in rows:
                        aad = table.aad(row)
                        try:
                            blob = keyring.seal(keyring.open_secret(row[1], aad), aad)
                        except SecretUnreadableError as exc:
                            failed += 1
                            if len(failures) < _MAX_FAILURES:
                                failures.append(f"{table.describe(row)}: {exc.message}")
                            continue
                        updates.append((blob, primary, row[0], row[1]))
                    if updates:
                        changed = self._reseal(table, updates)
                        processed += changed
                        conflicts += len(updates) - changed
                    if progress is not None:
                        progress(RotationProgress(processed, failed, max(total - processed - failed - conflicts, 0)))
        after_status = self.key_status()
        remaining = sum(rows for key_id, rows in after_status.items() if key_id != primary)
        if total or failed or processed:  # a run that had nothing to do leaves no trace
            self.audit.record_change(
                "key.rotate",
                outcome="unreadable" if failed else "ok",
                detail=f"{processed} row(s) re-sealed under key {primary}, {failed} failed,"
                f" {conflicts} changed concurrently, {remaining} remaining",
            )
        if processed:
            self._checkpoint()
        report = RotationReport(
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
        logger.info(
            "rotation to key %r: %d re-sealed, %d failed, %d conflicts, %d remaining",
            primary,
            processed,
            failed,
            conflicts,
            remaining,
        )
        return report

    def _reseal(self, table: _SealedTable, updates: list[tuple[bytes, str, int, bytes]]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            self._core.refuse_retired(conn, updates[0][1])
            return int(conn.executemany(table.update, updates).rowcount)

        changed: int = self._core.write(run, f"re-seal {table.what}")
        return changed

    def _checkpoint(self) -> None:
        # Copy the re-sealed pages into the main file and empty the WAL, so blobs sealed under
        # the old key do not linger there (secure_delete zeroes them in the main file).
        try:
            self._core.read("PRAGMA wal_checkpoint(TRUNCATE)")
        except StoreError as exc:
            logger.warning("could not truncate the WAL after rotation: %s", exc)
