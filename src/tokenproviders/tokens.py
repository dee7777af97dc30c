"""Managing personal tokens: validation before anything is stored.

A token can only be stored for a URL that is a tracker's URL, or a tracker's service URL, in a
tenant its owner is authorized for (the scope's tenant, or any of them for ``ALL_TENANTS``), and
only with the fields that tracker type requires. Setting or deleting a token drops the owner's
cached clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ._printable import LONE_SURROGATE
from .audit import audited
from .errors import (
    ConfigurationError,
    InvalidInputError,
    NotAuthorizedError,
    TokenNotFoundError,
    UnknownTrackerError,
    UnknownTrackerTypeError,
)
from .model import (
    ALL_TENANTS,
    Credentials,
    Identity,
    TokenInfo,
    Tracker,
    check_scope,
    check_user_id,
    describe_scope,
)
from .sources import endpoint_refusal, verification_probe
from .urls import normalize_url

if TYPE_CHECKING:
    from .resolver import Resolver
    from .trackertype import TrackerType

__all__ = ["TokenManager", "TokenTarget"]

MAX_LABEL = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TokenTarget:
    """A tracker a token URL was matched to, and how (own URL or service URL)."""

    tracker: Tracker
    tracker_type: TrackerType
    via: str  # "tracker" or "service"


class TokenManager:
    """``resolver.tokens``: set, list, get and delete personal tokens, with validation."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    def targets(self, owner: str, url: str, scope: str) -> list[TokenTarget]:
        """The trackers a token for ``url`` in ``scope`` would serve for ``owner``.

        Raises :class:`NotAuthorizedError` if the owner is not in the scope's tenant, and
        :class:`UnknownTrackerError` if no tracker matches.
        """
        resolver = self._resolver
        check_user_id(owner)
        scope = check_scope(scope)
        normalized = normalize_url(url)
        tenants = set(resolver.directory.tenants_of(owner))
        if scope == ALL_TENANTS:
            if not tenants:
                raise NotAuthorizedError(
                    f"{owner!r} is not authorized for any tenant, so they cannot store a token",
                )
            search = sorted(tenants)
        else:
            if scope not in tenants:
                raise NotAuthorizedError(
                    f"{owner!r} is not authorized for tenant {scope!r}, so they cannot store a"
                    " token scoped to it",
                )
            search = [scope]
        found: list[TokenTarget] = []
        unknown_types: set[str] = set()
        for tenant in search:
            for tracker in resolver.directory.trackers_of(tenant):
                try:
                    tracker_type = resolver.plugins.tracker_type(tracker.type)
                except UnknownTrackerTypeError:
                    unknown_types.add(tracker.type)
                    continue
                if tracker.url == normalized:
                    found.append(TokenTarget(tracker, tracker_type, "tracker"))
                elif tracker_type.service_url(tracker) == normalized:
                    found.append(TokenTarget(tracker, tracker_type, "service"))
        if not found:
            choices = [c.url for c in resolver.trackers_for(owner) if scope == ALL_TENANTS or scope in c.tenants]
            listed = ", ".join(choices[:10]) + (" ..." if len(choices) > 10 else "") if choices else "none"
            missing = (
                f" (trackers of uninstalled types were skipped: {', '.join(sorted(unknown_types))})"
                if unknown_types
                else ""
            )
            raise UnknownTrackerError(
                f"no tracker in {describe_scope(scope)} of {owner!r} has the URL or service URL"
                f" {normalized}{missing}",
                hint=f"use one of the URLs of trackers_for({owner!r}): {listed}",
            )
        return found

    @audited("token.set", via="_resolver")
    def set(
        self,
        owner: str,
        url: str,
        credentials: Credentials,
        *,
        scope: str,
        label: str = "",
        expires_at: datetime | None = None,
        verify: bool = False,
    ) -> TokenInfo:
        """Validate and store ``owner``'s personal token for ``url`` in ``scope``.

        ``scope`` is a tenant id or :data:`ALL_TENANTS`. With ``verify=True`` the credentials
        are first checked with a whoami call, as :meth:`verify` does; rejected credentials raise
        :class:`CredentialsRejectedError` and nothing is stored.
        """
        if not isinstance(credentials, Credentials):
            raise InvalidInputError("credentials must be a Credentials object")
        if not isinstance(label, str) or len(label) > MAX_LABEL:
            raise InvalidInputError(f"a token label must be a string of at most {MAX_LABEL} characters")
        if _CONTROL.search(label):
            # The label is repeated in resolution reasons and audit logs: no forged log lines.
            raise InvalidInputError("a token label may not contain line breaks or other control characters")
        if LONE_SURROGATE.search(label):
            raise InvalidInputError("a token label must be UTF-8 text; it holds bytes in another encoding")
        now = self._resolver.now()
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidInputError(
                    "expires_at must be timezone-aware", hint="use datetime(..., tzinfo=timezone.utc)"
                )
            try:
                # Stores keep UTC: an expiry UTC cannot hold is refused here, not in the store.
                expires_at = expires_at.astimezone(timezone.utc)
            except OverflowError:
                raise InvalidInputError(
                    f"expires_at {expires_at.isoformat()} is beyond the year 9999 in UTC",
                    hint="give an earlier expiry, or none",
                ) from None
            if expires_at <= now:
                raise InvalidInputError(
                    f"expires_at {expires_at.isoformat()} is in the past",
                    hint="give a future expiry, or none",
                )
        targets = self._checked_targets(owner, url, credentials, scope)
        if verify:
            self._verify_on(targets, url, credentials, scope)
        info = self._resolver.store.put(
            owner,
            normalize_url(url),
            check_scope(scope),
            credentials,
            label=label,
            expires_at=expires_at,
            now=now,
        )
        self._resolver.forget_clients(user=owner)
        return info

    @audited("verify", via="_resolver", source="verification")
    def verify(self, owner: str, url: str, credentials: Credentials, *, scope: str) -> Identity:
        """Whoami with ``credentials`` that ``owner`` is about to store for ``url`` in ``scope``
        (not stored, not cached), on a tracker the token would serve and may be sent to.

        Trackers the endpoint rule refuses (an ``api_url`` the type does not trust, or weakened
        TLS for a token of wider scope) are skipped; if every one is refused,
        :class:`ConfigurationError` says why for each.
        """
        targets = self._checked_targets(owner, url, credentials, scope)
        return self._verify_on(targets, url, credentials, scope)

    def verify_credentials(self, tracker: Tracker, credentials: Credentials, *, scope: str | None = None) -> Identity:
        """Run whoami on ``tracker`` with ``credentials`` (not stored, not cached).

        ``scope`` is that of the token being verified (a tenant id or ``ALL_TENANTS``); without
        it the credentials count as wider than the tracker's tenant. The endpoint rule applies
        unless they are the tracker's own bot credentials. Prefer :meth:`verify`, which picks
        the tracker.
        """
        return self._resolver.whoami_with(tracker, credentials, scope=scope)

    def _checked_targets(self, owner: str, url: str, credentials: Credentials, scope: str) -> list[TokenTarget]:
        """:meth:`targets`, with ``credentials`` validated against each target's type."""
        targets = self.targets(owner, url, scope)
        checked: set[str] = set()
        for target in targets:
            if target.tracker_type.name not in checked:
                target.tracker_type.validate_credentials(credentials)
                checked.add(target.tracker_type.name)
        return targets

    def _verify_on(self, targets: list[TokenTarget], url: str, credentials: Credentials, scope: str) -> Identity:
        """Whoami on the first target the endpoint rule lets the credentials go to."""
        scope = check_scope(scope)
        refusals: list[ConfigurationError] = []
        for target in targets:
            probe = verification_probe(target.tracker, credentials, scope)
            refusal = endpoint_refusal(probe, target.tracker_type, self._resolver.policy_for(target.tracker))
            if refusal is None:
                return self._resolver.whoami_with(target.tracker, credentials, scope=scope)
            refusals.append(refusal)
        raise ConfigurationError(
            f"no tracker that a token for {normalize_url(url)} ({describe_scope(scope)}) would serve may"
            f" be sent it to verify it: {'; '.join(r.message for r in refusals)}",
            hint=" or ".join(dict.fromkeys(r.hint for r in refusals)),
        )

    def get(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        """The token's metadata at exactly ``(owner, url, scope)``, or ``None``."""
        token = self._resolver.store.get(check_user_id(owner), normalize_url(url), check_scope(scope))
        return token.info() if token else None

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        """Metadata of ``owner``'s tokens (everyone's if ``None``); never secrets."""
        if owner is not None:
            check_user_id(owner)
        return self._resolver.store.list(owner)

    @audited("token.delete", via="_resolver")
    def delete(self, owner: str, url: str, scope: str) -> TokenInfo:
        """Delete the token at ``(owner, url, scope)``; :class:`TokenNotFoundError` if none."""
        check_user_id(owner)
        normalized = normalize_url(url)
        scope = check_scope(scope)
        removed = self._resolver.store.delete(owner, normalized, scope)
        if removed is None:
            raise TokenNotFoundError(
                f"{owner!r} has no personal token for {normalized} in {describe_scope(scope)}"
            )
        self._resolver.forget_clients(user=owner)
        return removed
