"""The :class:`Resolver`: the facade a host uses.

``resolve`` decides which credentials one user uses on one tracker (DESIGN section 3), ``client``
returns an authenticated client (cached by tenant, tracker, user and token version), and
``verify``, ``report_issue`` and ``add_comment`` talk to the tracker through it, mapping the
client library's failures onto our errors.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar

from .audit import audit_resolve, audited, note_resolution
from .directory import Directory, find_tracker
from .errors import (
    CredentialsRejectedError,
    InvalidInputError,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    PluginError,
    TokenProvidersError,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
    UnknownTrackerTypeError,
)
from .model import (
    ALL_TENANTS,
    ClientSettings,
    Credentials,
    Identity,
    IssueDraft,
    ReportedIssue,
    Resolution,
    Tracker,
    TrackerChoice,
    check_user_id,
    describe_scope,
)
from .plugins import Plugins
from .policy import Policies, Policy
from .sources import CredentialRequest, endpoint_refusal, personal_candidates, verification_probe
from .stores import MemoryTokenStore, TokenStore
from .tokens import TokenManager
from .trackertype import TrackerFailure, TrackerType

__all__ = ["Resolver", "ClientCache"]

logger = logging.getLogger("tokenproviders.resolver")
T = TypeVar("T")

#: How often a token's last-used time is written at most (it is a hint, not an audit).
LAST_USED_RESOLUTION = timedelta(seconds=60)
#: Tracker URL and service URL, each tenant-scoped and for all tenants.
MAX_PERSONAL_CANDIDATES = 4


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ClientCache:
    """A bounded, thread-safe LRU of authenticated clients.

    Keys hold the tenant, tracker, user, source, token id and version, and a keyed fingerprint
    of the credentials (process-random key, never stored), so a changed token or bot password
    can never be served a stale client. Entries past their token's expiry are dropped on access.
    """

    def __init__(self, max_size: int = 256) -> None:
        if max_size < 0:
            raise InvalidInputError("the client cache size must be zero or more")
        self.max_size = max_size
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Hashable, ...], tuple[Any, datetime | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[Hashable, ...], now: datetime) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            client, expires_at = entry
            if expires_at is not None and expires_at <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return client

    def put(self, key: tuple[Hashable, ...], client: Any, expires_at: datetime | None) -> None:
        if self.max_size == 0:
            return
        with self._lock:
            self._entries[key] = (client, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def drop(self, key: tuple[Hashable, ...]) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget(self, *, user: str | None = None, tenant: str | None = None, tracker_id: str | None = None) -> int:
        """Drop every entry matching all given criteria; return how many were dropped."""
        with self._lock:
            doomed = [
                key
                for key in self._entries
                if (tenant is None or key[0] == tenant)
                and (tracker_id is None or key[1] == tracker_id)
                and (user is None or key[2] == user)
            ]
            for key in doomed:
                del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Resolver:
    """Decides credentials for one user on one tracker, explains why, and builds clients.

    :param directory: the host's :class:`~tokenproviders.directory.Directory`.
    :param store: where personal tokens live (default: a new :class:`MemoryTokenStore` sealing
        with a key that exists only in this process).
    :param plugins: a :class:`~tokenproviders.plugins.Plugins`; default discovers entry points.
    :param policies: :class:`~tokenproviders.policy.Policies` (default: never fall back silently).
    :param settings: :class:`~tokenproviders.model.ClientSettings` for every client.
    :param cache_size: how many authenticated clients to keep (LRU); 0 disables the cache.
    :param clock: returns the current time (timezone-aware); injectable for tests.
    """

    def __init__(
        self,
        directory: Directory,
        store: TokenStore | None = None,
        *,
        plugins: Plugins | None = None,
        policies: Policies | None = None,
        settings: ClientSettings | None = None,
        cache_size: int = 256,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.directory = directory
        if store is None:
            # Nothing is kept unsealed, not even in memory: the default store seals with a key
            # that lives as long as this resolver and is never written anywhere.
            from .crypto import KeyRing

            store = MemoryTokenStore(keyring=KeyRing.generate("ephemeral"))
        self.store: TokenStore = store
        self.plugins = plugins if plugins is not None else Plugins()
        self.policies = policies if policies is not None else Policies()
        self.settings = settings if settings is not None else ClientSettings()
        self.clients = ClientCache(cache_size)
        self.tokens = TokenManager(self)
        # The default clock, called on every resolution, without a Python frame of its own.
        self._clock = partial(datetime.now, timezone.utc) if clock is utc_now else clock
        self._fingerprint_key = os.urandom(32)
        self._candidates: dict[tuple[str | None, ...], tuple[tuple[str, str], ...]] = {}
        self._last_marked: dict[int, datetime] = {}  # token id -> next time worth stamping

    # -- small helpers -------------------------------------------------------------------
    def now(self) -> datetime:
        """The resolver's clock (timezone-aware UTC)."""
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidInputError("the resolver's clock must return timezone-aware datetimes")
        return now

    def tracker(self, tenant: str, tracker_id: str) -> Tracker:
        """Look a tracker up in the directory."""
        return find_tracker(self.directory, tenant, tracker_id)

    def tracker_type(self, tracker: Tracker | str) -> TrackerType:
        """The installed tracker type of ``tracker`` (or of that type name)."""
        return self.plugins.tracker_type(tracker if isinstance(tracker, str) else tracker.type)

    def forget_clients(
        self, *, user: str | None = None, tenant: str | None = None, tracker_id: str | None = None
    ) -> int:
        """Drop cached clients (all, or those matching the criteria)."""
        return self.clients.forget(user=user, tenant=tenant, tracker_id=tracker_id)

    def _personal_candidates(self, tracker: Tracker, tracker_type: TrackerType) -> tuple[tuple[str, str], ...]:
        # _resolve() looks this same key up inline first (one call less per resolution).
        key = (tracker.type, tracker.tenant, tracker.base_url, tracker.api_url, tracker.id)
        candidates = self._candidates.get(key)
        if candidates is None:
            if len(self._candidates) > 4096:
                self._candidates.clear()
            candidates = personal_candidates(tracker, tracker_type.service_url(tracker))
            self._candidates[key] = candidates
        return candidates

    # -- resolution ----------------------------------------------------------------------
    def resolve(self, user: str, tracker: Tracker) -> Resolution:
        """Decide the credentials ``user`` uses on ``tracker`` (see DESIGN section 3).

        Raises :class:`NotAuthorizedError` before any token is looked at if the tracker's
        tenant is not among the user's tenants; :class:`PersonalTokenUnusableError` for an
        expired or undecryptable personal token (unless the policy allows falling back);
        :class:`NoCredentialsError` when nothing can authenticate the user. Each call is one
        ``resolve`` audit event (see :mod:`tokenproviders.audit`).
        """
        impls = self.plugins.manager.hook.tokenproviders_audit.get_hookimpls()
        if impls:
            return audit_resolve(self, impls, user, tracker)
        return self._resolve(user, tracker, ())

    def _resolve(
        self, user: str, tracker: Tracker, unusable: Iterable[str], after: Resolution | None = None
    ) -> Resolution:
        check_user_id(user)
        if not isinstance(tracker, Tracker):
            raise InvalidInputError(f"resolve() takes a Tracker, not {type(tracker).__name__}")
        tenants = self.directory.tenants_of(user)
        if isinstance(tenants, (str, bytes)):
            # "acme" in "acme-prod" is True: a str would authorize substrings.
            raise PluginError(
                f"the directory's tenants_of() returned a {type(tenants).__name__}, not a collection of"
                " tenant ids",
                hint="return a set, frozenset, list or tuple of tenant ids",
            )
        if tracker.tenant not in tenants:
            # Clients cached while the user was a member must not outlive the membership.
            self.clients.forget(user=user, tenant=tracker.tenant)
            raise NotAuthorizedError(
                f"{user!r} is not authorized for tenant {tracker.tenant!r}, so no credentials"
                f" are resolved for tracker {tracker.label}",
            )
        tracker_type = self.plugins._tracker_types.get(tracker.type) or self.plugins.tracker_type(tracker.type)
        policy = self.policies.for_tracker(tracker)
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidInputError("the resolver's clock must return timezone-aware datetimes")
        candidates = self._candidates.get((tracker.type, tracker.tenant, tracker.base_url, tracker.api_url, tracker.id))
        if candidates is None:
            candidates = self._personal_candidates(tracker, tracker_type)
        start = 0
        if after is not None:
            # Retrying after a rejected personal token: only less specific tokens, if any.
            rejected = (after.matched_url, after.scope)
            start = candidates.index(rejected) + 1 if rejected in candidates else len(candidates)
        # Positional, in field order (user, tracker, tracker_type, policy, now, store,
        # personal_candidates, skip_personal, unusable, personal_start): the resolve path.
        skip = start >= len(candidates)
        request = CredentialRequest(
            user, tracker, tracker_type, policy, now, self.store, candidates, skip, list(unusable), start
        )
        try:
            result = self.plugins.resolve_credentials(request)
        except PersonalTokenUnusableError:
            # An expired or unreadable token's cached client must not keep its secret around.
            self.clients.forget(user=user, tenant=tracker.tenant, tracker_id=tracker.id)
            raise
        if isinstance(result, Resolution) and result.fallback_from:
            self.clients.forget(user=user, tenant=tracker.tenant, tracker_id=tracker.id)
        if result is None:
            raise self._no_credentials(request)
        if not isinstance(result, Resolution):
            raise PluginError(
                f"a tokenproviders_credentials implementation returned {type(result).__name__},"
                " not a Resolution or None",
            )
        refusal = endpoint_refusal(result, tracker_type, policy)  # every source but the bot
        if refusal is not None:
            raise refusal
        if result.source == "personal" and result.token_id is not None:
            self._mark_used(result.token_id, now)
        observers = self.plugins.manager.hook.tokenproviders_resolved.get_hookimpls()
        if observers:
            self._notify(result, observers)
        return result

    def _no_credentials(self, request: CredentialRequest) -> NoCredentialsError:
        tracker, tracker_type = request.tracker, request.tracker_type
        urls = list(dict.fromkeys(url for url, _ in request.personal_candidates))
        if request.unusable:
            personal = "; ".join(request.unusable)
        else:
            personal = f"{request.user!r} has no personal token for {' or '.join(urls)}"
        if request.policy.require_personal:
            bot = "the policy requires personal credentials"
        elif tracker.bot_credentials is None:
            bot = "the tracker has no bot credentials"
        else:
            bot = "no source supplied credentials"
        return NoCredentialsError(
            f"no credentials for tracker {tracker.label}: {personal}, and {bot}",
            hint=(
                f"add a personal token: resolver.tokens.set(owner={request.user!r},"
                f" url={urls[0]!r}, scope={tracker.tenant!r} or ALL_TENANTS,"
                f" credentials=Credentials(...)) with {tracker_type.describe_fields()}"
            ),
        )

    def _mark_used(self, token_id: int, now: datetime) -> None:
        not_before = self._last_marked.get(token_id)
        if not_before is not None and now < not_before:
            return
        if len(self._last_marked) > 100_000:
            self._last_marked.clear()
        self._last_marked[token_id] = now + LAST_USED_RESOLUTION
        self.store.mark_used(token_id, now)

    def _notify(self, resolution: Resolution, observers: list[Any] | None = None) -> None:
        if observers is None:
            observers = self.plugins.manager.hook.tokenproviders_resolved.get_hookimpls()
        for impl in observers:
            try:
                self.plugins.call_one(impl, resolution=resolution)
            except Exception:  # an observer cannot change or fail the result
                logger.exception("tokenproviders_resolved observer %r failed", impl.plugin_name)

    # -- clients -------------------------------------------------------------------------
    def _fingerprint(self, credentials: Credentials) -> bytes:
        digest = hashlib.blake2b(key=self._fingerprint_key, digest_size=16)
        digest.update((credentials.api_username or "").encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
        digest.update(credentials.api_password.reveal().encode("utf-8", "surrogatepass"))
        return digest.digest()

    def _cache_key(self, resolution: Resolution) -> tuple[Hashable, ...]:
        tracker = resolution.tracker
        return (
            tracker.tenant,
            tracker.id,
            resolution.user,
            resolution.source,
            resolution.token_id,
            resolution.token_version,
            self._fingerprint(resolution.credentials),
            tracker.type,
            tracker.url,
            tracker.api_url,
            tracker.verify_tls,
            tracker.ca_bundle,
        )

    def client_for(self, resolution: Resolution) -> Any:
        """The authenticated client for an existing resolution (cached)."""
        now = self.now()
        if resolution.expires_at is not None and resolution.expires_at <= now:
            # A resolution kept past its token's expiry must not build a fresh client either.
            raise PersonalTokenUnusableError(
                f"{resolution.user}'s personal token #{resolution.token_id} for {resolution.matched_url}"
                f" expired on {resolution.expires_at.isoformat()} after it was resolved",
                hint="resolve again: renew the token (set it again) or delete it",
                token_id=resolution.token_id,
                why="expired",
            )
        key = self._cache_key(resolution)
        client = self.clients.get(key, now)
        if client is None:
            tracker = resolution.tracker
            tracker_type = self.plugins.tracker_type(tracker.type)
            # A resolution the host built itself is held to the endpoint rule too.
            refusal = endpoint_refusal(resolution, tracker_type, self.policies.for_tracker(tracker))
            if refusal is not None:
                raise refusal
            client = self._guard(
                resolution,
                lambda: tracker_type.build_client(tracker, resolution.credentials, self.settings),
            )
            self.clients.put(key, client, resolution.expires_at)
        return client

    @audited("resolve")
    def client(self, user: str, tracker: Tracker) -> Any:
        """Resolve, then return the tracker library's client authenticated that way (cached)."""
        return self.client_for(self.resolve(user, tracker))

    def _guard(self, resolution: Resolution, call: Callable[[], T]) -> T:
        tracker = resolution.tracker
        try:
            return call()
        except TokenProvidersError:
            raise
        except Exception as exc:  # noqa: BLE001 - every library failure is mapped, never passed on raw
            tracker_type = self.plugins.tracker_type(tracker.type)
            failure = tracker_type.classify_error(exc)
            if failure is None:
                # Not a failure the plugin knows: an answer it did not expect (a wrong URL that
                # serves other JSON, a redirect) or a bug. The library's exception is never
                # passed on as it is, since its text or attributes may hold the token.
                logger.debug(
                    "tracker type %r raised an unclassified %s", tracker_type.name, type(exc).__name__
                )
                failure = TrackerFailure(
                    "request",
                    f"the {tracker_type.name} client failed with {type(exc).__name__}: the answer was not"
                    " what the tracker type expected; check base_url and api_url, and report it to the"
                    " plugin's author if they are right",
                )
        # Raised outside the ``except`` block on purpose: the library's exception (whose text,
        # request headers or URL may hold the token) must not ride along as ``__context__``.
        if failure.kind == "rejected":
            self.clients.drop(self._cache_key(resolution))
        raise self._failure_error(failure, resolution)

    def _failure_error(self, failure: TrackerFailure, resolution: Resolution) -> TokenProvidersError:
        tracker = resolution.tracker
        where = f"tracker {tracker.label} at {tracker.url}"
        if failure.kind == "rejected":
            if resolution.source == "personal":
                return PersonalTokenRejectedError(
                    f"{where} rejected {resolution.user}'s personal token #{resolution.token_id}"
                    f" for {resolution.matched_url} ({describe_scope(resolution.scope or ALL_TENANTS)})"
                    f" with {failure.detail}",
                    hint=(
                        f"create a new token in the tracker (with the scopes it needs) and set it"
                        f" again for {resolution.matched_url}, or delete it"
                    ),
                    token_id=resolution.token_id,
                    status=failure.status,
                )
            if resolution.source == "bot":
                return CredentialsRejectedError(
                    f"{where} rejected its bot credentials with {failure.detail}",
                    hint="ask the tenant's administrator to renew the tracker's bot credentials,"
                    f" or add a personal token for {tracker.url}",
                    status=failure.status,
                )
            return CredentialsRejectedError(
                f"{where} rejected the credentials from source {resolution.source!r} with {failure.detail}",
                status=failure.status,
            )
        if failure.kind == "unavailable":
            return TrackerUnavailableError(
                f"{where} is unavailable ({failure.detail})",
                hint=f"check that it is up and reachable; requests time out after {self.settings.timeout:g} s",
                status=failure.status,
            )
        if failure.kind == "not_found":
            return TrackerURLError(
                f"{where} answered not found ({failure.detail}): the URL, project or repository"
                " is wrong, or (on trackers that hide private projects) the credentials cannot see it",
                status=failure.status,
            )
        return TrackerRequestError(f"{where} refused the request ({failure.detail})", status=failure.status)

    def _with_fallback(self, user: str, tracker: Tracker, action: Callable[[Resolution], T]) -> T:
        resolution = self.resolve(user, tracker)
        rejected: list[str] = []
        # Each retry starts after the rejected token, so a less specific personal token is
        # tried before the bot; bounded in case a third-party source labels itself "personal".
        for _ in range(MAX_PERSONAL_CANDIDATES):
            try:
                return action(resolution)
            except PersonalTokenRejectedError as exc:
                if not self.policies.for_tracker(tracker).fallback_on_unusable:
                    raise
                rejected.append(
                    f"{user}'s personal token #{resolution.token_id} for {resolution.matched_url}"
                    f" was rejected by the tracker (HTTP {exc.status})"
                )
                resolution = self._resolve(user, tracker, rejected, after=resolution)
                note_resolution(resolution)
        return action(resolution)

    # -- talking to the tracker ----------------------------------------------------------
    @audited("verify", source="verification")
    def whoami_with(self, tracker: Tracker, credentials: Credentials, *, scope: str | None = None) -> Identity:
        """Whoami with explicit credentials (used to verify a token before saving it).

        Unless they are the tracker's own bot credentials, they are sent only where the
        endpoint rule allows (:class:`ConfigurationError` otherwise), for a token of ``scope``
        (a tenant id or ``ALL_TENANTS``; ``None`` counts as wider than the tracker's tenant).
        """
        tracker_type = self.plugins.tracker_type(tracker.type)
        tracker_type.validate_credentials(credentials)
        probe = verification_probe(tracker, credentials, scope)
        refusal = endpoint_refusal(probe, tracker_type, self.policies.for_tracker(tracker))
        if refusal is not None:
            raise refusal

        def run() -> Identity:
            client = tracker_type.build_client(tracker, credentials, self.settings)
            return tracker_type.whoami(client, tracker)

        return self._guard(probe, run)

    @audited("verify")
    def verify(self, user: str, tracker: Tracker) -> Identity:
        """Whoami with the resolved credentials: who the tracker will record."""

        def run(resolution: Resolution) -> Identity:
            client = self.client_for(resolution)
            tracker_type = self.plugins.tracker_type(tracker.type)
            return self._guard(resolution, lambda: tracker_type.whoami(client, tracker))

        return self._with_fallback(user, tracker, run)

    @audited("report")
    def report_issue(
        self,
        user: str,
        tracker: Tracker,
        title: str,
        body: str = "",
        *,
        labels: Iterable[str] = (),
        issue_type: str | None = None,
    ) -> ReportedIssue:
        """File a bug as the resolved identity; the result carries the :class:`Resolution`."""
        draft = IssueDraft(title=title, body=body, labels=tuple(labels), issue_type=issue_type)

        def run(resolution: Resolution) -> ReportedIssue:
            client = self.client_for(resolution)
            tracker_type = self.plugins.tracker_type(tracker.type)
            issue = self._guard(resolution, lambda: tracker_type.report_issue(client, tracker, draft))
            issue.require_origin(tracker)  # the URL is the tracker's answer: no link to elsewhere
            return replace(issue, resolution=resolution)

        return self._with_fallback(user, tracker, run)

    @audited("comment")
    def add_comment(self, user: str, tracker: Tracker, issue_id: str, text: str) -> Resolution:
        """Comment on an issue as the resolved identity; returns the resolution used."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a comment needs non-empty text")

        def run(resolution: Resolution) -> Resolution:
            client = self.client_for(resolution)
            tracker_type = self.plugins.tracker_type(tracker.type)
            self._guard(resolution, lambda: tracker_type.add_comment(client, tracker, str(issue_id), text))
            return resolution

        return self._with_fallback(user, tracker, run)

    # -- the drop-down -------------------------------------------------------------------
    def trackers_for(self, user: str) -> list[TrackerChoice]:
        """The URLs ``user`` may store personal tokens for, across all their tenants.

        One entry per tracker URL and one per service URL (serving several trackers), sorted
        by URL. Trackers whose type is not installed are skipped (and logged).
        """
        check_user_id(user)
        merged: dict[str, tuple[str, str, str, list[tuple[str, str]]]] = {}
        for tenant in sorted(self.directory.tenants_of(user)):
            for tracker in self.directory.trackers_of(tenant):
                try:
                    tracker_type = self.plugins.tracker_type(tracker.type)
                except UnknownTrackerTypeError:
                    logger.warning("tracker %s has uninstalled type %r; skipped", tracker.label, tracker.type)
                    continue
                pair = (tracker.tenant, tracker.id)
                entry = merged.setdefault(tracker.url, ("tracker", tracker.type, tracker.name, []))
                entry[3].append(pair)
                service = tracker_type.service_url(tracker)
                if service and service != tracker.url:
                    svc = merged.setdefault(service, ("service", tracker.type, tracker_type.title, []))
                    svc[3].append(pair)
        return [
            TrackerChoice(url=url, kind=kind, type=type_name, title=title, trackers=tuple(pairs))  # type: ignore[arg-type]
            for url, (kind, type_name, title, pairs) in sorted(merged.items())
        ]

    def policy_for(self, tracker: Tracker) -> Policy:
        """The policy that applies to ``tracker``."""
        return self.policies.for_tracker(tracker)
