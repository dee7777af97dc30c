"""``keys generate / status / rotate / retire``: the encryption keys of the embedded database.

The usual cycle: ``keys generate`` adds a fresh primary key to the key file; ``keys rotate``
re-seals every stored secret under it (resumable, with a progress bar); ``keys status`` shows
how many rows each key still seals; ``keys retire OLD`` destroys a key no row uses any more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..crypto import KeyRing
from ..errors import ConfigurationError, KeyInUseError, SecretUnreadableError
from ._app import AliasedGroup, cli, pass_session
from ._output import emit_json, stdout_console, styled, table
from ._state import Session
from .exit_codes import NotFoundError

__all__ = ["keys"]


def _key_file_of(session: Session) -> Path:
    """The key file the session's keys came from; keys from elsewhere cannot be changed here."""
    ring: KeyRing = session.db.keyring
    path = session.paths.key
    if not ring.source.startswith("key file") or not path.exists():
        raise ConfigurationError(
            f"the keys come from {ring.source}, not from a key file this command can change",
            hint="add, rotate and retire keys where they are kept (environment variable or key provider)",
        )
    return path


@cli.group(cls=AliasedGroup, aliases={"new": "generate", "add": "generate"})
def keys() -> None:
    """Encryption keys: generate, status, rotate, retire."""


@keys.command("generate")
@click.option("--id", "key_id", help="The new key's id [default: DATE-RANDOM].")
@click.option("--no-primary", is_flag=True, help="Add the key without making it the primary key.")
@pass_session
def keys_generate(session: Session, key_id: str | None, no_primary: bool) -> None:
    """Add a fresh random key to the key file and make it the primary key.

    New secrets are sealed with it at once; run 'keys rotate' to re-seal the existing ones.
    """
    path = _key_file_of(session)
    # Read, add and write under the key file's lock: a concurrent generate or retire waits.
    with KeyRing.edit_key_file(path) as ring:
        new_id = ring.add_key(key_id, primary=not no_primary)
    # A key-file operation: recorded in the database this command opened.
    session.db.audit.record_change(
        "key.generate", detail=f"key {new_id} added to {path}{' as the primary key' if not no_primary else ''}"
    )
    click.echo(f"Added key {new_id} to {path}{' as the primary key' if not no_primary else ''}")
    if not no_primary:
        click.echo("Re-seal the stored secrets under it with: tokenproviders keys rotate")


def _status_rows(session: Session) -> list[dict[str, Any]]:
    db = session.db
    ring: KeyRing = db.keyring
    states = db.check_keys()
    counts = db.key_status()
    rows = []
    for key_id in sorted(set(counts) | set(states), key=lambda k: (k != ring.primary_id, k)):
        rows.append(
            {
                "key_id": key_id,
                "primary": key_id == ring.primary_id,
                "in_key_ring": key_id in ring,
                "retired": states.get(key_id) == "retired",
                "rows": counts.get(key_id, 0),
            }
        )
    return rows


@keys.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
def keys_status(session: Session, as_json: bool) -> None:
    """Show each key and how many stored secrets (tokens and bot credentials) it seals."""
    rows = _status_rows(session)
    if as_json:
        emit_json(rows)
        return
    grid = table(f"Keys ({session.db.keyring.source})", "key id", "primary", "in key ring", "rows sealed", "state")
    for row in rows:
        state: str | Text
        if row["retired"]:
            state = "retired"
        elif row["primary"]:
            state = "seals new secrets"
        elif not row["in_key_ring"]:
            state = styled("missing from the key ring: its rows cannot be opened", "bold red")
        elif row["rows"]:
            state = styled("still in use: run 'keys rotate'", "yellow")
        else:
            state = "unused: may be retired"
        grid.add_row(
            row["key_id"],
            "yes" if row["primary"] else "",
            "yes" if row["in_key_ring"] else "no",
            str(row["rows"]),
            state,
        )
    stdout_console().print(grid)


@keys.command("rotate")
@click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Rows per transaction."
)
@pass_session
def keys_rotate(session: Session, batch_size: int) -> None:
    """Re-seal every stored secret under the primary key, in batches, with a progress bar.

    Safe to interrupt and run again: it resumes where it stopped; a second run does nothing.
    """
    console = stdout_console()
    primary = session.db.keyring.primary_id
    columns = (
        TextColumn("[bold]Re-sealing under {task.fields[key]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("failed: {task.fields[failed]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("rotate", total=None, key=primary, failed=0)

        def progress(report: Any) -> None:
            done = int(report.processed)
            bar.update(task, completed=done, total=done + int(report.remaining), failed=int(report.failed))

        result = session.db.rotate(batch_size, progress=progress)
        bar.update(task, completed=result.processed, total=result.processed + result.remaining, failed=result.failed)
    click.echo(
        f"Re-sealed {result.processed} row(s) under key {result.primary} in {result.seconds:.1f} s;"
        f" {result.failed} failed, {result.conflicts} changed concurrently, {result.remaining} remaining"
    )
    if result.failed:
        for failure in result.failures[:10]:
            click.echo(f"  cannot re-seal {failure}", err=True)
        raise SecretUnreadableError(
            f"{result.failed} row(s) could not be re-sealed because their key is missing or wrong",
            hint="add the missing key to the key ring and run 'keys rotate' again, or set those credentials again",
        )
    if not result.complete:
        click.echo("Some rows changed while rotating; run 'tokenproviders keys rotate' again", err=True)


@keys.command("retire")
@click.argument("key_id")
@pass_session
def keys_retire(session: Session, key_id: str) -> None:
    """Destroy key KEY_ID: only when no stored secret uses it (rotate first)."""
    path = _key_file_of(session)
    ring: KeyRing = session.db.keyring
    if key_id not in ring and key_id not in session.db.key_status():
        raise NotFoundError(
            f"there is no key {key_id!r} in the key ring or the database",
            hint="see the key ids with: tokenproviders keys status",
        )
    # Under the key file's lock from reading it to writing it back (see 'keys generate').
    with KeyRing.edit_key_file(path) as on_disk:
        if key_id == on_disk.primary_id:
            raise KeyInUseError(
                f"key {key_id!r} is the primary key of {path} and cannot be retired",
                hint="add a new primary key, rotate, then retire this one",
            )
        session.db.retire_key(key_id)
        if key_id in on_disk:
            on_disk.retire(key_id)
    click.echo(f"Retired key {key_id}: removed from {path}; secrets naming it can no longer be opened")
