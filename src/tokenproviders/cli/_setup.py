"""``init``, ``tenants`` and ``trackers``: setting up the embedded directory.

Every command checks its whole input (tenant exists, tracker type installed, URL well-formed,
credential fields complete) before it prompts for a secret or writes anything, so bad input
leaves the database untouched.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import click

from ..crypto import KEYS_ENV
from ..errors import ConfigurationError, InvalidCredentialsError, InvalidInputError, StoreError
from ..model import Credentials, IssueDraft, Secret, Tracker, check_tenant_id, check_user_id
from ._app import AliasedGroup, cli, credential_fields_error, get_config, pass_session, read_secret
from ._output import echo, emit_json, join, stdout_console, table
from ._state import Session, initialise
from .exit_codes import ConflictError, NotFoundError

__all__ = ["init", "tenants", "trackers", "check_tracker_options", "cli_option_hint"]


# -- init -----------------------------------------------------------------------------------
@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the data directory: an empty encrypted database and a fresh 0600 key file.

    Refuses to overwrite an existing database or key file. Back the key file up somewhere
    safe: without it, stored tokens and bot credentials cannot be decrypted.
    """
    config = get_config(ctx)
    database, key = initialise(config.paths())
    echo(f"Created database {database}")
    echo(f"Created key file {key} (mode 0600; back it up, it decrypts every stored secret)")
    if os.environ.get(KEYS_ENV, "").strip() and config.explicit_key_file is None:
        echo(f"Note: {KEYS_ENV} is set; its keys take precedence over the key file", err=True)
    echo("Next: tokenproviders tenants add TENANT, then tokenproviders trackers add ...")


# -- tenants --------------------------------------------------------------------------------
def _require_tenant(session: Session, tenant: str) -> str:
    check_tenant_id(tenant)
    known = list(session.directory.list_tenants())
    if tenant not in known:
        shown = ", ".join(sorted(known)) or "none"
        raise NotFoundError(
            f"there is no tenant {tenant!r} (tenants: {shown})",
            hint=f"create it with: tokenproviders tenants add {tenant}",
        )
    return tenant


@cli.group(cls=AliasedGroup, aliases={"ls": "list", "rm": "remove"})
def tenants() -> None:
    """Tenants and who may act in them."""


@tenants.command("add")
@click.argument("names", nargs=-1, required=True, metavar="TENANT...")
@click.option("--exist-ok", is_flag=True, help="Do not fail if a tenant already exists.")
@pass_session
def tenants_add(session: Session, names: tuple[str, ...], exist_ok: bool) -> None:
    """Create tenants."""
    for name in names:
        check_tenant_id(name)
    known = set(session.directory.list_tenants())
    existing = [name for name in names if name in known]
    if existing and not exist_ok:
        raise ConflictError(f"tenant {existing[0]!r} already exists", hint="pass --exist-ok to ignore existing tenants")
    for name in dict.fromkeys(names):
        if session.directory.add_tenant(name):
            echo(f"Added tenant {name}")
        else:
            echo(f"Tenant {name} already exists")


@tenants.command("remove")
@click.argument("tenant")
@click.option("--yes", is_flag=True, help="Confirm: also removes its memberships, trackers and tokens scoped to it.")
@pass_session
def tenants_remove(session: Session, tenant: str, yes: bool) -> None:
    """Remove TENANT with its memberships, trackers and the personal tokens scoped to it."""
    _require_tenant(session, tenant)
    if not yes:
        raise click.UsageError(
            f"removing tenant {tenant!r} also removes its memberships, trackers and the tokens scoped to it;"
            " pass --yes to confirm"
        )
    counts = session.directory.remove_tenant(tenant)
    echo(
        f"Removed tenant {tenant} with {counts.get('members', 0)} membership(s), {counts.get('trackers', 0)}"
        f" tracker(s) and {counts.get('tokens', 0)} personal token(s) scoped to it"
    )


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def tenants_list(session: Session, as_json: bool) -> None:
    """List tenants with their members and trackers."""
    directory = session.directory
    rows: list[dict[str, Any]] = []
    for name in sorted(directory.list_tenants()):
        members = sorted(directory.members_of(name))
        trackers = sorted(t.id for t in directory.trackers_of(name))
        rows.append({"tenant": name, "members": members, "trackers": trackers})
    if as_json:
        emit_json(rows)
        return
    grid = table("Tenants", "tenant", "members", "trackers")
    for row in rows:
        grid.add_row(row["tenant"], join(row["members"]), join(row["trackers"]))
    stdout_console().print(grid)
    if not rows:
        echo("No tenants yet; add one with: tokenproviders tenants add TENANT", err=True)


@tenants.command("members")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def tenants_members(session: Session, tenant: str, as_json: bool) -> None:
    """List the users authorized for TENANT."""
    _require_tenant(session, tenant)
    members = sorted(session.directory.members_of(tenant))
    if as_json:
        emit_json(members)
        return
    grid = table(f"Members of {tenant}", "user")
    for user in members:
        grid.add_row(user)
    stdout_console().print(grid)


@tenants.command("grant")
@click.argument("tenant")
@click.argument("users", nargs=-1, required=True, metavar="USER...")
@pass_session
def tenants_grant(session: Session, tenant: str, users: tuple[str, ...]) -> None:
    """Make USERs members of TENANT (they may then act on its trackers)."""
    _require_tenant(session, tenant)
    for user in users:
        check_user_id(user)
    for user in dict.fromkeys(users):
        if tenant in session.directory.tenants_of(user):
            echo(f"{user} is already a member of {tenant}")
            continue
        session.directory.add_member(user, tenant)
        echo(f"Granted {user} membership of {tenant}")


@tenants.command("revoke")
@click.argument("tenant")
@click.argument("users", nargs=-1, required=True, metavar="USER...")
@pass_session
def tenants_revoke(session: Session, tenant: str, users: tuple[str, ...]) -> None:
    """Remove USERs from TENANT. Takes effect at once: their tokens stop resolving there."""
    _require_tenant(session, tenant)
    for user in users:
        check_user_id(user)
        if tenant not in session.directory.tenants_of(user):
            raise NotFoundError(
                f"{user!r} is not a member of tenant {tenant!r}",
                hint=f"list the members with: tokenproviders tenants members {tenant}",
            )
    for user in dict.fromkeys(users):
        session.directory.remove_member(user, tenant)
        kept = [t for t in session.resolver.tokens.list(user) if t.scope == tenant]
        note = (
            f"; {len(kept)} personal token(s) scoped to {tenant} are kept but no longer used"
            f" (delete them with: tokenproviders token delete {user} URL --tenant {tenant})"
            if kept
            else ""
        )
        echo(f"Revoked {user}'s membership of {tenant}{note}")


# -- trackers -------------------------------------------------------------------------------
def _parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that is a JSON object or array is parsed (``-o
    'fields={"components": [{"name": "UI"}]}'``), anything else stays a string."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--option'")
        parsed: Any = value
        if value.lstrip().startswith(("{", "[")):
            try:
                parsed = json.loads(value)
            except ValueError:
                raise click.BadParameter(
                    f"the value of {key.strip()!r} looks like JSON but is not valid JSON", param_hint="'--option'"
                ) from None
        options[key.strip()] = parsed
    return options


class _ProbeReached(BaseException):
    """The tracker type's ``report_issue`` got past its own checks and reached for the client.

    A ``BaseException``, so a plugin's ``except Exception`` around a client call lets it through."""


class _ProbeClient:
    """Stands in for the client library's client: any use of it ends the option check."""

    def __getattr__(self, name: str) -> Any:
        raise _ProbeReached()


_PYTHON_OPTIONS = re.compile(r"options\s*=\s*(\{[^{}]*\})")
_QUOTED_OPTION = re.compile(r"options?\s+((?:'[A-Za-z_][\w-]*'(?:,\s*|\s+and\s+|\s+or\s+)?)+)")


def _options_asked_for(hint: str) -> dict[str, str]:
    """The options a tracker type's hint asks for, with a placeholder value each: from
    ``options={'project': 'KEY'}``, or from ``the tracker option 'project'`` / ``options
    'product' and 'component'`` (placeholder: the name in capitals)."""
    asked: dict[str, str] = {}
    for match in _PYTHON_OPTIONS.finditer(hint):
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(match.group(1))
            if isinstance(value, dict):
                asked.update({str(k): v if isinstance(v, str) else str(k).upper() for k, v in value.items()})
    for match in _QUOTED_OPTION.finditer(hint):
        for name in re.findall(r"'([^']+)'", match.group(1)):
            asked.setdefault(name, name.upper())
    return asked


def cli_option_hint(hint: str, how: str) -> str:
    """A tracker type's hint about its options, in the command's terms.

    ``options={'project': 'KEY'}`` becomes ``the option project=KEY``, ``base_url`` ``--url``;
    then ``how``, with ``{pairs}`` (``project=KEY``) or ``{options}`` (``-o project=KEY``)
    filled in with the options the hint names.
    """

    def cli_syntax(match: re.Match[str]) -> str:
        try:
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return match.group(0)
        if not isinstance(value, dict) or not value:
            return match.group(0)
        pairs = [f"{key}={item if isinstance(item, str) else json.dumps(item)}" for key, item in value.items()]
        return ("the option " if len(pairs) == 1 else "the options ") + " ".join(pairs)

    readable = _PYTHON_OPTIONS.sub(cli_syntax, hint).replace("the tracker's the option", "the option")
    readable = re.sub(r"\bbase_url\b", "--url", re.sub(r"\bapi_url\b", "--api-url", readable))
    pairs = [f"{name}={value}" for name, value in (_options_asked_for(hint) or {"KEY": "VALUE"}).items()]
    return f"{readable}; {how.format(pairs=' '.join(pairs), options=' '.join('-o ' + p for p in pairs))}"


def check_tracker_options(session: Session, tracker: Tracker, how: str) -> None:
    """Let the tracker type refuse the tracker's options now rather than at the first report.

    A tracker type has no hook that declares the options it needs: each checks them when it
    files an issue (Jira's ``project``, Bugzilla's ``product`` and ``component``, the project of
    Redmine and Azure Boards unless the URL names it). So the type's own ``report_issue`` runs
    here with a stand-in client that stops it at its first use: no request is made, nothing is
    filed, and a configuration the type would refuse is refused now, in its own words (exit 2).
    Anything else the type raises is left for the real report to show.
    """
    tracker_type = session.plugins.tracker_type(tracker.type)
    try:
        tracker_type.report_issue(_ProbeClient(), tracker, IssueDraft(title="tokenproviders option check"))
    except _ProbeReached:
        return
    except (ConfigurationError, InvalidInputError) as exc:
        if isinstance(exc, InvalidCredentialsError):
            return
        raise InvalidInputError(
            f"tracker type {tracker_type.name!r} cannot file issues with these options: {exc.message}",
            hint=cli_option_hint(exc.hint, how),
        ) from None
    except Exception:  # noqa: BLE001 - not an answer about the options; the report will say
        return


def _tracker_row(tracker: Tracker) -> dict[str, Any]:
    bot = tracker.bot_credentials
    return {
        "tenant": tracker.tenant,
        "id": tracker.id,
        "type": tracker.type,
        "name": tracker.name,
        "url": tracker.url,
        "api_url": tracker.api_url,
        "bot_username": bot.api_username if bot else None,
        "bot_credentials": bot is not None,
        "options": dict(tracker.options),
        "verify_tls": tracker.verify_tls,
        "ca_bundle": tracker.ca_bundle,
    }


def _show_trackers(trackers: list[Tracker], as_json: bool, title: str) -> None:
    rows = [_tracker_row(t) for t in trackers]
    if as_json:
        emit_json(rows)
        return
    grid = table(title, "tenant", "id", "type", "name", "url", "bot")
    for row in rows:
        bot = (row["bot_username"] or "(token only)") if row["bot_credentials"] else "none"
        grid.add_row(row["tenant"], row["id"], row["type"], row["name"], row["url"], bot)
    stdout_console().print(grid)


def _all_trackers(session: Session, tenant: str | None) -> list[Tracker]:
    tenant_ids = [_require_tenant(session, tenant)] if tenant else sorted(session.directory.list_tenants())
    found: list[Tracker] = []
    for tenant_id in tenant_ids:
        found.extend(sorted(session.directory.trackers_of(tenant_id), key=lambda t: t.id))
    return found


def _show_choices(session: Session, user: str, as_json: bool) -> None:
    check_user_id(user)
    choices = session.resolver.trackers_for(user)
    if as_json:
        emit_json(
            [
                {
                    "url": c.url,
                    "kind": c.kind,
                    "type": c.type,
                    "title": c.title,
                    "tenants": list(c.tenants),
                    "trackers": [{"tenant": tenant, "id": tid} for tenant, tid in c.trackers],
                }
                for c in choices
            ]
        )
        return
    grid = table(f"Tracker URLs {user} can store a personal token for", "url", "kind", "type", "title", "serves")
    for c in choices:
        grid.add_row(c.url, c.kind, c.type, c.title, join(f"{tenant}/{tid}" for tenant, tid in c.trackers))
    stdout_console().print(grid)
    if not choices:
        tenants = sorted(session.directory.tenants_of(user))
        why = "is not a member of any tenant" if not tenants else "has no trackers in their tenants"
        echo(f"{user} {why}", err=True)


@cli.group(cls=AliasedGroup, invoke_without_command=True, aliases={"ls": "list", "rm": "remove", "delete": "remove"})
@click.option("--user", "-u", help="Show the drop-down: the tracker URLs USER can store personal tokens for.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def trackers(ctx: click.Context, user: str | None, as_json: bool) -> None:
    """Trackers of each tenant, with their bot credentials.

    Without a subcommand: 'trackers --user U' lists the tracker and service URLs U may store
    personal tokens for, across all of U's tenants (the drop-down of a token form); plain
    'trackers' lists every configured tracker.
    """
    if ctx.invoked_subcommand is not None:
        if user is not None or as_json:
            raise click.UsageError(f"put --user/--json after the subcommand: trackers {ctx.invoked_subcommand} ...")
        return
    _trackers_default(user=user, as_json=as_json)


@pass_session
def _trackers_default(session: Session, *, user: str | None, as_json: bool) -> None:
    if user is not None:
        _show_choices(session, user, as_json)
    else:
        _show_trackers(_all_trackers(session, None), as_json, "Trackers")


@trackers.command("list")
@click.option("--tenant", "-t", help="Only this tenant's trackers.")
@click.option("--user", "-u", help="Instead: the tracker URLs USER can store personal tokens for.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def trackers_list(session: Session, tenant: str | None, user: str | None, as_json: bool) -> None:
    """List configured trackers (or, with --user, that user's drop-down of URLs)."""
    if user is not None:
        if tenant is not None:
            raise click.UsageError("give --tenant or --user, not both")
        _show_choices(session, user, as_json)
        return
    _show_trackers(_all_trackers(session, tenant), as_json, f"Trackers of {tenant}" if tenant else "Trackers")


def _bot_credentials(
    session: Session,
    tracker_type_name: str,
    *,
    username: str | None,
    password_stdin: bool,
    no_bot: bool,
) -> Credentials | None:
    if no_bot:
        if username is not None or password_stdin:
            raise click.UsageError("--no-bot cannot be combined with --bot-username or --bot-password-stdin")
        return None
    tracker_type = session.plugins.tracker_type(tracker_type_name)
    # Check the fields before asking for the secret: nobody should type a token in vain.
    try:
        tracker_type.validate_credentials(Credentials(api_password=Secret("placeholder"), api_username=username))
    except InvalidCredentialsError as exc:
        error = credential_fields_error(
            tracker_type,
            username,
            exc,
            username_flag="--bot-username",
            secret_how="the bot's secret is prompted for, or read with --bot-password-stdin",
        )
        raise InvalidCredentialsError(f"bot credentials: {error.message}", hint=error.hint) from None
    field = tracker_type.field("api_password")
    secret = read_secret(
        get_config(),
        label=field.label if field else "Password",
        for_whom="for the bot",
        from_stdin=password_stdin,
        stdin_flag="--bot-password-stdin",
        username=username,
    )
    return Credentials(api_password=secret, api_username=username)


@trackers.command("add")
@click.argument("tenant")
@click.argument("tracker_id", metavar="ID")
@click.option("--type", "type_name", required=True, help="Tracker type (an installed plugin; see 'plugins').")
@click.option("--url", required=True, help="The tracker's base URL (Jira site, repository, project...).")
@click.option("--api-url", help="Where the API lives, if it cannot be derived from --url.")
@click.option("--name", default="", help="A display name [default: ID].")
@click.option("--bot-username", help="The bot's user name (e-mail for Jira Cloud), if the type takes one.")
@click.option("--bot-password-stdin", is_flag=True, help="Read the bot's token/password from stdin.")
@click.option("--no-bot", is_flag=True, help="No bot credentials: users must store personal tokens.")
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A type-specific option (repeatable), e.g. project=ACME; a JSON object or array value is parsed.",
)
@click.option("--no-verify-tls", is_flag=True, help="Do not verify the tracker's TLS certificate.")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="CA bundle (PEM file) for the tracker's TLS certificate; stored as an absolute path.",
)
@click.option("--verify", is_flag=True, help="Check the bot credentials with the tracker (whoami) before saving.")
@pass_session
def trackers_add(
    session: Session,
    tenant: str,
    tracker_id: str,
    type_name: str,
    url: str,
    api_url: str | None,
    name: str,
    bot_username: str | None,
    bot_password_stdin: bool,
    no_bot: bool,
    options: tuple[str, ...],
    no_verify_tls: bool,
    ca_bundle: Path | None,
    verify: bool,
) -> None:
    """Add tracker ID to TENANT, with bot credentials (prompted for, or read from stdin)."""
    if no_verify_tls and ca_bundle is not None:
        raise click.UsageError(
            "--no-verify-tls and --ca-bundle contradict each other: give --ca-bundle to verify"
            " against that CA, or --no-verify-tls to not verify"
        )
    _require_tenant(session, tenant)
    session.plugins.tracker_type(type_name)
    parsed_options = _parse_options(options)
    tracker = Tracker(
        tenant=tenant,
        id=tracker_id,
        type=type_name,
        base_url=url,
        api_url=api_url,
        name=name,
        options=parsed_options,
        verify_tls=not no_verify_tls,
        # Every later command (and a host reading the same database) runs in another directory.
        # Symbolic links are kept: a mounted bundle is a link whose target changes on renewal.
        ca_bundle=str(ca_bundle.absolute()) if ca_bundle is not None else None,
    )
    if any(t.id == tracker_id for t in session.directory.trackers_of(tenant)):
        raise ConflictError(
            f"tenant {tenant!r} already has a tracker {tracker_id!r}",
            hint=f"choose another id, or remove it first: tokenproviders trackers remove {tenant} {tracker_id}",
        )
    check_tracker_options(session, tracker, "on the command line: {options}")
    bot = _bot_credentials(
        session, type_name, username=bot_username, password_stdin=bot_password_stdin, no_bot=no_bot
    )
    tracker = dataclasses.replace(tracker, bot_credentials=bot)
    if verify:
        if bot is None:
            raise click.UsageError("--verify checks bot credentials; there are none with --no-bot")
        identity = session.resolver.tokens.verify_credentials(tracker, bot)
        echo(f"Verified: {tracker.url} accepts the bot credentials as {identity.login}")
    session.directory.add_tracker(tracker)
    echo(f"Added tracker {tenant}/{tracker_id} ({type_name}) at {tracker.url}")


@trackers.command("set-bot")
@click.argument("tenant")
@click.argument("tracker_id", metavar="ID")
@click.option("--bot-username", help="The bot's user name, if the type takes one.")
@click.option("--bot-password-stdin", is_flag=True, help="Read the bot's token/password from stdin.")
@click.option("--no-bot", is_flag=True, help="Remove the bot credentials.")
@click.option("--verify", is_flag=True, help="Check the new credentials with the tracker before saving.")
@pass_session
def trackers_set_bot(
    session: Session,
    tenant: str,
    tracker_id: str,
    bot_username: str | None,
    bot_password_stdin: bool,
    no_bot: bool,
    verify: bool,
) -> None:
    """Replace (or remove) the bot credentials of tracker ID in TENANT."""
    _require_tenant(session, tenant)
    tracker = session.resolver.tracker(tenant, tracker_id)
    bot = _bot_credentials(
        session, tracker.type, username=bot_username, password_stdin=bot_password_stdin, no_bot=no_bot
    )
    updated = dataclasses.replace(tracker, bot_credentials=bot)
    if verify and bot is not None:
        identity = session.resolver.tokens.verify_credentials(updated, bot)
        echo(f"Verified: {tracker.url} accepts the bot credentials as {identity.login}")
    session.directory.update_tracker(updated)
    echo(f"{'Removed' if bot is None else 'Updated'} the bot credentials of {tenant}/{tracker_id}")


@trackers.command("set-option")
@click.argument("tenant")
@click.argument("tracker_id", metavar="ID")
@click.argument("options", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove this option (repeatable).")
@pass_session
def trackers_set_option(
    session: Session, tenant: str, tracker_id: str, options: tuple[str, ...], unset: tuple[str, ...]
) -> None:
    """Set (KEY=VALUE) or remove (--unset KEY) type-specific options of tracker ID in TENANT.

    A VALUE that is a JSON object or array is parsed, as with 'trackers add -o'. The tracker
    type checks the result as 'trackers add' does; the bot credentials are kept.
    """
    _require_tenant(session, tenant)
    if not options and not unset:
        raise click.UsageError("give at least one KEY=VALUE to set or --unset KEY to remove")
    tracker = session.resolver.tracker(tenant, tracker_id)
    changes = _parse_options(options)
    both = sorted(set(changes) & set(unset))
    if both:
        raise click.UsageError(f"option {both[0]!r} is both set and unset")
    missing = [key for key in unset if key not in tracker.options]
    if missing:
        shown = ", ".join(sorted(tracker.options)) or "none"
        raise NotFoundError(
            f"tracker {tenant}/{tracker_id} has no option {missing[0]!r} (options: {shown})",
            hint=f"see its options with: tokenproviders trackers list --tenant {tenant} --json",
        )
    merged = {key: value for key, value in tracker.options.items() if key not in unset}
    merged.update(changes)
    updated = dataclasses.replace(tracker, options=merged)
    check_tracker_options(
        session, updated, f"on the command line: tokenproviders trackers set-option {tenant} {tracker_id} {{pairs}}"
    )
    session.directory.update_tracker(updated)
    shown = " ".join(f"{key}={v if isinstance(v, str) else json.dumps(v)}" for key, v in changes.items())
    removed = " ".join(f"--unset {key}" for key in unset)
    echo(f"Updated the options of {tenant}/{tracker_id}: {' '.join(filter(None, (shown, removed)))}")


@trackers.command("remove")
@click.argument("tenant")
@click.argument("tracker_id", metavar="ID")
@pass_session
def trackers_remove(session: Session, tenant: str, tracker_id: str) -> None:
    """Remove tracker ID from TENANT (personal tokens for its URL are kept)."""
    _require_tenant(session, tenant)
    try:
        url = session.resolver.tracker(tenant, tracker_id).url
    except StoreError as exc:
        if exc.table != "trackers":
            raise
        url = "a malformed row"  # removing it is how the operator repairs it
    session.directory.remove_tracker(tenant, tracker_id)
    echo(f"Removed tracker {tenant}/{tracker_id} ({url})")

