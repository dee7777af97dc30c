"""The resolve path's bookkeeping: which cached clients outlive a refusal, an unusable token or a
fallback, and which personal candidates are looked up in which order (found by mutation testing:
no test failed when these broke)."""

from __future__ import annotations

import gc
import weakref
from datetime import timedelta
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    InvalidInputError,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenUnusableError,
    Policies,
    Policy,
    Resolution,
    Resolver,
    Tracker,
    hookimpl,
)
from tokenproviders.resolver import ClientCache
from tokenproviders.sources import CredentialRequest, personal_candidates

from .core_world import NOW, SERVICE, World, creds

FALLBACK = Policies(default=Policy(fallback_on_unusable=True))


def _cached(resolver: Resolver, user: str, world: World) -> Any:
    """A client for ``user`` on acme's repository, cached, and a weak reference to it."""
    client = resolver.client(user, world.acme_repo)
    assert resolver.client(user, world.acme_repo) is client
    return weakref.ref(client)


def _gone(ref: weakref.ref[Any]) -> bool:
    gc.collect()
    return ref() is None


# -- stale clients ------------------------------------------------------------------------------

def test_an_expired_tokens_client_is_dropped_when_resolution_refuses_it(world: World, resolver: Resolver) -> None:
    resolver.tokens.set(
        "alice", world.acme_repo.url, creds("alice-expiring"), scope="acme", expires_at=NOW + timedelta(hours=1)
    )
    alices = _cached(resolver, "alice", world)
    bobs = _cached(resolver, "bob", world)
    world.clock.advance(hours=2)
    with pytest.raises(PersonalTokenUnusableError):
        resolver.resolve("alice", world.acme_repo)
    # The client holding the expired secret is gone at once, not at the next lookup; bob's stays.
    assert len(resolver.clients) == 1
    assert _gone(alices)
    assert not _gone(bobs)


def test_an_unreadable_tokens_client_is_dropped_when_resolution_refuses_it(world: World) -> None:
    from .test_policies import UnreadableStore

    store = UnreadableStore("https://nothing.example.com")
    resolver = Resolver(world.directory, store, plugins=world.plugins, clock=world.clock)
    bobs = _cached(resolver, "bob", world)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    alices = _cached(resolver, "alice", world)
    store.unreadable_url = world.acme_repo.url  # its key is gone from the key ring, say
    with pytest.raises(PersonalTokenUnusableError):
        resolver.resolve("alice", world.acme_repo)
    assert _gone(alices)
    assert not _gone(bobs)


def test_a_fallback_drops_the_unusable_tokens_client(world: World) -> None:
    resolver = world.resolver(policies=FALLBACK)
    resolver.tokens.set(
        "alice", world.acme_repo.url, creds("alice-expiring"), scope="acme", expires_at=NOW + timedelta(hours=1)
    )
    alices = _cached(resolver, "alice", world)
    bobs = _cached(resolver, "bob", world)
    world.clock.advance(hours=2)
    resolution = resolver.resolve("alice", world.acme_repo)
    assert resolution.source == "bot" and resolution.fallback_from
    assert _gone(alices)
    assert not _gone(bobs)
    assert len(resolver.clients) == 1


def test_losing_a_membership_drops_that_tenants_clients_only(world: World, resolver: Resolver) -> None:
    acme = _cached(resolver, "alice", world)
    beta = weakref.ref(resolver.client("alice", world.beta_repo))
    bobs = _cached(resolver, "bob", world)
    world.directory.remove_member("alice", "acme")
    with pytest.raises(NotAuthorizedError):
        resolver.resolve("alice", world.acme_repo)
    assert _gone(acme)
    assert not _gone(beta)
    assert not _gone(bobs)
    assert len(resolver.clients) == 2


# -- candidate order ----------------------------------------------------------------------------

def test_personal_candidates_are_most_specific_first(world: World) -> None:
    tracker = world.acme_repo
    url = tracker.url
    assert personal_candidates(tracker, SERVICE) == (
        (url, "acme"),
        (url, ALL_TENANTS),
        (SERVICE, "acme"),
        (SERVICE, ALL_TENANTS),
    )
    # No service-wide tokens, or a service that is the tracker itself: the tracker's URL only, once.
    assert personal_candidates(tracker, None) == ((url, "acme"), (url, ALL_TENANTS))
    assert personal_candidates(tracker, url) == ((url, "acme"), (url, ALL_TENANTS))


class _Recorder:
    """A third-party source that records what the resolver offers it and supplies nothing."""

    def __init__(self) -> None:
        self.requests: list[CredentialRequest] = []

    @hookimpl
    def tokenproviders_credentials(self, request: CredentialRequest) -> None:
        self.requests.append(request)


def test_a_tracker_that_is_its_own_service_is_looked_up_once_per_scope(world: World, resolver: Resolver) -> None:
    recorder = _Recorder()
    jira = world.acme_jira  # on its own host: its service URL is its own URL
    with world.plugins.registered(recorder), pytest.raises(NoCredentialsError):
        resolver.resolve("alice", jira)
    (request,) = recorder.requests
    assert request.personal_candidates == ((jira.url, "acme"), (jira.url, ALL_TENANTS))


# -- the credentials dispatch -------------------------------------------------------------------

class _HookCalls:
    """Which hooks go through pluggy's relay (pluggy's own hook-call monitoring)."""

    def __init__(self, world: World) -> None:
        self.names: list[str] = []
        world.plugins.manager.add_hookcall_monitoring(self._before, self._after)

    def _before(self, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        self.names.append(hook_name)

    def _after(self, outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        pass


def test_the_built_in_sources_alone_are_called_directly(world: World, resolver: Resolver) -> None:
    calls = _HookCalls(world)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    assert resolver.resolve("alice", world.acme_repo).source == "personal"
    assert resolver.resolve("bob", world.acme_repo).source == "bot"
    assert "tokenproviders_credentials" not in calls.names


def test_another_source_or_tracing_sends_the_dispatch_through_pluggy(world: World, resolver: Resolver) -> None:
    calls = _HookCalls(world)
    recorder = _Recorder()
    with world.plugins.registered(recorder):
        assert resolver.resolve("bob", world.acme_repo).source == "bot"
    assert calls.names.count("tokenproviders_credentials") == 1
    assert len(recorder.requests) == 1
    world.plugins.enable_tracing(lambda message: None)
    assert resolver.resolve("bob", world.acme_repo).source == "bot"
    assert calls.names.count("tokenproviders_credentials") == 2


# -- fallback after rejections ------------------------------------------------------------------

def test_every_personal_candidate_may_be_rejected_before_the_bot_is_used(world: World) -> None:
    # Four personal tokens (tracker and service URL, each for the tenant and for all tenants),
    # all revoked at the tracker: each is tried once, then the bot.
    resolver = world.resolver(policies=FALLBACK)
    for url in (world.acme_repo.url, SERVICE):
        for scope in ("acme", ALL_TENANTS):
            resolver.tokens.set("alice", url, creds(f"revoked-{scope}-{len(url)}"), scope=scope)
    identity = resolver.verify("alice", world.acme_repo)
    assert identity.login == "acme-bot"


def test_a_third_party_resolution_never_stamps_a_personal_token(world: World, resolver: Resolver) -> None:
    info = resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)

    class Numbered:
        @hookimpl
        def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
            return request.resolution(creds("vault"), source="vault", reason="Vault.", token_id=info.id)

    world.store.calls.clear()
    with world.plugins.registered(Numbered()):
        resolver.resolve("bob", world.acme_repo)
    assert "mark_used" not in world.store.calls


# -- no credentials -----------------------------------------------------------------------------

def test_no_credentials_names_each_url_once(world: World) -> None:
    resolver = world.resolver(policies=Policies(default=Policy(require_personal=True)))
    with pytest.raises(NoCredentialsError) as excinfo:
        resolver.resolve("bob", world.acme_repo)
    assert f"'bob' has no personal token for {world.acme_repo.url} or {SERVICE}, and" in excinfo.value.message


def test_no_credentials_lists_every_unusable_token(world: World) -> None:
    resolver = world.resolver(policies=Policies(default=Policy(require_personal=True, fallback_on_unusable=True)))
    soon = NOW + timedelta(hours=1)
    first = resolver.tokens.set("alice", world.acme_repo.url, creds("a"), scope="acme", expires_at=soon)
    second = resolver.tokens.set("alice", SERVICE, creds("b"), scope="acme", expires_at=soon)
    world.clock.advance(hours=2)
    with pytest.raises(NoCredentialsError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    message = excinfo.value.message
    assert f"#{first.id} for {world.acme_repo.url} (tenant 'acme') expired on" in message
    assert f"; alice's personal token #{second.id} for {SERVICE}" in message


def test_a_clock_without_a_time_zone_is_refused(world: World) -> None:
    resolver = world.resolver(clock=lambda: NOW.replace(tzinfo=None))
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        resolver.resolve("bob", world.acme_repo)


# -- the client cache ---------------------------------------------------------------------------

def test_the_client_cache_evicts_the_least_recently_used(world: World) -> None:
    cache = ClientCache(max_size=2)
    cache.put(("a",), "client-a", None)
    cache.put(("b",), "client-b", None)
    assert cache.get(("a",), NOW) == "client-a"  # a is now the most recent
    cache.put(("c",), "client-c", None)
    assert cache.get(("b",), NOW) is None
    assert cache.get(("a",), NOW) == "client-a" and cache.get(("c",), NOW) == "client-c"


def test_a_client_cache_of_one_keeps_one_and_clear_empties_it() -> None:
    cache = ClientCache(max_size=1)
    cache.put(("a",), "client-a", None)
    assert cache.get(("a",), NOW) == "client-a"
    cache.clear()
    assert len(cache) == 0 and cache.get(("a",), NOW) is None


def test_a_resolver_caches_256_clients_by_default(world: World) -> None:
    assert world.resolver().clients.max_size == ClientCache().max_size == 256


def test_the_remembered_candidates_stay_bounded(world: World, resolver: Resolver) -> None:
    for n in range(5000):
        tracker = Tracker(tenant="acme", id=f"t{n}", type="memory", base_url=f"{SERVICE}/acme/t{n}")
        resolver._personal_candidates(tracker, world.tracker_type)
    assert 0 < len(resolver._candidates) <= 4097


def test_replacing_a_client_makes_it_the_most_recent() -> None:
    cache = ClientCache(max_size=2)
    cache.put(("a",), "client-a", None)
    cache.put(("b",), "client-b", None)
    cache.put(("a",), "client-a2", None)
    cache.put(("c",), "client-c", None)
    assert cache.get(("b",), NOW) is None
    assert cache.get(("a",), NOW) == "client-a2"


class _AuditEvents:
    def __init__(self) -> None:
        self.events: list[Any] = []

    @hookimpl
    def tokenproviders_audit(self, event: Any) -> None:
        self.events.append(event)


def test_the_audit_of_a_verification_after_a_fallback_names_the_credentials_used(world: World) -> None:
    resolver = world.resolver(policies=FALLBACK)
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("revoked"), scope="acme")
    audit = _AuditEvents()
    with world.plugins.registered(audit):
        assert resolver.verify("alice", world.acme_repo).login == "acme-bot"
    (event,) = [e for e in audit.events if e.action == "verify"]
    assert (event.outcome, event.source, event.token_id) == ("ok", "bot", None)
    assert event.fallback_from is not None and f"#{info.id}" in event.fallback_from
