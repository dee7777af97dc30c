"""Keeping secrets out of what the command prints, even with ``--debug``.

Errors raised by tokenproviders never carry secrets, but a plugin's client library may put a
token into an exception (a URL with ``?api_key=...``) or a log record. The command knows every
secret it handled in this process (typed at a prompt, read from stdin, or resolved), so every
error line, traceback and debug log record passes through :meth:`Redactor.redact` first.
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

from .._printable import printable
from ..model import Credentials, Resolution, Secret
from ..plugins import hookimpl

__all__ = ["Redactor", "MASK"]

MASK = "**********"

# Shorter values are not redacted: masking every "a" in a traceback would make it unreadable,
# and such a value is not a credential anyone could use.
_MIN_LENGTH = 4


class Redactor:
    """Remembers secrets seen in this process and masks them (and their common encodings)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._needles: set[str] = set()

    def add(self, secret: Secret, username: str | None = None) -> None:
        value = secret.reveal()
        if len(value) < _MIN_LENGTH:
            return
        forms = {value, quote(value, safe=""), quote_plus(value)}
        for prefix in (f"{username}:" if username else "", ":"):
            forms.add(base64.b64encode(f"{prefix}{value}".encode()).decode())
        forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
        with self._lock:
            self._needles.update(form for form in forms if len(form) >= _MIN_LENGTH)

    def add_credentials(self, credentials: Credentials | None) -> None:
        if credentials is not None:
            self.add(credentials.api_password, credentials.api_username)

    def redact(self, text: str) -> str:
        with self._lock:
            needles = sorted(self._needles, key=len, reverse=True)
        for needle in needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def observer(self) -> object:
        """A plugin that learns every resolved secret (so tracebacks can mask it)."""
        redactor = self

        class _ResolvedSecrets:
            @hookimpl
            def tokenproviders_resolved(self, resolution: Resolution) -> None:
                redactor.add_credentials(resolution.credentials)

        return _ResolvedSecrets()

    def formatter(self, fmt: str) -> logging.Formatter:
        """A logging formatter whose output is redacted."""
        redactor = self

        class _RedactingFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                # A client library logs what the tracker answered: no escape sequences either.
                return printable(redactor.redact(super().format(record)), keep_newlines=True)

            def formatException(self, ei: Any) -> str:
                return redactor.redact(super().formatException(ei))

        return _RedactingFormatter(fmt)
