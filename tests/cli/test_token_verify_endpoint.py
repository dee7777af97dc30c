"""``token set --verify`` keeps the endpoint rule: for each of the six built-in tracker types, a
tenant administrator who points a tracker's ``api_url`` at their own server (a second fake) never
receives the token being verified, even when their tenant sorts first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tokenproviders.plugins import Plugins
from tokenproviders.testing.fakes import (
    FakeAzureBoards,
    FakeBugzilla,
    FakeGitHub,
    FakeGitLab,
    FakeJira,
    FakeRedmine,
    FakeTracker,
)

from .conftest import CLI

INSTALLED = Plugins().tracker_types


@dataclass(frozen=True)
class Case:
    type: str
    fake: type[FakeTracker]
    path: str  # --url is the real fake's URL + path
    api_path: str  # the twin's --api-url is the attacker's URL + api_path
    secret: str
    options: tuple[str, ...] = field(default=())


CASES = [
    Case("jira", FakeJira, "", "", "jira-alice-personal-token", ("-o", "project=PROJ")),
    Case("github", FakeGitHub, "/acme/widgets", "/api/v3", "ghp_alice_personal_token_0123456789"),
    Case("gitlab", FakeGitLab, "/grp/sub/proj", "/api/v4", "glpat-alice-personal-token-01"),
    Case("redmine", FakeRedmine, "", "", "redmine-alice-api-key-0123456789", ("-o", "project=webshop")),
    Case("bugzilla", FakeBugzilla, "", "/rest", "bugzilla-alice-api-key-0123",
         ("-o", "product=Widgets", "-o", "component=UI")),
    Case("azureboards", FakeAzureBoards, "/contoso/WebShop", "/contoso", "azure-alice-pat-0123456789"),
]


@dataclass
class Servers:
    case: Case
    real: FakeTracker
    attacker: FakeTracker

    @property
    def url(self) -> str:
        return self.real.url + self.case.path


@pytest.fixture(params=CASES, ids=lambda case: case.type)
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    case: Case = request.param
    if case.type not in INSTALLED:
        pytest.skip(f"the tokenproviders-{case.type} plugin is not installed")
    with case.fake() as real, case.fake() as attacker:
        real.add_user("alice", token=case.secret)
        attacker.add_user("alice", token=case.secret)  # it would accept it: that is the point
        yield Servers(case, real, attacker)


def _setup(cli: CLI, servers: Servers) -> None:
    case = servers.case
    cli.ok("init")
    cli.ok("tenants", "add", "0-evil", "acme")
    cli.ok("tenants", "grant", "0-evil", "alice")
    cli.ok("tenants", "grant", "acme", "alice")
    cli.ok("trackers", "add", "acme", "main", "--type", case.type, "--url", servers.url, "--no-bot", *case.options)
    cli.ok(
        "trackers", "add", "0-evil", "twin", "--type", case.type, "--url", servers.url,
        "--api-url", servers.attacker.url + case.api_path, "--no-bot", *case.options,
    )


def test_token_set_verify_all_tenants_never_reaches_a_foreign_api_url(cli: CLI, servers: Servers) -> None:
    _setup(cli, servers)
    result = cli.ok(
        "token", "set", "alice", servers.url, "--all-tenants", "--verify", "--password-stdin",
        input=servers.case.secret + "\n",
    )
    assert "Verified" in result.stdout
    assert servers.attacker.requests == []
    assert servers.real.requests != []


def test_token_set_verify_refuses_when_only_the_twin_would_serve_it(cli: CLI, servers: Servers) -> None:
    _setup(cli, servers)
    line = cli.fails(
        10, "token", "set", "alice", servers.url, "--tenant", "0-evil", "--verify", "--password-stdin",
        input=servers.case.secret + "\n",
    )
    assert "another host" in line and "0-evil/twin" in line
    assert servers.case.secret not in line
    assert servers.attacker.requests == []
    assert servers.real.requests == []
    assert "alice" not in cli.ok("token", "list").stdout
