"""Writing key files: whole or not at all (a full disk leaves no partial file), private whatever
the umask, through symbolic links, and read-modify-write under a lock (issue 11: F04, F06, F12)."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenproviders.crypto import KeyRing
from tokenproviders.errors import ConfigurationError


def file_limit(size: int) -> Callable[[], None]:
    """For ``preexec_fn``: a write past ``size`` bytes fails with EFBIG, as on a full disk."""

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


WRITE = """
    import sys
    from tokenproviders.crypto import KeyRing
    from tokenproviders.errors import ConfigurationError
    path, replace = sys.argv[1], sys.argv[2] == "replace"
    ring = KeyRing.from_key_file(path) if replace else KeyRing.generate("k1")
    for n in range(20):
        ring.add_key(f"more-{n}")
    try:
        ring.write_key_file(path, replace=replace)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        sys.exit(10)
"""


def test_a_new_key_file_that_cannot_be_written_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = run_python(WRITE, str(path), "new", preexec_fn=file_limit(100))
    assert result.returncode == 10, result.stderr
    assert "File too large" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_replaced_key_file_that_cannot_be_written_stays_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path, key_id="k1")
    before = path.read_bytes()
    result = run_python(WRITE, str(path), "replace", preexec_fn=file_limit(len(before) + 100))
    assert result.returncode == 10, result.stderr
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_key_files_are_0600_under_any_umask(tmp_path: Path) -> None:
    code = """
        import os, stat, sys
        from tokenproviders.crypto import KeyRing
        os.umask(int(sys.argv[2], 8))
        ring = KeyRing.generate_key_file(sys.argv[1] + "/new.json")
        ring.write_key_file(sys.argv[1] + "/new.json", replace=True)
        with KeyRing.edit_key_file(sys.argv[1] + "/new.json") as ring:
            ring.add_key("k2")
        for name in sorted(os.listdir(sys.argv[1])):
            print(name, oct(stat.S_IMODE(os.stat(os.path.join(sys.argv[1], name)).st_mode)))
    """
    for umask in ("000", "277", "022"):
        directory = tmp_path / umask
        directory.mkdir()
        result = run_python(code, str(directory), umask)
        assert result.returncode == 0, result.stderr
        assert {line.split()[1] for line in result.stdout.splitlines()} == {"0o600"}, (umask, result.stdout)


def test_replacing_a_symlinked_key_file_writes_its_target(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    target = vault / "keys.json"
    KeyRing.generate_key_file(target, key_id="k1")
    link = tmp_path / "keys.json"
    link.symlink_to(target)
    ring = KeyRing.from_key_file(link)
    ring.add_key("k2")
    ring.write_key_file(link, replace=True)
    assert link.is_symlink() and link.resolve() == target
    assert KeyRing.from_key_file(target).key_ids == ("k2", "k1")


def test_editing_a_key_file_keeps_what_another_process_wrote_meanwhile(tmp_path: Path) -> None:
    """The edit holds the lock from reading to writing: another process's edit waits for it, and
    then starts from the file this edit wrote, not from the one before."""
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path, key_id="k1")
    other = """
        import sys
        from tokenproviders.crypto import KeyRing
        print("ready", flush=True)
        with KeyRing.edit_key_file(sys.argv[1]) as ring:
            ring.add_key("from-the-other-process")
    """
    with KeyRing.edit_key_file(path) as ring:
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(other), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        ring.add_key("from-this-process")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert set(KeyRing.from_key_file(path).key_ids) == {"k1", "from-this-process", "from-the-other-process"}


def test_an_edit_that_raises_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path, key_id="k1")
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match="already used"), KeyRing.edit_key_file(path) as ring:
        ring.add_key("k2")
        ring.add_key("k2")
    assert path.read_bytes() == before


def test_editing_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path, key_id="k1")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"), KeyRing.edit_key_file(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
