"""``resolve``, ``verify`` and ``report``: acting as a user on a tracker.

``resolve`` shows which credentials the user would act with and why (secret masked);
``verify`` asks the tracker who those credentials belong to; ``report`` files a bug with them
and prints the issue's URL. Each goes through the resolver, so each lands in the audit trail.

The audit trail is part of what these commands promise, so each checks first that the database
can be written (exit 11, nothing done, if not) and writes its audit entry before printing its
result. Should that write still fail after the tracker acted (the disk filled up, another
process locked the database for longer than the store waits), the result is printed anyway
with a warning, and the exit code is 14 (``NOT_AUDITED``): the issue exists, and a script that
retried on a plain failure would file it twice.
"""

from __future__ import annotations

from typing import IO, Any

import click
from rich.table import Table

from ..errors import ConfigurationError, InvalidInputError, StoreError
from ..model import Identity, Resolution, Tracker, check_user_id
from ._app import cli, pass_session, redactor_of
from ._output import echo, emit_json, fields_table, format_scope, format_time, masked, stdout_console
from ._setup import cli_option_hint
from ._state import Session
from .exit_codes import ExitCode

__all__ = ["resolve", "verify", "report", "resolution_dict"]


def resolution_dict(resolution: Resolution) -> dict[str, Any]:
    tracker = resolution.tracker
    return {
        "user": resolution.user,
        "tenant": tracker.tenant,
        "tracker": tracker.id,
        "tracker_type": tracker.type,
        "tracker_url": tracker.url,
        "source": resolution.source,
        "scope": resolution.scope,
        "token_id": resolution.token_id,
        "token_version": resolution.token_version,
        "matched_url": resolution.matched_url,
        "api_username": resolution.credentials.api_username,
        "api_password": masked(resolution.credentials.api_password),
        "expires_at": resolution.expires_at,
        "fallback_from": resolution.fallback_from,
        "reason": resolution.reason,
    }


def _source_words(resolution: Resolution) -> str:
    if resolution.source == "personal":
        return f"{resolution.user}'s personal token #{resolution.token_id} ({format_scope(resolution.scope)})"
    if resolution.source == "bot":
        return f"the bot credentials of {resolution.tracker.tenant}/{resolution.tracker.id}"
    return f"credentials from source {resolution.source!r}"


def resolution_table(resolution: Resolution, title: str, extra: dict[str, str] | None = None) -> Table:
    grid = fields_table(title)
    tracker = resolution.tracker
    rows = {
        "user": resolution.user,
        "tracker": f"{tracker.tenant}/{tracker.id} ({tracker.type}) {tracker.url}",
        "source": resolution.source,
        "scope": format_scope(resolution.scope),
        "token": (
            f"#{resolution.token_id} v{resolution.token_version} for {resolution.matched_url}"
            if resolution.token_id is not None
            else "-"
        ),
        "username": resolution.credentials.api_username or "-",
        "secret": masked(resolution.credentials.api_password),
        "expires": format_time(resolution.expires_at) if resolution.expires_at else "never",
    }
    if resolution.fallback_from:
        rows["fallback from"] = resolution.fallback_from
    rows["reason"] = resolution.reason
    rows.update(extra or {})
    for key, value in rows.items():
        grid.add_row(key, value)
    return grid


def _tracker(session: Session, tenant: str, tracker_id: str) -> Tracker:
    return session.resolver.tracker(tenant, tracker_id)


def _not_audited(failure: StoreError | None, done: str, again: str) -> None:
    """After the result is printed: warn and exit 14 if the audit entry could not be written."""
    if failure is None:
        return
    redact = redactor_of().redact
    echo(
        f"Warning: {done}, but its audit entry could not be written ({redact(failure.message)});"
        f" do not run the command again for this, {again}. Make the database writable;"
        " the entry is lost if it cannot be written when the command ends.",
        err=True,
    )
    raise click.exceptions.Exit(ExitCode.NOT_AUDITED)


@cli.command()
@click.argument("user")
@click.argument("tenant")
@click.argument("tracker_id", metavar="TRACKER")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def resolve(session: Session, user: str, tenant: str, tracker_id: str, as_json: bool) -> None:
    """Show which credentials USER would use on TRACKER of TENANT, and why (secret masked)."""
    check_user_id(user)
    tracker = _tracker(session, tenant, tracker_id)
    session.require_writable()
    resolution = session.resolver.resolve(user, tracker)
    failure = session.flush_audit()
    if as_json:
        emit_json(resolution_dict(resolution))
    else:
        stdout_console().print(resolution_table(resolution, f"Resolution for {user} on {tenant}/{tracker_id}"))
    _not_audited(failure, "the credentials were resolved", "that would only add another entry")


@cli.command()
@click.argument("user")
@click.argument("tenant")
@click.argument("tracker_id", metavar="TRACKER")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def verify(session: Session, user: str, tenant: str, tracker_id: str, as_json: bool) -> None:
    """Ask TRACKER who USER's resolved credentials belong to (a whoami call)."""
    check_user_id(user)
    resolver = session.resolver
    tracker = _tracker(session, tenant, tracker_id)
    session.require_writable()
    session.last_resolution = None
    identity: Identity = resolver.verify(user, tracker)
    resolution = session.last_resolution or resolver.resolve(user, tracker)
    failure = session.flush_audit()
    if as_json:
        emit_json(
            {
                "identity": {
                    "login": identity.login,
                    "name": identity.name,
                    "email": identity.email,
                    "id": identity.id,
                },
                "resolution": resolution_dict(resolution),
            }
        )
    else:
        who = identity.login + (f" ({identity.name})" if identity.name and identity.name != identity.login else "")
        stdout_console().print(
            resolution_table(
                resolution,
                f"{tracker.url} knows {user}'s credentials as {who}",
                {"tracker says": who + (f" <{identity.email}>" if identity.email else "")},
            )
        )
    _not_audited(failure, f"{tracker.url} was asked who the credentials belong to", "that would only add another entry")


@cli.command()
@click.argument("user")
@click.argument("tenant")
@click.argument("tracker_id", metavar="TRACKER")
@click.option("--title", required=True, help="The issue's title.")
@click.option("--body", default=None, help="The issue's description.")
@click.option("--body-file", type=click.File("r"), default=None, help="Read the description from a file ('-': stdin).")
@click.option("--label", "labels", multiple=True, help="A label (repeatable).")
@click.option("--issue-type", help="Issue type, where the tracker has them [default: the tracker's option].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def report(
    session: Session,
    user: str,
    tenant: str,
    tracker_id: str,
    title: str,
    body: str | None,
    body_file: IO[str] | None,
    labels: tuple[str, ...],
    issue_type: str | None,
    as_json: bool,
) -> None:
    """File a bug on TRACKER of TENANT as USER's resolved identity; print the issue's URL.

    The URL is the only line on stdout; the explanation goes to stderr. The database must be
    writable (checked before the tracker is contacted): every report is audited. Exit code 14
    means the issue was filed and printed, but its audit entry could not be written: do not
    run the command again.
    """
    if body is not None and body_file is not None:
        raise click.UsageError("give --body or --body-file, not both")
    text = body_file.read() if body_file is not None else (body or "")
    check_user_id(user)
    tracker = _tracker(session, tenant, tracker_id)
    session.require_writable()
    try:
        issue = session.resolver.report_issue(user, tracker, title, text, labels=labels, issue_type=issue_type)
    except (ConfigurationError, InvalidInputError) as exc:
        # The tracker type's hint about its options is in Python terms; say it in the command's.
        if type(exc) not in (ConfigurationError, InvalidInputError) or "option" not in exc.hint:
            raise
        how = f"on the command line: tokenproviders trackers set-option {tenant} {tracker_id} {{pairs}}"
        raise type(exc)(exc.message, hint=cli_option_hint(exc.hint, how)) from None
    failure = session.flush_audit()
    resolution = issue.resolution
    if as_json:
        emit_json(
            {
                "id": issue.id,
                "url": issue.url,
                "resolution": resolution_dict(resolution) if resolution else None,
            }
        )
    else:
        echo(issue.url)
        if resolution is not None:
            echo(f"Filed {issue.id} on {tenant}/{tracker_id} with {_source_words(resolution)}.", err=True)
            echo(f"Why: {resolution.reason}", err=True)
    _not_audited(failure, f"issue {issue.id} was filed ({issue.url})", "that would file a second issue")
