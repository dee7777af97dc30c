"""Data is printed as it is: rich markup in labels, ids, names or URLs is text, not styling.

A ``[/]`` in one user's token label must not break ``token list`` for everyone (rich would raise
``MarkupError``), and ``[bold]`` or ``[link=...]`` must not style or hide what a listing shows.
Every command that prints stored or tracker-supplied data gets a value of each kind.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tokenproviders import plugins as plugins_module

from .conftest import CLI, TRACKER_URL

#: One crashes rich outright, one would be swallowed as styling, one would become a hidden link.
MARKUP = ("[/]", "[bold]x[/bold]", "[link=https://evil.example]y[/link]")
USER = "[/x]"
TENANT = "[red]t[/red]"
TRACKER_ID = "[/]t"
TRACKER_NAME = "[bold]named[/bold]"
URL = "https://tracker.example.com/[b]/x"
LOGIN = "[link=https://evil.example]me[/link]"


@pytest.fixture
def marked(world: CLI) -> CLI:
    """The world, plus a user, tenant, tracker, token labels and a tracker login made of markup."""
    world.ok("tenants", "add", TENANT)
    world.ok("tenants", "grant", "acme", USER)
    world.ok("tenants", "grant", TENANT, USER, "alice")
    world.ok("trackers", "add", TENANT, TRACKER_ID, "--type", "memory", "--url", URL, "--name", TRACKER_NAME,
             "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token\n")
    world.backend.add_user(LOGIN, token="markup-secret-token")
    world.ok("token", "set", USER, TRACKER_URL, "--tenant", "acme", "--password-stdin", "--label", MARKUP[0],
             input="markup-secret-token\n")
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--label", MARKUP[1],
             input="alice-secret-token\n")
    world.ok("token", "set", "alice", URL, "--tenant", TENANT, "--password-stdin", "--label", MARKUP[2],
             input="alice-secret-token\n")
    return world


def shows(cli: CLI, *args: str) -> str:
    """The command's stdout and stderr; it must succeed. Printed 200 wide, so no value wraps
    (pytest-xdist workers have COLUMNS=80)."""
    result = cli(*args, env={"COLUMNS": None})
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout + result.stderr


def test_token_list_shows_markup_in_labels_as_text(marked: CLI) -> None:
    out = shows(marked, "token", "list")
    for label in MARKUP:
        assert label in out
    assert USER in out and URL in out and f"tenant {TENANT}" in out
    assert USER in shows(marked, "token", "list", USER)  # also in the table's title


def test_tenant_listings_show_markup_in_ids_as_text(marked: CLI) -> None:
    out = shows(marked, "tenants", "list")
    assert USER in out and TENANT in out and TRACKER_ID in out
    members = shows(marked, "tenants", "members", TENANT)
    # rich wraps a title to the table's width
    assert f"Membersof{TENANT}" in "".join(members.split()) and USER in members


def test_tracker_listings_show_markup_in_names_ids_and_urls_as_text(marked: CLI) -> None:
    for args in (("trackers",), ("trackers", "list"), ("trackers", "list", "--tenant", TENANT)):
        out = shows(marked, *args)
        assert TRACKER_ID in out and TRACKER_NAME in out and URL in out and TENANT in out
    choices = shows(marked, "trackers", "--user", USER)
    assert f"Tracker URLs {USER} can" in choices and f"{TENANT}/{TRACKER_ID}" in choices and URL in choices


def test_resolve_verify_report_show_markup_as_text(marked: CLI) -> None:
    resolved = shows(marked, "resolve", USER, "acme", "main")
    assert f"Resolution for {USER} on acme/main" in resolved and MARKUP[0] in resolved
    bot = shows(marked, "resolve", USER, TENANT, TRACKER_ID)
    assert f"{TENANT}/{TRACKER_ID}" in bot and TRACKER_NAME in bot and URL in bot
    verified = shows(marked, "verify", USER, "acme", "main")
    assert LOGIN in verified and USER in verified
    reported = shows(marked, "report", USER, TENANT, TRACKER_ID, "--title", "[/]")
    assert URL in reported and f"{TENANT}/{TRACKER_ID}" in reported


def test_audit_shows_markup_as_text(marked: CLI) -> None:
    marked.ok("resolve", USER, TENANT, TRACKER_ID)
    out = shows(marked, "audit")
    assert USER in out and TENANT in out and TRACKER_ID in out
    assert USER in shows(marked, "audit", "--user", USER)


def test_messages_with_data_show_markup_as_text(marked: CLI) -> None:
    revoked = shows(marked, "tenants", "revoke", "acme", USER)
    assert f"Revoked {USER}'s membership of acme" in revoked
    deleted = shows(marked, "token", "delete", "alice", URL, "--tenant", TENANT)
    assert URL in deleted and TENANT in deleted


def test_json_output_keeps_markup_unchanged(marked: CLI) -> None:
    labels = {t["label"] for t in json.loads(marked.ok("token", "list", "--json").stdout)}
    assert labels == set(MARKUP)


def test_plugins_shows_a_broken_plugins_reason_as_text(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An import error's text is not ours: "[/]" in it would break the listing.
    (tmp_path / "tokenproviders_markup_plugin_e.py").write_text('raise ImportError("needs [/]libfoo [bold]9[/bold]")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points

    def with_a_broken_one(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        if kwargs.get("group") == "tokenproviders":
            found.append(metadata.EntryPoint("broken", "tokenproviders_markup_plugin_e:plugin", "tokenproviders"))
        return found

    monkeypatch.setattr(plugins_module.metadata, "entry_points", with_a_broken_one)
    out = shows(cli, "plugins")
    assert "needs [/]libfoo [bold]9[/bold]" in out and "broken" in out
