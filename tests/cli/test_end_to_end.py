"""From ``init`` to ``report`` against fake trackers: attribution and the audit trail.

The in-memory tracker variant always runs; the HTTP variants use the real ``jira`` and
``github`` plugins against ``FakeJira`` / ``FakeGitHub`` (skipped where a plugin is missing).
Also: the demo, and a key rotation over 100,000 rows with its progress bar.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tokenproviders.cli._app import cli as root
from tokenproviders.cli._state import CLIConfig
from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.crypto import KeyRing
from tokenproviders.model import Credentials, PersonalToken, Secret
from tokenproviders.plugins import Plugins
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.fakes import FakeGitHub, FakeJira, FakeTracker

from .conftest import CLI, TRACKER_URL, make_runner, one_error_line, subprocess_env

INSTALLED = Plugins().tracker_types


@dataclass
class Scenario:
    """How one tracker type's fake is set up and addressed from the command line."""

    type: str
    fake: type[FakeTracker]
    bot: dict[str, str]  # add_user() arguments of the bot
    alice: dict[str, str]  # ... and of alice's personal token
    bot_username: str | None
    alice_username: str | None
    options: tuple[str, ...] = ()
    path: str = ""

    def bot_secret(self) -> str:
        return self.bot["token"]

    def alice_secret(self) -> str:
        return self.alice["token"]


SCENARIOS = [
    Scenario(
        "github", FakeGitHub,
        bot={"token": "ghp_e2e_bot_token_123456"}, alice={"token": "ghp_e2e_alice_token_123456"},
        bot_username=None, alice_username=None, path="/octo/widgets",
    ),
    Scenario(
        "jira", FakeJira,
        bot={"username": "bot@acme.example", "token": "jira-e2e-bot-token"},
        alice={"username": "alice@acme.example", "token": "jira-e2e-alice-token"},
        bot_username="bot@acme.example", alice_username="alice@acme.example", options=("-o", "project=ACME"),
    ),
]


@pytest.fixture(params=SCENARIOS, ids=lambda s: s.type)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    chosen: Scenario = request.param
    if chosen.type not in INSTALLED:
        pytest.skip(f"the tokenproviders-{chosen.type} plugin is not installed")
    return chosen


@pytest.fixture
def fake(scenario: Scenario) -> Iterator[Any]:
    with scenario.fake() as server:
        server.add_user("the-bot", **scenario.bot)
        server.add_user("alice", **scenario.alice)
        yield server


def test_end_to_end_from_init_to_report_against_a_fake_tracker(
    tmp_path: Path, scenario: Scenario, fake: Any
) -> None:
    runner = make_runner()
    data = tmp_path / "data"

    def run(*args: str, input: str | None = None) -> Any:
        result = runner.invoke(root, ["--data-dir", str(data), *args], input=input, obj=CLIConfig())
        assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
        return result

    url = fake.url + scenario.path
    run("init")
    run("tenants", "add", "acme")
    run("tenants", "grant", "acme", "alice", "bob")
    bot_user = ("--bot-username", scenario.bot_username) if scenario.bot_username else ()
    run("trackers", "add", "acme", "bugs", "--type", scenario.type, "--url", url, *scenario.options, *bot_user,
        "--bot-password-stdin", "--verify", input=scenario.bot_secret())
    choices = {c["url"] for c in json.loads(run("trackers", "--user", "alice", "--json").stdout)}
    assert url.rstrip("/") in choices or fake.url in choices
    alice_user = ("--username", scenario.alice_username) if scenario.alice_username else ()
    saved = run("token", "set", "alice", url, "--tenant", "acme", *alice_user, "--password-stdin", "--verify",
                input=scenario.alice_secret() + "\n")
    assert "belongs to alice" in saved.stdout

    resolved = json.loads(run("resolve", "alice", "acme", "bugs", "--json").stdout)
    assert (resolved["source"], resolved["scope"]) == ("personal", "acme")
    assert json.loads(run("verify", "alice", "acme", "bugs", "--json").stdout)["identity"]["login"] == "alice"
    alice_issue = json.loads(run("report", "alice", "acme", "bugs", "--title", "Found by Alice", "--json").stdout)
    bob_url = run("report", "bob", "acme", "bugs", "--title", "Found by Bob").stdout.strip()

    # Attribution: the tracker itself recorded different reporters.
    reporters = {issue.title: issue.reporter for issue in fake.issues.values()}
    assert reporters == {"Found by Alice": "alice", "Found by Bob": "the-bot"}
    assert alice_issue["resolution"]["source"] == "personal"
    assert bob_url.startswith(fake.url)

    # The audit trail: who, which tracker, which source, when; never a secret.
    trail = json.loads(run("audit", "--json").stdout)
    acted = [e for e in trail if e["action"] in ("resolve", "verify", "report") and e["user"] is not None]
    assert [(e["action"], e["user"], e["tenant"], e["tracker"], e["source"]) for e in acted] == [
        ("report", "bob", "acme", "bugs", "bot"),
        ("report", "alice", "acme", "bugs", "personal"),
        ("verify", "alice", "acme", "bugs", "personal"),
        ("resolve", "alice", "acme", "bugs", "personal"),
        ("verify", "alice", "acme", "bugs", "verification"),  # token set --verify, before saving it
    ]
    assert trail[1]["token_id"] == resolved["token_id"]
    assert all(datetime.fromisoformat(e["at"]) <= datetime.now(timezone.utc) for e in trail)
    everything = json.dumps(trail) + run("audit").stdout + run("token", "list").stdout + run("trackers").stdout
    for secret in (scenario.bot_secret(), scenario.alice_secret()):
        assert secret not in everything
        assert secret.encode() not in (data / "tokenproviders.sqlite3").read_bytes()


def test_end_to_end_on_the_memory_tracker(cli: CLI) -> None:
    cli.ok("init")
    cli.ok("tenants", "add", "acme")
    cli.ok("tenants", "grant", "acme", "alice", "bob")
    cli.ok("trackers", "add", "acme", "main", "--type", "memory", "--url", TRACKER_URL, "--bot-username", "bot",
           "--bot-password-stdin", input="bot-secret-token")
    cli.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--verify",
           input="alice-secret-token")
    cli.ok("report", "alice", "acme", "main", "--title", "by alice")
    cli.ok("report", "bob", "acme", "main", "--title", "by bob")
    assert {i.title: i.reporter for i in cli.backend.issues.values()} == {"by alice": "alice-login",
                                                                          "by bob": "bot-login"}
    trail = json.loads(cli.ok("audit", "--action", "report", "--json").stdout)
    assert [(e["user"], e["source"]) for e in trail] == [("bob", "bot"), ("alice", "personal")]


# -- the demo -----------------------------------------------------------------------------------
needs_demo_plugins = pytest.mark.skipif(
    not {"jira", "github"} <= set(INSTALLED), reason="the demo needs the jira and github plugins"
)


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    return subprocess_env(
        tmp_path / "unused-data",
        {"HOME": str(home), "TMPDIR": str(tmp), "XDG_DATA_HOME": str(home / ".local" / "share"),
         "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")},
    )


@needs_demo_plugins
def test_demo_as_a_real_process_leaves_nothing_behind(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    env.pop("TOKENPROVIDERS_HOME")
    result = subprocess.run([sys.executable, "-m", "tokenproviders.cli", "demo"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("What the trackers recorded", "Why the resolver chose", "acme-bot", "alice-gh",
                     "personal", "bot", "not authorized", "audit trail", "2 of 3 bugs"):
        assert expected in out, expected
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "home").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "unused-data").exists()


@needs_demo_plugins
def test_demo_through_clirunner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = make_runner().invoke(root, ["demo"], obj=CLIConfig(data_dir=tmp_path / "unused"))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "alice-gh" in result.stdout and "acme-bot" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_demo_says_which_plugins_to_install(tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    env["TOKENPROVIDERS_BLOCK_PLUGINS"] = "jira,github"
    result = subprocess.run([sys.executable, "-m", "tokenproviders.cli", "demo"], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == ExitCode.PLUGIN_ERROR
    line = one_error_line(result.stderr)
    assert "pip install tokenproviders-jira tokenproviders-github" in line and "nox -s demo" in line


# -- rotation at scale --------------------------------------------------------------------------
@pytest.mark.slow
def test_rotation_over_100k_rows_shows_its_progress_bar(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    rows = 100_000
    data = tmp_path / "data"
    assert run_cli("init").returncode == 0
    assert run_cli("tenants", "add", "acme").returncode == 0
    keyring = KeyRing.from_key_file(data / "tokenproviders.key")
    now = datetime.now(timezone.utc)
    secret = Credentials(api_password=Secret("bulk-token-value"))
    with SQLiteDatabase(data / "tokenproviders.sqlite3", keyring) as db:
        written = db.tokens.put_many(
            (PersonalToken(owner=f"user{i}", url="https://tracker.example.com", scope="acme", credentials=secret)
             for i in range(rows)),
            now=now,
        )
    assert written == rows
    assert run_cli("keys", "generate", "--id", "new-primary").returncode == 0
    result = run_cli("keys", "rotate", "--batch-size", "5000", env={"COLUMNS": "160"}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{rows}/{rows}" in result.stdout and "100%" in result.stdout and "━" in result.stdout
    assert f"Re-sealed {rows} row(s) under key new-primary" in result.stdout
    status = {r["key_id"]: r["rows"] for r in json.loads(run_cli("keys", "status", "--json").stdout)}
    assert status["new-primary"] == rows and sum(status.values()) == rows

