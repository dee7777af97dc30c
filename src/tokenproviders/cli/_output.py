"""How the command prints: rich tables for people, ``--json`` for scripts, times in UTC.

Every value the command prints (ids, labels, URLs, a tracker's answers) passes through here and
is shown as it is: never read as rich markup (``[/]`` in a label would break a listing), with
control characters and bidi overrides escaped (:func:`~tokenproviders._printable.printable`).
Styling is added with :class:`~rich.text.Text` (:func:`styled`), never by markup in a string.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import IO, Any, cast

import click
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from .._printable import UNPRINTABLE_IN_LINES, printable
from ..model import ALL_TENANTS, Secret

__all__ = [
    "stdout_console",
    "echo",
    "styled",
    "table",
    "fields_table",
    "DataTable",
    "emit_json",
    "format_time",
    "format_scope",
    "expiry_status",
    "expiry_text",
    "masked",
    "SOON_DAYS",
]

#: Tokens expiring within this many days stand out in listings.
SOON_DAYS = 14


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich (13.4+) would exit 1; the root command ends quietly with 0 on EPIPE instead.
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class _NoTrailingSpaces:
    """A text stream that drops the spaces rich pads each line of a table with.

    On a terminal the padding is invisible; in a pipe or a file every line of a narrow table
    would end in spaces up to the console width.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._partial = ""

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            self._stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()


def stdout_console() -> Console:
    """A console on the current stdout (looked up now, so click's test runner captures it).

    Output that is not a terminal gets a wide, fixed width so URLs are not cut in pipes and
    logs, and no trailing spaces: a table is as wide as its content, not as the console.
    """
    stream = sys.stdout
    is_terminal = hasattr(stream, "isatty") and stream.isatty()
    if is_terminal:
        return _Console(file=stream, highlight=False, soft_wrap=False)
    width = None if os.environ.get("COLUMNS") else 200
    return _Console(file=cast(IO[str], _NoTrailingSpaces(stream)), width=width, highlight=False, soft_wrap=False)


def echo(message: str, *, err: bool = False) -> None:
    """Print a message that may carry data (one line: control characters are escaped)."""
    click.echo(printable(message), err=err)


def styled(text: str, style: str) -> Text:
    """``text`` as it is, in ``style`` (a cell that stands out: ``styled("broken", "bold red")``)."""
    return Text(printable(text), style=style)


def _cell(value: RenderableType | None) -> RenderableType | None:
    return Text(printable(value)) if isinstance(value, str) else value


class DataTable(Table):
    """A table whose title and plain-string cells are shown as they are, never as markup."""

    def __init__(self, title: str | None, **kwargs: Any) -> None:
        super().__init__(title=None if title is None else Text(printable(title)), title_justify="left", **kwargs)

    def add_row(self, *renderables: RenderableType | None, **kwargs: Any) -> None:
        super().add_row(*(_cell(value) for value in renderables), **kwargs)


def table(title: str | None, *columns: str) -> DataTable:
    """A listing: one row per item, under ``columns``."""
    grid = DataTable(title, show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def fields_table(title: str | None) -> DataTable:
    """One item, a ``field  value`` pair per row, without a header or borders."""
    grid = DataTable(title, show_header=False, box=None, padding=(0, 2, 0, 0))
    grid.add_column("field", style="bold", no_wrap=True)
    grid.add_column("value", overflow="fold")
    return grid


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Secret):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return value


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout.

    Characters a terminal would act on are written as ``\\uXXXX`` escapes (json escapes only
    C0 controls by itself): the JSON decodes to the very same strings.
    """
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False, ensure_ascii=False)
    # Outside its strings the JSON text is ASCII with line breaks; inside, json has escaped C0.
    click.echo(UNPRINTABLE_IN_LINES.sub(_json_escape, text))


def format_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def format_scope(scope: str | None) -> str:
    if scope is None:
        return "-"
    return "all tenants" if scope == ALL_TENANTS else f"tenant {scope}"


def expiry_status(expires_at: datetime | None, now: datetime, soon_days: int = SOON_DAYS) -> str:
    """``none``, ``ok``, ``expiring`` (within ``soon_days``) or ``expired``."""
    if expires_at is None:
        return "none"
    if expires_at <= now:
        return "expired"
    if expires_at - now <= timedelta(days=soon_days):
        return "expiring"
    return "ok"


def _humanize(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        return f"{max(1, int(seconds // 60))} min"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def expiry_text(expires_at: datetime | None, now: datetime, soon_days: int = SOON_DAYS) -> Text:
    """The expiry cell of a token listing: expired in bold red, soon-expiring in yellow."""
    status = expiry_status(expires_at, now, soon_days)
    if expires_at is None:
        return Text("never", style="dim")
    when = format_time(expires_at)
    if status == "expired":
        return Text(f"EXPIRED {when} ({_humanize(now - expires_at)} ago)", style="bold red")
    if status == "expiring":
        return Text(f"{when} (in {_humanize(expires_at - now)}, renew soon)", style="bold yellow")
    return Text(when)


def masked(secret: Secret | None) -> str:
    """A secret as listings show it: never the value, only whether there is one."""
    if secret is None or not secret:
        return "(none)"
    return str(secret)


def join(values: Iterable[str]) -> str:
    return ", ".join(values) or "-"
