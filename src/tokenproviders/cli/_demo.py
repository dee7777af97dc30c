"""``tokenproviders demo``: personal tokens overriding the bot, explained, against fake trackers.

It starts a fake Jira and a fake GitHub on 127.0.0.1 (from :mod:`tokenproviders.testing.fakes`),
creates the embedded database and key in a temporary directory, sets up two tenants, bots and
two users, files bugs as the bot and with personal tokens, and shows what each tracker recorded,
why the resolver chose those credentials, and the audit trail. The temporary directory and the
servers are gone when it ends; nothing is written anywhere else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ..errors import NotAuthorizedError, PluginError
from ..model import ALL_TENANTS, Credentials, ReportedIssue, Secret, Tracker
from ..plugins import Plugins
from ._app import cli, get_config
from ._output import format_scope, stdout_console, styled, table
from ._state import CLIConfig, DataPaths, Session, initialise

__all__ = ["demo", "REQUIRED_TYPES"]

#: The tracker types the demo needs, and the plugin distribution providing each.
REQUIRED_TYPES = {"jira": "tokenproviders-jira", "github": "tokenproviders-github"}


@dataclass
class _Filed:
    user: str
    tracker: Tracker
    issue: ReportedIssue
    reporter: str


def _check_plugins(config: CLIConfig) -> None:
    installed = Plugins(extra=config.extra_plugins).tracker_types
    missing = [name for name in REQUIRED_TYPES if name not in installed]
    if missing:
        dists = " ".join(REQUIRED_TYPES[name] for name in missing)
        local = " ".join(f"-e plugins/{REQUIRED_TYPES[name]}" for name in missing)
        raise PluginError(
            f"the demo needs the tracker type(s) {', '.join(missing)}, which are not installed",
            hint=(
                f"install them: pip install {dists} (from a clone: pip install {local});"
                " 'nox -s demo' does this for you"
            ),
        )


@contextlib.contextmanager
def _no_proxy_for_loopback() -> Iterator[None]:
    """Keep HTTP(S)_PROXY settings from routing requests for 127.0.0.1 through a proxy."""
    saved = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    for name in saved:
        current = [p for p in (saved[name] or "").split(",") if p.strip()]
        os.environ[name] = ",".join([*current, "127.0.0.1", "localhost"])
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _step(console: Console, number: int, text: str, *commands: str) -> None:
    console.print(f"\n[bold cyan]{number}.[/] [bold]{text}[/]")
    for command in commands:
        console.print(f"   [dim]$ {command}[/]")


def _reporter_of(fake: Any, issue: ReportedIssue) -> str:
    recorded = fake.issues.get(issue.id)
    if recorded is None:
        recorded = next((i for i in fake.issues.values() if i.url == issue.url or i.key == issue.id), None)
    return recorded.reporter if recorded is not None else "?"


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """A guided demo: two fake trackers, two tenants, a bot and two users.

    Bob has no personal token, so his bug is filed as the bot; Alice's personal tokens make
    the trackers record her. Shows the reporters the trackers recorded, the resolver's reason
    for each, and the audit trail. Runs in a temporary directory that is removed afterwards.
    """
    config = get_config(ctx)
    _check_plugins(config)
    from ..testing.fakes import FakeGitHub, FakeJira

    console = stdout_console()
    console.print(
        Panel.fit(
            "[bold]tokenproviders demo[/]: file bugs as the person who found them, not as the bot",
            border_style="cyan",
        )
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(_no_proxy_for_loopback())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tokenproviders-demo-")))
        jira = stack.enter_context(FakeJira())
        github = stack.enter_context(FakeGitHub())
        paths = DataPaths(root=tmp / "data")
        demo_config = replace(config, data_dir=paths.root, key_file=None)

        _step(console, 1, f"Fake trackers on 127.0.0.1: Jira at {jira.url}, GitHub at {github.url}")
        secrets_of = {name: secrets.token_urlsafe(24) for name in ("jira-bot", "jira-alice", "gh-bot", "gh-alice")}
        for value in secrets_of.values():
            config.redactor.add(Secret(value))
        jira.add_user("acme-bot", username="bot@acme.example", token=secrets_of["jira-bot"], name="ACME Bot")
        jira.add_user("alice", username="alice@acme.example", token=secrets_of["jira-alice"], name="Alice Example")
        github.add_user("globex-bot", token=secrets_of["gh-bot"], name="Globex Bot")
        github.add_user("alice-gh", token=secrets_of["gh-alice"], name="Alice Example")

        _step(console, 2, f"An embedded database and a 0600 key file in {paths.root}", "tokenproviders init")
        initialise(paths)
        session = Session(demo_config, isolated=True)
        stack.callback(session.close)
        directory = session.directory
        resolver = session.resolver

        _step(
            console,
            3,
            "Two tenants with one tracker each, both with bot credentials; alice is in both, bob only in acme",
            "tokenproviders tenants add acme globex",
            "tokenproviders tenants grant acme alice bob",
            "tokenproviders tenants grant globex alice",
            f"tokenproviders trackers add acme jira --type jira --url {jira.url} -o project=ACME"
            " --bot-username bot@acme.example   # bot token at the hidden prompt",
            f"tokenproviders trackers add globex github --type github --url {github.url}/globex/webapp"
            "   # bot token at the hidden prompt",
        )
        directory.add_tenant("acme")
        directory.add_tenant("globex")
        directory.add_member("alice", "acme")
        directory.add_member("bob", "acme")
        directory.add_member("alice", "globex")
        acme_jira = Tracker(
            tenant="acme",
            id="jira",
            type="jira",
            base_url=jira.url,
            name="ACME Jira",
            options={"project": "ACME"},
            bot_credentials=Credentials(
                api_username="bot@acme.example", api_password=Secret(secrets_of["jira-bot"])
            ),
        )
        globex_github = Tracker(
            tenant="globex",
            id="github",
            type="github",
            base_url=f"{github.url}/globex/webapp",
            name="Globex webapp",
            bot_credentials=Credentials(api_password=Secret(secrets_of["gh-bot"])),
        )
        directory.add_tracker(acme_jira)
        directory.add_tracker(globex_github)

        github_service = resolver.tracker_type(globex_github).service_url(globex_github) or globex_github.url
        _step(
            console,
            4,
            "alice's drop-down: the URLs she may store personal tokens for, across her tenants",
            "tokenproviders trackers --user alice",
        )
        choices = table(None, "url", "kind", "serves")
        for choice in resolver.trackers_for("alice"):
            choices.add_row(choice.url, choice.kind, ", ".join(f"{t}/{i}" for t, i in choice.trackers))
        console.print(choices)

        _step(
            console,
            5,
            "alice stores personal tokens (bob stores none)",
            f"tokenproviders token set alice {acme_jira.url} --tenant acme --username alice@acme.example --verify",
            f"tokenproviders token set alice {github_service} --all-tenants --expires 60d --verify",
        )
        resolver.tokens.set(
            "alice",
            acme_jira.url,
            Credentials(api_username="alice@acme.example", api_password=Secret(secrets_of["jira-alice"])),
            scope="acme",
            label="Jira API token",
            verify=True,
        )
        resolver.tokens.set(
            "alice",
            github_service,
            Credentials(api_password=Secret(secrets_of["gh-alice"])),
            scope=ALL_TENANTS,
            label="GitHub token for every repository",
            expires_at=resolver.now() + timedelta(days=60),
            verify=True,
        )
        tokens = table("alice's personal tokens (secrets never shown)", "id", "url", "scope", "label", "expires")
        for info in resolver.tokens.list("alice"):
            expires = info.expires_at.strftime("%Y-%m-%d") if info.expires_at else "never"
            tokens.add_row(str(info.id), info.url, format_scope(info.scope), info.label, expires)
        console.print(tokens)

        _step(
            console,
            6,
            "File bugs: bob on Jira (no token: the bot), alice on Jira and on GitHub (her tokens)",
            "tokenproviders report bob acme jira --title 'Login button does nothing'",
            "tokenproviders report alice acme jira --title 'Search ignores accents'",
            "tokenproviders report alice globex github --title 'Crash on empty cart'",
        )
        filed: list[_Filed] = []
        for user, tracker, fake, title in (
            ("bob", acme_jira, jira, "Login button does nothing"),
            ("alice", acme_jira, jira, "Search ignores accents"),
            ("alice", globex_github, github, "Crash on empty cart"),
        ):
            body = "Found while testing; filed by the tokenproviders demo."
            issue = resolver.report_issue(user, tracker, title, body)
            filed.append(_Filed(user, tracker, issue, _reporter_of(fake, issue)))

        results = table(
            "What the trackers recorded", "filed by", "tracker", "issue", "source", "tracker's reporter"
        )
        for item in filed:
            resolution = item.issue.resolution
            source = resolution.source if resolution else "?"
            style = "green" if source == "personal" else "yellow"
            results.add_row(
                item.user,
                f"{item.tracker.tenant}/{item.tracker.id}",
                item.issue.url,
                styled(source, style),
                styled(item.reporter, f"bold {style}"),
            )
        console.print(results)
        reasons = Table(title="Why the resolver chose those credentials", title_justify="left", show_lines=True)
        reasons.add_column("filed by", no_wrap=True)
        reasons.add_column("reason", overflow="fold")
        for item in filed:
            reasons.add_row(item.user, item.issue.resolution.reason if item.issue.resolution else "?")
        console.print(reasons)

        _step(
            console,
            7,
            "bob tries the GitHub tracker of globex, a tenant he is not in",
            "tokenproviders report bob globex github --title ...",
        )
        try:
            resolver.resolve("bob", globex_github)
        except NotAuthorizedError as exc:
            console.print(f"   [bold red]refused[/] (exit code 4): {exc.message}")
            console.print("   No token of any kind was looked at, and the bot was not used either.")

        _step(console, 8, "The audit trail: every action, refusals included, never a secret", "tokenproviders audit")
        session.db.flush()
        trail = table(None, "when", "action", "outcome", "user", "tenant", "tracker", "source", "token")
        for entry in session.db.audit.query(limit=20):
            trail.add_row(
                entry.at.strftime("%H:%M:%S"),
                entry.action,
                entry.outcome,
                entry.user or "-",
                entry.tenant or "-",
                entry.tracker or "-",
                entry.source or "-",
                f"#{entry.token_id}" if entry.token_id is not None else "-",
            )
        console.print(trail)
        personal = sum(1 for item in filed if item.issue.resolution and item.issue.resolution.is_personal)
        console.print(
            f"\n[bold]Result:[/] {personal} of {len(filed)} bugs carry the real person as reporter;"
            " the bot filed only where nobody had a token."
        )
        console.print(f"[dim]The demo data in {tmp} and both fake trackers are removed now.[/]")
