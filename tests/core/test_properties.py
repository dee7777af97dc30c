"""Property-based tests: across thousands of generated worlds and resolutions, never

- does a user resolve another user's token;
- is a tenant-scoped token used in another tenant;
- does anything resolve for a tenant the user is not authorized for;
- is a bot credential used while a usable personal token exists.

Tokens are put straight into the store (as if memberships were revoked or trackers removed after
they were set), so the resolver cannot rely on validation having happened. Each world also has an
independent oracle of DESIGN section 3, which every resolution must match.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tokenproviders import (
    ALL_TENANTS,
    MemoryDirectory,
    MemoryTokenStore,
    NotAuthorizedError,
    Plugins,
    Policies,
    Policy,
    Resolution,
    Resolver,
    TokenProvidersError,
    Tracker,
)
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

from .core_world import NOW, creds

USERS = ("u0", "u1", "u2", "u3")
TENANTS = ("t0", "t1", "t2")
HOSTS = ("https://h0.test", "https://h1.test")
PATHS = ("", "/a", "/b")
URLS = tuple(host + path for host in HOSTS for path in PATHS)
SCOPES = (*TENANTS, ALL_TENANTS)
POLICIES = (
    Policy(),
    Policy(require_personal=True),
    Policy(fallback_on_unusable=True),
    Policy(require_personal=True, fallback_on_unusable=True),
)
PROPERTY_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def shared_plugins() -> Plugins:
    """One plugin manager for every generated world (resolution does not depend on the backend)."""
    return Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(MemoryTrackerType())])


def secret_of(owner: str, url: str, scope: str) -> str:
    return f"{owner}|{url}|{scope}"


def owner_of(resolution: Resolution) -> str:
    return resolution.credentials.api_password.reveal().split("|", 1)[0]


@dataclass(frozen=True)
class StoredToken:
    owner: str
    url: str
    scope: str
    expires_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class GeneratedWorld:
    memberships: frozenset[tuple[str, str]]
    trackers: list[Tracker]
    tokens: dict[tuple[str, str, str], StoredToken]
    policies: Policies

    def build(self) -> Resolver:
        directory = MemoryDirectory(memberships=self.memberships, trackers=self.trackers)
        for tenant in TENANTS:
            directory.add_tenant(tenant)
        store = MemoryTokenStore()
        for token in self.tokens.values():
            store.put(
                token.owner, token.url, token.scope, creds(secret_of(token.owner, token.url, token.scope)),
                expires_at=token.expires_at, now=NOW - timedelta(days=1),
            )
        return Resolver(directory, store, plugins=shared_plugins(), policies=self.policies, clock=lambda: NOW)


@st.composite
def worlds(draw: st.DrawFn) -> GeneratedWorld:
    memberships = draw(st.frozensets(st.tuples(st.sampled_from(USERS), st.sampled_from(TENANTS)), max_size=8))
    trackers = []
    for tenant in TENANTS:
        urls = draw(st.lists(st.sampled_from(URLS), max_size=3, unique=True))
        for index, url in enumerate(urls):
            bot = draw(st.booleans())
            trackers.append(
                Tracker(
                    tenant=tenant, id=f"k{index}", type="memory", base_url=url,
                    bot_credentials=creds(f"bot|{tenant}|k{index}") if bot else None,
                )
            )
    tokens = {}
    # Mostly tokens that some tracker would look at (so resolutions meet several of them), and
    # some that none would.
    relevant = sorted(
        {(user, url, scope) for user in (*USERS, "stranger") for t in trackers for url, scope in candidates(t)}
    )
    anywhere = st.tuples(st.sampled_from((*USERS, "stranger")), st.sampled_from(URLS), st.sampled_from(SCOPES))
    keys = st.sampled_from(relevant) | anywhere if relevant else anywhere
    for owner, url, scope in draw(st.lists(keys, max_size=30, unique=True)):
        expiry = draw(st.sampled_from((None, NOW - timedelta(hours=1), NOW + timedelta(days=1))))
        tokens[(owner, url, scope)] = StoredToken(owner, url, scope, expiry)
    tenant_policies = {tenant: draw(st.sampled_from(POLICIES)) for tenant in TENANTS}
    return GeneratedWorld(memberships, trackers, tokens, Policies(tenants=tenant_policies))


def candidates(tracker: Tracker) -> list[tuple[str, str]]:
    service = tracker.url.split("/", 3)[:3]
    service_url = "/".join(service)
    pairs = [(tracker.url, tracker.tenant), (tracker.url, ALL_TENANTS)]
    if service_url != tracker.url:
        pairs += [(service_url, tracker.tenant), (service_url, ALL_TENANTS)]
    return pairs


def oracle(
    user: str, tracker: Tracker, memberships: frozenset[tuple[str, str]],
    tokens: dict[tuple[str, str, str], StoredToken], policy: Policy, now: datetime,
) -> tuple[str, str | None]:
    """DESIGN section 3, written out independently: (outcome, secret or None)."""
    if (user, tracker.tenant) not in memberships:
        return ("NotAuthorizedError", None)
    for url, scope in candidates(tracker):
        token = tokens.get((user, url, scope))
        if token is None:
            continue
        if token.usable(now):
            return ("personal", secret_of(user, url, scope))
        if not policy.fallback_on_unusable:
            return ("PersonalTokenUnusableError", None)
    if policy.require_personal or tracker.bot_credentials is None:
        return ("NoCredentialsError", None)
    return ("bot", tracker.bot_credentials.api_password.reveal())


def check_resolution(
    resolver: Resolver, user: str, tracker: Tracker, memberships: frozenset[tuple[str, str]],
    tokens: dict[tuple[str, str, str], StoredToken], now: datetime,
) -> None:
    authorized = (user, tracker.tenant) in memberships
    usable_personal = [
        (url, scope) for url, scope in candidates(tracker)
        if (token := tokens.get((user, url, scope))) is not None and token.usable(now)
    ]
    try:
        resolution = resolver.resolve(user, tracker)
    except TokenProvidersError as error:
        # Nothing resolves for a tenant the user is not in, and that is the error it gets.
        assert authorized != isinstance(error, NotAuthorizedError), (user, tracker, error)
        outcome, secret = type(error).__name__, None
    else:
        assert authorized, f"{user} resolved {resolution.source} credentials in foreign tenant {tracker.tenant}"
        if resolution.source == "personal":
            assert owner_of(resolution) == user, "a user resolved another user's token"
            assert resolution.scope in (tracker.tenant, ALL_TENANTS), "a tenant-scoped token crossed tenants"
            assert resolution.credentials.api_password.reveal().endswith(f"|{resolution.scope}")
            assert (resolution.matched_url, resolution.scope) in candidates(tracker)
        else:
            assert resolution.source == "bot"
            assert not usable_personal, f"the bot was used while {user} has usable tokens {usable_personal}"
        outcome, secret = resolution.source, resolution.credentials.api_password.reveal()
    policy = resolver.policies.for_tracker(tracker)
    assert (outcome, secret) == oracle(user, tracker, memberships, tokens, policy, now)


@PROPERTY_SETTINGS
@given(world=worlds())
def test_every_resolution_keeps_the_four_promises(world: GeneratedWorld) -> None:
    resolver = world.build()
    for user in (*USERS, "stranger"):
        for tracker in world.trackers:
            check_resolution(resolver, user, tracker, world.memberships, world.tokens, NOW)


@PROPERTY_SETTINGS
@given(world=worlds(), data=st.data())
def test_tokens_set_through_the_manager_only_serve_their_owner_and_scope(
    world: GeneratedWorld, data: st.DataObject
) -> None:
    """Tokens stored through ``resolver.tokens.set`` are validated; accepted ones keep the promises."""
    resolver = world.build()
    accepted = dict(world.tokens)
    attempts = data.draw(
        st.lists(st.tuples(st.sampled_from(USERS), st.sampled_from(URLS), st.sampled_from(SCOPES)), max_size=8)
    )
    for owner, url, scope in attempts:
        tenants = {t for u, t in world.memberships if u == owner}
        # Accepted exactly for a tracker (or service) URL of a tenant the owner is in, within the scope.
        allowed = _serves(world, tenants, url) if scope == ALL_TENANTS else (
            scope in tenants and _serves(world, {scope}, url)
        )
        try:
            resolver.tokens.set(owner, url, creds(secret_of(owner, url, scope)), scope=scope)
        except TokenProvidersError as error:
            assert not allowed, f"{owner}'s token for {url} in {scope} was refused: {error}"
            continue
        assert allowed, f"{owner}'s token for {url} in {scope} was accepted"
        accepted[(owner, url, scope)] = StoredToken(owner, url, scope, None)
    for user in USERS:
        for tracker in world.trackers:
            check_resolution(resolver, user, tracker, world.memberships, accepted, NOW)


def _serves(world: GeneratedWorld, tenants: set[str], url: str) -> bool:
    return any(
        tracker.tenant in tenants and url in (tracker.url, "/".join(tracker.url.split("/", 3)[:3]))
        for tracker in world.trackers
    )


class ResolverMachine(RuleBasedStateMachine):
    """Memberships come and go, tokens are set, deleted and expire, time passes; after every
    step, every user's resolution on every tracker keeps the promises and matches the oracle."""

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.memberships: set[tuple[str, str]] = set()
        self.tokens: dict[tuple[str, str, str], StoredToken] = {}
        self.trackers = [
            Tracker(tenant=tenant, id=f"k{i}", type="memory", base_url=url,
                    bot_credentials=creds(f"bot|{tenant}|k{i}") if i != 1 else None)
            for tenant, urls in (("t0", URLS[:3]), ("t1", URLS[1:4]), ("t2", URLS[3:]))
            for i, url in enumerate(urls)
        ]
        self.directory = MemoryDirectory(trackers=self.trackers)
        self.resolver = Resolver(self.directory, plugins=shared_plugins(), clock=lambda: self.now)

    @initialize(policy=st.sampled_from(POLICIES))
    def choose_policy(self, policy: Policy) -> None:
        self.resolver.policies = Policies(default=policy)

    @rule(user=st.sampled_from(USERS), tenant=st.sampled_from(TENANTS))
    def join(self, user: str, tenant: str) -> None:
        self.directory.add_member(user, tenant)
        self.memberships.add((user, tenant))

    @precondition(lambda self: bool(self.memberships))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        user, tenant = data.draw(st.sampled_from(sorted(self.memberships)))
        self.directory.remove_member(user, tenant)
        self.memberships.discard((user, tenant))

    @rule(
        owner=st.sampled_from(USERS), url=st.sampled_from(URLS), scope=st.sampled_from(SCOPES),
        lifetime=st.sampled_from((None, 1, 48)),
    )
    def set_token(self, owner: str, url: str, scope: str, lifetime: int | None) -> None:
        expires_at = self.now + timedelta(hours=lifetime) if lifetime else None
        try:
            self.resolver.tokens.set(
                owner, url, creds(secret_of(owner, url, scope)), scope=scope, expires_at=expires_at
            )
        except TokenProvidersError:
            return
        self.tokens[(owner, url, scope)] = StoredToken(owner, url, scope, expires_at)

    @precondition(lambda self: bool(self.tokens))
    @rule(data=st.data())
    def delete_token(self, data: st.DataObject) -> None:
        owner, url, scope = data.draw(st.sampled_from(sorted(self.tokens)))
        self.resolver.tokens.delete(owner, url, scope)
        del self.tokens[(owner, url, scope)]

    @rule(hours=st.sampled_from((1, 24, 72)))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @invariant()
    def promises_hold(self) -> None:
        memberships = frozenset(self.memberships)
        for user in USERS:
            for tracker in self.trackers:
                check_resolution(self.resolver, user, tracker, memberships, self.tokens, self.now)
                if (user, tracker.tenant) in memberships:
                    self._client_matches(user, tracker)

    def _client_matches(self, user: str, tracker: Tracker) -> None:
        # The cached client is always built with the credentials resolved right now.
        try:
            resolution = self.resolver.resolve(user, tracker)
        except TokenProvidersError:
            return
        client = self.resolver.client_for(resolution)
        assert client.credentials == resolution.credentials


ResolverMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestResolverMachine = ResolverMachine.TestCase
