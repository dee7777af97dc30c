"""Every branch of the resolution order (DESIGN section 3), in order, and what each says."""

from __future__ import annotations

from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    CredentialRequest,
    InvalidInputError,
    NoCredentialsError,
    NotAuthorizedError,
    PluginError,
    Resolution,
    Resolver,
    Tracker,
    UnknownTrackerTypeError,
    hookimpl,
)

from .core_world import BOT_ACME, SERVICE, World, assert_actionable, assert_one_sentence, creds


class VaultSource:
    """A third-party credential source: credentials from a vault, for the users it knows."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.calls = 0

    @hookimpl
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        self.calls += 1
        secret = self.known.get(request.user)
        if secret is None:
            return None
        return request.resolution(
            creds(secret), source="vault", reason=f"Using {request.user}'s credentials from the vault."
        )


# -- step 0: the tenant check ------------------------------------------------------------------

def test_user_outside_the_tenant_is_refused_before_any_token_is_looked_at(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("mallory", SERVICE, creds("mallory-token"), scope=ALL_TENANTS)
    world.store.calls.clear()
    with pytest.raises(NotAuthorizedError) as excinfo:
        resolver.resolve("mallory", world.acme_repo)
    assert world.store.calls == []
    assert "'mallory' is not authorized for tenant 'acme'" in excinfo.value.message
    assert_actionable(excinfo.value)


def test_third_party_sources_are_not_asked_for_an_unauthorized_user(world: World, resolver: Resolver) -> None:
    vault = VaultSource({"mallory": "vault-secret"})
    with world.plugins.registered(vault):
        with pytest.raises(NotAuthorizedError):
            resolver.resolve("mallory", world.acme_repo)
    assert vault.calls == 0


def test_unknown_user_is_not_authorized(world: World, resolver: Resolver) -> None:
    with pytest.raises(NotAuthorizedError):
        resolver.resolve("nobody", world.acme_repo)
    assert world.store.calls == []


def test_revoked_membership_takes_effect_at_once(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("bob", world.acme_repo.url, creds("bob-token"), scope="acme")
    assert resolver.resolve("bob", world.acme_repo).source == "personal"
    world.directory.remove_member("bob", "acme")
    with pytest.raises(NotAuthorizedError):
        resolver.resolve("bob", world.acme_repo)


def test_bad_arguments_are_refused(world: World, resolver: Resolver) -> None:
    for user in ("", " alice", "a\x00b", "x" * 201):
        with pytest.raises(InvalidInputError) as excinfo:
            resolver.resolve(user, world.acme_repo)
        assert_actionable(excinfo.value)
    with pytest.raises(InvalidInputError):
        resolver.resolve("alice", "acme/repo")  # type: ignore[arg-type]
    assert world.store.calls == []


def test_tracker_of_an_uninstalled_type(world: World, resolver: Resolver) -> None:
    gitea = Tracker(tenant="acme", id="gitea", type="gitea", base_url="https://gitea.acme.test")
    with pytest.raises(UnknownTrackerTypeError) as excinfo:
        resolver.resolve("alice", gitea)
    assert "gitea" in excinfo.value.message
    assert "pip install tokenproviders-gitea" in excinfo.value.hint
    assert_actionable(excinfo.value)


# -- steps 1-3: personal tokens, most specific first ---------------------------------------------

def _set_all_four(resolver: Resolver, tracker: Tracker, owner: str = "alice") -> dict[tuple[str, str], int]:
    ids = {}
    for url in (tracker.url, SERVICE):
        for scope in (tracker.tenant, ALL_TENANTS):
            info = resolver.tokens.set(owner, url, creds(f"{owner}|{url}|{scope}"), scope=scope)
            assert info.id is not None
            ids[(url, scope)] = info.id
    return ids


def test_most_specific_personal_token_wins_then_gives_way_in_order(world: World, resolver: Resolver) -> None:
    tracker = world.acme_repo
    ids = _set_all_four(resolver, tracker)
    order = [(tracker.url, "acme"), (tracker.url, ALL_TENANTS), (SERVICE, "acme"), (SERVICE, ALL_TENANTS)]
    for url, scope in order:
        resolution = resolver.resolve("alice", tracker)
        assert resolution.source == "personal"
        assert (resolution.matched_url, resolution.scope) == (url, scope)
        assert resolution.token_id == ids[(url, scope)]
        assert resolution.credentials == creds(f"alice|{url}|{scope}")
        assert resolution.is_personal and resolution.tenant == "acme"
        assert_one_sentence(resolution.reason)
        resolver.tokens.delete("alice", url, scope)
    assert resolver.resolve("alice", tracker).source == "bot"


def test_tenant_scoped_beats_all_tenants(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("everywhere"), scope=ALL_TENANTS)
    resolver.tokens.set("alice", world.acme_repo.url, creds("acme-only"), scope="acme")
    resolution = resolver.resolve("alice", world.acme_repo)
    assert resolution.credentials == creds("acme-only")
    assert "scoped for tenant 'acme'" in resolution.reason


def test_exact_tracker_url_beats_service_url(world: World, resolver: Resolver) -> None:
    # Even a tenant-scoped service token loses to an all-tenants token for the exact URL.
    resolver.tokens.set("alice", SERVICE, creds("service"), scope="acme")
    resolver.tokens.set("alice", world.acme_repo.url, creds("exact"), scope=ALL_TENANTS)
    resolution = resolver.resolve("alice", world.acme_repo)
    assert resolution.credentials == creds("exact")
    assert "the tracker's own URL" in resolution.reason
    assert_one_sentence(resolution.reason)


def test_service_token_serves_every_tracker_of_the_service(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", "HTTPS://Git.Example.com:443/", creds("service"), scope=ALL_TENANTS)
    for tracker in (world.acme_repo, world.beta_repo):
        resolution = resolver.resolve("alice", tracker)
        assert (resolution.source, resolution.matched_url) == ("personal", SERVICE)
        assert "the tracker's service URL" in resolution.reason
        assert "all of the user's tenants" in resolution.reason


def test_service_token_does_not_serve_another_host(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", SERVICE, creds("service"), scope=ALL_TENANTS)
    with pytest.raises(NoCredentialsError):
        resolver.resolve("alice", world.acme_jira)


def test_tenant_scoped_token_is_not_used_in_another_tenant(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", SERVICE, creds("acme-service"), scope="acme")
    assert resolver.resolve("alice", world.acme_repo).source == "personal"
    beta = resolver.resolve("alice", world.beta_repo)
    assert beta.source == "bot"
    assert beta.credentials != creds("acme-service")


def test_another_users_token_is_never_used(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    resolution = resolver.resolve("bob", world.acme_repo)
    assert resolution.source == "bot"
    assert resolution.credentials == creds(BOT_ACME)


def test_a_token_is_never_matched_by_prefix(world: World, resolver: Resolver) -> None:
    # A token for https://git.example.com/acme is neither the tracker's URL nor its service URL.
    world.directory.add_tracker(
        Tracker(tenant="acme", id="group", type="memory", base_url=f"{SERVICE}/acme")
    )
    resolver.tokens.set("alice", f"{SERVICE}/acme", creds("group-token"), scope="acme")
    assert resolver.resolve("alice", world.acme_repo).source == "bot"


# -- step 4: third-party sources --------------------------------------------------------------

def test_third_party_source_comes_after_personal_tokens_and_before_the_bot(world: World, resolver: Resolver) -> None:
    vault = VaultSource({"alice": "vault-alice", "bob": "vault-bob"})
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    with world.plugins.registered(vault, name="vault"):
        personal = resolver.resolve("alice", world.acme_repo)
        assert personal.source == "personal"
        assert vault.calls == 0  # firstresult: the personal token ended the call
        from_vault = resolver.resolve("bob", world.acme_repo)
        assert from_vault.source == "vault"
        assert from_vault.credentials == creds("vault-bob")
        assert from_vault.scope is None and from_vault.token_id is None
        assert_one_sentence(from_vault.reason)
        # A source that defers (None) lets the bot answer.
        deferred = resolver.resolve("alice", world.beta_repo)
        assert deferred.source == "vault"
        vault.known.clear()
        assert resolver.resolve("bob", world.acme_repo).source == "bot"
    assert resolver.resolve("bob", world.acme_repo).source == "bot"


def test_third_party_source_order_does_not_depend_on_registration_order(world: World, resolver: Resolver) -> None:
    first, second = VaultSource({"bob": "first"}), VaultSource({"bob": "second"})
    resolver.tokens.set("bob", world.acme_repo.url, creds("bob-token"), scope="acme")
    with world.plugins.registered(first, name="first"), world.plugins.registered(second, name="second"):
        assert resolver.resolve("bob", world.acme_repo).source == "personal"


class GreedySource:
    """Tries to jump ahead of personal tokens."""

    @hookimpl(tryfirst=True)
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        return request.resolution(creds("greedy"), source="greedy", reason="Greedy.")


class LastWordSource:
    """Tries to run after the bot."""

    @hookimpl(trylast=True)
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        return None


class WrappingSource:
    """Tries to replace whatever the other sources decided."""

    @hookimpl(wrapper=True)
    def tokenproviders_credentials(self, request: CredentialRequest) -> Any:
        yield
        return request.resolution(creds("wrapped"), source="wrapper", reason="Wrapped.")


@pytest.mark.parametrize("plugin", [GreedySource(), LastWordSource(), WrappingSource()], ids=type)
def test_third_party_source_may_not_reorder_itself(world: World, resolver: Resolver, plugin: object) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    with pytest.raises(PluginError) as excinfo:
        world.plugins.register(plugin, name="pushy")
    assert_actionable(excinfo.value)
    assert "pushy" in world.plugins.broken()
    assert "tokenproviders_credentials may not" in world.plugins.broken()["pushy"]
    assert [p.broken for p in world.plugins.list() if p.name == "pushy"] == [world.plugins.broken()["pushy"]]
    assert not world.plugins.manager.has_plugin("pushy")
    resolution = resolver.resolve("alice", world.acme_repo)
    assert resolution.source == "personal"
    assert resolver.resolve("bob", world.acme_repo).source == "bot"


def test_source_returning_something_else_is_a_plugin_error(world: World, resolver: Resolver) -> None:
    class Sloppy:
        @hookimpl
        def tokenproviders_credentials(self, request: CredentialRequest) -> Any:
            return creds("not-a-resolution")

    with world.plugins.registered(Sloppy()):
        with pytest.raises(PluginError) as excinfo:
            resolver.resolve("bob", world.acme_repo)
    assert "not a Resolution" in excinfo.value.message
    assert_actionable(excinfo.value)


# -- steps 5-6: the bot, then nothing ---------------------------------------------------------

def test_bot_is_the_last_resort_and_says_so(world: World, resolver: Resolver) -> None:
    resolution = resolver.resolve("bob", world.acme_repo)
    assert resolution.source == "bot"
    assert resolution.credentials == creds(BOT_ACME)
    assert resolution.scope is None and resolution.token_id is None and resolution.fallback_from is None
    assert "bot credentials" in resolution.reason
    assert "no personal token" in resolution.reason
    assert_one_sentence(resolution.reason)


def test_no_credentials_names_the_urls_and_the_fields(world: World, resolver: Resolver) -> None:
    with pytest.raises(NoCredentialsError) as excinfo:
        resolver.resolve("alice", world.acme_jira)
    error = excinfo.value
    assert_actionable(error)
    assert "no personal token for https://jira.acme.test" in error.message
    assert "the tracker has no bot credentials" in error.message
    for words in ("api_password", "required", "api_username", "optional", "API token"):
        assert words in str(error)
    assert "resolver.tokens.set(owner='alice', url='https://jira.acme.test'" in error.hint


def test_resolution_is_immutable(world: World, resolver: Resolver) -> None:
    import dataclasses

    resolution = resolver.resolve("bob", world.acme_repo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolution.source = "personal"  # type: ignore[misc]


def test_last_used_time_is_recorded_coarsely(world: World, resolver: Resolver) -> None:
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    resolver.resolve("alice", world.acme_repo)
    resolver.resolve("alice", world.acme_repo)
    assert world.store.calls.count("mark_used") == 1
    stored = resolver.tokens.get("alice", world.acme_repo.url, "acme")
    assert stored is not None and stored.last_used_at == world.clock.now and stored.id == info.id
    world.clock.advance(minutes=5)
    resolver.resolve("alice", world.acme_repo)
    assert world.store.calls.count("mark_used") == 2


def test_a_source_registered_straight_on_the_pluggy_manager_is_not_skipped(world: World, resolver: Resolver) -> None:
    # The resolve fast path (built-in sources called directly) must notice any other
    # implementation, however it was registered.
    assert resolver.resolve("bob", world.acme_repo).source == "bot"
    vault = VaultSource({"bob": "vault-bob"})
    world.plugins.manager.register(vault, name="vault-direct")
    try:
        assert resolver.resolve("bob", world.acme_repo).source == "vault"
    finally:
        world.plugins.manager.unregister(name="vault-direct")
    assert resolver.resolve("bob", world.acme_repo).source == "bot"
