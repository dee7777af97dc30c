"""The domain types: secrets, credentials, trackers, personal tokens and resolutions.

Everything here is a plain, immutable value. A :class:`Secret` never shows its value in ``repr``,
``str``, formatting or pickles; :meth:`Secret.reveal` is the one way to read it and is called only
where a tracker client is built.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn

from ._printable import LONE_SURROGATE, UNPRINTABLE, printable
from .errors import InvalidInputError, InvalidURLError, TrackerRequestError
from .urls import normalize_url, origin_of

__all__ = [
    "ALL_TENANTS",
    "Secret",
    "Credentials",
    "Field",
    "FieldName",
    "Tracker",
    "TokenInfo",
    "PersonalToken",
    "Resolution",
    "Identity",
    "IssueDraft",
    "ReportedIssue",
    "ClientSettings",
    "TrackerChoice",
    "check_tenant_id",
    "check_user_id",
    "MAX_USERNAME_LENGTH",
    "check_scope",
    "describe_scope",
]

#: The scope of a personal token that applies in every tenant its owner is authorized for.
ALL_TENANTS: Final = "*"

_MAX_ID = 200
#: The longest ``Credentials.api_username``: a login or e-mail address (254 at most) with room.
MAX_USERNAME_LENGTH: Final = 1024
_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


def _check_id(kind: str, value: object) -> str:
    # On every resolution: printable text of a sane length without edge spaces is valid
    # (isprintable() is False for every control character); the rest takes the full checks.
    if type(value) is str and 0 < len(value) <= _MAX_ID and value.isprintable() and value.strip() == value:
        return value
    if not isinstance(value, str):
        raise InvalidInputError(f"a {kind} id must be a string, not {type(value).__name__}")
    if not value or value.strip() != value:
        raise InvalidInputError(f"a {kind} id must be non-empty without surrounding spaces, got {value!r}")
    if len(value) > _MAX_ID:
        raise InvalidInputError(f"a {kind} id may have at most {_MAX_ID} characters")
    if _ID_FORBIDDEN.search(value):
        raise InvalidInputError(f"a {kind} id may not contain control characters")
    if LONE_SURROGATE.search(value):
        # Not text (bytes that were not UTF-8, decoded with surrogateescape): it can be neither
        # stored nor sent, and quoting it would break the message too.
        raise InvalidInputError(
            f"a {kind} id must be UTF-8 text; '{printable(value)}' holds bytes in another encoding",
            hint="pass ids as str decoded from UTF-8",
        )
    return value


def check_user_id(user: object) -> str:
    """Validate a host user id and return it."""
    # _check_id's shortcut, repeated here because this runs on every resolution.
    if type(user) is str and 0 < len(user) <= _MAX_ID and user.isprintable() and user.strip() == user:
        return user
    return _check_id("user", user)


def check_tenant_id(tenant: object) -> str:
    """Validate a tenant id (``ALL_TENANTS`` is not a tenant) and return it."""
    value = _check_id("tenant", tenant)
    if value == ALL_TENANTS:
        raise InvalidInputError(f"{ALL_TENANTS!r} is reserved for ALL_TENANTS and cannot be a tenant id")
    return value


def check_scope(scope: object) -> str:
    """Validate a token scope: a tenant id or ``ALL_TENANTS``."""
    if scope == ALL_TENANTS:
        return ALL_TENANTS
    return check_tenant_id(scope)


def describe_scope(scope: str) -> str:
    """Human words for a scope: ``all tenants`` or ``tenant 'acme'``."""
    return "all tenants" if scope == ALL_TENANTS else f"tenant {scope!r}"


class Secret:
    """A secret string that does not show itself.

    ``repr``, ``str`` and ``format`` print a mask; pickling and copying to disk through pickle
    raise; equality is constant-time. Call :meth:`reveal` only where the value leaves for the
    tracker (building a client) or is sealed for storage.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret() takes a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret value. Keep the result out of logs, exceptions and local names
        that outlive the call."""
        return self._value

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __format__(self, format_spec: str) -> str:
        return "**********"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # surrogatepass: a lone surrogate must not raise an error that quotes the character.
        mine = self._value.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(mine, other._value.encode("utf-8", "surrogatepass"))

    __hash__ = None  # type: ignore[assignment]  # hashing would expose value-derived data

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; seal it with the key ring instead")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self


FieldName = Literal["api_username", "api_password"]


@dataclass(frozen=True)
class Field:
    """One credential field a tracker type declares, with what a form needs to show it."""

    name: FieldName
    label: str
    help: str = ""
    required: bool = True
    secret: bool = False

    def __post_init__(self) -> None:
        if self.name not in ("api_username", "api_password"):
            raise InvalidInputError(
                f"a field must be api_username or api_password, not {self.name!r}"
            )
        if not self.label:
            raise InvalidInputError(f"field {self.name} needs a label a form can show")


@dataclass(frozen=True)
class Credentials:
    """The two credential fields every tracker type uses. The password is always a Secret.

    ``api_username`` is UTF-8 text of at most :data:`MAX_USERNAME_LENGTH` characters; anything
    else raises :class:`~tokenproviders.InvalidInputError`.
    """

    api_password: Secret
    api_username: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.api_password, Secret):
            raise TypeError(
                "Credentials.api_password must be a Secret; wrap it: Secret(value)"
            )
        if self.api_username is not None and not isinstance(self.api_username, str):
            raise TypeError("Credentials.api_username must be a str or None")
        if self.api_username is not None:
            # Bounded like every stored field (ids, labels, URLs, secrets): it is stored and listed.
            if len(self.api_username) > MAX_USERNAME_LENGTH:
                raise InvalidInputError(
                    f"an api_username may have at most {MAX_USERNAME_LENGTH} characters,"
                    f" not {len(self.api_username)}",
                    hint="check that the right value was given",
                )
            if LONE_SURROGATE.search(self.api_username):
                raise InvalidInputError(
                    "an api_username must be UTF-8 text; it holds bytes in another encoding",
                    hint="pass it as str decoded from UTF-8",
                )
        if self.api_username == "":
            object.__setattr__(self, "api_username", None)

    def present_fields(self) -> frozenset[str]:
        """Names of the fields that carry a non-empty value."""
        names = set()
        if self.api_username:
            names.add("api_username")
        if self.api_password:
            names.add("api_password")
        return frozenset(names)


@dataclass(frozen=True)
class Tracker:
    """One configured issue tracker in one tenant.

    ``base_url`` is what users see (a Jira instance, a GitHub repository, a GitLab project);
    ``api_url`` is where the API lives when it cannot be derived. ``url`` is the normalized
    ``base_url`` that personal tokens are matched against.
    """

    tenant: str
    id: str
    type: str
    base_url: str
    api_url: str | None = None
    name: str = ""
    bot_credentials: Credentials | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    verify_tls: bool = True
    ca_bundle: str | None = None
    _url: str = field(init=False, repr=False, compare=False, default="")
    _label: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        check_tenant_id(self.tenant)
        _check_id("tracker", self.id)
        if not isinstance(self.type, str) or not self.type:
            raise InvalidInputError("a tracker needs its type, the name of a tracker-type plugin")
        object.__setattr__(self, "_url", normalize_url(self.base_url))
        if self.api_url is not None:
            normalize_url(self.api_url)
        if self.bot_credentials is not None and not isinstance(self.bot_credentials, Credentials):
            raise TypeError("Tracker.bot_credentials must be Credentials or None")
        if not self.verify_tls and self.ca_bundle:
            # Client libraries disagree on what this means (some verify against the bundle,
            # some do not verify at all): it gets no meaning here.
            raise InvalidInputError(
                f"tracker {self.tenant}/{self.id}: verify_tls=False and a ca_bundle contradict each other",
                hint="keep the ca_bundle to verify the certificate against that CA, or drop it to"
                " turn verification off",
            )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        if not self.name:
            object.__setattr__(self, "name", self.id)
        # Every resolution's reason names the tracker: format the label once.
        object.__setattr__(self, "_label", f"{self.name!r} ({self.tenant}/{self.id})")

    def __hash__(self) -> int:
        # Equal trackers have equal identities; options and credentials are not hashable.
        return hash((self.tenant, self.id, self.type, self._url))

    @property
    def url(self) -> str:
        """The normalized base URL."""
        return self._url

    @property
    def label(self) -> str:
        """``name (tenant/id)`` for messages."""
        return self._label


@dataclass(frozen=True)
class TokenInfo:
    """A personal token's metadata, without its secret: what listings show."""

    owner: str
    url: str
    scope: str
    id: int | None = None
    label: str = ""
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_used_at: datetime | None = None
    version: int = 1
    key_id: str | None = None
    api_username: str | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def scope_text(self) -> str:
        return describe_scope(self.scope)


@dataclass(frozen=True)
class PersonalToken(TokenInfo):
    """A personal token with its credentials, as a store hands it to the personal source."""

    credentials: Credentials | None = None

    def info(self) -> TokenInfo:
        """The same token without its credentials."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TokenInfo)}
        return TokenInfo(**values)


@dataclass(frozen=True)
class Resolution:
    """The decision record: which credentials one user uses on one tracker, and why.

    ``source`` is ``"personal"``, ``"bot"`` or a third-party source's name. ``scope`` is the
    personal token's scope (a tenant id or ``ALL_TENANTS``), ``None`` for other sources.
    ``reason`` is one sentence a person can read. ``fallback_from`` is set when a personal
    token was unusable and a policy allowed falling back; it says why.
    """

    user: str
    tracker: Tracker
    credentials: Credentials
    source: str
    reason: str
    scope: str | None = None
    token_id: int | None = None
    token_version: int | None = None
    matched_url: str | None = None
    expires_at: datetime | None = None
    fallback_from: str | None = None

    @property
    def tenant(self) -> str:
        return self.tracker.tenant

    @property
    def is_personal(self) -> bool:
        return self.source == "personal"


# -- the resolve path's constructors --------------------------------------------------------
# A frozen dataclass sets each field through object.__setattr__, which is most of the cost of
# building one. These build the same objects for values the resolve path has already checked
# (tests assert they equal the regular constructors' results, field for field).
_new = object.__new__


def _trusted_secret(value: str) -> Secret:
    """``Secret(value)`` for a str (such as a just-decrypted one)."""
    secret = _new(Secret)
    object.__setattr__(secret, "_value", value)
    return secret


def _trusted_credentials(api_password: Secret, api_username: str | None) -> Credentials:
    """``Credentials(api_password, api_username)`` for a Secret and a non-empty name or None."""
    credentials = _new(Credentials)
    credentials.__dict__.update(api_password=api_password, api_username=api_username)
    return credentials


def _make_personal_token(
    owner: str,
    url: str,
    scope: str,
    id: int | None,
    label: str,
    expires_at: datetime | None,
    created_at: datetime | None,
    updated_at: datetime | None,
    last_used_at: datetime | None,
    version: int,
    key_id: str | None,
    api_username: str | None,
    credentials: Credentials | None,
) -> PersonalToken:
    """``PersonalToken(...)``, positional in field order."""
    token = _new(PersonalToken)
    token.__dict__.update(
        owner=owner,
        url=url,
        scope=scope,
        id=id,
        label=label,
        expires_at=expires_at,
        created_at=created_at,
        updated_at=updated_at,
        last_used_at=last_used_at,
        version=version,
        key_id=key_id,
        api_username=api_username,
        credentials=credentials,
    )
    return token


def _make_resolution(
    user: str,
    tracker: Tracker,
    credentials: Credentials,
    source: str,
    reason: str,
    scope: str | None,
    token_id: int | None,
    token_version: int | None,
    matched_url: str | None,
    expires_at: datetime | None,
    fallback_from: str | None,
) -> Resolution:
    """``Resolution(...)``, positional in field order."""
    resolution = _new(Resolution)
    resolution.__dict__.update(
        user=user,
        tracker=tracker,
        credentials=credentials,
        source=source,
        reason=reason,
        scope=scope,
        token_id=token_id,
        token_version=token_version,
        matched_url=matched_url,
        expires_at=expires_at,
        fallback_from=fallback_from,
    )
    return resolution


@dataclass(frozen=True)
class Identity:
    """Who the tracker says the credentials belong to (the answer of a *whoami* call)."""

    login: str
    name: str | None = None
    email: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class IssueDraft:
    """What a 1-click bug report carries. Project and issue type come from the tracker's
    options unless given here."""

    title: str
    body: str = ""
    labels: tuple[str, ...] = ()
    issue_type: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise InvalidInputError("a bug report needs a non-empty title")
        object.__setattr__(self, "labels", tuple(self.labels))


@dataclass(frozen=True)
class ReportedIssue:
    """An issue a tracker accepted: its id as the tracker names it, its URL, and the resolution
    that authenticated it.

    The URL comes from the tracker's answer and is shown to people as a link: anything but a
    plain http(s) URL (``javascript:``, ``data:``, control characters, user-info) raises
    :class:`~tokenproviders.TrackerRequestError`. The resolver also requires it to be
    on the tracker's own origin.
    """

    id: str
    url: str
    resolution: Resolution | None = None

    def __post_init__(self) -> None:
        url = self.url
        if not isinstance(url, str) or UNPRINTABLE.search(url) or not _is_http_url(url):
            # The URL itself is not repeated: it is the tracker's, and was refused for what it holds.
            raise TrackerRequestError(
                f"the tracker filed issue {printable(str(self.id))} but answered with an issue URL that is"
                " not a plain http(s) URL",
                hint=_LOOK_IT_UP,
            )

    def require_origin(self, tracker: Tracker) -> None:
        """Raise :class:`~tokenproviders.TrackerRequestError` unless the URL is on
        ``tracker``'s origin (scheme, host and port of its ``base_url``)."""
        origin = origin_of(self.url)
        if origin != origin_of(tracker.url):
            raise TrackerRequestError(
                f"tracker {tracker.label} at {tracker.url} filed issue {printable(str(self.id))} but answered"
                f" with an issue URL on another origin ({printable(origin)})",
                hint=_LOOK_IT_UP,
            )


_LOOK_IT_UP = "the URL is not shown; look the issue up on the tracker before filing it again"


def _is_http_url(url: str) -> bool:
    try:
        origin_of(url)
    except InvalidURLError:
        return False
    return True


@dataclass(frozen=True)
class ClientSettings:
    """How clients are built: bounded timeouts and retries. Never unbounded."""

    timeout: float = 10.0
    retries: int = 1
    user_agent: str = "tokenproviders"

    def __post_init__(self) -> None:
        if not (0 < self.timeout <= 300):
            raise InvalidInputError("ClientSettings.timeout must be between 0 and 300 seconds")
        if not (0 <= self.retries <= 5):
            raise InvalidInputError("ClientSettings.retries must be between 0 and 5")


@dataclass(frozen=True)
class TrackerChoice:
    """One entry of the drop-down a user picks from when adding a personal token.

    ``kind`` is ``"tracker"`` for a tracker's own URL and ``"service"`` for a service URL that
    serves several trackers; ``trackers`` lists ``(tenant, tracker id)`` pairs it serves.
    """

    url: str
    kind: Literal["tracker", "service"]
    type: str
    title: str
    trackers: tuple[tuple[str, str], ...]

    @property
    def tenants(self) -> tuple[str, ...]:
        return tuple(sorted({tenant for tenant, _ in self.trackers}))
