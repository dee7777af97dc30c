"""The ``tokenproviders`` command: the embedded default for a person at a terminal.

Install it with ``pip install 'tokenproviders[cli]'`` (click, rich and platformdirs). Data lives
in one SQLite file and a 0600 key file in the data directory: ``--data-dir``, else
``TOKENPROVIDERS_HOME``, else the platform's per-user data directory. ``tokenproviders init``
creates them; ``tokenproviders demo`` shows the whole story against fake trackers.

Commands::

    init                                    create the database and key file
    demo                                    personal tokens vs. the bot, against fake trackers
    tenants add|list|members|grant|revoke   tenants and their members
    trackers [--user U]                     all trackers, or U's drop-down of token URLs
    trackers add|list|set-bot|set-option|remove
                                            trackers with bot credentials and options
    token set|list|delete                   personal tokens (--tenant T or --all-tenants)
    resolve USER TENANT TRACKER             which credentials, and why (secret masked)
    verify USER TENANT TRACKER              whoami with the resolved credentials
    report USER TENANT TRACKER --title ...  file a bug as the resolved identity
    keys generate|status|rotate|retire      encryption keys
    plugins                                 installed tracker types and plugins
    audit                                   who acted where, with which source, when

Secrets are never read from argv: commands prompt with hidden input, or read stdin when given
``--password-stdin`` (``--bot-password-stdin`` for bot credentials). Every listing takes
``--json``. Errors are one line on stderr (``Error: ...``); ``--debug`` adds the traceback, with
every secret this process handled masked.

Exit codes (also in ``tokenproviders --help`` and :mod:`tokenproviders.cli.exit_codes`):

====  =================================================================================
0     success
1     unexpected failure (a bug; rerun with ``--debug``)
2     usage error or invalid value (malformed URL or id, missing credential field, ...)
3     not found: unknown tenant, tracker, personal token or key
4     not authorized: the user is not a member of the tenant
5     no credentials: no personal token, credential source or bot credentials apply
6     personal token unusable: expired or cannot be decrypted
7     credentials rejected by the tracker (401/403)
8     tracker unavailable (refused, timeout, 5xx, 429)
9     tracker refused the request (wrong project or URL, other 4xx)
10    key or configuration error: missing or wrong key, key file permissions
11    store error: database missing, corrupt, locked or read-only
12    plugin error: tracker type not installed, or plugin broken
13    conflict: already exists (``init`` over existing data, duplicate id, key in use)
14    done, but not audited: the command acted (``report`` filed the issue and printed it), then
      its audit entry could not be written; do not retry, fix the database
130   interrupted
====  =================================================================================
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_EXTRA_HINT = "the tokenproviders command needs its extra: pip install 'tokenproviders[cli]'"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command (the ``tokenproviders`` console script)."""
    try:
        from ._commands import cli
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("click", "rich", "platformdirs"):
            print(f"Error: {exc.name} is not installed; {_EXTRA_HINT}", file=sys.stderr)
            sys.exit(1)
        raise
    cli.main(args=list(argv) if argv is not None else None, prog_name="tokenproviders")
