"""Files only their owner may touch: the key file and the SQLite database share these rules.

- :func:`refuse_loose_mode` is the one permission check: a key file others may read or write,
  or a database (or its ``-wal``/``-shm``) others may write, is refused with a ``chmod`` hint.
- :func:`make_private_dirs` creates directories 0700 and :func:`create_private` files 0600,
  whatever the umask.
- :func:`write_whole` writes a file whole or not at all: a temporary file in the same
  directory, synced, then moved into place (:func:`publish`), and removed on any failure, so a
  full disk or a crash never leaves a partial file where a reader expects a complete one.
- :func:`exclusive_lock` serializes read-modify-write of a file that is replaced by rename.
  It locks the file itself and checks, once locked, that the file is still there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import TokenProvidersError

if sys.platform != "win32":
    import fcntl

__all__ = [
    "refuse_loose_mode",
    "make_private_dirs",
    "create_private",
    "temporary_name",
    "publish",
    "write_whole",
    "fsync_directory",
    "exclusive_lock",
]

#: Seconds :func:`exclusive_lock` waits for another process's lock before giving up.
LOCK_WAIT = 30.0

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A file system without hard links answers link() with one of these.
_NO_LINKS = {errno.EPERM, errno.EMLINK, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


def refuse_loose_mode(
    info: os.stat_result,
    what: str,
    path: str | os.PathLike[str],
    *,
    error: type[TokenProvidersError],
    writers_only: bool = False,
) -> None:
    """Raise ``error`` if group or others may write the file ``info`` describes (or, unless
    ``writers_only``, read it). ``what`` names it in the message ("key file '...'")."""
    mask = 0o022 if writers_only else 0o077
    if os.name == "posix" and info.st_mode & mask:
        who = "writable" if writers_only else "readable or writable"
        raise error(
            f"the {what} is {who} by group or others (mode {stat.S_IMODE(info.st_mode):04o}), so it is not used",
            hint=f"restrict it to its owner: chmod 600 {path}",
        )


def make_private_dirs(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents, each mode 0700 whatever the umask; return the
    directories this call created, outermost first (to remove them again after a failure)."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    created: list[Path] = []
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours to set or remove
        os.chmod(directory, 0o700)  # a umask may have taken bits from the owner too
        created.append(directory)
    return created


def create_private(path: Path) -> int:
    """Create the new file ``path`` (never an existing one, never through a link), mode 0600
    whatever the umask, and return its descriptor, open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` for building its next version (same directory, so the
    final rename stays on one file system)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def fsync_directory(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (best effort: some file systems cannot
    sync a directory, and the rename itself has already happened)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(temp: Path, path: Path, *, replace: bool) -> None:
    """Put the complete file ``temp`` at ``path`` (the same directory) in one step: a reader
    sees the old file or the new one, never a part of it.

    With ``replace`` an existing ``path`` is replaced; without, it is kept and
    :class:`FileExistsError` raised (``temp`` is left for the caller to remove)."""
    if replace:
        os.replace(temp, path)
    else:
        try:
            os.link(temp, path)  # fails if path exists: never clobbers
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            # No hard links here: check, then rename (only a creator racing us could slip between).
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
            os.rename(temp, path)
        else:
            temp.unlink()
    fsync_directory(path.parent)


def write_whole(path: Path, fill: Callable[[int], None], *, replace: bool) -> None:
    """Write the 0600 file ``path`` whole or not at all: ``fill(fd)`` writes a temporary file
    beside it, which is synced and then published (see :func:`publish`). On any failure the
    temporary file is removed and ``path`` is as it was. Raises :class:`OSError` (and
    :class:`FileExistsError` without ``replace`` when ``path`` exists)."""
    temp = temporary_name(path)
    fd = create_private(temp)
    try:
        try:
            fill(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        publish(temp, path, replace=replace)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive_lock(path: Path, *, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) for a read-modify-write of ``path`` (already
    resolved: no symlink), which the writer replaces by a rename (see :func:`write_whole`).

    A lock on a file that is then replaced is held on the old file only, so after taking it
    this checks that ``path`` is still the file locked, and otherwise locks the new one: a
    process that waited while another replaced the file then reads the new file, not the one
    it first opened. Waits up to ``wait`` seconds, then raises :class:`TimeoutError`; a missing
    file is :class:`FileNotFoundError`. Without ``fcntl`` (Windows) nothing is locked."""
    if sys.platform == "win32":
        yield
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(path, os.O_RDWR | _O_CLOEXEC | _O_NOFOLLOW)
        except PermissionError:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW)  # a 0400 file: flock needs no write access
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            errno.ETIMEDOUT, f"another process has held its lock for more than {wait:g} s"
                        ) from None
                    time.sleep(0.01)
            locked = os.fstat(fd)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino):
                yield
                return
        finally:
            os.close(fd)  # releases the lock
        # Replaced (or removed) while this process waited: lock the file there now.
