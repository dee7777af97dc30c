"""Managing personal tokens: what may be stored, and set / get / list / delete."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

import pytest

from tokenproviders import (
    ALL_TENANTS,
    CredentialsRejectedError,
    Field,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidURLError,
    NotAuthorizedError,
    Resolver,
    TokenInfo,
    TokenNotFoundError,
    Tracker,
    UnknownTrackerError,
)
from tokenproviders.model import PersonalToken
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

from .core_world import SERVICE, World, assert_actionable, assert_no_secret, creds


class EmailAndTokenType(MemoryTrackerType):
    """Like Jira Cloud: both an e-mail and an API token are required."""

    name: ClassVar[str] = "email-token"
    title: ClassVar[str] = "E-mail and token"
    fields: ClassVar[tuple[Field, ...]] = (
        Field("api_username", "E-mail", "the account's e-mail"),
        Field("api_password", "API token", secret=True),
    )


class TokenOnlyType(MemoryTrackerType):
    """Like GitHub: a token and nothing else."""

    name: ClassVar[str] = "token-only"
    title: ClassVar[str] = "Token only"
    fields: ClassVar[tuple[Field, ...]] = (Field("api_password", "Personal access token", secret=True),)


@pytest.fixture
def typed(world: World) -> tuple[Tracker, Tracker]:
    """Two more acme trackers whose types declare stricter fields."""
    world.plugins.register(MemoryTrackerPlugin(EmailAndTokenType(world.backend)), name="email-token")
    world.plugins.register(MemoryTrackerPlugin(TokenOnlyType(world.backend)), name="token-only")
    jira = Tracker(tenant="acme", id="cloud", type="email-token", base_url="https://acme.atlassian.test")
    github = Tracker(tenant="acme", id="gh", type="token-only", base_url="https://github.test/acme/app")
    world.directory.add_tracker(jira)
    world.directory.add_tracker(github)
    return jira, github


def _nothing_stored(resolver: Resolver) -> None:
    assert resolver.tokens.list() == []


# -- where a token may be stored -----------------------------------------------------------------

def test_url_must_match_a_tracker_or_a_service(world: World, resolver: Resolver) -> None:
    with pytest.raises(UnknownTrackerError) as excinfo:
        resolver.tokens.set("alice", "https://elsewhere.test", creds("t"), scope=ALL_TENANTS)
    assert "https://elsewhere.test" in excinfo.value.message
    assert SERVICE in excinfo.value.hint  # the choices the user has
    assert_actionable(excinfo.value)
    # Neither a prefix nor an extension of a tracker URL matches.
    for url in (f"{SERVICE}/acme", f"{SERVICE}/acme/repo/issues", "https://git.example.com:8443"):
        with pytest.raises(UnknownTrackerError):
            resolver.tokens.set("alice", url, creds("t"), scope="acme")
    _nothing_stored(resolver)


def test_url_is_normalized_before_it_is_matched_and_stored(world: World, resolver: Resolver) -> None:
    info = resolver.tokens.set("alice", "HTTPS://GIT.example.COM:443/acme/repo/?tab=1#x", creds("t"), scope="acme")
    assert info.url == world.acme_repo.url


def test_url_must_belong_to_an_authorized_tenant(world: World, resolver: Resolver) -> None:
    # bob is only in acme: beta's tracker is not his to store a token for, in any scope.
    with pytest.raises(UnknownTrackerError):
        resolver.tokens.set("bob", world.beta_repo.url, creds("t"), scope=ALL_TENANTS)
    with pytest.raises(UnknownTrackerError):
        resolver.tokens.set("bob", world.beta_repo.url, creds("t"), scope="acme")
    # ... and a tenant-scoped token must match a tracker of *that* tenant.
    with pytest.raises(UnknownTrackerError):
        resolver.tokens.set("alice", world.beta_repo.url, creds("t"), scope="acme")
    _nothing_stored(resolver)


def test_scope_must_be_a_tenant_of_the_owner(world: World, resolver: Resolver) -> None:
    with pytest.raises(NotAuthorizedError) as excinfo:
        resolver.tokens.set("bob", world.beta_repo.url, creds("t"), scope="beta")
    assert "'bob' is not authorized for tenant 'beta'" in excinfo.value.message
    assert_actionable(excinfo.value)
    with pytest.raises(NotAuthorizedError):
        resolver.tokens.set("nobody", SERVICE, creds("t"), scope=ALL_TENANTS)
    with pytest.raises(InvalidInputError):
        resolver.tokens.set("alice", SERVICE, creds("t"), scope="")
    _nothing_stored(resolver)


def test_url_must_be_a_valid_url(resolver: Resolver) -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        resolver.tokens.set("alice", "https://alice:hunter2@git.example.com", creds("t"), scope=ALL_TENANTS)
    assert_no_secret(excinfo.value, "hunter2")
    _nothing_stored(resolver)


# -- which fields -----------------------------------------------------------------------------

def test_required_fields_must_be_present(world: World, resolver: Resolver, typed: tuple[Tracker, Tracker]) -> None:
    jira, github = typed
    with pytest.raises(InvalidCredentialsError) as excinfo:
        resolver.tokens.set("alice", jira.url, creds("token-without-email"), scope="acme")
    assert "requires E-mail (api_username)" in excinfo.value.message
    assert_actionable(excinfo.value)
    with pytest.raises(InvalidCredentialsError) as excinfo:
        resolver.tokens.set("alice", github.url, creds(""), scope="acme")
    assert "api_password" in excinfo.value.message
    _nothing_stored(resolver)
    info = resolver.tokens.set("alice", jira.url, creds("t", "alice@acme.test"), scope="acme")
    assert info.api_username == "alice@acme.test"


def test_extra_fields_are_refused(world: World, resolver: Resolver, typed: tuple[Tracker, Tracker]) -> None:
    _, github = typed
    with pytest.raises(InvalidCredentialsError) as excinfo:
        resolver.tokens.set("alice", github.url, creds("ghp_x", "alice"), scope="acme")
    assert "does not take api_username" in excinfo.value.message
    assert "Personal access token" in excinfo.value.hint
    _nothing_stored(resolver)


@pytest.mark.usefixtures("typed")
def test_a_service_token_must_fit_every_tracker_type_it_serves(world: World, resolver: Resolver) -> None:
    world.directory.add_tracker(
        Tracker(tenant="beta", id="gh", type="memory", base_url="https://github.test/beta/app")
    )
    # The memory type accepts a user name, the token-only type does not; alice's all-tenants
    # token for https://github.test would serve both.
    with pytest.raises(InvalidCredentialsError):
        resolver.tokens.set("alice", "https://github.test", creds("ghp_x", "alice"), scope=ALL_TENANTS)
    resolver.tokens.set("alice", "https://github.test", creds("ghp_x"), scope=ALL_TENANTS)


# -- other checks -----------------------------------------------------------------------------

def test_expiry_in_the_past_or_now_is_refused(world: World, resolver: Resolver) -> None:
    for when in (world.clock.now, world.clock.now - timedelta(seconds=1)):
        with pytest.raises(InvalidInputError) as excinfo:
            resolver.tokens.set("alice", SERVICE, creds("t"), scope=ALL_TENANTS, expires_at=when)
        assert "in the past" in excinfo.value.message
        assert_actionable(excinfo.value)
    _nothing_stored(resolver)


def test_naive_expiry_is_refused(world: World, resolver: Resolver) -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        resolver.tokens.set("alice", SERVICE, creds("t"), scope=ALL_TENANTS, expires_at=datetime(2031, 1, 1))
    assert "timezone-aware" in excinfo.value.message
    assert "tzinfo" in excinfo.value.hint
    _nothing_stored(resolver)


def test_label_length(world: World, resolver: Resolver) -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        resolver.tokens.set("alice", SERVICE, creds("t"), scope=ALL_TENANTS, label="x" * 201)
    assert_actionable(excinfo.value)
    _nothing_stored(resolver)
    for label in ("laptop\nINFO forged log line", "tab\there", "nul\x00"):
        with pytest.raises(InvalidInputError):
            resolver.tokens.set("alice", SERVICE, creds("t"), scope=ALL_TENANTS, label=label)
    _nothing_stored(resolver)
    info = resolver.tokens.set("alice", SERVICE, creds("t"), scope=ALL_TENANTS, label="x" * 200)
    assert info.label == "x" * 200


def test_credentials_must_be_credentials(resolver: Resolver) -> None:
    with pytest.raises(InvalidInputError):
        resolver.tokens.set("alice", SERVICE, "hunter2", scope=ALL_TENANTS)  # type: ignore[arg-type]
    _nothing_stored(resolver)


def test_verify_stores_nothing_when_the_tracker_rejects_the_credentials(world: World, resolver: Resolver) -> None:
    with pytest.raises(CredentialsRejectedError) as excinfo:
        resolver.tokens.set("alice", world.acme_repo.url, creds("wrong-token"), scope="acme", verify=True)
    assert excinfo.value.status == 401
    assert_actionable(excinfo.value)
    assert_no_secret(excinfo.value, "wrong-token")
    _nothing_stored(resolver)
    world.backend.add_user("alice", "right-token")
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("right-token"), scope="acme", verify=True)
    assert info.id is not None
    assert world.backend.calls == [("whoami", "alice")]


# -- set / get / list / delete --------------------------------------------------------------------

def test_set_get_list_delete(world: World, resolver: Resolver) -> None:
    expires = world.clock.now + timedelta(days=30)
    first = resolver.tokens.set("alice", world.acme_repo.url, creds("a1"), scope="acme", label="laptop")
    second = resolver.tokens.set("alice", SERVICE, creds("a2"), scope=ALL_TENANTS, expires_at=expires)
    resolver.tokens.set("bob", SERVICE, creds("b1"), scope="acme")
    assert (first.owner, first.url, first.scope, first.label, first.version) == (
        "alice", world.acme_repo.url, "acme", "laptop", 1,
    )
    assert first.created_at == first.updated_at == world.clock.now
    assert second.expires_at == expires and second.scope_text == "all tenants"

    listed = resolver.tokens.list("alice")
    assert [(t.url, t.scope) for t in listed] == [(SERVICE, ALL_TENANTS), (world.acme_repo.url, "acme")]
    assert all(type(t) is TokenInfo for t in listed)  # metadata only, never credentials
    assert len(resolver.tokens.list()) == 3
    assert resolver.tokens.list("nobody") == []

    got = resolver.tokens.get("alice", f"{world.acme_repo.url}/", "acme")
    assert got is not None and type(got) is TokenInfo and got.id == first.id
    assert resolver.tokens.get("alice", world.acme_repo.url, ALL_TENANTS) is None
    assert resolver.tokens.get("bob", world.acme_repo.url, "acme") is None

    removed = resolver.tokens.delete("alice", world.acme_repo.url, "acme")
    assert removed.id == first.id and not isinstance(removed, PersonalToken)
    with pytest.raises(TokenNotFoundError) as excinfo:
        resolver.tokens.delete("alice", world.acme_repo.url, "acme")
    assert_actionable(excinfo.value)
    assert [t.url for t in resolver.tokens.list("alice")] == [SERVICE]


def test_setting_again_replaces_in_place_and_bumps_the_version(world: World, resolver: Resolver) -> None:
    first = resolver.tokens.set("alice", SERVICE, creds("old"), scope="acme", label="old")
    world.clock.advance(minutes=1)
    second = resolver.tokens.set("alice", SERVICE, creds("new"), scope="acme", label="new")
    assert second.id == first.id
    assert second.version == 2
    assert second.created_at == first.created_at and second.updated_at == world.clock.now
    assert len(resolver.tokens.list("alice")) == 1
    assert resolver.resolve("alice", world.acme_repo).credentials == creds("new")


def test_token_info_never_shows_the_secret(resolver: Resolver) -> None:
    info = resolver.tokens.set("alice", SERVICE, creds("s3cr3t-value", "alice"), scope=ALL_TENANTS)
    for text in (repr(info), str(info), repr(resolver.tokens.list("alice"))):
        assert "s3cr3t-value" not in text
