"""Every command as a real process: ``python -m tokenproviders.cli``, talking to fake trackers.

The hidden password prompt is driven through a pseudo-terminal (stdlib ``pty``): the secret must
be accepted and never echoed. Tracker commands use the real ``github`` plugin against
``FakeGitHub``, so they are skipped where that plugin is not installed.
"""

from __future__ import annotations

import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.plugins import Plugins
from tokenproviders.testing.fakes import FakeGitHub

from .conftest import Completed, dump, one_error_line, subprocess_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with the fakes' threads

needs_github = pytest.mark.skipif(
    "github" not in Plugins().tracker_types, reason="the tokenproviders-github plugin is not installed"
)

BOT_TOKEN = "ghp_bot_token_0123456789abcdef"
ALICE_TOKEN = "ghp_alice_token_0123456789abcdef"
PROMPTED_TOKEN = "ghp_typed_at_the_prompt_98765"


def run_in_pty(
    args: list[str], env: dict[str, str], answers: list[tuple[str, str]], guard: float = 120
) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as stdin/stdout/stderr; answer each prompt
    (``(text to wait for, line to type)``) in turn. Returns the exit code and everything the
    terminal showed. The process gets its own session, so /dev/tty is never the developer's."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenproviders.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    shown = b""
    answered_upto = 0
    pending = list(answers)
    try:
        while True:
            ready, _, _ = select.select([master], [], [], guard)
            if not ready:  # a hang guard, not a timing assertion
                process.kill()
                raise AssertionError(f"no output for {guard} s; the terminal showed {shown!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its side
                chunk = b""
            if not chunk:
                break
            shown += chunk
            if pending and pending[0][0].encode() in shown[answered_upto:]:
                # Type only once the terminal stopped echoing, as a person would: a prompt that
                # never turns echo off is not a hidden prompt.
                _wait_for_echo_off(master, shown)
                os.write(master, (pending.pop(0)[1] + "\n").encode())
                answered_upto = len(shown)
    finally:
        os.close(master)
        code = process.wait()
    assert not pending, f"never prompted for {pending[0][0]!r}; the terminal showed {shown!r}"
    return code, shown.decode("utf-8", "replace").replace("\r\n", "\n")


def _wait_for_echo_off(master: int, shown: bytes, guard: float = 60) -> None:
    deadline = time.monotonic() + guard  # a hang guard, not a timing assertion
    while termios.tcgetattr(master)[3] & termios.ECHO:
        if time.monotonic() > deadline:
            raise AssertionError(f"the terminal kept echoing after the prompt {shown!r}: the input is not hidden")
        time.sleep(0.01)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("octo-bot", token=BOT_TOKEN)
        fake.add_user("alice-gh", token=ALICE_TOKEN)
        fake.add_user("typed-user", token=PROMPTED_TOKEN)
        yield fake


def ok(result: Completed) -> Completed:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


def test_help_and_version(run_cli: Callable[..., Completed]) -> None:
    assert "Exit codes:" in ok(run_cli("--help")).stdout
    assert "0.1.0" in ok(run_cli("--version")).stdout


def test_usage_error_is_one_line_with_exit_code_2(run_cli: Callable[..., Completed]) -> None:
    result = run_cli("tenants", "frobnicate")
    assert result.returncode == ExitCode.USAGE
    assert "tenants --help" in one_error_line(result.stderr)


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = shutil.which("tokenproviders", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the tokenproviders console script is not installed next to this interpreter")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "tokenproviders" in result.stdout


def test_missing_extra_prints_the_install_hint(tmp_path: Path) -> None:
    code = "import sys; sys.modules['click'] = None; from tokenproviders.cli import main; main(['--help'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: click is not installed; the tokenproviders command needs its extra: pip install 'tokenproviders[cli]'"
    )


def test_admin_commands(run_cli: Callable[..., Completed], tmp_path: Path) -> None:
    ok(run_cli("init"))
    assert run_cli("init").returncode == ExitCode.CONFLICT
    ok(run_cli("tenants", "add", "acme", "globex", "doomed"))
    ok(run_cli("tenants", "grant", "acme", "alice", "bob"))
    ok(run_cli("tenants", "revoke", "acme", "bob"))
    assert json.loads(ok(run_cli("tenants", "members", "acme", "--json")).stdout) == ["alice"]
    ok(run_cli("tenants", "remove", "doomed", "--yes"))
    assert [t["tenant"] for t in json.loads(ok(run_cli("tenants", "list", "--json")).stdout)] == ["acme", "globex"]
    plugins = json.loads(ok(run_cli("plugins", "--json")).stdout)
    assert {"personal", "bot"} <= {p["name"] for p in plugins["plugins"]}
    assert "Plugins" in ok(run_cli("plugins")).stdout
    trail = json.loads(ok(run_cli("audit", "--json")).stdout)
    assert [(e["action"], e["tenant"], e["user"]) for e in trail] == [
        ("tenant.remove", "doomed", None),
        ("member.revoke", "acme", "bob"),
        ("member.grant", "acme", "bob"),
        ("member.grant", "acme", "alice"),
        ("tenant.add", "doomed", None),
        ("tenant.add", "globex", None),
        ("tenant.add", "acme", None),
    ]
    assert {e["principal"] for e in trail} == {pwd.getpwuid(os.geteuid()).pw_name}
    status = json.loads(ok(run_cli("keys", "status", "--json")).stdout)
    assert len(status) == 1 and status[0]["primary"]
    ok(run_cli("keys", "generate", "--id", "next"))
    assert "Re-sealed 0 row(s)" in ok(run_cli("keys", "rotate")).stdout
    ok(run_cli("keys", "retire", status[0]["key_id"]))


@needs_github
def test_tracker_and_token_commands_against_fake_github(
    run_cli: Callable[..., Completed], github: FakeGitHub, tmp_path: Path
) -> None:
    repo = f"{github.url}/octo/widgets"
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", "acme"))
    ok(run_cli("tenants", "grant", "acme", "alice", "bob"))
    ok(run_cli("trackers", "add", "acme", "gh", "--type", "github", "--url", repo, "--bot-password-stdin", "--verify",
               input=BOT_TOKEN + "\n"))
    assert json.loads(ok(run_cli("trackers", "list", "--json")).stdout)[0]["url"] == repo
    assert repo in ok(run_cli("trackers")).stdout
    choices = json.loads(ok(run_cli("trackers", "--user", "alice", "--json")).stdout)
    assert {c["url"] for c in choices} == {github.url, repo}

    result = ok(run_cli("token", "set", "alice", github.url, "--all-tenants", "--password-stdin", "--verify",
                        "--label", "laptop", "--expires", "30d", input=ALICE_TOKEN))
    assert "belongs to alice-gh" in result.stdout
    assert json.loads(ok(run_cli("token", "list", "--json")).stdout)[0]["label"] == "laptop"

    resolved = json.loads(ok(run_cli("resolve", "alice", "acme", "gh", "--json")).stdout)
    assert resolved["source"] == "personal" and resolved["api_password"] == "**********"
    assert json.loads(ok(run_cli("verify", "alice", "acme", "gh", "--json")).stdout)["identity"]["login"] == "alice-gh"
    assert json.loads(ok(run_cli("verify", "bob", "acme", "gh", "--json")).stdout)["identity"]["login"] == "octo-bot"

    alice_url = ok(run_cli("report", "alice", "acme", "gh", "--title", "Crash on save")).stdout.strip()
    bob_url = ok(run_cli("report", "bob", "acme", "gh", "--title", "Typo on login page")).stdout.strip()
    reporters = {issue.url: issue.reporter for issue in github.issues.values()}
    assert reporters == {alice_url: "alice-gh", bob_url: "octo-bot"}

    trail = json.loads(ok(run_cli("audit", "--json")).stdout)
    assert [(e["user"], e["source"]) for e in trail][:2] == [("bob", "bot"), ("alice", "personal")]

    ok(run_cli("trackers", "set-bot", "acme", "gh", "--bot-password-stdin", input=BOT_TOKEN))
    ok(run_cli("keys", "generate"))
    rotated = ok(run_cli("keys", "rotate"))
    assert "Re-sealed 2 row(s)" in rotated.stdout
    ok(run_cli("token", "delete", "alice", github.url, "--all-tenants"))
    ok(run_cli("trackers", "remove", "acme", "gh"))
    for secret in (BOT_TOKEN, ALICE_TOKEN):
        assert secret.encode() not in (tmp_path / "data" / "tokenproviders.sqlite3").read_bytes()


@needs_github
def test_tracker_failures_from_a_real_process(run_cli: Callable[..., Completed], github: FakeGitHub) -> None:
    repo = f"{github.url}/octo/widgets"
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", "acme"))
    ok(run_cli("tenants", "grant", "acme", "alice", "bob"))
    ok(run_cli("trackers", "add", "acme", "gh", "--type", "github", "--url", repo, "--bot-password-stdin",
               input=BOT_TOKEN))
    ok(run_cli("token", "set", "alice", repo, "--tenant", "acme", "--password-stdin", input="ghp_revoked_token_xyz"))
    rejected = run_cli("report", "alice", "acme", "gh", "--title", "x")
    assert rejected.returncode == ExitCode.REJECTED
    assert "ghp_revoked_token_xyz" not in one_error_line(rejected.stderr)
    github.fail_with(503)
    unavailable = run_cli("verify", "bob", "acme", "gh")
    assert unavailable.returncode == ExitCode.UNAVAILABLE, unavailable.stderr
    one_error_line(unavailable.stderr)
    github.reset_faults()
    assert github.issues == {}

    # A tracker nobody listens on any more: refused connection, exit code 8.
    with FakeGitHub() as gone:
        dead = f"{gone.url}/octo/gone"
    ok(run_cli("trackers", "add", "acme", "dead", "--type", "github", "--url", dead, "--bot-password-stdin",
               input=BOT_TOKEN))
    refused = run_cli("--timeout", "5", "report", "bob", "acme", "dead", "--title", "x")
    assert refused.returncode == ExitCode.UNAVAILABLE, refused.stderr
    assert "unavailable" in one_error_line(refused.stderr)


@needs_github
def test_hidden_prompts_through_a_pseudo_terminal(
    run_cli: Callable[..., Completed], github: FakeGitHub, tmp_path: Path
) -> None:
    env = subprocess_env(tmp_path / "data")
    repo = f"{github.url}/octo/widgets"
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", "acme"))
    ok(run_cli("tenants", "grant", "acme", "alice"))

    code, shown = run_in_pty(
        ["trackers", "add", "acme", "gh", "--type", "github", "--url", repo, "--verify"],
        env,
        [("Personal access token for the bot:", BOT_TOKEN)],
    )
    assert code == 0, shown
    assert BOT_TOKEN not in shown  # typed, but never echoed
    assert "accepts the bot credentials as octo-bot" in shown

    code, shown = run_in_pty(
        ["token", "set", "alice", github.url, "--all-tenants", "--verify"],
        env,
        [("Personal access token:", PROMPTED_TOKEN)],
    )
    assert code == 0, shown
    assert PROMPTED_TOKEN not in shown
    assert "belongs to typed-user" in shown
    verified = json.loads(ok(run_cli("verify", "alice", "acme", "gh", "--json")).stdout)
    assert verified["identity"]["login"] == "typed-user"


def test_prompt_refuses_a_non_terminal_stdin(run_cli: Callable[..., Completed]) -> None:
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", "acme"))
    result = run_cli("trackers", "add", "acme", "x", "--type", "github", "--url", "https://github.com/o/r",
                     input="piped but no --bot-password-stdin\n")
    assert result.returncode in (ExitCode.USAGE, ExitCode.PLUGIN_ERROR)
    if result.returncode == ExitCode.USAGE:
        assert "--bot-password-stdin" in one_error_line(result.stderr)


def _into_a_closed_pipe(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the command with stdout a pipe whose reading end is already closed (``... | true``
    where ``true`` has exited): its first write to stdout fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "tokenproviders.cli", *args], stdout=write_end,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [["tenants", "list", "--json"], ["tenants", "list"], ["audit"], ["--help"], ["tenants", "--help"], ["--version"]],
)
def test_a_closed_pipe_ends_the_command_quietly(run_cli: Callable[..., Completed], tmp_path: Path,
                                                 args: list[str]) -> None:
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", *[f"tenant-{n}" for n in range(50)]))
    result = _into_a_closed_pipe(args, subprocess_env(tmp_path / "data"))
    assert (result.returncode, result.stderr) == (0, "")


def test_a_closed_pipe_as_a_shell_sees_it(run_cli: Callable[..., Completed], tmp_path: Path) -> None:
    shell = shutil.which("sh")
    if shell is None:
        pytest.skip("no sh")
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", *[f"tenant-{n}" for n in range(2000)]))
    # More than a pipe buffer of output; the subshell reports the command's own exit status.
    script = f'("{sys.executable}" -m tokenproviders.cli tenants list --json; echo "status $?" >&2) | true'
    result = subprocess.run([shell, "-c", script], capture_output=True, text=True,
                            env=subprocess_env(tmp_path / "data"), timeout=120)
    assert result.stderr == "status 0\n"


def test_output_into_a_pipe_has_no_trailing_padding(run_cli: Callable[..., Completed], tmp_path: Path) -> None:
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", "acme"))
    ok(run_cli("tenants", "grant", "acme", "alice"))
    commands = [["tenants", "list"], ["keys", "status"], ["plugins"]]
    if "github" in Plugins().tracker_types:
        ok(run_cli("trackers", "add", "acme", "main", "--type", "github", "--url", "https://github.com/o/r",
                   "--bot-password-stdin", input=BOT_TOKEN))
        commands += [["trackers", "--user", "alice"], ["resolve", "alice", "acme", "main"]]
    for env in ({}, {"COLUMNS": ""}):
        for args in commands:
            stdout = ok(run_cli(*args, env=env)).stdout
            assert stdout.strip(), args
            padded = [line for line in stdout.splitlines() if line != line.rstrip()]
            assert not padded, (args, padded)


def _setpriv_prefix() -> list[str]:
    """A command prefix under which even root obeys file permissions (root bypasses chmod)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only for root")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("setpriv cannot drop capabilities here")
    return prefix


@pytest.mark.parametrize("read_only", ["data directory", "database file"])
def test_read_only_data_directory(
    run_cli: Callable[..., Completed], github: FakeGitHub, tmp_path: Path, read_only: str
) -> None:
    """Nothing is written, and nothing is done: the acting commands stop before they contact the
    tracker (their audit entry could not be written), instead of filing an issue and then failing."""
    prefix = _setpriv_prefix()
    data = tmp_path / "data"
    ok(run_cli("init"))
    ok(run_cli("tenants", "add", "acme"))
    ok(run_cli("tenants", "grant", "acme", "alice", "bob"))
    acting: list[list[str]] = []
    if "github" in Plugins().tracker_types:
        ok(run_cli("trackers", "add", "acme", "gh", "--type", "github", "--url", f"{github.url}/octo/widgets",
                   "--bot-password-stdin", input=BOT_TOKEN))
        ok(run_cli("token", "set", "alice", github.url, "--all-tenants", "--password-stdin", input=ALICE_TOKEN))
        acting = [
            ["report", "bob", "acme", "gh", "--title", "Crash on save"],
            ["report", "alice", "acme", "gh", "--title", "Crash on save", "--json"],
            ["verify", "bob", "acme", "gh"],
            ["verify", "alice", "acme", "gh", "--json"],
            ["resolve", "alice", "acme", "gh"],
        ]
    github.requests.clear()
    before = dump(data / "tokenproviders.sqlite3")
    files = {p: p.stat().st_mode for p in data.iterdir()}
    try:
        for path in files:
            if read_only == "data directory" or path.name.endswith(".sqlite3"):
                path.chmod(0o400 if path.name.endswith(".key") else 0o444)
        if read_only == "data directory":
            data.chmod(0o555)
        env = subprocess_env(data)
        for args in (["tenants", "add", "globex"], ["tenants", "grant", "acme", "carol"], ["token", "list"], *acting):
            result = subprocess.run([*prefix, sys.executable, "-m", "tokenproviders.cli", *args],
                                    capture_output=True, text=True, env=env, timeout=120)
            if args[-1] == "list" and result.returncode == 0:
                continue  # reading a read-only database is fine where SQLite allows it
            assert result.returncode == ExitCode.STORE_ERROR, (args, result.returncode, result.stdout, result.stderr)
            assert "readonly" in one_error_line(result.stderr) or "read-only" in result.stderr
            assert result.stdout == "", args
        assert github.issues == {} and github.requests == []  # the tracker was never contacted
        if read_only == "data directory":
            # init below a read-only directory creates nothing
            result = subprocess.run([*prefix, sys.executable, "-m", "tokenproviders.cli", "--data-dir",
                                     str(data / "sub"), "init"], capture_output=True, text=True, env=env, timeout=120)
            assert result.returncode == ExitCode.STORE_ERROR
            assert "Permission denied" in one_error_line(result.stderr)
    finally:
        data.chmod(0o700)
        for path, mode in files.items():
            path.chmod(mode)
    assert not (data / "sub").exists()
    assert dump(data / "tokenproviders.sqlite3") == before
