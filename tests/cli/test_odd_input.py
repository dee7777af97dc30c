"""Input at the edges of what Python can hold is refused clearly, never "unexpected ... a bug".

Dates beyond year 9999 once converted to UTC, durations that reach before year 1, and arguments
that are not valid text (bytes that are not UTF-8 become lone surrogates in ``sys.argv``) each
give one ``Error:`` line, exit code 2, and leave the database as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.model import MAX_USERNAME_LENGTH

from .conftest import CLI, TRACKER_URL, one_error_line, subprocess_env

UNDECODABLE = "a\udcffb"  # what Python makes of the argv bytes b"a\xffb" (surrogateescape)


def refused(cli: CLI, *args: str, input: str | None = None) -> str:
    """Run a command that must be refused as a usage error; the database must not change."""
    before = cli.dump()
    result = cli(*args, input=input)
    assert result.exit_code == ExitCode.USAGE, (result.exit_code, result.stdout, result.stderr, result.exception)
    line = one_error_line(result.stderr)
    assert "unexpected" not in line and "bug" not in line, line
    assert cli.dump() == before
    return line


@pytest.mark.parametrize("expires", ["9999-12-31T23:59:59-23:59", "9999-12-31T23:00:00-01:00"])
def test_an_expiry_beyond_year_9999_in_utc_is_refused(world: CLI, expires: str) -> None:
    line = refused(world, "token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin",
                   "--expires", expires, input="alice-secret-token\n")
    assert "--expires" in line and expires in line


def test_the_latest_expiry_that_fits_is_taken(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin",
             "--expires", "9999-12-31T23:59:59+00:00", input="alice-secret-token\n")


@pytest.mark.parametrize("since", ["999999w", "999999d", "0001-01-01T00:00:00+00:01"])
def test_a_since_before_year_1_is_refused(world: CLI, since: str) -> None:
    line = refused(world, "audit", "--since", since)
    assert "--since" in line and since in line


@pytest.mark.parametrize(
    "args",
    [
        ("token", "list", UNDECODABLE),
        ("token", "set", UNDECODABLE, TRACKER_URL, "--tenant", "acme", "--password-stdin"),
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--label", UNDECODABLE),
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--username", UNDECODABLE),
        ("tenants", "add", UNDECODABLE),
        ("tenants", "grant", "acme", UNDECODABLE),
        ("trackers", "add", "acme", UNDECODABLE, "--type", "memory", "--url", "https://x.example.com", "--no-bot"),
        ("trackers", "add", "acme", "x", "--type", "memory", "--url", "https://x.example.com", "--no-bot",
         "--name", UNDECODABLE),
        ("resolve", UNDECODABLE, "acme", "main"),
        ("report", "alice", "acme", "main", "--title", UNDECODABLE),
        ("audit", "--user", UNDECODABLE),
        ("trackers", "set-option", "acme", "main", f"project={UNDECODABLE}"),
    ],
)
def test_arguments_that_are_not_utf8_text_are_refused(world: CLI, args: tuple[str, ...]) -> None:
    line = refused(world, *args, input="alice-secret-token\n")
    assert "a\\udcffb" in line and "UTF-8" in line


def test_undecodable_argv_bytes_in_a_real_process(tmp_path: Path) -> None:
    env = subprocess_env(tmp_path / "data")
    command = [sys.executable.encode(), b"-m", b"tokenproviders.cli"]
    assert subprocess.run([*command, b"init"], env=env, capture_output=True, timeout=120).returncode == 0
    for args in ([b"tenants", b"add", b"t\xff\xfe"], [b"token", b"list", b"\xc3("], [b"audit", b"--since", b"999999w"]):
        result = subprocess.run([*command, *args], env=env, capture_output=True, timeout=120)
        stderr = result.stderr.decode()
        assert result.returncode == ExitCode.USAGE, (args, result.returncode, stderr)
        line = one_error_line(stderr)
        assert "unexpected" not in line and "bug" not in line, line
    listed = subprocess.run([*command, b"tenants", b"list", b"--json"], env=env, capture_output=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.decode().strip() == "[]"
    # A path is not text: any bytes the file system takes are fine.
    elsewhere = [*command, b"--data-dir", str(tmp_path).encode() + b"/data\xff"]
    assert subprocess.run([*elsewhere, b"init"], env=env, capture_output=True, timeout=120).returncode == 0
    assert (tmp_path / "data\udcff" / "tokenproviders.sqlite3").exists()


def test_a_user_name_over_the_limit_is_refused(world: CLI) -> None:
    for command in (
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--username"),
        ("trackers", "add", "acme", "x", "--type", "memory", "--url", "https://x.example.com", "--bot-password-stdin",
         "--bot-username"),
    ):
        line = refused(world, *command, "u" * (MAX_USERNAME_LENGTH + 1), input="alice-secret-token\n")
        assert f"at most {MAX_USERNAME_LENGTH} characters" in line
