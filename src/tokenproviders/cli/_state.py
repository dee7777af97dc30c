"""Where the command keeps its data, and opening it: the embedded SQLite database plus key file.

The data directory comes from ``--data-dir``, else ``TOKENPROVIDERS_HOME``, else platformdirs'
per-user data directory. It holds ``tokenproviders.sqlite3`` and, unless ``--key-file`` points
elsewhere, the 0600 key file ``tokenproviders.key``. Nothing is created except by ``init``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._private_files import make_private_dirs
from ..errors import ConfigurationError, MissingKeyError, SecretUnreadableError, StoreError, TokenProvidersError
from ..model import ClientSettings, Resolution
from ..plugins import Plugins, hookimpl
from ..resolver import Resolver
from ._redaction import Redactor
from .exit_codes import ConflictError

if TYPE_CHECKING:
    from ..crypto import KeyRing
    from ..stores.sqlite import SQLiteDatabase, SQLiteDirectory

__all__ = ["CLIConfig", "DataPaths", "Session", "initialise", "open_session", "HOME_ENV", "KEY_FILE_ENV"]

HOME_ENV = "TOKENPROVIDERS_HOME"
KEY_FILE_ENV = "TOKENPROVIDERS_KEY_FILE"
DB_NAME = "tokenproviders.sqlite3"
KEY_NAME = "tokenproviders.key"
#: Seconds the write probe waits for another process's write lock (the store waits as long).
_WRITE_PROBE_TIMEOUT = 30.0


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tokenproviders", appauthor=False))


@dataclass
class CLIConfig:
    """What the root command's options decided, shared with every subcommand (``ctx.obj``).

    Tests may pass a pre-filled instance as ``obj`` to add plugins (e.g. the in-memory tracker
    type) or to pretend that stdin is a terminal.
    """

    data_dir: Path | None = None
    key_file: Path | None = None
    #: ``key_file`` came from ``TOKENPROVIDERS_KEY_FILE`` rather than ``--key-file``: an explicit
    #: ``--key-file`` wins over a key provider and ``TOKENPROVIDERS_KEYS``; the variable does not.
    key_file_from_env: bool = False
    debug: bool = False
    timeout: float = 10.0
    extra_plugins: Sequence[object] = ()
    interactive: bool | None = None
    redactor: Redactor = field(default_factory=Redactor)

    def paths(self) -> DataPaths:
        root = self.data_dir if self.data_dir is not None else default_data_dir()
        return DataPaths(root=root, key_file=self.key_file)

    @property
    def explicit_key_file(self) -> Path | None:
        """The key file named with ``--key-file`` (or by a caller's config), if any."""
        return self.key_file if not self.key_file_from_env else None

    def stdin_is_interactive(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        try:
            return bool(sys.stdin.isatty())
        except (AttributeError, ValueError):
            return False


@dataclass(frozen=True)
class DataPaths:
    """The files of one data directory."""

    root: Path
    key_file: Path | None = None

    @property
    def database(self) -> Path:
        return self.root / DB_NAME

    @property
    def key(self) -> Path:
        return self.key_file if self.key_file is not None else self.root / KEY_NAME


def _store_error(action: str, path: Path, exc: BaseException) -> StoreError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StoreError(f"cannot {action} {path}: {reason}")


def _open_database(path: Path, keyring: KeyRing, *, create: bool = False) -> SQLiteDatabase:
    """Open the database; only ``init`` creates it (an empty or missing file is refused)."""
    from ..stores.sqlite import SQLiteDatabase

    try:
        return SQLiteDatabase(path, keyring, create=create)
    except TokenProvidersError:
        raise
    except sqlite3.Error as exc:
        raise _store_error("open the database", path, exc) from None
    except OSError as exc:
        raise _store_error("open the database", path, exc) from None


def _refuse_foreign_key_ring(path: Path, keyring: KeyRing) -> None:
    """Refuse a key ring that shares no key with the secrets stored in the database.

    Opening the database records unseen keys, so a wrong key file would otherwise leave a trace
    (and every secret would fail to open later, one by one). Peeks read-only at the documented
    ``keys``/``tokens``/``trackers`` tables; if that is not possible, the store's own checks apply.
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    try:
        in_use = {
            row[0]
            for row in conn.execute(
                "SELECT key_id FROM tokens UNION SELECT key_id FROM trackers WHERE key_id IS NOT NULL"
            )
        }
    except sqlite3.Error:
        return
    finally:
        conn.close()
    if in_use and not in_use & set(keyring.key_ids):
        raise SecretUnreadableError(
            f"the key ring ({keyring.source}) holds none of the keys that seal the secrets in {path}"
            f" (they are sealed under {', '.join(sorted(in_use))}); it is probably the wrong key file",
            hint="point --key-file (or TOKENPROVIDERS_KEY_FILE) at the key file created with this database",
        )


def initialise(paths: DataPaths) -> tuple[Path, Path]:
    """Create the data directory, a fresh key file and an empty database. Refuses to clobber."""
    from ..crypto import KeyRing

    database, key = paths.database, paths.key
    for existing in (database, key):
        if existing.exists():
            raise ConflictError(
                f"{existing} already exists; refusing to overwrite it",
                hint="use another --data-dir, or move the existing database and key away first",
            )
    created: list[Path] = []
    try:
        for directory in dict.fromkeys((paths.root, key.parent)):
            try:
                # Each missing level 0700, whatever the umask (mkdir -p would make parents 0777 - umask).
                created.extend(make_private_dirs(directory))
            except OSError as exc:
                raise _store_error("create the data directory", directory, exc) from None
        try:
            KeyRing.generate_key_file(key)  # written whole or not at all
        except ConfigurationError as exc:
            # The data directory could not take it (a full disk, permissions): a store error.
            raise StoreError(exc.message, hint=exc.hint) from None
        created.append(key)
        keyring = KeyRing.from_key_file(key)
        created.append(database)  # checked above: it did not exist
        _open_database(database, keyring, create=True).close()  # created whole or not at all
    except BaseException:
        # Leave nothing half-made behind, so that a second ``init`` can succeed.
        for path in reversed(created):
            with contextlib.suppress(OSError):
                if path.is_dir():
                    path.rmdir()
                else:
                    for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                        extra.unlink(missing_ok=True)
        raise
    return database, key


class _LastResolution:
    """Remembers the resolution a resolver call acted with (``verify`` shows it, without
    resolving a second time and so recording a second audit entry)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution) -> None:
        self.session.last_resolution = resolution


class Session:
    """One command's open database, plugins and resolver. Close it when the command ends."""

    def __init__(self, config: CLIConfig, *, isolated: bool = False) -> None:
        from ..crypto import KeyRing
        from ..stores._sqlite_base import check_database_file

        self.config = config
        self.last_resolution: Resolution | None = None
        #: Set when the audit entry of what the command did could not be written (and the
        #: command said so): closing then does not fail a second time on the same entries.
        self.audit_failure: StoreError | None = None
        self.paths = paths = config.paths()
        if not paths.database.exists():
            raise StoreError(
                f"no tokenproviders database at {paths.database}",
                hint=(
                    "run 'tokenproviders init' first, or point --data-dir (or "
                    f"{HOME_ENV}) at an initialised data directory"
                ),
            )
        self.plugins = Plugins(extra=config.extra_plugins)
        if isolated:
            # The demo: only its own key file, whatever the environment or key plugins say.
            keyring = KeyRing.from_key_file(paths.key)
        else:
            try:
                # --key-file, else a key provider plugin, else TOKENPROVIDERS_KEYS, else the file
                # named by TOKENPROVIDERS_KEY_FILE, else the data directory's key file.
                keyring = KeyRing.load(
                    key_file=config.explicit_key_file, plugins=self.plugins, default_key_file=paths.key
                )
            except MissingKeyError as exc:
                raise MissingKeyError(
                    exc.message,
                    hint=(
                        f"restore the key file created by 'tokenproviders init' to {paths.key} (or point"
                        " --key-file at it); a new key cannot open the secrets already stored"
                    ),
                ) from None
        # Before the read-only peek below: it would create a -wal and -shm with a loose file's mode.
        check_database_file(paths.database)
        _refuse_foreign_key_ring(paths.database, keyring)
        self.db: SQLiteDatabase = _open_database(paths.database, keyring)
        try:
            self.plugins.register(self.db.audit.observer(), name="audit")
            self.plugins.register(config.redactor.observer(), name="cli-redactor")
            self.plugins.register(_LastResolution(self), name="cli-last-resolution")
            self.resolver = Resolver(
                self.db.directory,
                self.db.tokens,
                plugins=self.plugins,
                settings=ClientSettings(timeout=config.timeout),
            )
        except BaseException:
            self.db.close()
            raise

    @property
    def directory(self) -> SQLiteDirectory:
        return self.db.directory

    def require_writable(self) -> None:
        """Fail now (:class:`StoreError`, exit 11) unless the database accepts a write.

        Commands that act on a tracker call this before contacting it: the audit entry of what
        they do is written after the tracker answered, and a database that cannot take it must
        stop the command while nothing has happened yet. The probe is a write statement inside
        ``BEGIN IMMEDIATE``, rolled back: SQLite checks that the file can be written and that the
        write lock can be had (waiting as long as the store does), and nothing changes.
        (``BEGIN IMMEDIATE`` alone succeeds on a read-only WAL database.)
        """
        path = self.paths.database
        try:
            conn = sqlite3.connect(path, timeout=_WRITE_PROBE_TIMEOUT, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute(f"PRAGMA user_version = {version}")
            finally:
                conn.close()  # rolls the probe back
        except sqlite3.Error as exc:
            raise StoreError(
                f"the database {path} cannot be written ({exc}), so this command's audit entry could not"
                " be recorded; nothing was done",
                hint="make the database file and its directory writable for this user (or wait for the"
                " process holding its write lock), then run the command again",
            ) from None

    def flush_audit(self) -> StoreError | None:
        """Write the buffered audit entries now; return the error instead of raising it.

        The entries stay buffered after a failure, and :meth:`close` tries once more."""
        try:
            self.db.flush()
        except StoreError as exc:
            self.audit_failure = exc
            return exc
        return None

    def close(self) -> None:
        try:
            self.db.close()
        except StoreError:
            if self.audit_failure is None:
                raise
            # Already reported with the command's result: the closing flush failed again.


def open_session(config: CLIConfig) -> Session:
    """Open the data directory named by ``config`` (it must have been initialised)."""
    try:
        return Session(config)
    except OSError as exc:
        raise _store_error("open", Path(exc.filename or config.paths().root), exc) from None

