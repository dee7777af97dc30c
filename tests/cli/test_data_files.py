"""The command's data files: an empty or foreign database is refused, never re-initialised; a
failed ``init`` leaves nothing behind; and everything is private whatever the umask (issue 11:
F05, F06, F12)."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.crypto import KeyRing

from .conftest import CLI, one_error_line, subprocess_env


def file_limit(size: int) -> Callable[[], None]:
    """For ``preexec_fn``: files the child writes cannot grow beyond ``size`` bytes; a write past
    it fails with EFBIG, as on a full disk (SIGXFSZ, which would kill the process, is ignored)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def run(
    *args: str, data_dir: Path, preexec_fn: Callable[[], None] | None = None, module: str = "tokenproviders.cli"
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(data_dir, {"PYTHONDONTWRITEBYTECODE": "1"})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=preexec_fn,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


# -- F05 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("token", "list"), ("tenants", "list", "--json"), ("tenants", "add", "acme")])
def test_an_empty_database_file_is_refused(world: CLI, args: tuple[str, ...]) -> None:
    world.database.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        world.database.with_name(world.database.name + suffix).unlink(missing_ok=True)
    line = world.fails(ExitCode.STORE_ERROR, *args)
    assert "is empty" in line and str(world.database) in line
    assert world.database.read_bytes() == b""  # not re-initialised
    assert world.key_file.exists()


def test_init_still_refuses_an_empty_database_file(cli: CLI) -> None:
    cli.data_dir.mkdir(mode=0o700)
    cli.database.touch(mode=0o600)
    cli.fails(ExitCode.CONFLICT, "init")
    assert cli.database.read_bytes() == b"" and not cli.key_file.exists()


# -- F06 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("limit", "what"),
    [(64, "the key file"), (16 * 1024, "the database")],
)
def test_init_on_a_full_disk_leaves_nothing_half_made(tmp_path: Path, limit: int, what: str) -> None:
    data = tmp_path / "data"
    result = run("init", data_dir=data, preexec_fn=file_limit(limit))
    assert result.returncode == ExitCode.STORE_ERROR, (result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    # The OS's reason for the key file; SQLite reports its own ("disk I/O error").
    assert "File too large" in line if what == "the key file" else "disk I/O error" in line
    assert not data.exists() or list(data.iterdir()) == [], f"init left files behind after {what} failed"
    # The next init has nothing in its way.
    result = run("init", data_dir=data)
    assert result.returncode == 0, result.stderr
    KeyRing.from_key_file(data / "tokenproviders.key")


def test_generating_a_key_file_on_a_full_disk_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = run("generate", str(path), data_dir=tmp_path, preexec_fn=file_limit(64), module="tokenproviders.crypto")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "File too large" in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == [], "a partial key file (or its temporary file) was left behind"
    result = run("generate", str(path), data_dir=tmp_path, module="tokenproviders.crypto")
    assert result.returncode == 0, result.stderr
    KeyRing.from_key_file(path)


# -- F12 ---------------------------------------------------------------------------------------
def test_init_under_umask_0_creates_private_directories_and_files(tmp_path: Path) -> None:
    data = tmp_path / "a" / "b" / "data"
    result = run("init", data_dir=data, preexec_fn=lambda: os.umask(0) and None)
    assert result.returncode == 0, result.stderr
    for directory in (tmp_path / "a", tmp_path / "a" / "b", data):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for file in data.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_a_database_others_may_write_is_refused(world: CLI) -> None:
    before = world.dump()
    for suffix in ("-wal", "-shm"):  # the read-only dump's (empty, 0600); none is open
        world.database.with_name(world.database.name + suffix).unlink(missing_ok=True)
    os.chmod(world.database, 0o666)
    line = world.fails(ExitCode.STORE_ERROR, "tenants", "list")
    assert "writable by group or others" in line and "chmod 600" in line
    # Nothing opened it: no -wal or -shm was made with that mode.
    assert sorted(p.name for p in world.data_dir.iterdir()) == ["tokenproviders.key", "tokenproviders.sqlite3"]
    os.chmod(world.database, 0o600)
    assert world.dump() == before
