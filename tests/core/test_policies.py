"""Policies (require personal, fallback on unusable tokens) and the observers of resolutions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ConfigurationError,
    NoCredentialsError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    Policies,
    Policy,
    Resolution,
    Resolver,
    SecretUnreadableError,
    hookimpl,
)
from tokenproviders.model import PersonalToken

from .core_world import BOT_ACME, SERVICE, SpyStore, World, assert_actionable, assert_one_sentence, creds

FALLBACK = Policies(default=Policy(fallback_on_unusable=True))


# -- require_personal -------------------------------------------------------------------------

def test_require_personal_per_tenant(world: World) -> None:
    resolver = world.resolver(policies=Policies(tenants={"acme": Policy(require_personal=True)}))
    with pytest.raises(NoCredentialsError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    assert "the policy requires personal credentials" in excinfo.value.message
    assert "api_password" in excinfo.value.hint
    assert_actionable(excinfo.value)
    assert resolver.resolve("alice", world.beta_repo).source == "bot"  # another tenant
    resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    assert resolver.resolve("alice", world.acme_repo).source == "personal"


def test_require_personal_per_tracker_overrides_the_tenant(world: World) -> None:
    other = world.acme_repo.__class__(
        tenant="acme", id="other", type="memory", base_url=f"{SERVICE}/acme/other", bot_credentials=creds(BOT_ACME)
    )
    world.directory.add_tracker(other)
    policies = Policies(
        tenants={"acme": Policy(require_personal=True)},
        trackers={("acme", "other"): Policy()},
    )
    resolver = world.resolver(policies=policies)
    assert resolver.policy_for(other) == Policy()
    assert resolver.resolve("bob", other).source == "bot"
    with pytest.raises(NoCredentialsError):
        resolver.resolve("bob", world.acme_repo)
    only_tracker = world.resolver(policies=Policies(trackers={("acme", "repo"): Policy(require_personal=True)}))
    with pytest.raises(NoCredentialsError):
        only_tracker.resolve("bob", world.acme_repo)
    assert only_tracker.resolve("bob", other).source == "bot"


def test_require_personal_still_accepts_a_third_party_source(world: World) -> None:
    from .test_resolve_order import VaultSource

    resolver = world.resolver(policies=Policies(default=Policy(require_personal=True)))
    with world.plugins.registered(VaultSource({"bob": "vault-bob"})):
        assert resolver.resolve("bob", world.acme_repo).source == "vault"


def test_policies_must_be_policy_objects() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        Policies(tenants={"acme": {"require_personal": True}})  # type: ignore[dict-item]
    assert_actionable(excinfo.value)


# -- unusable personal tokens -----------------------------------------------------------------

def _expired_token(world: World, resolver: Resolver, *, scope: str = "acme") -> int:
    info = resolver.tokens.set(
        "alice", world.acme_repo.url, creds("alice-token"), scope=scope,
        expires_at=world.clock.now + timedelta(hours=1),
    )
    world.clock.advance(hours=2)
    assert info.id is not None
    return info.id


def test_expired_token_is_an_error_by_default(world: World, resolver: Resolver) -> None:
    token_id = _expired_token(world, resolver)
    with pytest.raises(PersonalTokenUnusableError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    error = excinfo.value
    assert error.token_id == token_id
    assert "expired on 2030-01-01T13:00:00+00:00" in error.message
    assert "does not fall back to the bot" in error.message
    assert "renew it" in error.hint and world.acme_repo.url in error.hint
    assert_actionable(error)


def test_expired_token_does_not_fall_back_even_to_a_less_specific_token(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    _expired_token(world, resolver)
    with pytest.raises(PersonalTokenUnusableError):
        resolver.resolve("alice", world.acme_repo)


def test_expired_token_falls_back_to_the_bot_when_the_policy_allows_and_says_so(world: World) -> None:
    resolver = world.resolver(policies=FALLBACK)
    _expired_token(world, resolver)
    resolution = resolver.resolve("alice", world.acme_repo)
    assert resolution.source == "bot"
    assert resolution.credentials == creds(BOT_ACME)
    assert resolution.fallback_from is not None and "expired" in resolution.fallback_from
    assert "expired on" in resolution.reason
    assert "the policy allows falling back" in resolution.reason
    assert_one_sentence(resolution.reason)


def test_fallback_prefers_the_next_usable_personal_token_over_the_bot(world: World) -> None:
    resolver = world.resolver(policies=FALLBACK)
    service = resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    _expired_token(world, resolver)
    resolution = resolver.resolve("alice", world.acme_repo)
    assert (resolution.source, resolution.token_id) == ("personal", service.id)
    assert resolution.credentials == creds("alice-service")
    assert "expired" in resolution.reason and "the policy allows falling back" in resolution.reason
    assert_one_sentence(resolution.reason)


def test_fallback_with_require_personal_is_no_credentials(world: World) -> None:
    resolver = world.resolver(policies=Policies(default=Policy(require_personal=True, fallback_on_unusable=True)))
    _expired_token(world, resolver)
    with pytest.raises(NoCredentialsError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    assert "expired" in excinfo.value.message
    assert "the policy requires personal credentials" in excinfo.value.message
    assert_actionable(excinfo.value)


class UnreadableStore(SpyStore):
    """A store whose sealed secrets for one URL cannot be opened (wrong key, tampered blob)."""

    def __init__(self, unreadable_url: str) -> None:
        super().__init__()
        self.unreadable_url = unreadable_url

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
        token = super().lookup(owner, candidates)
        if token is not None and token.url == self.unreadable_url:
            raise SecretUnreadableError(
                "the secret was sealed with key 'k1', which is not in the key ring", key_id="k1", token=token.info()
            )
        return token


def test_undecryptable_token_is_an_error_by_default(world: World) -> None:
    store = UnreadableStore(world.acme_repo.url)
    resolver = Resolver(world.directory, store, plugins=world.plugins, clock=world.clock)
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    with pytest.raises(PersonalTokenUnusableError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    assert excinfo.value.token_id == info.id
    assert "cannot be decrypted" in excinfo.value.message
    assert "key 'k1'" in excinfo.value.message
    assert_actionable(excinfo.value)


def test_undecryptable_token_falls_back_when_the_policy_allows_and_says_so(world: World) -> None:
    store = UnreadableStore(world.acme_repo.url)
    resolver = Resolver(world.directory, store, plugins=world.plugins, clock=world.clock, policies=FALLBACK)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-token"), scope="acme")
    resolution = resolver.resolve("alice", world.acme_repo)
    assert resolution.source == "bot"
    assert "cannot be decrypted" in resolution.reason
    assert "the policy allows falling back" in resolution.reason
    assert_one_sentence(resolution.reason)
    # ... and to a readable personal token first, when there is one.
    service = resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope="acme")
    resolution = resolver.resolve("alice", world.acme_repo)
    assert (resolution.source, resolution.token_id) == ("personal", service.id)


def test_a_token_that_no_longer_fits_the_tracker_type_is_unusable(world: World, resolver: Resolver) -> None:
    # Stored behind the manager's back (e.g. before the plugin changed its fields).
    world.store.put("alice", world.acme_repo.url, "acme", creds("", "alice"), now=world.clock.now)
    with pytest.raises(PersonalTokenUnusableError) as excinfo:
        resolver.resolve("alice", world.acme_repo)
    assert "does not fit tracker type 'memory'" in excinfo.value.message
    assert_actionable(excinfo.value)


def test_token_rejected_by_the_tracker_is_an_error_by_default(world: World, resolver: Resolver) -> None:
    info = resolver.tokens.set("alice", world.acme_repo.url, creds("revoked-token"), scope="acme")
    with pytest.raises(PersonalTokenRejectedError) as excinfo:
        resolver.report_issue("alice", world.acme_repo, "It broke")
    error = excinfo.value
    assert isinstance(error, PersonalTokenUnusableError)
    assert error.token_id == info.id and error.status == 401
    assert "rejected alice's personal token" in error.message
    assert_actionable(error)
    assert world.backend.issues == {}


def test_token_rejected_by_the_tracker_falls_back_when_the_policy_allows_and_says_so(world: World) -> None:
    resolver = world.resolver(policies=FALLBACK)
    resolver.tokens.set("alice", world.acme_repo.url, creds("revoked-token"), scope="acme")
    issue = resolver.report_issue("alice", world.acme_repo, "It broke")
    assert world.backend.issues[issue.id].reporter == "acme-bot"
    assert issue.resolution is not None
    assert issue.resolution.source == "bot"
    assert "rejected by the tracker (HTTP 401)" in issue.resolution.reason
    assert "the policy allows falling back" in issue.resolution.reason
    assert_one_sentence(issue.resolution.reason)
    assert resolver.verify("alice", world.acme_repo).login == "acme-bot"


# -- observers ----------------------------------------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.seen: list[Resolution] = []

    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution) -> None:
        self.seen.append(resolution)


class Broken:
    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution) -> None:
        raise RuntimeError("the audit database is down")


class Counter:
    """An observer that takes none of the hook's arguments (pluggy allows that)."""

    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def tokenproviders_resolved(self) -> None:
        self.count += 1


def test_observers_see_every_resolution_and_a_failing_one_does_not_fail_it(
    world: World, resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    recorder, counter = Recorder(), Counter()
    with world.plugins.registered(recorder, name="audit"), world.plugins.registered(Broken(), name="broken-audit"):
        with world.plugins.registered(counter, name="metrics"), caplog.at_level(logging.ERROR):
            first = resolver.resolve("bob", world.acme_repo)
            second = resolver.resolve("alice", world.beta_repo)
    assert recorder.seen == [first, second]
    assert counter.count == 2
    failures = [r for r in caplog.records if "broken-audit" in r.getMessage()]
    assert len(failures) == 2
    assert "bot-acme-secret" not in caplog.text


def test_observers_are_not_called_for_a_failed_resolution(world: World, resolver: Resolver) -> None:
    recorder = Recorder()
    with world.plugins.registered(recorder):
        with pytest.raises(NoCredentialsError):
            resolver.resolve("alice", world.acme_jira)
    assert recorder.seen == []


def test_rejected_token_falls_back_to_a_less_specific_personal_token_first(world: World) -> None:
    world.backend.add_user("alice", "alice-service")
    resolver = world.resolver(policies=FALLBACK)
    resolver.tokens.set("alice", world.acme_repo.url, creds("revoked-exact"), scope="acme")
    resolver.tokens.set("alice", world.acme_repo.url, creds("revoked-everywhere"), scope=ALL_TENANTS)
    service = resolver.tokens.set("alice", SERVICE, creds("alice-service"), scope=ALL_TENANTS)
    issue = resolver.report_issue("alice", world.acme_repo, "It broke")
    assert world.backend.issues[issue.id].reporter == "alice"
    assert issue.resolution is not None
    assert (issue.resolution.source, issue.resolution.token_id) == ("personal", service.id)
    assert issue.resolution.reason.count("was rejected by the tracker (HTTP 401)") == 2
    assert_one_sentence(issue.resolution.reason)


def test_a_source_calling_itself_personal_cannot_loop_the_fallback(world: World) -> None:
    from tokenproviders import CredentialRequest

    class Mislabelled:
        @hookimpl
        def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
            return request.resolution(creds("nobody-knows-this"), source="personal", reason="Mislabelled.")

    resolver = world.resolver(policies=FALLBACK)
    with world.plugins.registered(Mislabelled()):
        with pytest.raises(PersonalTokenRejectedError):
            resolver.verify("bob", world.acme_repo)
