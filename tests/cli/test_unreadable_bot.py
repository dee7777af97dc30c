"""A tracker whose bot blob cannot be opened: listing works, only that tracker's bot fails, and
its bot credentials can be set again."""

from __future__ import annotations

import json
import sqlite3

from tokenproviders.cli.exit_codes import ExitCode

from .conftest import CLI


def _damage_acme_bot(world: CLI) -> None:
    conn = sqlite3.connect(world.database)
    with conn:  # acme's blob replaced by globex's: it names the right key but the wrong row
        conn.execute(
            "UPDATE trackers SET bot_secret = (SELECT bot_secret FROM trackers WHERE tenant = 'globex')"
            " WHERE tenant = 'acme'"
        )
    conn.close()


def test_one_unreadable_bot_blob_breaks_only_its_tracker(world: CLI) -> None:
    _damage_acme_bot(world)
    listed = json.loads(world.ok("trackers", "list", "--json").stdout)
    assert {(t["tenant"], t["id"], t["bot_credentials"]) for t in listed} == {
        ("acme", "main", True),
        ("globex", "main", True),
    }
    assert world.ok("resolve", "alice", "globex", "main").exit_code == 0
    line = world.fails(ExitCode.KEY_ERROR, "resolve", "bob", "acme", "main")
    assert "acme/main" in line
    world.ok("trackers", "set-bot", "acme", "main", "--bot-username", "bot", "--bot-password-stdin",
             input="bot-secret-token\n")
    assert world.ok("resolve", "bob", "acme", "main").exit_code == 0
