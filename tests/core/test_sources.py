"""The built-in credential sources in detail: the request a plugin author builds, what a source's
resolution is checked against, the order of the bot, and the words of refusals and reasons
(mutation testing found each of these unchecked)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ConfigurationError,
    InvalidCredentialsError,
    PersonalTokenUnusableError,
    Policies,
    Policy,
    Resolution,
    Resolver,
    Tracker,
    hookimpl,
)
from tokenproviders.model import PersonalToken
from tokenproviders.sources import (
    CredentialRequest,
    endpoint_refusal,
    personal_candidates,
    personal_source,
    verification_probe,
)

from .core_world import NOW, SERVICE, SpyStore, World, creds
from .test_resolve_order import VaultSource

FALLBACK = Policies(default=Policy(fallback_on_unusable=True))


# -- the request --------------------------------------------------------------------------------

def test_a_request_with_only_the_required_fields_looks_at_every_candidate(world: World, resolver: Resolver) -> None:
    # What a plugin author builds to test a source: the optional fields start at "nothing yet".
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    tracker = world.acme_repo
    request = CredentialRequest(
        "alice", tracker, world.tracker_type, Policy(), NOW, world.store, personal_candidates(tracker, SERVICE)
    )
    assert (request.skip_personal, request.unusable, request.personal_start) == (False, [], 0)
    resolution = personal_source.tokenproviders_credentials(request)
    assert resolution is not None and resolution.token_id == info.id


class _Returning:
    """A third-party source that returns ``request.resolution(value)``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @hookimpl
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        return request.resolution(self.value, source="odd", reason="Odd.")


def test_a_sources_credentials_are_checked_against_the_tracker_type(world: World, resolver: Resolver) -> None:
    with world.plugins.registered(_Returning(creds("line\nbreak"))), pytest.raises(InvalidCredentialsError):
        resolver.resolve("bob", world.acme_repo)


def test_a_sources_resolution_needs_credentials(world: World, resolver: Resolver) -> None:
    with (
        world.plugins.registered(_Returning(("bob", "secret"))),
        pytest.raises(TypeError, match="needs Credentials, not tuple"),
    ):
        resolver.resolve("bob", world.acme_repo)


# -- the bot comes last, whatever the registration order ----------------------------------------

def test_the_bot_comes_after_a_source_registered_before_it(world: World) -> None:
    # Entry points load before the built-ins are ensured: a third-party source may be registered
    # first. The bot must still be asked last.
    manager = world.plugins.manager
    bot = manager.get_plugin("bot")
    manager.unregister(name="bot")
    world.plugins.register(VaultSource({"bob": "vault-bob"}), name="vault")
    manager.register(bot, name="bot")
    assert world.resolver().resolve("bob", world.acme_repo).source == "vault"


# -- the words of reasons and refusals ---------------------------------------------------------

def test_the_bots_reason_names_every_url_looked_at(world: World, resolver: Resolver) -> None:
    reason = resolver.resolve("bob", world.acme_repo).reason
    assert f"bob has no personal token for {world.acme_repo.url} or {SERVICE}, so" in reason


def test_an_unreadable_token_is_named_in_the_refusal(world: World) -> None:
    from .test_policies import UnreadableStore

    resolver = Resolver(world.directory, UnreadableStore(world.acme_repo.url), plugins=world.plugins, clock=world.clock)
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme", label="laptop")
    with pytest.raises(PersonalTokenUnusableError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    assert (
        f"alice's personal token #{info.id} 'laptop' for {world.acme_repo.url} (tenant 'acme') cannot be decrypted"
        in excinfo.value.message
    )


class _NoSecretStore(SpyStore):
    """A store that finds tokens but cannot give their secret."""

    def lookup(self, owner: str, candidates: Any) -> PersonalToken | None:
        token = super().lookup(owner, candidates)
        return dataclasses.replace(token, credentials=None) if token is not None else None


def test_a_token_without_a_secret_is_unusable(world: World) -> None:
    resolver = Resolver(world.directory, _NoSecretStore(), plugins=world.plugins, clock=world.clock)
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    with pytest.raises(PersonalTokenUnusableError, match=f"personal token #{info.id} for .* has no secret"):
        resolver.resolve("alice", world.acme_repo)


def test_a_fallback_moves_to_the_very_next_candidate(world: World) -> None:
    resolver = world.resolver(policies=FALLBACK)
    url = world.acme_repo.url
    resolver.tokens.set("alice", url, creds("alice-expiring"), scope="acme", expires_at=NOW + timedelta(hours=1))
    wider = resolver.tokens.set("alice", url, creds("alice-wider"), scope=ALL_TENANTS)
    resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope="acme")
    world.clock.advance(hours=2)
    resolution = resolver.resolve("alice", world.acme_repo)
    assert (resolution.source, resolution.token_id) == ("personal", wider.id)


def _twin(world: World, **settings: Any) -> Tracker:
    """A tracker in alice's other tenant on the service, set up by that tenant's admin."""
    tracker = Tracker(
        tenant="beta", id="twin", type="memory", base_url=f"{SERVICE}/beta/twin", bot_credentials=creds("b"),
        **settings,
    )
    world.directory.add_tracker(tracker)
    return tracker


def test_a_refusal_names_the_personal_token_and_its_scope(world: World, resolver: Resolver) -> None:
    info = resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    twin = _twin(world, api_url="https://collector.evil.test/api")
    with pytest.raises(ConfigurationError) as excinfo:
        resolver.resolve("alice", twin)
    assert f"alice's personal token #{info.id} for {SERVICE} (all tenants)" in excinfo.value.message


@pytest.mark.parametrize(
    ("settings", "how"),
    [
        ({"verify_tls": False}, "does not verify TLS certificates (verify_tls=False)"),
        ({"ca_bundle": "/etc/ssl/evil.pem"}, "trusts its own CA bundle for TLS (ca_bundle)"),
    ],
)
def test_a_weakened_tls_refusal_says_how_tls_is_weakened(
    world: World, resolver: Resolver, settings: dict[str, Any], how: str
) -> None:
    resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    twin = _twin(world, **settings)
    with pytest.raises(ConfigurationError) as excinfo:
        resolver.resolve("alice", twin)
    assert f"tracker {twin.label} {how}, and alice's personal token" in excinfo.value.message


def test_a_third_party_sources_refusal_names_the_source(world: World, resolver: Resolver) -> None:
    twin = _twin(world, verify_tls=False)
    with world.plugins.registered(VaultSource({"alice": "vault-alice"})), pytest.raises(ConfigurationError) as excinfo:
        resolver.resolve("alice", twin)
    assert "alice's credentials from source 'vault'" in excinfo.value.message


def test_the_verification_probe_stands_for_unsaved_credentials(world: World) -> None:
    probe = verification_probe(world.acme_repo, creds("new-token"), None)
    assert (probe.user, probe.source, probe.scope) == ("(verification)", "verification", None)
    scoped = verification_probe(world.acme_repo, creds("new-token"), "acme")
    assert (scoped.source, scoped.scope) == ("verification", "acme")
    bot = verification_probe(world.acme_repo, world.acme_repo.bot_credentials, "acme")  # type: ignore[arg-type]
    assert (bot.source, bot.scope) == ("bot", None)


@pytest.mark.parametrize(("scope", "words"), [(None, " (no scope given)"), ("acme", " (tenant 'acme')")])
def test_a_verification_refusal_names_what_is_verified(world: World, scope: str | None, words: str) -> None:
    twin = _twin(world, verify_tls=False)
    refusal = endpoint_refusal(verification_probe(twin, creds("new-token"), scope), world.tracker_type, Policy())
    assert refusal is not None
    assert f"the credentials being verified{words} is not scoped to its tenant 'beta'" in refusal.message
