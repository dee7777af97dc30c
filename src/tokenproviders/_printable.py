"""Text from elsewhere (tracker answers, stored rows, argv) made safe to show to a person.

A tracker's answer can carry terminal escape sequences (``ESC [2J`` clears the screen, OSC 8
forges links), line breaks that forge log lines, and bidirectional overrides that make a name
or URL read differently from what it is. :func:`printable` shows each such character as a
visible escape instead (``\\x1b``, ``\\u202e``), so nothing is lost and nothing acts.
"""

from __future__ import annotations

import re

__all__ = ["printable", "UNPRINTABLE", "UNPRINTABLE_IN_LINES", "LONE_SURROGATE"]

#: C0 and C1 controls and DEL; bidirectional marks, embeddings, overrides and isolates; the
#: line and paragraph separators; lone surrogates (what undecodable bytes in argv become).
UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
#: The same but for ``\n``: what must not appear in text of several lines.
UNPRINTABLE_IN_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

#: What bytes that are not UTF-8 become in ``sys.argv`` (surrogateescape): not text, so they
#: cannot be stored (SQLite, JSON) or sent.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character, bidi control and lone surrogate escaped.

    >>> printable("alice\\x1b[2J\\u202egnp.exe")
    'alice\\\\x1b[2J\\\\u202egnp.exe'

    ``keep_newlines`` leaves ``\\n`` as it is, for text of several lines (a traceback).
    """
    pattern = UNPRINTABLE_IN_LINES if keep_newlines else UNPRINTABLE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)
