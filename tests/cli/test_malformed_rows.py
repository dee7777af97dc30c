"""Damaged non-secret columns (raw sqlite3 UPDATEs) seen through the command line: the damaged
row fails alone, named, with the store's exit code; everything else keeps working."""

from __future__ import annotations

import json
import sqlite3

from tokenproviders.cli.exit_codes import ExitCode

from .conftest import CLI, OTHER_URL, TRACKER_URL


def _damage(world: CLI, sql: str) -> None:
    conn = sqlite3.connect(world.database)
    try:
        with conn:
            assert conn.execute(sql).rowcount == 1
    finally:
        conn.close()


def test_a_damaged_tracker_row_is_named_and_its_tenant_keeps_working(world: CLI) -> None:
    world.ok(
        "trackers", "add", "acme", "other", "--type", "memory", "--url", f"{TRACKER_URL}-other",
        "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token\n",
    )
    _damage(world, "UPDATE trackers SET options = '[1, 2]' WHERE tenant = 'acme' AND id = 'main'")

    listed = world.ok("trackers", "list", "--json")
    assert [(t["tenant"], t["id"]) for t in json.loads(listed.stdout)] == [("acme", "other"), ("globex", "main")]
    assert "trackers row acme/main" in listed.stderr and "options is not a JSON object" in listed.stderr
    tenants = json.loads(world.ok("tenants", "list", "--json").stdout)
    assert {row["tenant"]: row["trackers"] for row in tenants} == {"acme": ["other"], "globex": ["main"]}

    failed = world("resolve", "bob", "acme", "main")
    assert failed.exit_code == ExitCode.STORE_ERROR
    # The skipped row is logged (once), then the command's one error names it.
    *logged, line = failed.stderr.splitlines()
    problem = line.removeprefix("Error: ").split(";")[0]
    assert logged == [f"ERROR tokenproviders.stores.sqlite: skipped a tracker: {problem}"]
    assert line.startswith("Error: the trackers row acme/main") and "options" in line
    assert "Traceback" not in failed.stderr
    assert world.ok("resolve", "bob", "acme", "other").exit_code == 0
    assert world.ok("resolve", "alice", "globex", "main").exit_code == 0

    # The operator removes the damaged tracker and adds it again.
    world.ok("trackers", "remove", "acme", "main")
    world.ok(
        "trackers", "add", "acme", "main", "--type", "memory", "--url", TRACKER_URL,
        "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token\n",
    )
    assert world.ok("resolve", "bob", "acme", "main").exit_code == 0


def test_a_damaged_token_row_fails_only_that_token_and_can_be_deleted(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="alice-secret-token\n")
    world.ok("token", "set", "alice", OTHER_URL, "--tenant", "globex", "--password-stdin", input="alice-secret-token\n")
    _damage(world, f"UPDATE tokens SET expires_at = 'alice-secret-token' WHERE url = '{TRACKER_URL}'")

    line = world.fails(ExitCode.STORE_ERROR, "resolve", "alice", "acme", "main")
    assert "tokens row #" in line and "expires_at" in line and "alice-secret-token" not in line
    assert json.loads(world.ok("resolve", "alice", "globex", "main", "--json").stdout)["source"] == "personal"
    assert json.loads(world.ok("resolve", "bob", "acme", "main", "--json").stdout)["source"] == "bot"

    listed = world.ok("token", "list", "alice", "--json")
    assert [t["url"] for t in json.loads(listed.stdout)] == [OTHER_URL]
    assert "tokens row #" in listed.stderr and "alice-secret-token" not in listed.stderr

    world.ok("token", "delete", "alice", TRACKER_URL, "--tenant", "acme")
    assert json.loads(world.ok("resolve", "alice", "acme", "main", "--json").stdout)["source"] == "bot"
