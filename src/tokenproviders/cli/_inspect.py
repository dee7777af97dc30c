"""``plugins`` and ``audit``: what is installed, and who acted with which credentials."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.text import Text

from .._printable import printable
from ..audit import ACTIONS, OUTCOMES
from ..plugins import Plugins
from ..stores.audit import AuditEntry
from ._app import cli, get_config, in_utc, out_of_range, pass_session
from ._output import echo, emit_json, format_time, join, stdout_console, styled, table
from ._state import Session

__all__ = ["plugins", "audit"]


def _field_words(tracker_type: Any) -> str:
    words = []
    for f in tracker_type.fields:
        flags = ["required" if f.required else "optional"]
        if f.secret:
            flags.append("secret")
        words.append(f"{f.name} ({f.label}; {', '.join(flags)})")
    return "; ".join(words)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List installed plugins and tracker types, with versions, fields, and broken plugins."""
    config = get_config()
    manager = Plugins(extra=config.extra_plugins)
    infos = manager.list()
    owners = {name: info for info in infos for name in info.tracker_types}
    types = [
        {
            "type": name,
            "title": tracker_type.title,
            "plugin": owners[name].name if name in owners else None,
            "distribution": owners[name].distribution if name in owners else None,
            "version": owners[name].version if name in owners else None,
            "fields": [
                {"name": f.name, "label": f.label, "help": f.help, "required": f.required, "secret": f.secret}
                for f in tracker_type.fields
            ],
        }
        for name, tracker_type in sorted(manager.tracker_types.items())
    ]
    if as_json:
        emit_json({"plugins": [info.as_dict() for info in infos], "tracker_types": types})
        return
    console = stdout_console()
    grid = table("Tracker types", "type", "title", "plugin", "version", "fields")
    for name, tracker_type in sorted(manager.tracker_types.items()):
        owner = owners.get(name)
        grid.add_row(
            name,
            tracker_type.title,
            owner.distribution or owner.name if owner else "-",
            (owner.version or "-") if owner else "-",
            _field_words(tracker_type),
        )
    console.print(grid)
    grid = table("Plugins", "name", "distribution", "version", "provides", "status")
    for info in infos:
        if info.broken:
            status = Text.assemble(styled("broken", "bold red"), ": ", printable(info.broken))
        elif info.blocked:
            status = Text.assemble(
                styled("blocked", "yellow"), " by TOKENPROVIDERS_BLOCK_PLUGINS / TOKENPROVIDERS_LOAD_PLUGINS"
            )
        else:
            status = Text.assemble(styled("loaded", "green"), " (built-in)" if info.builtin else "")
        if info.conflict and not info.broken:
            # The operator settled a collision: say which, so the choice stays visible.
            status.append(f" ({printable(info.conflict)})")
        provides = join(info.tracker_types or [h.removeprefix("tokenproviders_") for h in info.hooks])
        grid.add_row(info.name, info.distribution or "-", info.version or "-", provides, status)
    console.print(grid)
    if not manager.tracker_types:
        echo(
            "No tracker types are installed; install one, e.g. pip install tokenproviders-jira", err=True
        )


_AGO = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``24h``, ``7d``, ``2w`` before ``now``, or an ISO date / date-time (UTC if naive)."""
    ago = _AGO.match(text)
    if ago:
        try:
            return now - int(ago.group(1)) * _UNITS[ago.group(2).lower()]
        except OverflowError:
            raise out_of_range(text, "'--since'") from None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a duration (30m, 24h, 7d, 2w) or an ISO date/date-time", param_hint="'--since'"
        ) from None
    return in_utc(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc), text, "'--since'")


def _entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "action": entry.action,
        "outcome": entry.outcome,
        "user": entry.user,
        "tenant": entry.tenant,
        "tracker": entry.tracker,
        "source": entry.source,
        "scope": entry.scope,
        "token_id": entry.token_id,
        "matched_url": entry.matched_url,
        "fallback_from": entry.fallback_from,
        "principal": entry.principal,
        "correlation_id": entry.correlation_id,
        "error": entry.error,
        "detail": entry.detail,
    }


def _where(row: dict[str, Any]) -> str:
    if row["tenant"] is None:
        return "-"
    return f"{row['tenant']}/{row['tracker']}" if row["tracker"] is not None else row["tenant"]


@cli.command()
@click.option("--user", "-u", help="Only entries for this user.")
@click.option("--tenant", "-t", help="Only this tenant.")
@click.option("--tracker", help="Only this tracker id.")
@click.option("--source", help="Only this source (personal, bot, ...).")
@click.option("--action", "-a", type=click.Choice(ACTIONS), help="Only this action (resolve, report, token.set, ...).")
@click.option("--outcome", "-o", type=click.Choice(OUTCOMES), help="Only this outcome (ok, refused, rejected, ...).")
@click.option("--principal", help="Only what this principal did (the account that ran the command).")
@click.option("--correlation-id", "correlation_id", metavar="ID", help="Only the entries of one action (one command).")
@click.option(
    "--since", metavar="WHEN", help="Only entries since WHEN: an ISO date or date-time, or 30m, 24h, 7d, 2w ago."
)
@click.option(
    "--limit", "-n", type=click.IntRange(1, 1_000_000), default=50, show_default=True, help="Newest entries to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def audit(
    session: Session,
    user: str | None,
    tenant: str | None,
    tracker: str | None,
    source: str | None,
    action: str | None,
    outcome: str | None,
    principal: str | None,
    correlation_id: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit trail: every action on a tracker (resolve, verify, report, comment) with its
    outcome, refusals included, and every change to tokens, tenants, members, trackers and keys:
    when, for which user, where, with which credentials, by whom. Never a secret.

    'resolve' is a dry run (action resolve); 'report' is action report. The principal is the
    operating-system account that ran the command; the entries of one command share a
    correlation id (--json shows it).
    """
    start = parse_since(since, session.resolver.now()) if since is not None else None
    entries = session.db.audit.query(
        user=user,
        tenant=tenant,
        tracker=tracker,
        source=source,
        since=start,
        limit=limit,
        action=action,
        outcome=outcome,
        principal=principal,
        correlation_id=correlation_id,
    )
    rows = [_entry_dict(e) for e in entries]
    if as_json:
        emit_json(rows)
        return
    grid = table(
        "Audit trail (newest first)", "when", "action", "outcome", "user", "where", "source", "token", "by", "detail"
    )
    for row in rows:
        grid.add_row(
            format_time(row["at"]),
            row["action"],
            row["outcome"] if row["outcome"] == "ok" else styled(row["outcome"], "bold red"),
            row["user"] or "-",
            _where(row),
            row["source"] or "-",
            f"#{row['token_id']}" if row["token_id"] is not None else "-",
            row["principal"] or "-",
            row["detail"] or "",
        )
    stdout_console().print(grid)
    if not rows:
        echo("No audit entries (yet)", err=True)
