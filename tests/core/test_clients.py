"""Authenticated clients (the cache), talking to the tracker (error mapping), and the drop-down."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tokenproviders import (
    ALL_TENANTS,
    CredentialsRejectedError,
    InvalidInputError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    Resolver,
    TrackerChoice,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.resolver import ClientCache

from .core_world import BOT_ACME, NOW, SERVICE, World, assert_actionable, assert_no_secret, creds

# -- the client cache ---------------------------------------------------------------------------

def test_same_resolution_same_client(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    first = resolver.client("alice", world.acme_repo)
    assert resolver.client("alice", world.acme_repo) is first
    assert world.tracker_type.built == 1
    assert first.credentials == creds("alice-token")


def test_clients_are_per_user_tenant_and_tracker(world: World, resolver: Resolver) -> None:
    clients = [
        resolver.client("alice", world.acme_repo),
        resolver.client("bob", world.acme_repo),
        resolver.client("alice", world.beta_repo),
    ]
    assert len({id(c) for c in clients}) == 3
    assert world.tracker_type.built == 3


@pytest.mark.parametrize("change", ["set-again", "set-other-scope", "delete", "store-version-bump"])
def test_a_token_change_gives_a_new_client(world: World, resolver: Resolver, change: str) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    before = resolver.client("alice", world.acme_repo)
    if change == "set-again":  # same credentials, new version
        resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    elif change == "set-other-scope":
        resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope=ALL_TENANTS)
    elif change == "delete":
        resolver.tokens.delete("alice", world.acme_repo.url, "acme")
    else:  # another process replaced the token: only the version tells
        world.store.put("alice", world.acme_repo.url, "acme", creds("alice-token"), now=world.clock.now)
    after = resolver.client("alice", world.acme_repo)
    assert after is not before
    assert world.tracker_type.built == 2


def test_another_users_token_change_keeps_my_client(world: World, resolver: Resolver) -> None:
    mine = resolver.client("bob", world.acme_repo)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    assert resolver.client("bob", world.acme_repo) is mine


def test_expired_token_client_is_not_served(world: World, resolver: Resolver) -> None:
    resolver.tokens.set(
        "alice", world.acme_repo.url, creds("alice-token"), scope="acme", expires_at=NOW + timedelta(hours=1)
    )
    resolution = resolver.resolve("alice", world.acme_repo)
    client = resolver.client_for(resolution)
    assert resolver.client_for(resolution) is client
    world.clock.advance(hours=1)
    with pytest.raises(PersonalTokenUnusableError) as excinfo:
        resolver.client("alice", world.acme_repo)
    assert_actionable(excinfo.value)
    # A resolution kept from before the expiry builds nothing either.
    with pytest.raises(PersonalTokenUnusableError) as excinfo:
        resolver.client_for(resolution)
    assert "expired" in excinfo.value.message
    assert_actionable(excinfo.value)
    assert world.tracker_type.built == 1


def test_cache_drops_entries_past_their_expiry() -> None:
    cache = ClientCache(max_size=4)
    client = object()
    cache.put(("acme", "repo", "alice"), client, NOW + timedelta(minutes=1))
    assert cache.get(("acme", "repo", "alice"), NOW) is client
    assert cache.get(("acme", "repo", "alice"), NOW + timedelta(minutes=1)) is None
    assert len(cache) == 0


def test_cache_is_a_bounded_lru(world: World) -> None:
    resolver = world.resolver(cache_size=2)
    alice = resolver.client("alice", world.acme_repo)
    resolver.client("bob", world.acme_repo)
    assert resolver.client("alice", world.acme_repo) is alice  # alice is now the most recent
    resolver.client("alice", world.beta_repo)  # evicts bob, the least recently used
    assert len(resolver.clients) == 2
    assert resolver.client("alice", world.acme_repo) is alice
    assert world.tracker_type.built == 3
    resolver.client("bob", world.acme_repo)
    assert world.tracker_type.built == 4


def test_cache_can_be_disabled_and_refuses_a_negative_size(world: World) -> None:
    resolver = world.resolver(cache_size=0)
    assert resolver.client("bob", world.acme_repo) is not resolver.client("bob", world.acme_repo)
    assert len(resolver.clients) == 0
    with pytest.raises(InvalidInputError):
        world.resolver(cache_size=-1)


def test_bot_password_change_gives_a_new_client(world: World, resolver: Resolver) -> None:
    before = resolver.client("bob", world.acme_repo)
    rotated = replace(world.acme_repo, bot_credentials=creds("rotated-bot-secret"))
    world.directory.add_tracker(rotated, replace=True)
    after = resolver.client("bob", rotated)
    assert after is not before
    assert after.credentials == creds("rotated-bot-secret")
    assert resolver.client("bob", rotated) is after


def test_forget_clients(world: World, resolver: Resolver) -> None:
    resolver.client("alice", world.acme_repo)
    resolver.client("bob", world.acme_repo)
    resolver.client("alice", world.beta_repo)
    assert resolver.forget_clients(tenant="beta") == 1
    assert resolver.forget_clients(user="bob") == 1
    assert resolver.forget_clients() == 1
    assert len(resolver.clients) == 0


# -- errors from the tracker --------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
def test_rejected_bot_credentials(world: World, resolver: Resolver, status: int) -> None:
    world.backend.fail_status = status
    with pytest.raises(CredentialsRejectedError) as excinfo:
        resolver.verify("bob", world.acme_repo)
    error = excinfo.value
    assert not isinstance(error, PersonalTokenUnusableError)
    assert error.status == status
    assert "rejected its bot credentials" in error.message
    assert "bot credentials" in error.hint
    assert_actionable(error)
    assert_no_secret(error, BOT_ACME)
    # The library's exception (which may hold the token in headers or URLs) is not attached.
    assert error.__cause__ is None
    assert error.__context__ is None


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_personal_token_names_the_token(world: World, resolver: Resolver, status: int) -> None:
    info = resolver.tokens.set("alice", SERVICE, creds("alice-token"), scope=ALL_TENANTS)
    world.backend.fail_status = status
    with pytest.raises(PersonalTokenRejectedError) as excinfo:
        resolver.report_issue("alice", world.acme_repo, "It broke")
    error = excinfo.value
    assert isinstance(error, CredentialsRejectedError) and isinstance(error, PersonalTokenUnusableError)
    assert error.status == status and error.token_id == info.id
    assert f"personal token #{info.id} for {SERVICE} (all tenants)" in error.message
    assert SERVICE in error.hint
    assert_actionable(error)
    assert_no_secret(error, "alice-token")


def test_rejected_third_party_credentials_name_the_source(world: World, resolver: Resolver) -> None:
    from .test_resolve_order import VaultSource

    world.backend.fail_status = 401
    with world.plugins.registered(VaultSource({"bob": "vault-bob"})):
        with pytest.raises(CredentialsRejectedError) as excinfo:
            resolver.add_comment("bob", world.acme_repo, "1", "me too")
    assert "from source 'vault'" in excinfo.value.message
    assert_actionable(excinfo.value)


def test_a_rejected_client_is_dropped_from_the_cache(world: World, resolver: Resolver) -> None:
    resolver.client("bob", world.acme_repo)
    world.backend.fail_status = 401
    with pytest.raises(CredentialsRejectedError):
        resolver.verify("bob", world.acme_repo)
    assert len(resolver.clients) == 0


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_unavailable_tracker(world: World, resolver: Resolver, status: int) -> None:
    world.backend.fail_status = status
    with pytest.raises(TrackerUnavailableError) as excinfo:
        resolver.verify("bob", world.acme_repo)
    assert excinfo.value.status == status
    assert "is unavailable" in excinfo.value.message
    assert "time out after 10 s" in excinfo.value.hint
    assert_actionable(excinfo.value)


@pytest.mark.parametrize("status", [404, 410])
def test_wrong_tracker_url_is_told_apart_from_a_bad_token(world: World, resolver: Resolver, status: int) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    world.backend.fail_status = status
    with pytest.raises(TrackerURLError) as excinfo:
        resolver.verify("alice", world.acme_repo)
    assert not isinstance(excinfo.value, CredentialsRejectedError)
    assert "the URL, project or repository is wrong" in excinfo.value.message
    assert_actionable(excinfo.value)


def test_other_client_errors_are_request_errors(world: World, resolver: Resolver) -> None:
    world.backend.fail_status = 422
    with pytest.raises(TrackerRequestError) as excinfo:
        resolver.report_issue("bob", world.acme_repo, "It broke")
    assert not isinstance(excinfo.value, TrackerURLError)
    assert excinfo.value.status == 422
    assert_actionable(excinfo.value)


def test_socket_failures_are_unavailable(world: World, resolver: Resolver) -> None:
    def refuse(*args: object) -> None:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    world.tracker_type.whoami = refuse  # type: ignore[method-assign]
    with pytest.raises(TrackerUnavailableError) as excinfo:
        resolver.verify("bob", world.acme_repo)
    assert "ConnectionRefusedError" in excinfo.value.message


def test_unclassified_exceptions_become_our_error_without_the_library_exception(
    world: World, resolver: Resolver
) -> None:
    # A library exception the plugin does not classify may quote a header or URL with the token
    # (requests' InvalidHeader does): it is replaced, never passed on or chained.
    def crash(*args: object) -> None:
        raise KeyError(f"header value {BOT_ACME!r}")

    world.tracker_type.whoami = crash  # type: ignore[method-assign]
    with pytest.raises(TrackerRequestError) as excinfo:
        resolver.verify("bob", world.acme_repo)
    error = excinfo.value
    assert "KeyError" in error.message and "base_url" in error.message
    assert error.__cause__ is None and error.__context__ is None
    assert_no_secret(error, BOT_ACME)


def test_unicode_errors_are_classified_without_the_value(world: World, resolver: Resolver) -> None:
    def crash(*args: object) -> None:
        BOT_ACME.__add__("\u20ac").encode("latin-1")

    world.tracker_type.whoami = crash  # type: ignore[method-assign]
    with pytest.raises(TrackerRequestError, match="could not be encoded") as excinfo:
        resolver.verify("bob", world.acme_repo)
    assert_no_secret(excinfo.value, BOT_ACME)


def test_report_and_comment_are_filed_as_the_resolved_person(world: World, resolver: Resolver) -> None:
    world.backend.add_user("alice", "alice-token")
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    issue = resolver.report_issue("alice", world.acme_repo, "It broke", "steps", labels=["bug"])
    assert issue.resolution is not None and issue.resolution.source == "personal"
    assert issue.url == f"{world.acme_repo.url}/issues/{issue.id}"
    recorded = world.backend.issues[issue.id]
    assert (recorded.reporter, recorded.title, recorded.body) == ("alice", "It broke", "steps")
    assert recorded.labels == ("bug",)
    used = resolver.add_comment("bob", world.acme_repo, issue.id, "me too")
    assert used.source == "bot"
    assert recorded.comments == [("acme-bot", "me too")]
    assert resolver.verify("alice", world.acme_repo).login == "alice"
    with pytest.raises(InvalidInputError):
        resolver.report_issue("alice", world.acme_repo, "  ")
    with pytest.raises(InvalidInputError):
        resolver.add_comment("alice", world.acme_repo, issue.id, "")


# -- the drop-down -------------------------------------------------------------------------------

def test_trackers_for_lists_tracker_and_service_urls_across_tenants(world: World, resolver: Resolver) -> None:
    choices = resolver.trackers_for("alice")
    assert [c.url for c in choices] == sorted(c.url for c in choices)
    by_url = {c.url: c for c in choices}
    assert set(by_url) == {SERVICE, world.acme_repo.url, world.beta_repo.url, world.acme_jira.url}
    assert by_url[SERVICE] == TrackerChoice(
        url=SERVICE, kind="service", type="memory", title=world.tracker_type.title,
        trackers=(("acme", "repo"), ("beta", "repo")),
    )
    assert by_url[SERVICE].tenants == ("acme", "beta")
    assert by_url[world.acme_repo.url].kind == "tracker"
    assert by_url[world.acme_repo.url].title == "Acme repo"
    assert by_url[world.acme_repo.url].trackers == (("acme", "repo"),)
    # Every choice is accepted by tokens.set for some scope, and only those.
    for choice in choices:
        resolver.tokens.set("alice", choice.url, creds("t"), scope=choice.tenants[0])


def test_trackers_for_shows_only_the_users_tenants(world: World, resolver: Resolver) -> None:
    urls = [c.url for c in resolver.trackers_for("bob")]
    assert world.beta_repo.url not in urls
    assert resolver.trackers_for("nobody") == []
    service = next(c for c in resolver.trackers_for("bob") if c.url == SERVICE)
    assert service.trackers == (("acme", "repo"),)


def test_trackers_for_skips_uninstalled_types(world: World, resolver: Resolver) -> None:
    from tokenproviders import Tracker

    world.directory.add_tracker(Tracker(tenant="acme", id="gitea", type="gitea", base_url="https://gitea.test"))
    assert "https://gitea.test" not in [c.url for c in resolver.trackers_for("alice")]


def test_directory_lookups(world: World, resolver: Resolver) -> None:
    from tokenproviders import UnknownTrackerError

    assert resolver.tracker("acme", "repo") is world.acme_repo
    with pytest.raises(UnknownTrackerError) as excinfo:
        resolver.tracker("acme", "nope")
    assert "its trackers: jira, repo" in excinfo.value.message
    assert_actionable(excinfo.value)
    with pytest.raises(InvalidInputError) as excinfo2:
        world.directory.add_tracker(world.acme_repo)
    assert "replace=True" in excinfo2.value.hint
    with pytest.raises(UnknownTrackerError):
        world.directory.remove_tracker("acme", "nope")
