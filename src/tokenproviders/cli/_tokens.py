"""``token set / list / delete``: a user's personal tokens.

The secret is prompted for with hidden input or read from stdin (``--password-stdin``), never
taken from argv. Everything that can be checked without it (membership, a tracker at that URL,
the fields the tracker type needs) is checked before the prompt.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import click

from ..errors import InvalidCredentialsError
from ..model import ALL_TENANTS, Credentials, Secret, TokenInfo, check_user_id
from ..urls import normalize_url
from ._app import (
    AliasedGroup,
    cli,
    credential_fields_error,
    get_config,
    in_utc,
    pass_session,
    read_secret,
    scope_from_options,
)
from ._output import (
    SOON_DAYS,
    echo,
    emit_json,
    expiry_status,
    expiry_text,
    format_scope,
    format_time,
    stdout_console,
    table,
)
from ._state import Session
from .exit_codes import NotFoundError

__all__ = ["token", "parse_expiry"]

_RELATIVE = re.compile(r"^\s*(\d{1,5})\s*([dw])\s*$", re.IGNORECASE)


def parse_expiry(text: str, now: datetime) -> datetime:
    """``2026-03-31`` (midnight UTC), an ISO date-time (UTC if no offset), or ``90d`` / ``12w``;
    returned in UTC."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount = int(relative.group(1))
        unit = timedelta(days=1) if relative.group(2).lower() == "d" else timedelta(weeks=1)
        return now + amount * unit
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time(0, 0), tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date (2026-03-31), an ISO date-time or a duration (90d, 12w)",
            param_hint="'--expires'",
        ) from None
    return in_utc(parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc), text, "'--expires'")


def token_dict(info: TokenInfo, now: datetime, soon_days: int = SOON_DAYS) -> dict[str, Any]:
    return {
        "id": info.id,
        "owner": info.owner,
        "url": info.url,
        "scope": info.scope,
        "all_tenants": info.scope == ALL_TENANTS,
        "label": info.label,
        "api_username": info.api_username,
        "expires_at": info.expires_at,
        "expiry": expiry_status(info.expires_at, now, soon_days),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "last_used_at": info.last_used_at,
        "version": info.version,
        "key_id": info.key_id,
    }


@cli.group(cls=AliasedGroup, aliases={"ls": "list", "rm": "delete", "remove": "delete", "add": "set"})
def token() -> None:
    """A user's personal tokens: they override the bot, so trackers record the real person."""


@token.command("set")
@click.argument("user")
@click.argument("url")
@click.option("--tenant", "-t", help="Scope: use the token in this tenant only.")
@click.option("--all-tenants", is_flag=True, help="Scope: use the token in every tenant USER belongs to.")
@click.option("--username", help="The user name or e-mail the tracker type pairs with the token, if any.")
@click.option("--password-stdin", is_flag=True, help="Read the token from stdin instead of a hidden prompt.")
@click.option("--label", default="", help="A note to recognise the token by.")
@click.option("--expires", metavar="WHEN", help="When the token expires: 2026-03-31, an ISO date-time, or 90d.")
@click.option("--verify", is_flag=True, help="Check the token with the tracker (whoami) before saving it.")
@click.option("--json", "as_json", is_flag=True, help="Print the saved token's metadata as JSON.")
@pass_session
def token_set(
    session: Session,
    user: str,
    url: str,
    tenant: str | None,
    all_tenants: bool,
    username: str | None,
    password_stdin: bool,
    label: str,
    expires: str | None,
    verify: bool,
    as_json: bool,
) -> None:
    """Store USER's personal token for URL (a tracker URL or a service URL such as
    https://github.com; see 'trackers --user USER'). Replaces an existing one."""
    scope = scope_from_options(tenant, all_tenants)
    check_user_id(user)
    resolver = session.resolver
    now = resolver.now()
    expires_at = parse_expiry(expires, now) if expires is not None else None
    if expires_at is not None and expires_at <= now:
        raise click.BadParameter(f"{expires_at.isoformat()} is in the past", param_hint="'--expires'")
    if scope != ALL_TENANTS and scope not in session.directory.list_tenants():
        raise NotFoundError(
            f"there is no tenant {scope!r}", hint="list the tenants with: tokenproviders tenants list"
        )
    targets = resolver.tokens.targets(user, url, scope)
    # Check the fields before the prompt, with the CLI's option names in the hint.
    for target in targets:
        tracker_type = target.tracker_type
        try:
            tracker_type.validate_credentials(Credentials(api_password=Secret("placeholder"), api_username=username))
        except InvalidCredentialsError as exc:
            raise credential_fields_error(
                tracker_type,
                username,
                exc,
                username_flag="--username",
                secret_how="the token is prompted for, or read with --password-stdin",
            ) from None
    field = targets[0].tracker_type.field("api_password")
    secret = read_secret(
        get_config(),
        label=field.label if field else "Token",
        from_stdin=password_stdin,
        username=username,
    )
    credentials = Credentials(api_password=secret, api_username=username)
    identity = None
    if verify:
        # On a tracker the endpoint rule lets this token go to (not just the first match).
        identity = resolver.tokens.verify(user, url, credentials, scope=scope)
    info = resolver.tokens.set(user, url, credentials, scope=scope, label=label, expires_at=expires_at)
    if as_json:
        data = token_dict(info, now)
        data["verified_as"] = identity.login if identity else None
        emit_json(data)
        return
    served = ", ".join(f"{t.tracker.tenant}/{t.tracker.id}" for t in targets)
    echo(
        f"Saved personal token #{info.id} of {user} for {info.url} ({format_scope(scope)});"
        f" it serves {served}; expires {format_time(info.expires_at) if info.expires_at else 'never'}"
    )
    if identity is not None:
        echo(f"Verified: the tracker says this token belongs to {identity.login}")


@token.command("list")
@click.argument("user", required=False)
@click.option(
    "--soon",
    "soon_days",
    type=click.IntRange(0, 3650),
    default=SOON_DAYS,
    show_default=True,
    help="Days before expiry a token counts as expiring soon.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def token_list(session: Session, user: str | None, soon_days: int, as_json: bool) -> None:
    """List personal tokens (of USER, or everyone's), never their secrets.

    Expired tokens are shown in red, tokens expiring within --soon days in yellow.
    """
    if user is not None:
        check_user_id(user)
    now = session.resolver.now()
    infos = session.resolver.tokens.list(user)
    if as_json:
        emit_json([token_dict(info, now, soon_days) for info in infos])
        return
    grid = table(
        f"Personal tokens of {user}" if user else "Personal tokens",
        "id", "owner", "url", "scope", "label", "username", "expires", "last used", "key",
    )
    for info in infos:
        grid.add_row(
            str(info.id),
            info.owner,
            info.url,
            format_scope(info.scope),
            info.label or "-",
            info.api_username or "-",
            expiry_text(info.expires_at, now, soon_days),
            format_time(info.last_used_at),
            info.key_id or "-",
        )
    stdout_console().print(grid)
    expired = sum(1 for i in infos if expiry_status(i.expires_at, now, soon_days) == "expired")
    soon = sum(1 for i in infos if expiry_status(i.expires_at, now, soon_days) == "expiring")
    if expired or soon:
        echo(
            f"{expired} expired and {soon} expiring within {soon_days} days; renew them with"
            " 'tokenproviders token set' (an expired token is an error, never a silent fallback to the bot)",
            err=True,
        )
    elif not infos:
        echo("No personal tokens", err=True)


@token.command("delete")
@click.argument("user")
@click.argument("url")
@click.option("--tenant", "-t", help="The scope of the token: this tenant.")
@click.option("--all-tenants", is_flag=True, help="The scope of the token: all tenants.")
@pass_session
def token_delete(session: Session, user: str, url: str, tenant: str | None, all_tenants: bool) -> None:
    """Delete USER's personal token for URL in the given scope."""
    scope = scope_from_options(tenant, all_tenants)
    removed = session.resolver.tokens.delete(user, url, scope)
    echo(f"Deleted personal token #{removed.id} of {user} for {normalize_url(url)} ({format_scope(scope)})")
