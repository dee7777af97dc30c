"""Every command through click's CliRunner, against the in-memory tracker type."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import tokenproviders.plugins as plugins_module
from tokenproviders.cli._app import cli as root
from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.crypto import KeyRing

from .conftest import CLI, OTHER_URL, SERVICE_URL, TRACKER_URL, all_command_paths, make_runner


def test_help_documents_every_exit_code(cli: CLI) -> None:
    result = cli.ok("--help")
    for code in ExitCode:
        assert f"{code.value:>3}  " in result.stdout
    assert "TOKENPROVIDERS_HOME" in result.stdout


def test_every_command_has_help(cli: CLI) -> None:
    paths = all_command_paths()
    assert ("token", "set") in paths and ("keys", "rotate") in paths and ("demo",) in paths
    for path in paths:
        result = cli.ok(*path, "--help")
        assert "Usage:" in result.stdout


def test_version(cli: CLI) -> None:
    assert "tokenproviders" in cli.ok("--version").stdout


def test_init_creates_database_and_private_key_file(cli: CLI) -> None:
    result = cli.ok("init")
    assert str(cli.database) in result.stdout
    assert stat.S_IMODE(cli.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.data_dir.stat().st_mode) == 0o700
    assert cli.dump()  # a real SQLite database


def test_init_refuses_to_clobber(cli: CLI) -> None:
    cli.ok("init")
    before = cli.dump()
    key = cli.key_file.read_bytes()
    line = cli.fails(ExitCode.CONFLICT, "init")
    assert "already exists" in line
    assert cli.dump() == before
    assert cli.key_file.read_bytes() == key


def test_init_refuses_an_existing_key_file_alone(cli: CLI) -> None:
    cli.data_dir.mkdir()
    cli.key_file.write_text("precious")
    cli.fails(ExitCode.CONFLICT, "init")
    assert cli.key_file.read_text() == "precious"
    assert not cli.database.exists()


def test_data_dir_option_and_environment_variable(tmp_path: Path) -> None:
    runner = make_runner()
    by_option = tmp_path / "by-option"
    by_env = tmp_path / "by-env"
    assert runner.invoke(root, ["--data-dir", str(by_option), "init"]).exit_code == 0
    assert (by_option / "tokenproviders.sqlite3").exists()
    assert runner.invoke(root, ["init"], env={"TOKENPROVIDERS_HOME": str(by_env)}).exit_code == 0
    assert (by_env / "tokenproviders.sqlite3").exists()
    # The option wins over the variable.
    result = runner.invoke(root, ["--data-dir", str(by_option), "tenants", "list", "--json"],
                           env={"TOKENPROVIDERS_HOME": str(by_env)})
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_commands_before_init_say_what_to_do(cli: CLI) -> None:
    line = cli.fails(ExitCode.STORE_ERROR, "tenants", "list")
    assert "tokenproviders init" in line
    assert not cli.data_dir.exists()


# -- tenants -----------------------------------------------------------------------------------
def test_tenants_add_list_members_grant_revoke(cli: CLI) -> None:
    cli.ok("init")
    assert "Added tenant acme" in cli.ok("tenants", "add", "acme", "globex").stdout
    cli.fails(ExitCode.CONFLICT, "tenants", "add", "acme")
    cli.ok("tenants", "add", "acme", "--exist-ok")
    cli.ok("tenants", "grant", "acme", "alice", "bob")
    assert "already a member" in cli.ok("tenants", "grant", "acme", "alice").stdout
    listing = json.loads(cli.ok("tenants", "list", "--json").stdout)
    assert listing == [
        {"tenant": "acme", "members": ["alice", "bob"], "trackers": []},
        {"tenant": "globex", "members": [], "trackers": []},
    ]
    table = cli.ok("tenants", "list").stdout
    assert "acme" in table and "alice, bob" in table
    assert json.loads(cli.ok("tenants", "members", "acme", "--json").stdout) == ["alice", "bob"]
    assert "bob" in cli.ok("tenants", "members", "acme").stdout
    cli.ok("tenants", "revoke", "acme", "bob")
    assert json.loads(cli.ok("tenants", "members", "acme", "--json").stdout) == ["alice"]
    cli.fails(ExitCode.NOT_FOUND, "tenants", "revoke", "acme", "bob")
    # singular spelling works too
    assert json.loads(cli.ok("tenant", "ls", "--json").stdout)[0]["tenant"] == "acme"


def test_tenants_remove_needs_confirmation(world: CLI) -> None:
    before = world.dump()
    world.fails(ExitCode.USAGE, "tenants", "remove", "globex")
    assert world.dump() == before
    result = world.ok("tenants", "remove", "globex", "--yes")
    assert "1 tracker" in result.stdout
    assert [t["tenant"] for t in json.loads(world.ok("tenants", "list", "--json").stdout)] == ["acme"]
    world.fails(ExitCode.NOT_FOUND, "tenants", "remove", "globex", "--yes")


# -- trackers ----------------------------------------------------------------------------------
def test_trackers_add_list_remove(world: CLI) -> None:
    rows = json.loads(world.ok("trackers", "list", "--json").stdout)
    assert [(r["tenant"], r["id"], r["type"], r["url"]) for r in rows] == [
        ("acme", "main", "memory", TRACKER_URL),
        ("globex", "main", "memory", OTHER_URL),
    ]
    assert rows[0]["bot_username"] == "bot" and rows[0]["bot_credentials"] is True
    assert "bot-secret-token" not in json.dumps(rows)
    assert json.loads(world.ok("trackers", "--json").stdout) == rows
    assert [r["tenant"] for r in json.loads(world.ok("trackers", "list", "--tenant", "globex", "--json").stdout)] == [
        "globex"
    ]
    table = world.ok("trackers", "list").stdout
    assert TRACKER_URL in table and "bot-secret-token" not in table

    world.ok(
        "trackers", "add", "acme", "tokens-only", "--type", "memory", "--url", "https://other.example.org/x",
        "--name", "Tokens only", "--no-bot", "-o", "project=ACME", "-o", "issue_type=Bug",
    )
    added = json.loads(world.ok("trackers", "list", "--tenant", "acme", "--json").stdout)[1]
    assert added["id"] == "tokens-only" and added["bot_credentials"] is False
    assert added["options"] == {"project": "ACME", "issue_type": "Bug"} and added["name"] == "Tokens only"
    world.fails(ExitCode.CONFLICT, "trackers", "add", "acme", "tokens-only", "--type", "memory",
                "--url", "https://x.example.org", "--no-bot")
    assert "Removed tracker acme/tokens-only" in world.ok("trackers", "remove", "acme", "tokens-only").stdout
    world.fails(ExitCode.NOT_FOUND, "trackers", "remove", "acme", "tokens-only")


PROJECT_URL = "https://projects.example.org/acme"


def test_trackers_add_refuses_options_the_tracker_type_cannot_report_with(world: CLI) -> None:
    world.interactive = True  # checked before the prompt: nobody types a token in vain
    before = world.dump()
    line = world.fails(ExitCode.USAGE, "trackers", "add", "acme", "p", "--type", "needsproject", "--url", PROJECT_URL)
    assert line == (
        "Error: tracker type 'needsproject' cannot file issues with these options: tracker 'p' (acme/p) has no"
        " project to report into; set the option project=KEY (the project key, e.g. PROJ);"
        " on the command line: -o project=KEY"
    )
    assert "options={" not in line and "Personal access token" not in world.history[-1].stderr
    assert world.dump() == before
    world.interactive = None
    world.ok("trackers", "add", "acme", "p", "--type", "needsproject", "--url", PROJECT_URL, "-o", "project=ACME",
             "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token")
    assert world.ok("report", "bob", "acme", "p", "--title", "x").stdout.startswith(PROJECT_URL)


def test_trackers_set_option(world: CLI) -> None:
    world.ok("trackers", "add", "acme", "p", "--type", "needsproject", "--url", PROJECT_URL, "-o", "project=ACME",
             "-o", "labels=ui", "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token")
    result = world.ok("trackers", "set-option", "acme", "p", "project=WEB", "issue_type=Task",
                      'fields={"components": [{"name": "UI"}]}', "--unset", "labels")
    assert result.stdout.strip() == (
        'Updated the options of acme/p: project=WEB issue_type=Task fields={"components": [{"name": "UI"}]}'
        " --unset labels"
    )
    row = json.loads(world.ok("trackers", "list", "--tenant", "acme", "--json").stdout)[1]
    assert row["options"] == {"project": "WEB", "issue_type": "Task", "fields": {"components": [{"name": "UI"}]}}
    assert row["bot_username"] == "bot" and row["bot_credentials"] is True  # kept
    assert json.loads(world.ok("verify", "bob", "acme", "p", "--json").stdout)["identity"]["login"] == "bot-login"

    before = world.dump()
    line = world.fails(ExitCode.USAGE, "trackers", "set-option", "acme", "p", "--unset", "project")
    assert line.endswith("on the command line: tokenproviders trackers set-option acme p project=KEY")
    assert "has no option 'nope'" in world.fails(ExitCode.NOT_FOUND, "trackers", "set-option", "acme", "p",
                                                 "--unset", "nope")
    world.fails(ExitCode.USAGE, "trackers", "set-option", "acme", "p")
    world.fails(ExitCode.USAGE, "trackers", "set-option", "acme", "p", "project=X", "--unset", "project")
    world.fails(ExitCode.USAGE, "trackers", "set-option", "acme", "p", "novalue")
    world.fails(ExitCode.NOT_FOUND, "trackers", "set-option", "acme", "nope", "project=X")
    world.fails(ExitCode.NOT_FOUND, "trackers", "set-option", "nope", "p", "project=X")
    assert world.dump() == before


def test_report_says_how_to_set_a_missing_option_on_the_command_line(world: CLI) -> None:
    # A tracker added through the library (or before 'trackers add' checked its options).
    from tokenproviders.model import Credentials, Secret, Tracker
    from tokenproviders.stores.sqlite import SQLiteDatabase

    with SQLiteDatabase(world.database, KeyRing.from_key_file(world.key_file)) as db:
        db.directory.add_tracker(Tracker(tenant="acme", id="p", type="needsproject", base_url=PROJECT_URL,
                                         bot_credentials=Credentials(api_password=Secret("bot-secret-token"),
                                                                     api_username="bot")))
    line = world.fails(ExitCode.KEY_ERROR, "report", "bob", "acme", "p", "--title", "x")
    assert line.endswith(
        "set the option project=KEY (the project key, e.g. PROJ);"
        " on the command line: tokenproviders trackers set-option acme p project=KEY"
    )
    assert world.backend.issues == {}
    world.ok("trackers", "set-option", "acme", "p", "project=ACME")
    world.ok("report", "bob", "acme", "p", "--title", "x")


@pytest.mark.parametrize(
    ("type_name", "url", "given", "asked"),
    [
        ("jira", "https://jira.example.com", (), "-o project=KEY"),
        ("bugzilla", "https://bugzilla.example.com", ("-o", "product=Widgets"),
         "-o product=PRODUCT -o component=COMPONENT"),
        ("redmine", "https://redmine.example.com", (), "-o project=PROJECT"),
        ("azureboards", "https://dev.azure.com/org", (), "-o project=PROJECT"),
    ],
)
def test_installed_tracker_types_refuse_a_tracker_without_its_project(
    world: CLI, type_name: str, url: str, given: tuple[str, ...], asked: str
) -> None:
    if type_name not in plugins_module.Plugins().tracker_types:
        pytest.skip(f"the {type_name} plugin is not installed")
    before = world.dump()
    line = world.fails(ExitCode.USAGE, "trackers", "add", "acme", "t", "--type", type_name, "--url", url, *given,
                       "--bot-password-stdin", input="bot-secret-token")
    assert line.endswith(f"on the command line: {asked}") and "options={" not in line, line
    assert world.dump() == before


def test_ca_bundle_is_stored_as_an_absolute_path(world: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "certs").mkdir()
    bundle = tmp_path / "certs" / "corporate.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "link.pem").symlink_to(bundle)
    monkeypatch.chdir(tmp_path)
    for tracker_id, given in (("a", "certs/corporate.pem"), ("b", "link.pem")):
        world.ok("trackers", "add", "acme", tracker_id, "--type", "memory", "--url", f"https://{tracker_id}.example.org",
                 "--no-bot", "--ca-bundle", given)
    rows = {r["id"]: r for r in json.loads(world.ok("trackers", "list", "--tenant", "acme", "--json").stdout)}
    assert rows["a"]["ca_bundle"] == str(bundle)
    assert rows["b"]["ca_bundle"] == str(tmp_path / "link.pem")  # a mounted bundle's link is kept, not resolved
    before = world.dump()
    for given in ("missing.pem", "certs"):
        line = world.fails(ExitCode.USAGE, "trackers", "add", "acme", "c", "--type", "memory",
                           "--url", "https://c.example.org", "--no-bot", "--ca-bundle", given)
        assert "--ca-bundle" in line
    line = world.fails(ExitCode.USAGE, "trackers", "add", "acme", "c", "--type", "memory", "--url",
                       "https://c.example.org", "--no-bot", "--ca-bundle", "certs/corporate.pem", "--no-verify-tls")
    assert "--no-verify-tls and --ca-bundle contradict each other" in line
    assert world.dump() == before


def test_trackers_add_verify_checks_bot_credentials(world: CLI) -> None:
    result = world.ok(
        "trackers", "add", "acme", "checked", "--type", "memory", "--url", "https://checked.example.org",
        "--bot-username", "bot", "--bot-password-stdin", "--verify", input="bot-secret-token\n",
    )
    assert "as bot-login" in result.stdout
    before = world.dump()
    world.fails(
        ExitCode.REJECTED,
        "trackers", "add", "acme", "wrong", "--type", "memory", "--url", "https://wrong.example.org",
        "--bot-username", "bot", "--bot-password-stdin", "--verify", input="not-the-bot-token\n",
    )
    assert world.dump() == before


def test_trackers_set_bot(world: CLI) -> None:
    world.backend.add_user("new-bot", token="new-bot-token")
    world.ok("trackers", "set-bot", "acme", "main", "--bot-password-stdin", "--verify", input="new-bot-token\n")
    assert json.loads(world.ok("resolve", "bob", "acme", "main", "--json").stdout)["api_username"] is None
    world.ok("report", "bob", "acme", "main", "--title", "as the new bot")
    assert [i.reporter for i in world.backend.issues.values()] == ["new-bot"]
    world.ok("trackers", "set-bot", "acme", "main", "--no-bot")
    world.fails(ExitCode.NO_CREDENTIALS, "resolve", "bob", "acme", "main")


def test_trackers_user_drop_down(world: CLI) -> None:
    choices = json.loads(world.ok("trackers", "--user", "alice", "--json").stdout)
    assert [(c["url"], c["kind"]) for c in choices] == [
        (SERVICE_URL, "service"),
        (TRACKER_URL, "tracker"),
        (OTHER_URL, "tracker"),
    ]
    assert choices[0]["tenants"] == ["acme", "globex"]
    bob = json.loads(world.ok("trackers", "--user", "bob", "--json").stdout)
    assert [c["url"] for c in bob] == [SERVICE_URL, TRACKER_URL]
    assert json.loads(world.ok("trackers", "list", "--user", "bob", "--json").stdout) == bob
    table = world.ok("trackers", "--user", "alice").stdout
    assert SERVICE_URL in table and "acme/main, globex/main" in table
    nobody = world("trackers", "--user", "mallory")
    assert nobody.exit_code == 0 and "not a member of any tenant" in nobody.stderr
    world.fails(ExitCode.USAGE, "trackers", "--user", "alice", "list")


# -- personal tokens ---------------------------------------------------------------------------
def test_token_set_list_delete(world: CLI) -> None:
    result = world.ok(
        "token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--label", "laptop",
        "--expires", "90d", "--verify", input="alice-secret-token\n",
    )
    assert "Saved personal token #1 of alice" in result.stdout
    assert "belongs to alice-login" in result.stdout
    assert "alice-secret-token" not in result.output
    world.ok("token", "set", "alice", SERVICE_URL, "--all-tenants", "--password-stdin",
             "--username", "alice@example.com", input="alice-secret-with-name")
    tokens = json.loads(world.ok("token", "list", "alice", "--json").stdout)
    assert [(t["url"], t["scope"], t["label"], t["expiry"]) for t in tokens] == [
        (SERVICE_URL, "*", "", "none"),
        (TRACKER_URL, "acme", "laptop", "ok"),
    ]
    assert tokens[0]["api_username"] == "alice@example.com" and tokens[0]["all_tenants"] is True
    assert "secret" not in json.dumps(tokens).replace("secret", "", 0) or "alice-secret" not in json.dumps(tokens)
    assert json.loads(world.ok("token", "list", "--json").stdout) == tokens  # everyone's: only alice has any
    assert json.loads(world.ok("token", "list", "bob", "--json").stdout) == []

    # Replacing keeps the id and bumps the version.
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="alice-secret-token")
    again = json.loads(world.ok("token", "list", "alice", "--json").stdout)[1]
    assert again["id"] == tokens[1]["id"] and again["version"] == 2 and again["label"] == ""

    assert "Deleted personal token" in world.ok("token", "delete", "alice", TRACKER_URL, "--tenant", "acme").stdout
    world.fails(ExitCode.NOT_FOUND, "token", "delete", "alice", TRACKER_URL, "--tenant", "acme")
    world.ok("tokens", "rm", "alice", SERVICE_URL, "--all-tenants")
    assert json.loads(world.ok("token", "list", "--json").stdout) == []


def test_token_set_json_output(world: CLI) -> None:
    data = json.loads(
        world.ok("token", "set", "bob", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--json",
                 "--expires", "2999-01-31", "--verify", input="bob-secret-token").stdout
    )
    assert data["owner"] == "bob" and data["verified_as"] == "bob-login"
    assert data["expires_at"] == "2999-01-31T00:00:00+00:00"


def _expire(cli: CLI, token_id: int, when: datetime) -> None:
    conn = sqlite3.connect(cli.database)
    with conn:
        conn.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (when.isoformat(), token_id))
    conn.close()


def test_token_list_makes_expired_and_expiring_tokens_stand_out(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--expires", "5d",
             input="alice-secret-token")
    world.ok("token", "set", "alice", OTHER_URL, "--tenant", "globex", "--password-stdin", "--expires", "400d",
             input="alice-secret-token")
    world.ok("token", "set", "bob", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--expires", "30d",
             input="bob-secret-token")
    _expire(world, 3, datetime.now(timezone.utc) - timedelta(days=2))
    rows = {(t["owner"], t["url"]): t["expiry"] for t in json.loads(world.ok("token", "list", "--json").stdout)}
    assert rows == {("alice", TRACKER_URL): "expiring", ("alice", OTHER_URL): "ok", ("bob", TRACKER_URL): "expired"}
    result = world("token", "list", env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert result.exit_code == 0
    assert "EXPIRED" in result.stdout and "renew soon" in result.stdout
    assert "\x1b[" in result.stdout  # styled (red / yellow)
    assert "1 expired and 1 expiring within 14 days" in result.stderr
    listed = json.loads(world.ok("token", "list", "alice", "--soon", "500", "--json").stdout)
    wider = {t["url"]: t["expiry"] for t in listed}
    assert wider == {TRACKER_URL: "expiring", OTHER_URL: "expiring"}
    # An expired token is an error, never a silent fallback to the bot.
    line = world.fails(ExitCode.TOKEN_UNUSABLE, "resolve", "bob", "acme", "main")
    assert "expired" in line


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("2999-03-31", "2999-03-31T00:00:00+00:00"),
        ("2999-03-31T10:30:00", "2999-03-31T10:30:00+00:00"),
        ("2999-03-31T10:30:00+02:00", "2999-03-31T08:30:00+00:00"),
        ("2999-03-31T10:30:00Z", "2999-03-31T10:30:00+00:00"),
    ],
)
def test_token_expiry_formats(world: CLI, expires: str, expected: str) -> None:
    world.ok("token", "set", "bob", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--expires", expires,
             input="bob-secret-token")
    stored = json.loads(world.ok("token", "list", "bob", "--json").stdout)[0]["expires_at"]
    assert datetime.fromisoformat(stored) == datetime.fromisoformat(expected)


def test_token_set_prompts_with_hidden_input_when_interactive(world: CLI) -> None:
    world.interactive = True
    result = world.ok("token", "set", "bob", TRACKER_URL, "--tenant", "acme", input="bob-secret-token\n")
    assert "API token" in result.stderr  # the prompt, on stderr
    assert "bob-secret-token" not in result.output  # CliRunner echoes visible input only
    assert json.loads(world.ok("resolve", "bob", "acme", "main", "--json").stdout)["source"] == "personal"


def test_token_set_without_terminal_or_stdin_flag_is_a_usage_error(world: CLI) -> None:
    world.interactive = False
    before = world.dump()
    line = world.fails(ExitCode.USAGE, "token", "set", "bob", TRACKER_URL, "--tenant", "acme", input="x\n")
    assert "--password-stdin" in line
    assert world.dump() == before


# -- resolve / verify / report -----------------------------------------------------------------
def test_resolve_shows_source_scope_reason_and_masks_the_secret(world: CLI) -> None:
    bot = json.loads(world.ok("resolve", "bob", "acme", "main", "--json").stdout)
    assert bot["source"] == "bot" and bot["scope"] is None and bot["api_username"] == "bot"
    assert bot["api_password"] == "**********"
    assert "no personal token" in bot["reason"]
    world.ok("token", "set", "alice", SERVICE_URL, "--all-tenants", "--password-stdin", input="alice-secret-token")
    personal = json.loads(world.ok("resolve", "alice", "globex", "main", "--json").stdout)
    assert personal["source"] == "personal" and personal["scope"] == "*"
    assert personal["matched_url"] == SERVICE_URL and personal["token_id"] == 1
    table = world.ok("resolve", "alice", "globex", "main").stdout
    for expected in ("personal", "all tenants", "**********", "service URL", "#1"):
        assert expected in table
    assert "alice-secret-token" not in table


def test_verify_runs_whoami_with_the_resolved_credentials(world: CLI) -> None:
    result = world.ok("verify", "bob", "acme", "main")
    assert "bot-login" in result.stdout
    world.ok("token", "set", "bob", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="bob-secret-token")
    data = json.loads(world.ok("verify", "bob", "acme", "main", "--json").stdout)
    assert data["identity"]["login"] == "bob-login" and data["resolution"]["source"] == "personal"


def test_report_files_as_the_resolved_identity_and_prints_the_url(world: CLI) -> None:
    result = world.ok("report", "bob", "acme", "main", "--title", "Login fails", "--body", "Steps: ...",
                      "--label", "ui", "--label", "p1")
    assert result.stdout.strip() == f"{TRACKER_URL}/issues/1"
    assert "bot credentials" in result.stderr and "Why:" in result.stderr
    issue = world.backend.issues["1"]
    assert (issue.reporter, issue.title, issue.body) == ("bot-login", "Login fails", "Steps: ...")
    assert issue.labels == ("ui", "p1")

    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="alice-secret-token")
    data = json.loads(world.ok("report", "alice", "acme", "main", "--title", "Crash", "--body-file", "-", "--json",
                               input="from stdin\n").stdout)
    assert data["url"] == f"{TRACKER_URL}/issues/2" and data["resolution"]["source"] == "personal"
    assert world.backend.issues["2"].reporter == "alice-login" and world.backend.issues["2"].body == "from stdin\n"
    world.fails(ExitCode.USAGE, "report", "alice", "acme", "main", "--title", "x", "--body", "a", "--body-file", "-")
    world.fails(ExitCode.USAGE, "report", "alice", "acme", "main", "--title", "   ")


# -- keys --------------------------------------------------------------------------------------
def test_keys_generate_status_rotate_retire(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="alice-secret-token")
    first = json.loads(world.ok("keys", "status", "--json").stdout)
    assert len(first) == 1 and first[0]["primary"] and first[0]["rows"] == 3  # 1 token + 2 bots
    old_id = first[0]["key_id"]

    assert "as the primary key" in world.ok("keys", "generate", "--id", "second-key").stdout
    assert stat.S_IMODE(world.key_file.stat().st_mode) == 0o600
    status = {row["key_id"]: row for row in json.loads(world.ok("keys", "status", "--json").stdout)}
    assert status["second-key"]["primary"] and status["second-key"]["rows"] == 0
    assert status[old_id]["rows"] == 3 and not status[old_id]["primary"]
    assert "still in use" in world.ok("keys", "status").stdout

    line = world.fails(ExitCode.CONFLICT, "keys", "retire", old_id)
    assert "3 row" in line

    result = world.ok("keys", "rotate", "--batch-size", "2")
    assert "Re-sealed 3 row(s) under key second-key" in result.stdout
    assert "3/3" in result.stdout and "100%" in result.stdout  # the progress bar's final state
    status = {row["key_id"]: row["rows"] for row in json.loads(world.ok("keys", "status", "--json").stdout)}
    assert status == {"second-key": 3, old_id: 0}
    assert "Re-sealed 0 row(s)" in world.ok("keys", "rotate").stdout  # a second run does nothing

    world.ok("keys", "retire", old_id)
    assert old_id not in world.key_file.read_text().split('"retired"')[0]
    status = {row["key_id"]: row for row in json.loads(world.ok("keys", "status", "--json").stdout)}
    assert status[old_id]["retired"] and not status[old_id]["in_key_ring"]
    world.fails(ExitCode.CONFLICT, "keys", "retire", "second-key")  # the primary
    world.fails(ExitCode.NOT_FOUND, "keys", "retire", "no-such-key")
    # Everything still resolves under the new key.
    assert json.loads(world.ok("resolve", "alice", "acme", "main", "--json").stdout)["source"] == "personal"
    world.ok("report", "bob", "acme", "main", "--title", "still works")


# -- plugins and audit -------------------------------------------------------------------------
def test_plugins_lists_tracker_types_with_fields_and_versions(cli: CLI) -> None:
    data = json.loads(cli.ok("plugins", "--json").stdout)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["personal"]["builtin"] and names["bot"]["builtin"]
    memory = next(t for t in data["tracker_types"] if t["type"] == "memory")
    assert [f["name"] for f in memory["fields"]] == ["api_username", "api_password"]
    assert memory["fields"][1]["secret"] and memory["fields"][1]["required"]
    table = cli.ok("plugins").stdout
    assert "memory" in table and "api_password" in table and "built-in" in table


def test_plugins_shows_broken_plugins_with_their_reason(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points

    def with_a_broken_one(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        if kwargs.get("group") == "tokenproviders":
            found.append(metadata.EntryPoint("broken", "tokenproviders_no_such_module_xyz:plugin", "tokenproviders"))
        return found

    monkeypatch.setattr(plugins_module.metadata, "entry_points", with_a_broken_one)
    data = json.loads(cli.ok("plugins", "--json").stdout)
    broken = {p["name"]: p["broken"] for p in data["plugins"] if p["broken"]}
    assert "tokenproviders_no_such_module_xyz" in broken["broken"]
    result = cli.ok("plugins")
    assert "broken" in result.stdout and "tokenproviders_no_such_module_xyz" in result.stdout


def test_audit_shows_who_which_tracker_which_source_when(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="alice-secret-token")
    world.ok("report", "alice", "acme", "main", "--title", "one")
    world.ok("report", "bob", "acme", "main", "--title", "two")
    world.ok("resolve", "alice", "globex", "main")
    everything = json.loads(world.ok("audit", "--json").stdout)
    entries = [e for e in everything if e["action"] in ("resolve", "report")]
    assert [(e["action"], e["user"], e["tenant"], e["tracker"], e["source"]) for e in entries] == [
        ("resolve", "alice", "globex", "main", "bot"),
        ("report", "bob", "acme", "main", "bot"),
        ("report", "alice", "acme", "main", "personal"),
    ]
    assert entries[2]["token_id"] == 1 and entries[2]["at"]
    assert json.loads(world.ok("audit", "--user", "bob", "--json").stdout)[0]["user"] == "bob"
    assert len(json.loads(world.ok("audit", "--source", "personal", "--json").stdout)) == 1
    assert len(json.loads(world.ok("audit", "--tenant", "acme", "--tracker", "main", "-n", "1", "--json").stdout)) == 1
    assert len(json.loads(world.ok("audit", "--since", "1h", "--json").stdout)) == len(everything)
    assert json.loads(world.ok("audit", "--since", "2999-01-01", "--json").stdout) == []
    world.fails(ExitCode.USAGE, "audit", "--since", "last tuesday")
    table = world.ok("audit").stdout
    assert "personal" in table and "alice" in table and "#1" in table
    assert "alice-secret-token" not in json.dumps(entries) + table


def test_tracker_options_take_json_objects_and_arrays(world: CLI) -> None:
    world.ok(
        "trackers", "add", "acme", "opts", "--type", "memory", "--url", "https://opts.example.org", "--no-bot",
        "-o", "project=123", "-o", 'fields={"components": [{"name": "UI"}]}', "-o", "labels=[\"a\", \"b\"]",
    )
    added = next(t for t in json.loads(world.ok("trackers", "list", "--json").stdout) if t["id"] == "opts")
    assert added["options"] == {"project": "123", "fields": {"components": [{"name": "UI"}]}, "labels": ["a", "b"]}
    world.fails(ExitCode.USAGE, "trackers", "add", "acme", "bad", "--type", "memory", "--url",
                "https://bad.example.org", "--no-bot", "-o", "fields={not json")


def test_init_notes_keys_from_the_environment(cli: CLI) -> None:
    ring = KeyRing.generate()
    document = json.dumps(ring.to_document())
    result = cli("init", env={"TOKENPROVIDERS_KEYS": document})
    assert result.exit_code == 0 and "TOKENPROVIDERS_KEYS is set" in result.stderr


def test_a_failed_init_leaves_nothing_half_made(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenproviders.cli import _state
    from tokenproviders.errors import StoreError

    def broken(path: Path, keyring: KeyRing, **options: Any) -> Any:
        path.write_bytes(b"partial")
        raise StoreError("disk full")

    monkeypatch.setattr(_state, "_open_database", broken)
    assert "disk full" in cli.fails(ExitCode.STORE_ERROR, "init")
    assert not cli.data_dir.exists()
    monkeypatch.undo()
    cli.ok("init")
