"""Defences found by review: where a token may be sent, what a credential may contain, and
inputs that used to be accepted silently."""

from __future__ import annotations

import dataclasses

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ConfigurationError,
    InvalidCredentialsError,
    InvalidURLError,
    NotAuthorizedError,
    PluginError,
    Policies,
    Policy,
    Resolver,
    Tracker,
)
from tokenproviders.urls import normalize_url

from .core_world import SERVICE, World, creds


def _evil_twin(world: World, api_url: str) -> Tracker:
    """A tracker in alice's other tenant on the same service, whose API points elsewhere."""
    tracker = Tracker(
        tenant="beta", id="twin", type="memory", base_url=f"{SERVICE}/beta/twin", api_url=api_url,
        bot_credentials=creds("beta-bot-secret"),
    )
    world.directory.add_tracker(tracker)
    return tracker


def test_a_personal_token_is_never_sent_to_an_api_url_on_another_host(world: World, resolver: Resolver) -> None:
    # alice's service-wide token must not be collectable by a tenant admin who points api_url
    # at a server of theirs.
    resolver.tokens.set("alice", SERVICE, creds("alice-service-token"), scope=ALL_TENANTS)
    twin = _evil_twin(world, "https://collector.evil.test/api")
    with pytest.raises(ConfigurationError, match="another host") as excinfo:
        resolver.resolve("alice", twin)
    assert "alice-service-token" not in str(excinfo.value)
    assert world.backend.calls == []
    # The bot, configured by that tenant itself, still works for users without a token.
    assert resolver.resolve("mallory", twin).source == "bot"


def test_an_api_url_on_the_same_origin_is_trusted(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", SERVICE, creds("alice-service-token"), scope=ALL_TENANTS)
    twin = _evil_twin(world, f"{SERVICE}/api/v4")
    assert resolver.resolve("alice", twin).source == "personal"


@pytest.mark.parametrize(
    "password",
    ["token\n", "tok\r\nX-Evil: 1", "tab\there", "nul\x00", "euro\u20ac", "emoji\U0001f600"],
)
def test_credentials_that_cannot_travel_in_a_header_are_refused(
    world: World, resolver: Resolver, password: str
) -> None:
    with pytest.raises(InvalidCredentialsError) as excinfo:
        resolver.tokens.set("alice", world.acme_repo.url, creds(password), scope="acme")
    assert password not in str(excinfo.value)
    assert resolver.tokens.list("alice") == []


def test_a_user_name_with_surrounding_spaces_is_refused(world: World, resolver: Resolver) -> None:
    with pytest.raises(InvalidCredentialsError, match="api_username"):
        resolver.tokens.set("alice", world.acme_repo.url, creds("t", " alice"), scope="acme")


def test_latin1_passwords_and_inner_spaces_are_accepted(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("p\u00e4ss word"), scope="acme")
    assert resolver.resolve("alice", world.acme_repo).source == "personal"


def test_a_directory_returning_a_str_does_not_authorize_substrings(world: World) -> None:
    class SloppyDirectory:
        def tenants_of(self, user: str) -> str:
            return "acme-prod"

        def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
            return world.directory.trackers_of(tenant)

    resolver = Resolver(SloppyDirectory(), plugins=world.plugins, clock=world.clock)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="not a collection"):
        resolver.resolve("bob", world.acme_repo)


def test_revoking_a_membership_drops_the_users_cached_clients(world: World, resolver: Resolver) -> None:
    resolver.client("bob", world.acme_repo)
    assert len(resolver.clients) == 1
    world.directory.remove_member("bob", "acme")
    with pytest.raises(NotAuthorizedError):
        resolver.client("bob", world.acme_repo)
    assert len(resolver.clients) == 0


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://git.example.com./acme/repo", "https://git.example.com/acme/repo"),
        ("https://git.example.com/acme/x/../repo", "https://git.example.com/acme/repo"),
        ("https://git.example.com/acme/./repo/", "https://git.example.com/acme/repo"),
        ("https://git.example.com/%61cme/repo", "https://git.example.com/acme/repo"),
        ("https://git.example.com/grp%2fsub", "https://git.example.com/grp%2Fsub"),
    ],
)
def test_one_spelling_per_url(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize("url", ["https://*.example.com/", "https://-bad.example.com/", "https://a..b/"])
def test_hosts_that_are_not_names_are_refused(url: str) -> None:
    with pytest.raises(InvalidURLError, match="not a valid name"):
        normalize_url(url)


def test_refused_urls_never_echo_their_query() -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        normalize_url("https://redmine.example.com:8o8o/issues.json?key=REDMINE-API-KEY")
    assert "REDMINE-API-KEY" not in str(excinfo.value)


def test_policy_flags_must_be_booleans() -> None:
    with pytest.raises(ConfigurationError, match="True or False"):
        Policy(require_personal="no")  # type: ignore[arg-type]


def test_tracker_policy_keys_must_be_tenant_and_id_pairs() -> None:
    with pytest.raises(ConfigurationError, match="tuples"):
        Policies(trackers={"acme/repo": Policy(require_personal=True)})  # type: ignore[dict-item]


def test_trackers_are_hashable_and_equal_ones_hash_alike(world: World) -> None:
    copy = dataclasses.replace(world.acme_repo)
    assert copy == world.acme_repo and hash(copy) == hash(world.acme_repo)
    assert len({world.acme_repo, copy, world.beta_repo}) == 2


@pytest.mark.parametrize("name", ["personal", "bot"])
def test_built_in_sources_cannot_be_unregistered(world: World, name: str) -> None:
    with pytest.raises(PluginError, match="cannot be unregistered"):
        world.plugins.unregister(name)


def test_the_default_store_seals_tokens_in_memory(world: World) -> None:
    resolver = Resolver(world.directory, plugins=world.plugins, clock=world.clock)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-default-secret"), scope="acme")
    store = resolver.store
    assert getattr(store, "keyring", None) is not None
    assert b"alice-default-secret" not in repr(vars(store)).encode()
    assert resolver.resolve("alice", world.acme_repo).credentials == creds("alice-default-secret")
