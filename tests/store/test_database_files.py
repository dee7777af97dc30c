"""The SQLite database's file: created whole or not at all, private whatever the umask, and an
existing file used only if it is a tokenproviders database that nobody else may write
(issue 11: F05, F06, F12)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenproviders.crypto import KeyRing
from tokenproviders.errors import StoreError
from tokenproviders.stores.sqlite import SCHEMA_VERSION, SQLiteDatabase


def sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def file_limit(size: int) -> Callable[[], None]:
    """For ``preexec_fn``: files the child writes cannot grow beyond ``size`` bytes; a write past
    it fails with EFBIG (SIGXFSZ, which would kill the process instead, is ignored)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def run_python(code: str, *args: str, preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENPROVIDERS_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=preexec_fn,
        timeout=120,
    )


# -- F05: an existing file must be a tokenproviders database ---------------------------------
@pytest.mark.parametrize("create", [True, False])
def test_an_empty_file_is_refused_not_initialised(db_path: Path, keyring: KeyRing, create: bool) -> None:
    db_path.touch(mode=0o600)
    with pytest.raises(StoreError, match="empty") as caught:
        SQLiteDatabase(db_path, keyring, create=create)
    assert "tokenproviders init" not in caught.value.message  # the API's message; the CLI adds its own
    assert db_path.read_bytes() == b""
    assert not any(path.exists() for path in sidecars(db_path))


def test_another_sqlite_database_is_refused_and_left_alone(db_path: Path, keyring: KeyRing) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    os.chmod(db_path, 0o600)
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="not a tokenproviders database"):
        SQLiteDatabase(db_path, keyring)
    assert db_path.read_bytes() == before  # not even switched to WAL mode
    assert not any(path.exists() for path in sidecars(db_path))


def test_a_file_that_is_not_sqlite_is_refused(db_path: Path, keyring: KeyRing) -> None:
    db_path.write_bytes(b"just some text, not a database\n" * 100)
    os.chmod(db_path, 0o600)
    with pytest.raises(StoreError, match="not a database"):
        SQLiteDatabase(db_path, keyring)
    assert db_path.read_bytes() == b"just some text, not a database\n" * 100


def test_create_false_refuses_a_missing_file_and_creates_nothing(tmp_path: Path, keyring: KeyRing) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="no token database"):
        SQLiteDatabase(path, keyring, create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]


def test_create_false_opens_an_existing_database(db_path: Path, keyring: KeyRing) -> None:
    with SQLiteDatabase(db_path, keyring) as db:
        db.directory.add_member("alice", "acme")
    with SQLiteDatabase(db_path, keyring, create=False) as db:
        assert db.directory.tenants_of("alice") == {"acme"}
        assert db.schema_version == SCHEMA_VERSION


def test_an_in_memory_database_is_created(keyring: KeyRing) -> None:
    with SQLiteDatabase(":memory:", keyring) as db:
        assert db.schema_version == SCHEMA_VERSION


# -- F06: a new database appears whole, or not at all -----------------------------------------
CREATE = """
    import sys
    from tokenproviders.crypto import KeyRing
    from tokenproviders.errors import StoreError
    from tokenproviders.stores.sqlite import SQLiteDatabase
    try:
        SQLiteDatabase(sys.argv[1], KeyRing.from_key_file(sys.argv[2])).close()
    except StoreError as exc:
        print(exc, file=sys.stderr)
        sys.exit(11)
"""


def test_a_failed_creation_leaves_no_file(tmp_path: Path, key_file: Path) -> None:
    path = tmp_path / "tokens.db"
    # Big enough for a page or two, far too small for the schema.
    result = run_python(CREATE, str(path), str(key_file), preexec_fn=file_limit(8192))
    assert result.returncode == 11, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"], "a half-made database was left behind"
    # Nothing is in the way of the next attempt.
    result = run_python(CREATE, str(path), str(key_file))
    assert result.returncode == 0, result.stderr
    with SQLiteDatabase(path, KeyRing.from_key_file(key_file), create=False) as db:
        assert db.schema_version == SCHEMA_VERSION


def test_processes_creating_one_database_at_once_share_it(tmp_path: Path, key_file: Path) -> None:
    path = tmp_path / "tokens.db"
    code = """
        import sys, time
        from pathlib import Path
        from tokenproviders.crypto import KeyRing
        from tokenproviders.stores.sqlite import SQLiteDatabase
        go = Path(sys.argv[3])
        while not go.exists():
            time.sleep(0.002)
        with SQLiteDatabase(sys.argv[1], KeyRing.from_key_file(sys.argv[2])) as db:
            db.directory.add_member(sys.argv[4], "acme")
    """
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENPROVIDERS_")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(path), str(key_file), str(go), f"user{n}"],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(4)
    ]
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    with SQLiteDatabase(path, KeyRing.from_key_file(key_file), create=False) as db:
        assert sorted(db.directory.members_of("acme")) == [f"user{n}" for n in range(4)]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- F12: private files whatever the umask; nobody else may write the database ----------------
def test_files_are_private_under_umask_0(tmp_path: Path, key_file: Path) -> None:
    code = """
        import os, stat, sys
        from pathlib import Path
        from tokenproviders.crypto import KeyRing
        from tokenproviders.stores.sqlite import SQLiteDatabase
        os.umask(0)
        path = Path(sys.argv[1])
        with SQLiteDatabase(path, KeyRing.from_key_file(sys.argv[2])) as db:
            db.directory.add_member("alice", "acme")
            for name in (path.name, path.name + "-wal", path.name + "-shm"):
                print(name, oct(stat.S_IMODE((path.parent / name).stat().st_mode)))
    """
    result = run_python(code, str(tmp_path / "tokens.db"), str(key_file))
    assert result.returncode == 0, result.stderr
    modes = dict(line.split() for line in result.stdout.splitlines())
    assert modes == {"tokens.db": "0o600", "tokens.db-wal": "0o600", "tokens.db-shm": "0o600"}


@pytest.mark.parametrize("mode", [0o666, 0o660, 0o606, 0o620, 0o602])
def test_a_database_others_may_write_is_refused(db_path: Path, keyring: KeyRing, mode: int) -> None:
    SQLiteDatabase(db_path, keyring).close()
    os.chmod(db_path, mode)
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="chmod 600") as caught:
        SQLiteDatabase(db_path, keyring)
    assert f"{mode:04o}" in caught.value.message and "writable by group or others" in caught.value.message
    assert db_path.read_bytes() == before
    assert not any(path.exists() for path in sidecars(db_path))  # no -wal or -shm made with that mode


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_write_ahead_log_others_may_write_is_refused(db_path: Path, keyring: KeyRing, suffix: str) -> None:
    SQLiteDatabase(db_path, keyring).close()
    sidecar = db_path.with_name(db_path.name + suffix)
    sidecar.touch()
    os.chmod(sidecar, 0o666)
    with pytest.raises(StoreError, match="chmod 600"):
        SQLiteDatabase(db_path, keyring)


def test_a_symlinked_database_is_checked_at_its_target(tmp_path: Path, keyring: KeyRing) -> None:
    target = tmp_path / "real.db"
    SQLiteDatabase(target, keyring).close()
    link = tmp_path / "link.db"
    link.symlink_to(target)
    with SQLiteDatabase(link, keyring, create=False) as db:
        db.directory.add_member("alice", "acme")
    os.chmod(target, 0o666)
    with pytest.raises(StoreError, match="chmod 600"):
        SQLiteDatabase(link, keyring)


def test_a_database_others_may_read_is_used(db_path: Path, keyring: KeyRing) -> None:
    # Readable by others shows metadata, never a secret; only writers can redirect secrets.
    SQLiteDatabase(db_path, keyring).close()
    os.chmod(db_path, 0o644)
    with SQLiteDatabase(db_path, keyring) as db:
        db.directory.add_member("alice", "acme")
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o644
