"""The exit codes of the ``tokenproviders`` command, and which error maps onto which.

Scripts may rely on these numbers; they only ever gain new members. A closed pipe on stdout
(``tokenproviders tenants list | head -1``) is not a failure: the command stops quietly with 0.

====  ==================  =========================================================================
code  name                meaning
====  ==================  =========================================================================
0     OK                  success
1     ERROR               an unexpected failure (a bug); ``--debug`` shows the traceback
2     USAGE               bad command line or invalid value: unknown option, malformed URL or id,
                          missing or extra credential field, expiry in the past, no password given
3     NOT_FOUND           unknown tenant, tracker, personal token or key id
4     NOT_AUTHORIZED      the user is not a member of the tenant (no token was looked at)
5     NO_CREDENTIALS      no personal token, no credential source and no bot credentials apply
6     TOKEN_UNUSABLE      a personal token exists but is expired or cannot be decrypted
7     REJECTED            the tracker rejected the credentials (HTTP 401/403)
8     UNAVAILABLE         the tracker could not be reached in time (refused, timeout, 5xx, 429)
9     TRACKER_REFUSED     the tracker refused the request itself (wrong project or URL, other 4xx)
10    KEY_ERROR           missing or wrong key, key file with loose permissions, sealed secret
                          that cannot be opened, other configuration problems
11    STORE_ERROR         the database is missing, corrupt, locked or read-only, or the data
                          directory cannot be written
12    PLUGIN_ERROR        the tracker type's plugin is not installed, or a plugin is broken
13    CONFLICT            something already exists: ``init`` over existing data, a duplicate
                          tenant or tracker id, a key still in use
14    NOT_AUDITED         the command acted (``report`` filed the issue; its result is printed), but
                          its audit entry could not be written afterwards: do not run it again
                          (that would file a second issue); fix the database, see the warning
130   INTERRUPTED         interrupted with Ctrl-C
====  ==================  =========================================================================
"""

from __future__ import annotations

import enum

from ..errors import (
    ConfigurationError,
    CredentialsRejectedError,
    InvalidInputError,
    KeyInUseError,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenUnusableError,
    PluginError,
    SecretUnreadableError,
    StoreError,
    TokenNotFoundError,
    TokenProvidersError,
    TrackerRequestError,
    TrackerUnavailableError,
    UnknownTrackerError,
    UnknownTrackerTypeError,
)

__all__ = ["ExitCode", "exit_code_for", "EXIT_CODES_HELP", "NotFoundError", "ConflictError"]


class ExitCode(enum.IntEnum):
    """The documented exit codes (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_AUTHORIZED = 4
    NO_CREDENTIALS = 5
    TOKEN_UNUSABLE = 6
    REJECTED = 7
    UNAVAILABLE = 8
    TRACKER_REFUSED = 9
    KEY_ERROR = 10
    STORE_ERROR = 11
    PLUGIN_ERROR = 12
    CONFLICT = 13
    NOT_AUDITED = 14
    INTERRUPTED = 130


class NotFoundError(TokenProvidersError):
    """The command named something that does not exist (a tenant, a member, a key id)."""

    default_hint = "list what exists with the matching 'list' command"


class ConflictError(TokenProvidersError):
    """The command would overwrite or duplicate something that exists."""

    default_hint = "choose another name, or remove the existing one first"


# Most specific first: a rejected personal token is both "unusable" and "rejected"; the
# tracker's answer is the more useful thing to report.
_MAPPING: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (CredentialsRejectedError, ExitCode.REJECTED),
    (PersonalTokenUnusableError, ExitCode.TOKEN_UNUSABLE),
    (NotAuthorizedError, ExitCode.NOT_AUTHORIZED),
    (NoCredentialsError, ExitCode.NO_CREDENTIALS),
    (TrackerUnavailableError, ExitCode.UNAVAILABLE),
    (TrackerRequestError, ExitCode.TRACKER_REFUSED),
    (UnknownTrackerTypeError, ExitCode.PLUGIN_ERROR),
    (PluginError, ExitCode.PLUGIN_ERROR),
    (UnknownTrackerError, ExitCode.NOT_FOUND),
    (TokenNotFoundError, ExitCode.NOT_FOUND),
    (NotFoundError, ExitCode.NOT_FOUND),
    (KeyInUseError, ExitCode.CONFLICT),
    (SecretUnreadableError, ExitCode.KEY_ERROR),
    (ConfigurationError, ExitCode.KEY_ERROR),
    (StoreError, ExitCode.STORE_ERROR),
    (InvalidInputError, ExitCode.USAGE),
    (ConflictError, ExitCode.CONFLICT),
)


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code the command ends with when ``error`` reaches it."""
    for kind, code in _MAPPING:
        if isinstance(error, kind):
            return code
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.ERROR


#: The exit-code table as the ``--help`` epilog shows it.
EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {code.value:>3}  {text}"
    for code, text in (
        (ExitCode.OK, "success"),
        (ExitCode.ERROR, "unexpected failure (rerun with --debug)"),
        (ExitCode.USAGE, "usage error or invalid value (URL, id, credential fields, expiry)"),
        (ExitCode.NOT_FOUND, "unknown tenant, tracker, token or key"),
        (ExitCode.NOT_AUTHORIZED, "user is not a member of the tenant"),
        (ExitCode.NO_CREDENTIALS, "no personal token, source or bot credentials apply"),
        (ExitCode.TOKEN_UNUSABLE, "personal token expired or cannot be decrypted"),
        (ExitCode.REJECTED, "tracker rejected the credentials (401/403)"),
        (ExitCode.UNAVAILABLE, "tracker unreachable (refused, timeout, 5xx, 429)"),
        (ExitCode.TRACKER_REFUSED, "tracker refused the request (wrong project/URL, other 4xx)"),
        (ExitCode.KEY_ERROR, "missing or wrong key, key file permissions, configuration"),
        (ExitCode.STORE_ERROR, "database missing, corrupt, locked or read-only"),
        (ExitCode.PLUGIN_ERROR, "tracker type not installed, or plugin broken"),
        (ExitCode.CONFLICT, "already exists (init over data, duplicate id, key in use)"),
        (ExitCode.NOT_AUDITED, "done (issue filed), but no audit entry: do not retry; fix the database"),
        (ExitCode.INTERRUPTED, "interrupted"),
    )
)
