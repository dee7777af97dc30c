"""The command line's audit trail: every command's actions with their outcomes, refusals
included, and its admin changes, by the operating-system account that ran it, one correlation
id per command."""

from __future__ import annotations

import json
import os
import pwd
from typing import Any

from tokenproviders.cli.exit_codes import ExitCode

from .conftest import CLI, TRACKER_URL

ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name


def shown(cli: CLI, *args: str) -> str:
    """The table a command prints, wide enough that no cell is folded."""
    result = cli(*args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return result.stdout


def trail(cli: CLI, *filters: str) -> list[dict[str, Any]]:
    """Oldest first."""
    return list(reversed(json.loads(cli.ok("audit", "--json", *filters).stdout)))


def test_a_dry_run_resolve_and_a_report_are_different_actions(world: CLI) -> None:
    world.ok("resolve", "bob", "acme", "main")
    world.ok("report", "bob", "acme", "main", "--title", "Crash")
    (issue,) = world.backend.issues.values()
    acted = [e for e in trail(world) if e["user"] == "bob" and e["tracker"] == "main"]
    assert [(e["action"], e["outcome"], e["source"]) for e in acted] == [
        ("resolve", "ok", "bot"),
        ("report", "ok", "bot"),
    ]
    assert acted[1]["detail"] == f"filed issue {issue.id}"
    assert {e["principal"] for e in acted} == {ACCOUNT}
    assert acted[0]["correlation_id"] != acted[1]["correlation_id"]  # one id per command


def test_refused_and_failed_commands_are_recorded_and_change_nothing_else(world: CLI) -> None:
    before = world.dump()
    world.fails(ExitCode.NOT_AUTHORIZED, "resolve", "bob", "globex", "main")
    world.fails(ExitCode.NOT_AUTHORIZED, "report", "bob", "globex", "main", "--title", "x")
    world.fails(ExitCode.REJECTED, "token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin",
                "--verify", input="wrong-token")
    assert world.dump() == before  # nothing but the trail changed
    failed = [e for e in trail(world) if e["outcome"] != "ok"]
    assert [(e["action"], e["outcome"], e["user"], e["tenant"], e["error"]) for e in failed] == [
        ("resolve", "refused", "bob", "globex", "NotAuthorizedError"),
        ("report", "refused", "bob", "globex", "NotAuthorizedError"),
        ("verify", "rejected", "alice", "acme", "CredentialsRejectedError"),
    ]
    assert "'bob' is not authorized for tenant 'globex'" in failed[0]["detail"]
    assert {e["principal"] for e in failed} == {ACCOUNT}
    assert "wrong-token" not in json.dumps(failed)
    assert shown(world, "audit", "--outcome", "refused").count("refused") == 2
    assert len(trail(world, "--outcome", "refused")) == 2


def test_one_command_is_one_correlation_id(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--verify",
             input="alice-secret-token")
    verified, stored = trail(world, "--user", "alice")[-2:]  # after the world's member.grant entries
    assert (verified["action"], verified["outcome"], verified["source"]) == ("verify", "ok", "verification")
    assert (stored["action"], stored["outcome"], stored["token_id"]) == ("token.set", "ok", 1)
    assert verified["correlation_id"] == stored["correlation_id"]
    grouped = trail(world, "--correlation-id", stored["correlation_id"])
    assert [e["id"] for e in grouped] == [verified["id"], stored["id"]]


def test_admin_commands_are_recorded(world: CLI) -> None:
    world.ok("tenants", "grant", "acme", "carol")
    world.ok("tenants", "revoke", "acme", "carol")
    world.ok("trackers", "set-option", "acme", "main", "labels=bug")
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="alice-secret-token")
    world.ok("token", "delete", "alice", TRACKER_URL, "--tenant", "acme")
    world.ok("keys", "generate", "--id", "k-next")
    world.ok("keys", "rotate")
    old_key = next(k["key_id"] for k in json.loads(world.ok("keys", "status", "--json").stdout) if not k["primary"])
    world.ok("keys", "retire", old_key)
    world.ok("trackers", "remove", "globex", "main")
    changes = trail(world, "--principal", ACCOUNT)[-9:]
    assert [(e["action"], e["user"], e["tenant"], e["tracker"]) for e in changes] == [
        ("member.grant", "carol", "acme", None),
        ("member.revoke", "carol", "acme", None),
        ("tracker.change", None, "acme", "main"),
        ("token.set", "alice", None, None),
        ("token.delete", "alice", None, None),
        ("key.generate", None, None, None),
        ("key.rotate", None, None, None),
        ("key.retire", None, None, None),
        ("tracker.remove", None, "globex", "main"),
    ]
    assert changes[2]["detail"] == "options changed"
    assert changes[5]["detail"].startswith("key k-next added to ") and "as the primary key" in changes[5]["detail"]
    assert changes[7]["detail"] == f"key {old_key} retired"
    table = shown(world, "audit", "-n", "9")
    for header in ("action", "outcome", "by", "key.generate", "tracker.change", "member.grant", ACCOUNT):
        assert header in table
