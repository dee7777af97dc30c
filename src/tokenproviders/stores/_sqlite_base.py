"""The shared core of the SQLite database: connection, transactions, schema and migrations.

One :class:`SQLiteCore` owns one ``sqlite3`` connection (WAL mode, a busy timeout, foreign keys,
``secure_delete``) and the lock that serializes its use between threads. Every change runs in
one ``BEGIN IMMEDIATE`` transaction, retried while another process holds the write lock, so a
caller never sees "database is locked" (after ``lock_wait`` seconds it gets a
:class:`~tokenproviders.errors.StoreError` that says so in our words).

It also owns a small write-behind buffer for what the resolve path records (audit entries and
tokens' last-used times), flushed in one transaction when it holds ``flush_size`` items or its
oldest item is ``flush_interval`` seconds old, and on ``query``, ``list`` and ``close``:

- By default the call that fills the buffer flushes it (a few milliseconds, once per
  ``flush_size`` items). That flush never waits: not for another flush, not for a thread using
  the connection, not for another process's write lock (one ``BEGIN IMMEDIATE`` attempt with
  SQLite's busy timeout at 0). If the lock is taken, the entries stay buffered and the resolve
  path does not try again for ``flush_interval`` seconds.
- A daemon timer flushes ``flush_interval`` seconds after the oldest entry was buffered, so a
  process that goes idle still writes its entries (the timer exists only while something is
  buffered; it does not wait for locks either and tries again later).
- At interpreter exit every database not closed is flushed (waiting at most ``busy_timeout``
  seconds for locks). Only a process killed outright (SIGKILL, ``os._exit``, power loss) loses
  what was buffered in its last ``flush_interval`` seconds.
- The buffer is bounded: at most ``MAX_PENDING`` audit entries wait while the database cannot be
  written; beyond that the *oldest* are dropped (resolution is never blocked or failed for the
  audit trail), with a warning when dropping starts and one that counts the dropped entries
  once the database can be written again. Last-used times are one per token and need no bound.
- Explicit ``flush()`` and ``close()`` wait for the write lock (up to ``lock_wait``) and raise
  :class:`~tokenproviders.errors.StoreError` if it cannot be had; the entries stay buffered.

With ``background_writes`` a writer thread flushes on its own connection instead, started on
demand and gone when idle; under CPython it competes with request threads for the GIL, which
measured worse at the 99th percentile, hence not the default.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import sqlite3
import stat
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from .._private_files import create_private, publish, refuse_loose_mode, temporary_name
from ..crypto import KeyRing
from ..errors import ConfigurationError, InvalidInputError, MissingKeyError, StoreError
from .rows import KeyRetired

__all__ = [
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "AUDIT_COLUMNS",
    "AUDIT_INSERT",
    "SQLiteCore",
    "to_db_time",
    "from_db_time",
    "utc_now",
]

logger = logging.getLogger("tokenproviders.stores.sqlite")

#: The schema version this code writes; ``PRAGMA user_version`` holds the database's.
SCHEMA_VERSION: Final = 4

#: ``MIGRATIONS[n]`` takes a database from version ``n - 1`` to ``n``. Append, never edit.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        # Keys the database has seen, with their key-check values (see tokenproviders.crypto).
        """CREATE TABLE keys (
            key_id TEXT PRIMARY KEY,
            check_value BLOB NOT NULL,
            added_at TEXT NOT NULL,
            retired_at TEXT
        )""",
        """CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            url TEXT NOT NULL,
            scope TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            expires_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_used_at TEXT,
            version INTEGER NOT NULL DEFAULT 1,
            key_id TEXT NOT NULL,
            api_username TEXT,
            secret BLOB NOT NULL,
            UNIQUE (owner, url, scope)
        )""",
        "CREATE INDEX tokens_by_key ON tokens (key_id, id)",
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE members (
            user TEXT NOT NULL,
            tenant TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            added_at TEXT NOT NULL,
            PRIMARY KEY (user, tenant)
        ) WITHOUT ROWID""",
        "CREATE INDEX members_by_tenant ON members (tenant, user)",
        """CREATE TABLE trackers (
            row_id INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            base_url TEXT NOT NULL,
            api_url TEXT,
            name TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            verify_tls INTEGER NOT NULL DEFAULT 1,
            ca_bundle TEXT,
            bot_username TEXT,
            bot_secret BLOB,
            key_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (tenant, id),
            CHECK ((bot_secret IS NULL) = (key_id IS NULL))
        )""",
        "CREATE INDEX trackers_by_key ON trackers (key_id, row_id)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            user TEXT NOT NULL,
            tenant TEXT NOT NULL,
            tracker TEXT NOT NULL,
            source TEXT NOT NULL,
            token_id INTEGER,
            scope TEXT,
            matched_url TEXT,
            fallback_from TEXT
        )""",
        "CREATE INDEX audit_by_time ON audit (at)",
        "CREATE INDEX audit_by_user ON audit (user, id)",
    ),
    # Token ids are never handed out twice (AUTOINCREMENT): audit entries name tokens by id, so a
    # deleted token's id reused for someone else's token would mix their histories. The table is
    # rebuilt (SQLite cannot add AUTOINCREMENT in place) keeping every id and row as it was, and
    # the sequence starts above every id an audit entry names, deleted tokens' ids included.
    2: (
        """CREATE TABLE tokens_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            url TEXT NOT NULL,
            scope TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            expires_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_used_at TEXT,
            version INTEGER NOT NULL DEFAULT 1,
            key_id TEXT NOT NULL,
            api_username TEXT,
            secret BLOB NOT NULL,
            UNIQUE (owner, url, scope)
        )""",
        "INSERT INTO tokens_v2 (id, owner, url, scope, label, expires_at, created_at, updated_at, last_used_at,"
        " version, key_id, api_username, secret) SELECT id, owner, url, scope, label, expires_at, created_at,"
        " updated_at, last_used_at, version, key_id, api_username, secret FROM tokens",
        "DROP TABLE tokens",
        "ALTER TABLE tokens_v2 RENAME TO tokens",
        "CREATE INDEX tokens_by_key ON tokens (key_id, id)",
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'tokens', 0"
        " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tokens')",
        "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(token_id) FROM audit), 0),"
        " coalesce((SELECT max(id) FROM tokens), 0)) WHERE name = 'tokens'",
    ),
    # The audit trail records every action with its outcome, refusals and admin changes (which
    # name no tracker, or no user), by whom and grouped by correlation id. Rebuilt with
    # nullable columns; entries of version 2 were all successful resolutions. Entry ids are
    # never reused (AUTOINCREMENT), even after retention removed every entry.
    3: (
        """CREATE TABLE audit_v3 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            user TEXT,
            tenant TEXT,
            tracker TEXT,
            source TEXT,
            token_id INTEGER,
            scope TEXT,
            matched_url TEXT,
            fallback_from TEXT,
            principal TEXT,
            correlation_id TEXT,
            error TEXT,
            detail TEXT
        )""",
        "INSERT INTO audit_v3 (id, at, action, outcome, user, tenant, tracker, source, token_id, scope, matched_url,"
        " fallback_from) SELECT id, at, 'resolve', 'ok', user, tenant, tracker, source, token_id, scope, matched_url,"
        " fallback_from FROM audit",
        "DROP TABLE audit",
        "ALTER TABLE audit_v3 RENAME TO audit",
        "CREATE INDEX audit_by_time ON audit (at)",
        "CREATE INDEX audit_by_user ON audit (user, id)",
        "CREATE INDEX audit_by_correlation ON audit (correlation_id, id) WHERE correlation_id IS NOT NULL",
    ),
    # Bot credentials are bound to the tracker's base_url and api_url too. Blobs sealed before
    # (bound_urls = 0) are re-sealed when the database is next opened with its key ring
    # (SQLiteDirectory.upgrade_legacy_bot_secrets): SQL cannot open them.
    4: ("ALTER TABLE trackers ADD COLUMN bound_urls INTEGER NOT NULL DEFAULT 0",),
}

#: The audit table's columns as written, in the order of the rows ``SQLiteCore.buffer_audit`` takes.
AUDIT_COLUMNS: Final = (
    "at",
    "action",
    "outcome",
    "user",
    "tenant",
    "tracker",
    "source",
    "token_id",
    "scope",
    "matched_url",
    "fallback_from",
    "principal",
    "correlation_id",
    "error",
    "detail",
)
AUDIT_INSERT: Final = f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})"  # noqa: S608 - constant SQL

#: Tables in a stable order, with the column they are ordered by in dumps.
TABLES: Final = (
    ("keys", "key_id"),
    ("tenants", "id"),
    ("members", "user, tenant"),
    ("trackers", "row_id"),
    ("tokens", "id"),
    ("audit", "id"),
)

_MIN_SQLITE = (3, 24, 0)  # UPSERT
#: At most this many audit entries wait in memory while the database cannot be written; beyond
#: that the oldest are dropped, with a logged warning that counts them (read when a database is
#: opened).
MAX_PENDING = 100_000
#: The writer thread exits after this many flush intervals without work (and restarts on demand).
_IDLE_ROUNDS: Final = 30
#: Seconds the flush timer waits for a thread using the shared connection before trying later.
_TIMER_LOCK_TIMEOUT: Final = 0.05
#: Stands in ``SQLiteCore._timer`` while a timer is being started.
_PENDING_TIMER: Final = object()
#: What buffering asks for once the buffer lock is released (bits).
_DUE: Final = 1
_START_TIMER: Final = 2
_WARN_FULL: Final = 4

#: Databases opened and not closed, flushed at interpreter exit.
_open_cores: weakref.WeakSet[SQLiteCore] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for core in list(_open_cores):
        try:
            core._flush_at_exit()
        except Exception as exc:  # noqa: BLE001 - the process is exiting: report and go on
            logger.warning("buffered writes to the token database %s were lost at exit: %s", core.path, exc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def to_db_time(value: datetime) -> str:
    """A timezone-aware datetime as fixed-width UTC ISO text (sorts chronologically)."""
    if value.tzinfo is None:
        raise InvalidInputError("datetimes must be timezone-aware", hint="use datetime(..., tzinfo=timezone.utc)")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def check_database_file(path: str | os.PathLike[str], info: os.stat_result | None = None) -> None:
    """Refuse an existing database file that is not a regular file, or that group or others may
    write, as may its ``-wal`` or ``-shm`` (whoever writes the file can point bot credentials
    at their own server). ``info`` is the file's ``os.stat`` if the caller has it; a missing
    file passes (opening it says so). Call it before any SQLite connection opens the file: a
    connection to a database in WAL mode creates ``-wal`` and ``-shm`` with the file's mode."""
    shown = os.fspath(path)
    if info is None:
        try:
            info = os.stat(path)
        except OSError:
            return
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"the token database {shown!r} is not a regular file")
    real = Path(os.path.realpath(path))  # SQLite puts the -wal and -shm beside a link's target
    refuse_loose_mode(info, f"token database {shown!r}", real, error=StoreError, writers_only=True)
    for suffix in ("-wal", "-shm"):
        sidecar = real.with_name(real.name + suffix)
        try:
            sidecar_info = os.stat(sidecar)
        except OSError:
            continue  # none (SQLite creates it with the database's mode), or SQLite will say why
        refuse_loose_mode(
            sidecar_info,
            f"token database's {suffix} file {str(sidecar)!r}",
            sidecar,
            error=StoreError,
            writers_only=True,
        )


class SQLiteCore:
    """The connection, lock, key ring, clock and write-behind buffer the parts share."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        keyring: KeyRing | None,
        *,
        busy_timeout: float = 5.0,
        lock_wait: float | None = None,
        synchronous: str = "FULL",
        clock: Callable[[], datetime] = utc_now,
        flush_size: int = 1024,
        flush_interval: float = 1.0,
        background_writes: bool = False,
        create: bool = True,
    ) -> None:
        if keyring is not None and not isinstance(keyring, KeyRing):
            raise MissingKeyError(
                "the SQLite token database needs a KeyRing; nothing is stored without a key",
            )
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old; the token database needs 3.24 or newer",
                hint="use a Python built against a newer SQLite",
            )
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigurationError("synchronous must be FULL, NORMAL or EXTRA")
        if busy_timeout <= 0:
            raise ConfigurationError("busy_timeout must be positive (seconds)")
        self.path = str(path)
        self.keyring = keyring
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.lock_wait = lock_wait if lock_wait is not None else max(30.0, 6 * busy_timeout)
        if flush_size < 1 or flush_interval <= 0:
            raise ConfigurationError("flush_size must be at least 1 and flush_interval positive")
        self.flush_size = flush_size
        self.flush_interval = flush_interval
        self.background_writes = background_writes
        self.synchronous = synchronous.upper()
        #: Serializes the use of ``self.conn`` between threads.
        self.lock = threading.RLock()
        self.closed = False
        self._closing = False
        # The write-behind buffer: its own lock, a lock that keeps flushes in order, and the
        # writer thread (started on demand, gone when idle) with the event that wakes it.
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        #: The idle-flush timer (a threading.Timer, _PENDING_TIMER while one is being started).
        self._timer: object | None = None
        #: At most this many audit entries wait; beyond it the oldest are dropped (and counted).
        self.max_pending = MAX_PENDING
        self.pending_audit: deque[tuple[Any, ...]] = deque(maxlen=self.max_pending)
        self.pending_used: dict[int, datetime] = {}  # aware datetimes, made text at the flush
        self._pending_since: float | None = None
        #: After a failed flush the resolve path does not try again before this (monotonic) time.
        self._retry_after = 0.0
        #: Audit entries dropped since the last successful flush (reported by it).
        self._dropped = 0
        self.before_flush: list[Callable[[sqlite3.Connection], object]] = []
        #: Key ids whose key-check values were verified or recorded in this database.
        self.checked_keys: set[str] = set()
        #: Verifies the key ring against the database (set by SQLiteDatabase).
        self.check_keys: Callable[[], object] | None = None
        #: ``:memory:`` (or ``""``, a temporary database): no file to check, created empty.
        self._in_memory = self.path in (":memory:", "")
        self._check_or_create_file(create)
        self.conn = self._connect(shared=True, check_schema=not self._in_memory)
        try:
            self._migrate()
        except BaseException:
            self.conn.close()
            raise
        _open_cores.add(self)

    # -- opening -------------------------------------------------------------------------
    def _check_or_create_file(self, create: bool) -> None:
        """Check the database file before SQLite touches it, or create it whole if it is missing
        (and ``create``). An existing file, its ``-wal`` and its ``-shm`` must not be writable by
        group or others (SQLite gives a new ``-wal`` and ``-shm`` the database file's mode, so a
        private database keeps them private whatever the umask)."""
        if self._in_memory:
            return
        file = Path(self.path)
        info = self._stat(file)
        if info is None:
            if not create:
                raise StoreError(
                    f"there is no token database at {self.path!r}",
                    hint="check the path, or open it with create=True to create a new database there",
                )
            if self._create_whole(file):
                return
            info = self._stat(file)  # another process created it meanwhile: check theirs
            if info is None:
                raise StoreError(f"cannot create the token database {self.path!r} (a dangling symbolic link?)")
        check_database_file(self.path, info)

    def _stat(self, file: Path) -> os.stat_result | None:
        try:
            return os.stat(file)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot open the token database {self.path!r} ({exc.strerror})") from None

    def _create_whole(self, file: Path) -> bool:
        """Build a new database under a temporary name beside ``file`` and move it into place
        complete, so that a full disk or a crash never leaves a half-made database at ``file``
        (which would then pass for an empty one). Returns ``False`` if another process created
        ``file`` first (its database is used)."""
        temp = temporary_name(file)
        try:
            os.close(create_private(temp))
            conn = sqlite3.connect(temp, isolation_level=None)
            try:
                # A rollback journal while building: each commit is in the file when it returns.
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("BEGIN IMMEDIATE")
                self._upgrade(conn, 0)
                conn.execute("COMMIT")
                if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                    raise sqlite3.OperationalError("cannot switch to WAL mode")
            finally:
                conn.close()
            publish(temp, file, replace=False)
        except FileExistsError:
            return False
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreError(
                f"cannot create the token database {self.path!r} ({reason}); nothing was created"
            ) from None
        finally:
            for leftover in (temp, *(temp.with_name(temp.name + s) for s in ("-journal", "-wal", "-shm"))):
                with suppress(OSError):
                    leftover.unlink(missing_ok=True)
        return True

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a file that SQLite opens but that holds no tokenproviders schema, before
        anything (such as switching to WAL mode) changes it: a database is never created in
        place, so such a file was emptied, or is someone else's."""
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) != 0:
            return
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(
                f"{self.path!r} is an SQLite database but not a tokenproviders database (it has tables but"
                " no tokenproviders schema), so it is not used",
                hint="check the path of the token database",
            )
        raise StoreError(
            f"the token database {self.path!r} is empty (it has no tables), so it is not used;"
            " a new database is never left empty, so this one was emptied or replaced",
            hint="restore it from a backup; if nothing was ever stored in it, delete it and create it again",
        )

    def _connect(self, *, shared: bool, check_schema: bool = False) -> sqlite3.Connection:
        """A configured connection; ``shared`` ones are used from several threads under a lock.
        ``check_schema``: refuse a file without the schema (see :meth:`_check_schema`)."""
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=not shared,
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the token database {self.path!r} ({exc})") from None

        def setup() -> None:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if check_schema:
                self._check_schema(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() not in ("wal", "memory"):
                raise StoreError(f"the token database {self.path!r} cannot use WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
            # Reads on the resolve path go through the OS page cache without a copy per page,
            # and hot index pages stay in SQLite's own cache (16 MiB instead of 2 MiB).
            conn.execute("PRAGMA mmap_size = 268435456")
            conn.execute("PRAGMA cache_size = -16384")

        try:
            self._retry(setup, "open")
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def schema_version(self) -> int:
        return int(self.read_one("PRAGMA user_version")[0])

    def _migrate(self) -> None:
        if self._checked_version() == SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            self._upgrade(conn, self._checked_version())

    def _upgrade(self, conn: sqlite3.Connection, version: int) -> None:
        """Inside a write transaction on ``conn``: apply the migrations after ``version``."""
        for step in range(version + 1, SCHEMA_VERSION + 1):
            logger.info("migrating the token database %s to schema version %d", self.path, step)
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step}")

    def _checked_version(self) -> int:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the token database {self.path!r} has schema version {version}, newer than the"
                f" {SCHEMA_VERSION} this tokenproviders knows",
                hint="upgrade tokenproviders to the version that wrote this database",
            )
        return version

    # -- running statements --------------------------------------------------------------
    def _error(self, exc: sqlite3.Error, what: str) -> StoreError:
        if _is_busy(exc):
            return StoreError(
                f"the token database {self.path!r} stayed locked by another process for more than"
                f" {self.lock_wait:g} s while trying to {what}",
                hint="find the process holding a long write transaction, or raise lock_wait",
            )
        # sqlite3 messages name tables and columns, never bound values.
        return StoreError(f"the token database {self.path!r} failed to {what}: {exc}")

    def _retry(self, action: Callable[[], Any], what: str, *, wait: float | None = None) -> Any:
        deadline = time.monotonic() + (self.lock_wait if wait is None else wait)
        delay = 0.001
        while True:
            try:
                return action()
            except sqlite3.Error as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise self._error(exc, what) from None
            # SQLite's own busy handler already waited; back off a little more with jitter.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError(f"the token database {self.path!r} is closed")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run a query outside any write transaction and return all rows."""
        with self.lock:
            self._check_open()
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise self._error(exc, "read") from None
            result: list[Any] = self._retry(lambda: self.conn.execute(sql, params).fetchall(), "read")
            return result

    def read_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.read(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` on the shared connection; rolled back if the
        block raises."""
        with self.lock:
            self._check_open()
            with self._transaction_on(self.conn) as conn:
                yield conn

    @contextmanager
    def _transaction_on(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"), "start a write transaction")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            self._retry(lambda: conn.execute("COMMIT"), "commit")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def write(self, action: Callable[[sqlite3.Connection], Any], what: str) -> Any:
        """Run ``action`` in one write transaction, mapping SQLite errors onto StoreError."""
        try:
            with self.transaction() as conn:
                return action(conn)
        except sqlite3.Error as exc:
            raise self._error(exc, what) from None

    def refuse_retired(self, conn: sqlite3.Connection, key_id: str) -> None:
        """Inside a write transaction, before a blob sealed under ``key_id`` is written: refuse
        if the database has recorded that key as retired.

        Another process (an operator's ``retire_key``) may have retired this key ring's primary
        after it was loaded; a blob written under it now would be unreadable for every process
        that opens the database afterwards. One primary-key lookup, serialized with
        ``retire_key`` by the write lock."""
        row = conn.execute("SELECT retired_at FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is not None and row[0] is not None:
            raise KeyRetired(key_id)

    def data_version(self) -> int:
        """Changes when another connection commits (see ``PRAGMA data_version``)."""
        return int(self.read_one("PRAGMA data_version")[0])

    def sealing_keyring(self) -> KeyRing:
        """The key ring, once its primary key is known to this database: a primary added after
        opening gets its key-check value recorded before the first blob is sealed with it."""
        if self.keyring is None:
            raise MissingKeyError("this connection to the token database has no key ring")
        if self.keyring.primary_id not in self.checked_keys and self.check_keys is not None:
            self.check_keys()
        return self.keyring

    # -- write-behind buffer -------------------------------------------------------------
    # This is on the resolve path: a lock, an append, a clock read and two comparisons; the
    # rest happens once per flush (``_act``).
    def buffer_audit(self, row: tuple[Any, ...]) -> None:
        with self._buffer_lock:
            pending = self.pending_audit
            if len(pending) >= self.max_pending:
                # The deque drops the oldest entry on append; count it (said once, see _act).
                self._dropped += 1
                pending.append(row)
                action = self._buffered() | (_WARN_FULL if self._dropped == 1 else 0)
            else:
                pending.append(row)
                action = self._buffered()
        if action:
            self._act(action)

    def buffer_used(self, token_id: int, when: datetime) -> None:
        """``when`` must be timezone-aware (the caller checks)."""
        with self._buffer_lock:
            previous = self.pending_used.get(token_id)
            if previous is None or previous < when:
                self.pending_used[token_id] = when
            action = self._buffered()
        if action:
            self._act(action)

    def _buffered(self) -> int:
        """Called under the buffer lock after adding an item: what to do once the lock is
        released (``_DUE``: flush now; ``_START_TIMER``: start the idle timer)."""
        now = time.monotonic()
        since = self._pending_since
        action = 0
        if since is None:  # the first item since the last flush
            self._pending_since = since = now
            if self.background_writes:
                if self._writer is None and not self._closing:
                    self._writer = threading.Thread(
                        target=self._write_behind, name="tokenproviders-sqlite-writer", daemon=True
                    )
                    self._writer.start()
            elif self._timer is None and not self._closing:
                self._timer = _PENDING_TIMER
                action = _START_TIMER
        if (
            len(self.pending_audit) + len(self.pending_used) >= self.flush_size or now - since >= self.flush_interval
        ) and now >= self._retry_after:
            action |= _DUE
        return action

    def _act(self, action: int) -> None:
        if action & _WARN_FULL:
            logger.warning(
                "the audit buffer of the token database %s is full (%d entries) because the database"
                " cannot be written; dropping the oldest entries until it can",
                self.path,
                self.max_pending,
            )
        if action & _START_TIMER:
            self._start_timer(self.flush_interval)
        if action & _DUE:
            self._flush_due()

    def _start_timer(self, delay: float) -> None:
        """Flush by ``delay`` seconds from now even if nothing else is buffered (the process
        may go idle). Called with ``self._timer`` reserved (``_PENDING_TIMER``)."""
        timer = threading.Timer(delay, self._on_timer)
        timer.name = "tokenproviders-sqlite-flush-timer"
        timer.daemon = True
        with self._buffer_lock:
            if self._closing:
                self._timer = None
                return
            self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        with self._buffer_lock:
            self._forget_timer()
            if self._closing or self._pending_since is None:
                return
            delay = max(self._pending_since + self.flush_interval, self._retry_after) - time.monotonic()
        if delay <= 0:
            try:
                self._try_flush(lock_timeout=_TIMER_LOCK_TIMEOUT)
            except StoreError as exc:
                logger.warning("deferred writes to the token database failed and will be retried: %s", exc)
            except Exception:
                logger.exception("the token database's flush timer hit an unexpected error")
            delay = self.flush_interval
        # Something still buffered (not written, or buffered since) and no timer for it: come back.
        with self._buffer_lock:
            if self._closing or self._timer is not None or self._pending_since is None:
                return
            self._timer = _PENDING_TIMER
        self._start_timer(max(delay, 0.001))

    def _forget_timer(self) -> None:
        # A method, not an assignment in _on_timer: another thread may start a timer meanwhile.
        self._timer = None

    def _flush_due(self) -> None:
        if self.background_writes:
            self._wake.set()
            return
        try:
            self._try_flush()
        except StoreError as exc:
            # Recording must not fail a resolution; the entries are kept for the next flush.
            logger.warning("deferred writes to the token database failed and will be retried: %s", exc)

    def _try_flush(self, *, lock_timeout: float = 0.0) -> bool:
        """Flush now on the shared connection if that needs no waiting: not for another flush,
        not for a thread using the connection (beyond ``lock_timeout``), not for another
        process's write lock. Returns whether the buffer was written; if not, it stays
        buffered (the resolve path must never wait for a lock)."""
        if not self._flush_lock.acquire(blocking=False):
            return False  # another flush is writing right now
        try:
            acquired = self.lock.acquire(timeout=lock_timeout) if lock_timeout > 0 else self.lock.acquire(False)
            if not acquired:
                return False
            try:
                if self.closed:
                    return False
                return self._flush_locked(self.conn, wait=None)
            finally:
                self.lock.release()
        finally:
            self._flush_lock.release()

    def _write_behind(self) -> None:
        """The writer thread: flushes on its own connection when woken (the buffer is full)
        or every ``flush_interval`` seconds; exits after a while without work."""
        conn: sqlite3.Connection | None = None
        idle = 0
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                if self._closing:
                    return
                with self._buffer_lock:
                    if not self.pending_audit and not self.pending_used:
                        idle += 1
                        if idle >= _IDLE_ROUNDS:
                            self._writer = None
                            return
                        continue
                idle = 0
                try:
                    if conn is None:
                        conn = self._connect(shared=False)
                    with self._flush_lock:
                        self._flush_locked(conn, wait=self.lock_wait)
                except StoreError as exc:
                    logger.warning("deferred writes to the token database failed and will be retried: %s", exc)
                except Exception:
                    logger.exception("the token database's writer thread hit an unexpected error")
        finally:
            if conn is not None:
                conn.close()

    def flush(self) -> None:
        """Write buffered audit entries and last-used times now, in one transaction, waiting
        for another process's write lock up to ``lock_wait`` seconds (then StoreError, and the
        entries stay buffered)."""
        with self._flush_lock:  # flushes land in the order their entries were buffered
            with self.lock:
                self._check_open()
                self._flush_locked(self.conn, wait=self.lock_wait)

    def _flush_locked(self, conn: sqlite3.Connection, *, wait: float | None) -> bool:
        """Write the buffer in one transaction on ``conn`` (the caller holds the flush lock and,
        for the shared connection, the connection lock). ``wait``: seconds to wait for the write
        lock, or ``None`` for not at all (then ``False`` if it is taken, the buffer intact)."""
        with self._buffer_lock:
            if not self.pending_audit and not self.pending_used:
                return True
        what = "record audit entries and last-used times"
        if wait is None:
            # One attempt that does not wait: SQLite's busy handler is off for it.
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    self._backoff()
                    raise self._error(exc, what) from None
                self._backoff()
                return False
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        else:
            try:
                self._retry(lambda: conn.execute("BEGIN IMMEDIATE"), "start a write transaction", wait=wait)
            except StoreError:
                self._backoff()
                raise
        # The write lock is ours: only now take the entries out of the buffer.
        with self._buffer_lock:
            audit, used = list(self.pending_audit), self.pending_used
            self.pending_audit.clear()
            self.pending_used, self._pending_since, self._retry_after = {}, None, 0.0
            dropped, self._dropped = self._dropped, 0
        try:
            if audit:
                conn.executemany(AUDIT_INSERT, audit)
            if used:
                conn.executemany(
                    "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
                    [(to_db_time(when), token_id) for token_id, when in sorted(used.items())],
                )
            for hook in self.before_flush:
                hook(conn)
            self._retry(lambda: conn.execute("COMMIT"), "commit", wait=wait if wait is not None else 0.0)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._restore(audit, used, dropped)
            self._backoff()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, what) from None
            raise
        if dropped:
            logger.warning(
                "dropped %d audit entries of the token database %s while it could not be written",
                dropped,
                self.path,
            )
        return True

    def _backoff(self) -> None:
        """After a failed flush, the resolve path does not try again for ``flush_interval``."""
        with self._buffer_lock:
            self._retry_after = time.monotonic() + self.flush_interval

    def _restore(self, audit: list[tuple[Any, ...]], used: dict[int, datetime], dropped: int) -> None:
        """Put entries of a failed flush back in front of newer ones, within bounds (the oldest
        are dropped and counted)."""
        with self._buffer_lock:
            newer = list(self.pending_audit)
            excess = max(len(audit) + len(newer) - self.max_pending, 0)
            self.pending_audit.clear()
            self.pending_audit.extend(audit[excess:] if excess <= len(audit) else [])
            self.pending_audit.extend(newer[max(excess - len(audit), 0) :])
            self._dropped += dropped + excess
            for token_id, when in used.items():
                previous = self.pending_used.get(token_id)
                if previous is None or previous < when:
                    self.pending_used[token_id] = when
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            start_timer = self._timer is None and not self._closing and not self.background_writes
            if start_timer:
                self._timer = _PENDING_TIMER
        if start_timer:
            self._start_timer(self.flush_interval)

    def _flush_at_exit(self) -> None:
        """At interpreter exit: write what is buffered, waiting for locks at most
        ``busy_timeout`` seconds (an exiting process must not hang on another's lock)."""
        with self._buffer_lock:
            timer, self._timer = self._timer, None
            if self.closed or (not self.pending_audit and not self.pending_used):
                return
        if isinstance(timer, threading.Timer):
            timer.cancel()
        if not self._flush_lock.acquire(timeout=self.busy_timeout):
            return
        try:
            if not self.lock.acquire(timeout=self.busy_timeout):
                return
            try:
                if not self.closed:
                    self._flush_locked(self.conn, wait=self.busy_timeout)
            finally:
                self.lock.release()
        finally:
            self._flush_lock.release()

    def close(self) -> None:
        """Stop the writer thread and the flush timer, flush what is buffered (waiting for the
        write lock up to ``lock_wait``), close the connection."""
        with self._buffer_lock:
            if self._closing:
                return
            self._closing = True
            writer = self._writer
            timer, self._timer = self._timer, None
        if isinstance(timer, threading.Timer):
            timer.cancel()
        self._wake.set()
        if writer is not None:
            writer.join()
        try:
            self.flush()
        finally:
            with self.lock:
                self.closed = True
                self.conn.close()
            _open_cores.discard(self)


def retention_cutoff(now: datetime, age: timedelta | None) -> str | None:
    return to_db_time(now - age) if age is not None else None
