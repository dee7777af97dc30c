"""Fixtures for the command-line tool's tests.

``cli`` runs a command in-process through click's ``CliRunner`` with the in-memory tracker type
registered; ``run_cli`` runs the real ``python -m tokenproviders.cli`` in a subprocess. Both
point at a fresh data directory under ``tmp_path``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import click
import pytest
from click.testing import CliRunner, Result

from tokenproviders.cli._app import cli as root
from tokenproviders.cli._commands import cli as _registered  # noqa: F401 - attaches the subcommands
from tokenproviders.cli._state import CLIConfig
from tokenproviders.errors import ConfigurationError
from tokenproviders.model import Field, Identity, IssueDraft, ReportedIssue, Tracker
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend, MemoryTrackerPlugin, MemoryTrackerType


class NeedsUserType(MemoryTrackerType):
    """A memory tracker type that requires a user name with the token (like Jira Cloud)."""

    name: ClassVar[str] = "needsuser"
    title: ClassVar[str] = "Memory tracker that needs a user name"
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_username", "E-mail", "the account's e-mail address"),
        Field("api_password", "API token", "the token itself", secret=True),
    )


class TokenOnlyType(MemoryTrackerType):
    """A memory tracker type whose tokens go alone, without a user name (like GitHub)."""

    name: ClassVar[str] = "tokenonly"
    title: ClassVar[str] = "Memory tracker with tokens only"
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_password", "Personal access token", "the token itself", secret=True),
    )


class NeedsProjectType(MemoryTrackerType):
    """A memory tracker type that needs the option ``project`` to file an issue (like Jira), and
    says so in Python terms, as the Jira plugin does."""

    name: ClassVar[str] = "needsproject"
    title: ClassVar[str] = "Memory tracker that needs a project"

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        if not tracker.options.get("project"):
            raise ConfigurationError(
                f"tracker {tracker.label} has no project to report into",
                hint="set the tracker's options={'project': 'KEY'} (the project key, e.g. PROJ)",
            )
        return super().report_issue(client, tracker, draft)


class LeakyType(MemoryTrackerType):
    """A badly written tracker type whose client library puts the token into its exceptions."""

    name: ClassVar[str] = "leaky"
    title: ClassVar[str] = "Leaks secrets into exceptions"

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        secret = client.credentials.api_password.reveal()
        raise ValueError(f"GET {tracker.url}/me?api_key={secret} failed: token {secret} not understood")


DB_NAME = "tokenproviders.sqlite3"
KEY_NAME = "tokenproviders.key"


def make_runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()


def dump(path: Path, *, audit: bool = False) -> list[str]:
    """The SQL text of the whole database (schema and rows), for before/after comparisons.

    Without the audit trail's entries unless ``audit``: a refused or failed command changes
    nothing but records that it was refused or failed (tests/cli/test_audit_command.py).
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        lines = list(conn.iterdump())
    finally:
        conn.close()
    if audit:
        return lines
    entries = ('INSERT INTO "audit" ', """INSERT INTO "sqlite_sequence" VALUES('audit',""")
    return [line for line in lines if not line.startswith(entries)]


def one_error_line(stderr: str) -> str:
    """The stderr of a failed command: exactly one line starting with ``Error:``."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {stderr!r}"
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in stderr
    return lines[0]


@dataclass
class CLI:
    """Runs commands in-process against one data directory, with the memory tracker type."""

    data_dir: Path
    tracker_type: MemoryTrackerType
    interactive: bool | None = None
    history: list[Result] = field(default_factory=list)

    @property
    def backend(self) -> MemoryTrackerBackend:
        return self.tracker_type.backend

    @property
    def database(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def key_file(self) -> Path:
        return self.data_dir / KEY_NAME

    def config(self) -> CLIConfig:
        backend = self.tracker_type.backend
        return CLIConfig(
            data_dir=self.data_dir,
            extra_plugins=[
                MemoryTrackerPlugin(self.tracker_type),
                MemoryTrackerPlugin(NeedsUserType(backend)),
                MemoryTrackerPlugin(TokenOnlyType(backend)),
                MemoryTrackerPlugin(NeedsProjectType(backend)),
                MemoryTrackerPlugin(LeakyType(backend)),
            ],
            interactive=self.interactive,
        )

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None, **kwargs: Any
    ) -> Result:
        # pytest-xdist workers inherit COLUMNS=80; tables must not wrap by where the test ran.
        env = {"COLUMNS": None, **(env or {})}
        result = make_runner().invoke(root, list(args), input=input, obj=self.config(), env=env, **kwargs)
        self.history.append(result)
        return result

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    def fails(self, code: int, *args: str, input: str | None = None) -> str:
        """Run a command that must fail with ``code``; return its one error line."""
        result = self(*args, input=input)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return one_error_line(result.stderr)

    def dump(self) -> list[str]:
        return dump(self.database)


@pytest.fixture
def memory_type() -> MemoryTrackerType:
    backend = MemoryTrackerBackend()
    backend.add_user("bot-login", token="bot-secret-token", username="bot")
    backend.add_user("alice-login", token="alice-secret-token")
    backend.add_user("alice-login", token="alice-secret-with-name", username="alice@example.com")
    backend.add_user("bob-login", token="bob-secret-token")
    return MemoryTrackerType(backend)


@pytest.fixture
def cli(tmp_path: Path, memory_type: MemoryTrackerType) -> CLI:
    """An initialised-on-demand CLI (call ``cli.ok('init')`` or use ``world``)."""
    return CLI(data_dir=tmp_path / "data", tracker_type=memory_type)


TRACKER_URL = "https://tracker.example.com/acme"
OTHER_URL = "https://tracker.example.com/globex"
SERVICE_URL = "https://tracker.example.com"


@pytest.fixture
def world(cli: CLI) -> CLI:
    """Two tenants, two memory trackers with bot credentials, alice in both, bob in acme."""
    cli.ok("init")
    cli.ok("tenants", "add", "acme", "globex")
    cli.ok("tenants", "grant", "acme", "alice", "bob")
    cli.ok("tenants", "grant", "globex", "alice")
    cli.ok(
        "trackers", "add", "acme", "main", "--type", "memory", "--url", TRACKER_URL,
        "--bot-username", "bot", "--bot-password-stdin",
        input="bot-secret-token\n",
    )
    cli.ok(
        "trackers", "add", "globex", "main", "--type", "memory", "--url", OTHER_URL,
        "--bot-username", "bot", "--bot-password-stdin",
        input="bot-secret-token\n",
    )
    return cli


# -- subprocesses ----------------------------------------------------------------------------
@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def subprocess_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENPROVIDERS_")}
    env.update({"TOKENPROVIDERS_HOME": str(data_dir), "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUTF8": "1"})
    env.update(extra or {})
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[Callable[..., Completed]]:
    """Run ``python -m tokenproviders.cli ARGS`` for real, against ``tmp_path / "data"``."""
    data_dir = tmp_path / "data"

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> Completed:
        process = subprocess.run(
            [sys.executable, "-m", "tokenproviders.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            env=subprocess_env(data_dir, env),
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        return Completed(process.returncode, process.stdout, process.stderr)

    yield run


def all_command_paths(group: click.Group = root, prefix: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the tree, as argument tuples (for coverage checks)."""
    paths: list[tuple[str, ...]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            paths.extend(all_command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths
