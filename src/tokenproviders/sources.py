"""The built-in credential sources, plugins like any other: personal tokens and bot credentials.

:class:`CredentialRequest` is what every ``tokenproviders_credentials`` implementation receives.
The personal source runs first (``tryfirst``), the bot source last (``trylast``); third-party
sources run in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import ConfigurationError, PersonalTokenUnusableError, SecretUnreadableError, TokenProvidersError
from .model import (
    ALL_TENANTS,
    Credentials,
    PersonalToken,
    Resolution,
    TokenInfo,
    Tracker,
    _make_resolution,
    describe_scope,
)
from .plugins import hookimpl
from .trackertype import TrackerType
from .urls import origin_of

if TYPE_CHECKING:
    from .policy import Policy
    from .stores import TokenStore

__all__ = [
    "CredentialRequest",
    "PersonalTokenSource",
    "BotSource",
    "personal_source",
    "bot_source",
    "endpoint_refusal",
    "verification_probe",
]


@dataclass
class CredentialRequest:
    """One resolution in progress: who acts on which tracker, under which policy.

    ``personal_candidates`` are the ``(url, scope)`` pairs a personal token may sit at, most
    specific first; the personal source looks from ``personal_start`` on (after a token the
    tracker rejected, under a fallback policy). ``unusable`` collects why personal tokens were
    skipped under a fallback policy; the resolution that follows repeats it in its reason.
    """

    user: str
    tracker: Tracker
    tracker_type: TrackerType
    policy: Policy
    now: datetime
    store: TokenStore
    personal_candidates: tuple[tuple[str, str], ...]
    skip_personal: bool = False
    unusable: list[str] = field(default_factory=list)
    personal_start: int = 0

    def resolution(
        self,
        credentials: Credentials,
        *,
        source: str,
        reason: str,
        scope: str | None = None,
        token_id: int | None = None,
        token_version: int | None = None,
        matched_url: str | None = None,
        expires_at: datetime | None = None,
        validated: bool = False,
    ) -> Resolution:
        """Build the :class:`Resolution` a source returns, validating the credentials against
        the tracker type's fields (``validated=True`` if the caller just did)."""
        if not isinstance(credentials, Credentials):
            raise TypeError(f"a resolution needs Credentials, not {type(credentials).__name__}")
        if not validated:
            self.tracker_type.validate_credentials(credentials)
        fallback = "; ".join(self.unusable) or None
        if fallback:
            reason = f"{reason.rstrip('.')}, because {fallback} and the policy allows falling back."
        return _make_resolution(
            self.user,
            self.tracker,
            credentials,
            source,
            reason,
            scope,
            token_id,
            token_version,
            matched_url,
            expires_at,
            fallback,
        )


def personal_candidates(tracker: Tracker, service_url: str | None) -> tuple[tuple[str, str], ...]:
    """The (url, scope) pairs for a tracker, most specific first (DESIGN section 3)."""
    pairs = [(tracker.url, tracker.tenant), (tracker.url, ALL_TENANTS)]
    if service_url and service_url != tracker.url:
        pairs += [(service_url, tracker.tenant), (service_url, ALL_TENANTS)]
    return tuple(pairs)


def _after(candidates: tuple[tuple[str, str], ...], token: TokenInfo) -> tuple[tuple[str, str], ...]:
    """The candidates less specific than the one ``token`` sits at."""
    try:
        return candidates[candidates.index((token.url, token.scope)) + 1 :]
    except ValueError:
        return ()


_DEFAULT_API_URL_TRUSTED = TrackerType.api_url_trusted


def _trusts_by_override(tracker_type: TrackerType) -> bool:
    """Whether the type decides :meth:`~TrackerType.api_url_trusted` itself (the default trusts
    a tracker without ``api_url``: nothing to check then)."""
    return (
        type(tracker_type).api_url_trusted is not _DEFAULT_API_URL_TRUSTED
        or "api_url_trusted" in getattr(tracker_type, "__dict__", ())
    )


def endpoint_refusal(resolution: Resolution, tracker_type: TrackerType, policy: Policy) -> ConfigurationError | None:
    """The endpoint rule (DESIGN section 3), the one place it is decided: ``None`` if the
    secret of ``resolution`` may be sent where the client of its tracker talks, else the error
    that says why not and what to do.

    Every path that sends a secret asks it first: resolution and verification before saving.
    The tracker's own bot credentials go wherever its tenant's administrator points them.
    Any other secret goes only where the tracker type trusts for the tracker's URL
    (:meth:`TrackerType.api_url_trusted`), and to a tracker whose TLS is weakened
    (``verify_tls=False`` or its own ``ca_bundle``) only if it is scoped to that tracker's
    tenant, unless the policy allows wider ones there.
    """
    tracker = resolution.tracker
    if resolution.source == "bot" and resolution.credentials == tracker.bot_credentials:
        return None  # a source that only calls itself "bot" is held to the rule like any other
    if (tracker.api_url is not None or _trusts_by_override(tracker_type)) and not tracker_type.api_url_trusted(
        tracker
    ):
        return ConfigurationError(
            f"tracker {tracker.label} would send {_secret_words(resolution)} to"
            f" {origin_of(tracker.api_url or tracker.base_url)}, another host than its URL"
            f" {tracker.url}; personal tokens are not sent there, nor are other sources' credentials",
            hint="set the tracker's api_url on the same host as its base_url (or leave it"
            " empty), or ask the tracker type's author to declare that API host",
        )
    weakened = not tracker.verify_tls or tracker.ca_bundle is not None
    if weakened and resolution.scope != tracker.tenant and not policy.allow_all_tenants_tokens_on_weak_tls:
        how = (
            "does not verify TLS certificates (verify_tls=False)"
            if not tracker.verify_tls
            else "trusts its own CA bundle for TLS (ca_bundle)"
        )
        return ConfigurationError(
            f"tracker {tracker.label} {how}, and {_secret_words(resolution)} is not scoped to its"
            f" tenant {tracker.tenant!r}, so it is not sent there",
            hint=f"store a personal token for {tracker.url} scoped to tenant {tracker.tenant!r}, or"
            " ask the host's operator to allow wider tokens on this tracker with"
            " Policy(allow_all_tenants_tokens_on_weak_tls=True)",
        )
    return None


def _secret_words(resolution: Resolution) -> str:
    """Whose secret a refusal is about, without the secret."""
    scope = f" ({describe_scope(resolution.scope)})" if resolution.scope is not None else ""
    if resolution.source == "personal":
        return f"{resolution.user}'s personal token #{resolution.token_id} for {resolution.matched_url}{scope}"
    if resolution.source == VERIFICATION:
        return f"the credentials being verified{scope or ' (no scope given)'}"
    return f"{resolution.user}'s credentials from source {resolution.source!r}{scope}"


#: The ``source`` of the probe :func:`verification_probe` builds.
VERIFICATION = "verification"


def verification_probe(tracker: Tracker, credentials: Credentials, scope: str | None) -> Resolution:
    """The resolution that verifying ``credentials`` on ``tracker`` before saving them stands
    for: source ``"bot"`` if they are the tracker's own bot credentials (which go where its
    administrator points them), else ``"verification"`` with the ``scope`` they are meant for
    (``None``: unknown, so wider than the tracker's tenant)."""
    own_bot = tracker.bot_credentials is not None and credentials == tracker.bot_credentials
    return Resolution(
        user="(verification)",
        tracker=tracker,
        credentials=credentials,
        source="bot" if own_bot else VERIFICATION,
        reason="Verifying credentials before saving them.",
        scope=None if own_bot else scope,
    )


def _token_words(token: TokenInfo) -> str:
    label = f" {token.label!r}" if token.label else ""
    return f"personal token #{token.id}{label} for {token.url} ({describe_scope(token.scope)})"


class PersonalTokenSource:
    """Personal tokens: the user's own credentials override everything else."""

    @hookimpl(tryfirst=True)
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        if request.skip_personal:
            return None
        candidates = request.personal_candidates[request.personal_start :]
        while candidates:
            # Under a fallback policy an unusable token gives way to the next candidate (a
            # usable personal token still beats the bot); without one, _unusable raises.
            try:
                token = request.store.lookup(request.user, candidates)
            except SecretUnreadableError as exc:
                info = exc.token if isinstance(exc.token, TokenInfo) else None
                what = _token_words(info) if info else "a personal token"
                self._unusable(request, info, f"{request.user}'s {what} cannot be decrypted ({exc.message})")
                if info is None:
                    return None  # cannot tell which candidate failed: skip personal tokens
                candidates = _after(candidates, info)
                continue
            if token is None:
                return None
            problem = self._problem(request, token)
            if problem is None:
                credentials = token.credentials
                assert credentials is not None
                reason = self._reason(request, token)
                if request.unusable:
                    return request.resolution(
                        credentials,
                        source="personal",
                        reason=reason,
                        scope=token.scope,
                        token_id=token.id,
                        token_version=token.version,
                        matched_url=token.url,
                        expires_at=token.expires_at,
                        validated=True,  # _problem() just validated them
                    )
                # The common hit, as request.resolution() would build it (no fallback to tell).
                return _make_resolution(
                    request.user,
                    request.tracker,
                    credentials,
                    "personal",
                    reason,
                    token.scope,
                    token.id,
                    token.version,
                    token.url,
                    token.expires_at,
                    None,
                )
            self._unusable(request, token, problem)
            candidates = _after(candidates, token)
        return None

    @staticmethod
    def _problem(request: CredentialRequest, token: PersonalToken) -> str | None:
        """Why ``token`` cannot be used, or ``None`` if it can."""
        if token.expires_at is not None and token.is_expired(request.now):
            return f"{request.user}'s {_token_words(token)} expired on {token.expires_at.isoformat()}"
        if token.credentials is None:
            return f"{request.user}'s {_token_words(token)} has no secret"
        try:
            request.tracker_type.validate_credentials(token.credentials)
        except TokenProvidersError as exc:
            return (
                f"{request.user}'s {_token_words(token)} does not fit tracker type"
                f" {request.tracker_type.name!r} ({exc.message})"
            )
        return None

    @staticmethod
    def _reason(request: CredentialRequest, token: PersonalToken) -> str:
        # One f-string (this is the resolve path); the token's words are _token_words(token).
        tracker, user, url, scope = request.tracker, request.user, token.url, token.scope
        where = "the tracker's own URL" if url == tracker.url else "the tracker's service URL"
        if scope == ALL_TENANTS:
            scope_words, scoped = "all tenants", "for all of the user's tenants"
        else:
            scope_words = f"tenant {scope!r}"
            scoped = f"for {scope_words}"
        label = f" {token.label!r}" if token.label else ""
        return (
            f"Using {user}'s personal token #{token.id}{label} for {url} ({scope_words}), matched on"
            f" {where} {url} and scoped {scoped}, so {tracker.label} records {user} as the author."
        )

    @staticmethod
    def _unusable(request: CredentialRequest, token: TokenInfo | None, why: str) -> None:
        if request.policy.fallback_on_unusable:
            request.unusable.append(why)
            return None
        raise PersonalTokenUnusableError(
            f"{why}; it is not used and the resolver does not fall back to the bot",
            hint=(
                f"renew it: set a fresh token for {token.url if token else request.tracker.url}"
                f" ({describe_scope(token.scope) if token else 'same scope'}) or delete it"
            ),
            token_id=token.id if token else None,
            why=why,
        )


class BotSource:
    """The tracker's shared bot credentials: the last resort, unless policy forbids it."""

    @hookimpl(trylast=True)
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        tracker = request.tracker
        if request.policy.require_personal or tracker.bot_credentials is None:
            return None
        if request.unusable:
            reason = f"Using the bot credentials of {tracker.label}"
        else:
            urls = " or ".join(dict.fromkeys(url for url, _ in request.personal_candidates))
            reason = (
                f"Using the bot credentials of {tracker.label} because {request.user} has no"
                f" personal token for {urls}, so the tracker records the bot as the author."
            )
        return request.resolution(tracker.bot_credentials, source="bot", reason=reason)


#: The instances the ``tokenproviders`` entry points name.
personal_source = PersonalTokenSource()
bot_source = BotSource()
