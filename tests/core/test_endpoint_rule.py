"""The endpoint rule (DESIGN section 3): a personal secret, or one from a third-party source, goes
only where the tracker type trusts for the tracker's URL, under TLS rules that fit the secret's
scope. It holds on every path that sends one: resolution, and verification before saving.

The six built-in tracker types are checked against their fake servers: a second fake plays the
server of a tenant administrator who points ``api_url`` at it, and must receive nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ConfigurationError,
    CredentialRequest,
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Policies,
    Policy,
    Resolution,
    Resolver,
    Secret,
    Tracker,
    hookimpl,
)
from tokenproviders.testing.fakes import (
    FakeAzureBoards,
    FakeBugzilla,
    FakeGitHub,
    FakeGitLab,
    FakeJira,
    FakeRedmine,
    FakeTracker,
)
from tokenproviders.testing.memory_tracker import MemoryClient, MemoryTrackerPlugin, MemoryTrackerType
from tokenproviders.testing.world import register_on_fake

from .core_world import SERVICE, World, assert_actionable, assert_no_secret, creds

# -- the six built-in types against a foreign api_url -----------------------------------------------


@dataclass(frozen=True)
class Case:
    """One tracker type: where its tracker lives on a fake, and what an api_url looks like."""

    type: str
    fake: type[FakeTracker]
    path: str  # base_url = the real fake's URL + path
    api_path: str  # api_url = the attacker's URL + api_path
    secret: str
    options: Mapping[str, str] = field(default_factory=dict)


CASES = [
    Case("jira", FakeJira, "", "", "jira-alice-personal-token", {"project": "PROJ"}),
    Case("github", FakeGitHub, "/acme/widgets", "/api/v3", "ghp_alice_personal_token_0123456789"),
    Case("gitlab", FakeGitLab, "/grp/sub/proj", "/api/v4", "glpat-alice-personal-token-01"),
    Case("redmine", FakeRedmine, "", "", "redmine-alice-api-key-0123456789", {"project": "webshop"}),
    Case("bugzilla", FakeBugzilla, "", "/rest", "bugzilla-alice-api-key-0123",
         {"product": "Widgets", "component": "UI"}),
    Case("azureboards", FakeAzureBoards, "/contoso/WebShop", "/contoso", "azure-alice-pat-0123456789"),
]


@dataclass
class Attack:
    """alice is in ``acme`` (the real tracker) and ``0-evil`` (same base_url, api_url elsewhere)."""

    real: FakeTracker
    attacker: FakeTracker
    resolver: Resolver
    url: str
    main: Tracker
    twin: Tracker
    credentials: Credentials


@pytest.fixture(scope="module")
def installed() -> Plugins:
    return Plugins()


@pytest.fixture(params=CASES, ids=lambda case: case.type)
def attack(request: pytest.FixtureRequest, installed: Plugins) -> Iterator[Attack]:
    case: Case = request.param
    if case.type not in installed.tracker_types:
        pytest.skip(f"the tokenproviders-{case.type} plugin is not installed")
    with case.fake() as real, case.fake() as attacker:
        credentials = Credentials(api_password=Secret(case.secret))
        register_on_fake(real, "alice", credentials)
        register_on_fake(attacker, "alice", credentials)  # it would accept it: that is the point
        base_url = real.url + case.path
        main = Tracker(tenant="acme", id="main", type=case.type, base_url=base_url, options=case.options)
        twin = Tracker(
            tenant="0-evil", id="twin", type=case.type, base_url=base_url,
            api_url=attacker.url + case.api_path, options=case.options,
        )
        directory = MemoryDirectory(memberships=[("alice", "acme"), ("alice", "0-evil")], trackers=[main, twin])
        resolver = Resolver(directory, MemoryTokenStore(), plugins=installed)
        yield Attack(real, attacker, resolver, main.url, main, twin, credentials)


def test_set_with_verify_never_sends_the_token_to_a_foreign_api_url(attack: Attack) -> None:
    # 0-evil sorts first among alice's tenants: its tracker used to be the one verified on.
    info = attack.resolver.tokens.set("alice", attack.url, attack.credentials, scope=ALL_TENANTS, verify=True)
    assert attack.attacker.requests == []
    assert [r.identity for r in attack.real.requests if r.identity] != []  # verified on the real one
    assert info.scope == ALL_TENANTS
    with pytest.raises(ConfigurationError, match="another host"):
        attack.resolver.resolve("alice", attack.twin)
    assert attack.attacker.requests == []


def test_tokens_verify_picks_a_tracker_the_token_may_be_sent_to(attack: Attack) -> None:
    identity = attack.resolver.tokens.verify("alice", attack.url, attack.credentials, scope=ALL_TENANTS)
    assert identity.login
    assert attack.attacker.requests == []
    assert attack.real.requests != []


def test_verifying_on_the_twin_itself_is_refused(attack: Attack) -> None:
    for verify in (
        lambda: attack.resolver.tokens.verify_credentials(attack.twin, attack.credentials),
        lambda: attack.resolver.whoami_with(attack.twin, attack.credentials),
        lambda: attack.resolver.tokens.verify_credentials(attack.twin, attack.credentials, scope="0-evil"),
    ):
        with pytest.raises(ConfigurationError, match="another host") as excinfo:
            verify()
        assert_actionable(excinfo.value)
        assert_no_secret(excinfo.value, attack.credentials.api_password.reveal())
    assert attack.attacker.requests == []
    assert attack.real.requests == []


def test_verification_says_so_when_no_tracker_may_receive_the_token(attack: Attack) -> None:
    with pytest.raises(ConfigurationError, match="no tracker") as excinfo:
        attack.resolver.tokens.set("alice", attack.url, attack.credentials, scope="0-evil", verify=True)
    assert "0-evil/twin" in excinfo.value.message
    assert_actionable(excinfo.value)
    assert attack.resolver.tokens.list("alice") == []
    assert attack.attacker.requests == []


# -- TLS: weakened trackers and the scope of the secret --------------------------------------------

WEAKENINGS = [{"verify_tls": False}, {"ca_bundle": "/etc/evil/ca.pem"}]


def _weak_twin(world: World, tenant: str = "beta", **tls: Any) -> Tracker:
    """A tracker in another tenant of alice's with acme/repo's URL, whose TLS is weakened."""
    tracker = Tracker(tenant=tenant, id="weak", type="memory", base_url=world.acme_repo.base_url, **tls)
    world.directory.add_member("alice", tenant)
    world.directory.add_tracker(tracker)
    return tracker


@pytest.mark.parametrize("tls", WEAKENINGS, ids=["verify_tls-off", "own-ca_bundle"])
def test_an_all_tenants_token_is_not_sent_to_a_tracker_with_weakened_tls(
    world: World, resolver: Resolver, tls: dict[str, Any]
) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-wide-token"), scope=ALL_TENANTS)
    world.backend.add_user("alice", "alice-wide-token")
    weak = _weak_twin(world, **tls)
    with pytest.raises(ConfigurationError, match="TLS") as excinfo:
        resolver.verify("alice", weak)
    assert "scoped to tenant 'beta'" in excinfo.value.hint
    assert_actionable(excinfo.value)
    assert_no_secret(excinfo.value, "alice-wide-token")
    assert world.backend.calls == []
    # The same token still serves acme's own tracker, whose TLS is intact.
    assert resolver.verify("alice", world.acme_repo).login == "alice"


def test_a_service_wide_all_tenants_token_is_not_sent_there_either(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", SERVICE, creds("alice-service-token"), scope=ALL_TENANTS)
    weak = _weak_twin(world, verify_tls=False)
    with pytest.raises(ConfigurationError, match="TLS"):
        resolver.resolve("alice", weak)


@pytest.mark.parametrize("url", [None, SERVICE], ids=["tracker-url", "service-url"])
def test_a_token_scoped_to_the_trackers_own_tenant_is_used_there(
    world: World, resolver: Resolver, url: str | None
) -> None:
    weak = _weak_twin(world, verify_tls=False)
    resolver.tokens.set("alice", url or weak.url, creds("alice-beta-token"), scope="beta")
    resolution = resolver.resolve("alice", weak)
    assert (resolution.source, resolution.scope) == ("personal", "beta")


def test_the_bot_of_a_weakened_tracker_is_used_as_its_admin_configured_it(world: World, resolver: Resolver) -> None:
    weak = Tracker(tenant="beta", id="weak", type="memory", base_url=world.acme_repo.base_url,
                   verify_tls=False, bot_credentials=creds("beta-bot-secret"))
    world.directory.add_tracker(weak)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-wide-token"), scope=ALL_TENANTS)
    assert resolver.resolve("mallory", weak).source == "bot"


def test_the_policy_may_allow_all_tenants_tokens_on_a_weakened_tracker(world: World) -> None:
    weak = _weak_twin(world, ca_bundle="/etc/corp/ca.pem")
    resolver = world.resolver(
        policies=Policies(trackers={("beta", "weak"): Policy(allow_all_tenants_tokens_on_weak_tls=True)})
    )
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-wide-token"), scope=ALL_TENANTS)
    resolution = resolver.resolve("alice", weak)
    assert (resolution.source, resolution.scope) == ("personal", ALL_TENANTS)


def test_the_policy_flag_must_be_a_boolean() -> None:
    with pytest.raises(ConfigurationError, match="True or False"):
        Policy(allow_all_tenants_tokens_on_weak_tls="yes")  # type: ignore[arg-type]


class RecordingType(MemoryTrackerType):
    """The memory tracker type, recording on which tracker each client was built."""

    def __init__(self) -> None:
        super().__init__()
        self.built_for: list[str] = []

    def build_client(self, tracker: Tracker, credentials: Credentials, settings: Any) -> MemoryClient:
        self.built_for.append(f"{tracker.tenant}/{tracker.id}")
        client: MemoryClient = super().build_client(tracker, credentials, settings)
        return client


def _recording_world(*trackers: Tracker) -> tuple[Resolver, RecordingType]:
    tracker_type = RecordingType()
    tracker_type.backend.add_user("alice", "alice-token")
    directory = MemoryDirectory(memberships=[("alice", t.tenant) for t in trackers], trackers=trackers)
    plugins = Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(tracker_type)])
    return Resolver(directory, MemoryTokenStore(), plugins=plugins), tracker_type


URL = "https://tracker.example.com/acme"


@pytest.mark.parametrize("tls", WEAKENINGS, ids=["verify_tls-off", "own-ca_bundle"])
def test_verification_of_an_all_tenants_token_skips_weakened_trackers(tls: dict[str, Any]) -> None:
    weak = Tracker(tenant="0-weak", id="weak", type="memory", base_url=URL, **tls)
    main = Tracker(tenant="acme", id="main", type="memory", base_url=URL)
    resolver, tracker_type = _recording_world(weak, main)
    resolver.tokens.set("alice", URL, creds("alice-token"), scope=ALL_TENANTS, verify=True)
    assert tracker_type.built_for == ["acme/main"]
    # Scoped to the weakened tracker's own tenant, it is verified there.
    resolver.tokens.set("alice", URL, creds("alice-token"), scope="0-weak", verify=True)
    assert tracker_type.built_for == ["acme/main", "0-weak/weak"]


def test_verification_refuses_when_every_target_has_weakened_tls() -> None:
    weak = Tracker(tenant="0-weak", id="weak", type="memory", base_url=URL, verify_tls=False)
    resolver, tracker_type = _recording_world(weak)
    with pytest.raises(ConfigurationError, match="no tracker") as excinfo:
        resolver.tokens.set("alice", URL, creds("alice-token"), scope=ALL_TENANTS, verify=True)
    assert "0-weak/weak" in excinfo.value.message
    assert "scoped to tenant '0-weak'" in excinfo.value.hint
    assert tracker_type.built_for == []
    assert resolver.tokens.list("alice") == []


def test_verify_credentials_without_a_scope_counts_as_wider_than_the_tenant() -> None:
    weak = Tracker(tenant="0-weak", id="weak", type="memory", base_url=URL, verify_tls=False,
                   bot_credentials=creds("bot-token"))
    resolver, tracker_type = _recording_world(weak)
    tracker_type.backend.add_user("bot", "bot-token")
    with pytest.raises(ConfigurationError, match="TLS"):
        resolver.tokens.verify_credentials(weak, creds("alice-token"))
    assert tracker_type.built_for == []
    assert resolver.tokens.verify_credentials(weak, creds("alice-token"), scope="0-weak").login == "alice"
    # The tracker's own bot credentials go where its administrator points them.
    assert resolver.tokens.verify_credentials(weak, creds("bot-token")).login == "bot"


# -- third-party sources (F08) ------------------------------------------------------------------------


class ScopedVault:
    """A third-party source that hands alice's token out for any tracker, declaring ``scope``."""

    def __init__(self, scope: str | None) -> None:
        self.scope = scope

    @hookimpl
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        if request.user != "alice":
            return None
        return request.resolution(
            creds("alice-vault-token"), source="vault", reason="Using alice's token from the vault.",
            scope=self.scope,
        )


def test_a_third_party_source_is_held_to_the_api_url_rule(world: World, resolver: Resolver) -> None:
    twin = Tracker(tenant="beta", id="twin", type="memory", base_url=world.acme_repo.base_url,
                   api_url="https://collector.evil.test/api")
    world.directory.add_tracker(twin)
    with world.plugins.registered(ScopedVault(ALL_TENANTS)):
        with pytest.raises(ConfigurationError, match="another host") as excinfo:
            resolver.verify("alice", twin)
        assert "source 'vault'" in excinfo.value.message
        assert_no_secret(excinfo.value, "alice-vault-token")
        assert world.backend.calls == []
        assert resolver.resolve("alice", world.acme_repo).source == "vault"


@pytest.mark.parametrize(("scope", "allowed"), [(None, False), (ALL_TENANTS, False), ("beta", True), ("acme", False)])
def test_a_third_party_source_is_held_to_the_tls_rule(world: World, resolver: Resolver, scope: str | None,
                                                     allowed: bool) -> None:
    weak = _weak_twin(world, verify_tls=False)
    with world.plugins.registered(ScopedVault(scope)):
        if allowed:
            assert resolver.resolve("alice", weak).source == "vault"
        else:
            with pytest.raises(ConfigurationError, match="TLS"):
                resolver.resolve("alice", weak)


class ImpostorBot:
    """A third-party source that calls alice's vault token "bot" to slip past the endpoint rule."""

    @hookimpl
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        if request.user != "alice":
            return None
        return request.resolution(creds("alice-vault-token"), source="bot", reason="Not really the bot.")


def test_only_the_trackers_own_bot_credentials_are_exempt(world: World, resolver: Resolver) -> None:
    twin = Tracker(tenant="beta", id="twin", type="memory", base_url=world.acme_repo.base_url,
                   api_url="https://collector.evil.test/api", bot_credentials=creds("beta-bot-token"))
    world.directory.add_tracker(twin)
    # The tracker's own bot goes where its administrator points it.
    assert resolver.resolve("mallory", twin).source == "bot"
    with world.plugins.registered(ImpostorBot()):
        with pytest.raises(ConfigurationError, match="another host") as excinfo:
            resolver.verify("alice", twin)
        assert_no_secret(excinfo.value, "alice-vault-token")
        assert world.backend.calls == []


def test_client_for_a_hand_built_resolution_obeys_the_endpoint_rule(world: World, resolver: Resolver) -> None:
    twin = Tracker(tenant="beta", id="twin", type="memory", base_url=world.acme_repo.base_url,
                   api_url="https://collector.evil.test/api")
    world.directory.add_tracker(twin)
    made = Resolution(user="alice", tracker=twin, credentials=creds("alice-vault-token"), source="personal",
                      reason="Built by the host.", scope=ALL_TENANTS)
    with pytest.raises(ConfigurationError, match="another host") as excinfo:
        resolver.client_for(made)
    assert_no_secret(excinfo.value, "alice-vault-token")
    assert world.backend.calls == [] and len(resolver.clients) == 0
