"""The one error hierarchy of tokenproviders.

Every error derives from :class:`TokenProvidersError`. Every message says what went wrong *and
what to do next*; the second part is also available on its own as :attr:`TokenProvidersError.hint`
so a host can show it separately. No message ever contains a secret: errors are built from names,
URLs, ids and scopes only, and tracker-library exceptions are mapped onto these classes with
their original (possibly secret-bearing) text dropped.
"""

from __future__ import annotations

__all__ = [
    "TokenProvidersError",
    "ConfigurationError",
    "MissingKeyError",
    "KeyMismatchError",
    "KeyInUseError",
    "InvalidURLError",
    "InvalidInputError",
    "NotAuthorizedError",
    "NoCredentialsError",
    "InvalidCredentialsError",
    "UnknownTrackerTypeError",
    "UnknownTrackerError",
    "TokenNotFoundError",
    "PersonalTokenUnusableError",
    "CredentialsRejectedError",
    "PersonalTokenRejectedError",
    "TrackerUnavailableError",
    "TrackerRequestError",
    "TrackerURLError",
    "PluginError",
    "StoreError",
    "SecretUnreadableError",
]


class TokenProvidersError(Exception):
    """Base class of every error raised by tokenproviders.

    ``message`` says what happened; ``hint`` says what to do next. ``str(error)`` joins both.
    """

    default_hint = "see the tokenproviders documentation"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(f"{message}; {self.hint}" if self.hint else message)


class ConfigurationError(TokenProvidersError):
    """The library was configured inconsistently (missing key, bad policy, bad settings)."""

    default_hint = "fix the configuration named in this message"


class MissingKeyError(ConfigurationError):
    """No encryption key is configured, so nothing can be stored or read.

    The hint says exactly how to create a key. A key is never derived from another secret.
    """

    default_hint = (
        "create a key file with 'python -m tokenproviders.crypto generate /path/to/keys.json'"
        " and pass key_file=... or set TOKENPROVIDERS_KEY_FILE"
    )


class KeyMismatchError(ConfigurationError):
    """A key in the key ring is not the key a store recorded under the same id.

    Its key-check value differs: another key was given a reused id. Nothing is sealed with it.
    """

    default_hint = "load the key ring that holds the original key under that id, and give new keys new ids"


class KeyInUseError(ConfigurationError):
    """A key cannot be retired while stored rows are still sealed under it."""

    default_hint = "rotate first (re-seal every row under the primary key), then retire the key"


class InvalidInputError(TokenProvidersError, ValueError):
    """An argument has the wrong form (empty user id, bad tenant id, naive datetime...)."""

    default_hint = "correct the value named in this message"


class InvalidURLError(InvalidInputError):
    """A URL is malformed, not http(s), carries user-info, or is too long."""

    default_hint = "give an absolute http:// or https:// URL without user name, password, query or fragment"


class NotAuthorizedError(TokenProvidersError):
    """The user is not a member of the tenant the tracker (or token scope) belongs to."""

    default_hint = "ask an administrator of that tenant to add the user, or pick a tracker of one of the user's tenants"


class NoCredentialsError(TokenProvidersError):
    """Nothing can authenticate this user on this tracker: no personal token, no source, no bot."""

    default_hint = "add a personal token for the tracker's URL"


class InvalidCredentialsError(InvalidInputError):
    """Credentials do not have the fields the tracker type requires (or have fields it refuses)."""

    default_hint = "give exactly the fields the tracker type declares"


class UnknownTrackerTypeError(TokenProvidersError):
    """No installed plugin provides the named tracker type."""

    default_hint = "install the plugin for that tracker type (e.g. pip install tokenproviders-jira)"


class UnknownTrackerError(TokenProvidersError):
    """The directory has no tracker with that tenant and id, or no tracker matches a URL."""

    default_hint = "list the trackers of the tenant and use one of their ids or URLs"


class TokenNotFoundError(TokenProvidersError):
    """No personal token exists for that owner, URL and scope."""

    default_hint = "list the user's tokens to see which URLs and scopes exist"


class PersonalTokenUnusableError(TokenProvidersError):
    """A personal token exists but cannot be used: expired, undecryptable or rejected.

    The resolver never silently falls back to the bot in that case; a policy with
    ``fallback_on_unusable=True`` may allow it, and the resulting resolution says so.
    """

    default_hint = "renew the personal token (set it again with fresh credentials) or delete it"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        token_id: int | None = None,
        why: str = "",
    ) -> None:
        self.token_id = token_id
        self.why = why
        super().__init__(message, hint=hint)


class CredentialsRejectedError(TokenProvidersError):
    """The tracker answered 401 or 403 to the resolved credentials."""

    default_hint = "check that the token is valid, not revoked, and has the scopes the tracker type needs"

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class PersonalTokenRejectedError(PersonalTokenUnusableError, CredentialsRejectedError):
    """The tracker rejected a *personal* token; both an unusable token and rejected credentials."""

    default_hint = "create a new token in the tracker and set it again"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        token_id: int | None = None,
        status: int | None = None,
    ) -> None:
        PersonalTokenUnusableError.__init__(
            self, message, hint=hint, token_id=token_id, why="rejected by the tracker"
        )
        # After the base initializers: through the MRO, CredentialsRejectedError resets it.
        self.status = status


class TrackerUnavailableError(TokenProvidersError):
    """The tracker could not be reached in time: refused connection, timeout, 5xx or 429."""

    default_hint = "check that the tracker is up and reachable, then try again"

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class TrackerRequestError(TokenProvidersError):
    """The tracker refused the request itself (a 4xx other than 401/403/429)."""

    default_hint = "check the tracker's configuration (project, issue type, labels) in its options"

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class TrackerURLError(TrackerRequestError):
    """The tracker's URL (or project/repository in it) does not exist: told apart from a bad token."""

    default_hint = "check the tracker's base_url and api_url; the credentials were not the problem"


class PluginError(TokenProvidersError):
    """A plugin is broken or breaks the plugin contract."""

    default_hint = "run 'tokenproviders plugins' (or tokenproviders.list_plugins()) to see broken plugins"


class StoreError(TokenProvidersError):
    """The token store failed (corrupt file, read-only directory, schema too new...).

    For one malformed row, ``table`` and ``row`` name it (``"tokens"`` and the token id, or
    ``"trackers"`` and ``tenant/id``); the message never quotes the malformed value.
    """

    default_hint = "check the store's file and permissions"

    def __init__(
        self, message: str, *, hint: str | None = None, table: str | None = None, row: str | None = None
    ) -> None:
        self.table = table
        self.row = row
        super().__init__(message, hint=hint)


class SecretUnreadableError(TokenProvidersError):
    """A sealed secret cannot be opened: wrong or missing key, tampered or misplaced blob.

    The message names the key id at most; never the secret or any key material.
    """

    default_hint = "load the key ring that sealed it, or set the credentials again"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        key_id: str | None = None,
        token: object | None = None,
    ) -> None:
        self.key_id = key_id
        #: The :class:`~tokenproviders.model.TokenInfo` whose secret failed to open, if known.
        self.token = token
        super().__init__(message, hint=hint)
