"""Answers a GitHub client must not take at face value (redirects, error statuses on a warm
client, a wrong URL serving other JSON), and where a personal token may go (``api_url``).
Real PyGithub against the fakes, through the Resolver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ConfigurationError,
    Credentials,
    CredentialsRejectedError,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Resolver,
    Secret,
    Tracker,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeGitHub, FakeTracker
from tokenproviders.testing.fakes._server import AuthResult, RecordedRequest, Response, json_response

ALICE_TOKEN = "ghp_alice0000000000000000000000000000a11c"
BOT_TOKEN = "ghp_bot00000000000000000000000000000000b07"
OPS = ("whoami", "report", "comment")
NoSecret = Callable[[BaseException], None]
GitHubWorld = Any  # conftest.GitHubWorld


def run(resolver: Resolver, tracker: Tracker, op: str, issue_id: str = "1") -> Any:
    if op == "whoami":
        return resolver.verify("bob", tracker)
    if op == "report":
        return resolver.report_issue("bob", tracker, title="Crash", body="a confidential stack trace")
    return resolver.add_comment("bob", tracker, issue_id, "a confidential comment")


class OtherJSON(FakeTracker):
    """A web server that is not GitHub: every request gets 200 and the same JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, self.payload)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed(
    world: GitHubWorld, fake: FakeGitHub, status: int, op: str, assert_no_secret: NoSecret
) -> None:
    tracker = world.add_tracker()
    issue = world.resolver.report_issue("bob", tracker, title="first")  # a warm client, an issue
    with FakeGitHub() as other:  # another GitHub that would accept the same token
        other.add_user("bot", token=BOT_TOKEN)
        fake.fail_with(status, headers={"Location": f"{other.url}{world.prefix}/repos/octo/widgets/issues"})
        fake.clear()
        with pytest.raises(TrackerURLError, match="redirect to another address") as info:
            run(world.resolver, tracker, op, issue.id)
        assert other.requests == []  # neither the token nor the report went there
    assert len(fake.requests) == 1  # and it was not re-sent to another path either
    assert info.value.status == status
    assert "set base_url/api_url to the final address" in str(info.value)
    assert_no_secret(info.value)


def test_a_301_to_another_path_of_the_same_server_is_not_followed(world: GitHubWorld, fake: FakeGitHub) -> None:
    """PyGithub itself would re-send the request to the new path; the plugin refuses first."""
    tracker = world.add_tracker()
    world.resolver.verify("bob", tracker)
    fake.fail_with(301, times=1, headers={"Location": f"{fake.url}{world.prefix}/repos/octo/renamed/issues"})
    fake.clear()
    with pytest.raises(TrackerURLError, match="redirect"):
        world.resolver.report_issue("bob", tracker, title="x")
    assert [(r.method, r.path) for r in fake.requests] == [("POST", f"{world.prefix}/repos/octo/widgets/issues")]
    assert fake.issues == {}


# --------------------------------------------------------------------------- statuses on a warm client


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, CredentialsRejectedError),
        (403, CredentialsRejectedError),
        (429, TrackerUnavailableError),
        (500, TrackerUnavailableError),
        (502, TrackerUnavailableError),
        (503, TrackerUnavailableError),
        (504, TrackerUnavailableError),
    ],
)
def test_a_status_on_a_warm_client_is_classified_by_the_status(
    fast_world: GitHubWorld, fake: FakeGitHub, status: int, error: type[Exception], op: str
) -> None:
    tracker = fast_world.add_tracker()
    issue = fast_world.resolver.report_issue("bob", tracker, title="first")
    fast_world.resolver.client("bob", tracker)  # cached
    fake.fail_with(status)
    with pytest.raises(error) as info:
        run(fast_world.resolver, tracker, op, issue.id)
    assert getattr(info.value, "status", None) == status


# --------------------------------------------------------------------------- other JSON


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "payload",
    [{}, {"status": "ok"}, [], {"login": None, "number": "7", "id": "7"}],
    ids=["empty", "status", "list", "wrong-types"],
)
@pytest.mark.parametrize("api_style", ["enterprise", "dotcom"])
def test_a_url_serving_other_json_is_a_url_error(
    payload: Any, op: str, api_style: str, assert_no_secret: NoSecret
) -> None:
    with OtherJSON(payload) as other:
        tracker = Tracker(
            tenant="acme",
            id="gh",
            type="github",
            base_url=f"{other.url}/octo/widgets",
            api_url=other.url if api_style == "dotcom" else None,
            bot_credentials=Credentials(api_password=Secret(BOT_TOKEN)),
        )
        resolver = Resolver(MemoryDirectory(memberships=[("bob", "acme")], trackers=[tracker]), MemoryTokenStore())
        with pytest.raises(TrackerURLError, match="the answer was not GitHub's API; check base_url/api_url") as info:
            run(resolver, tracker, op)
    assert_no_secret(info.value)


def test_verify_before_saving_refuses_a_url_serving_other_json(world: GitHubWorld) -> None:
    """The reviewer's case: whoami used to return ``Identity(login='None')`` here, and the token was saved."""
    with OtherJSON({}) as other:
        world.add_tracker(base_url=f"{other.url}/octo/widgets", api_url=other.url)
        with pytest.raises(TrackerURLError):
            world.resolver.tokens.set(
                owner="alice",
                url=other.url,
                scope=ALL_TENANTS,
                credentials=Credentials(api_password=Secret(ALICE_TOKEN)),
                verify=True,
            )
    assert world.resolver.tokens.list("alice") == []


# --------------------------------------------------------------------------- where a personal token may go


def _resolver_with_alice_token(tracker: Tracker, token_url: str) -> Resolver:
    directory = MemoryDirectory(memberships=[("alice", "acme")], trackers=[tracker])
    resolver = Resolver(directory, MemoryTokenStore(), plugins=Plugins())
    resolver.tokens.set(
        owner="alice", url=token_url, scope=ALL_TENANTS, credentials=Credentials(api_password=Secret(ALICE_TOKEN))
    )
    return resolver


@pytest.mark.parametrize(
    ("base_url", "api_url"),
    [
        ("https://github.com/octo/widgets", None),
        ("https://github.com/octo/widgets", "https://api.github.com"),
        ("https://github.com/octo/widgets", "https://API.github.com:443/"),
        ("https://www.github.com/octo/widgets", "https://api.github.com"),
        ("https://github.example.com/octo/widgets", None),
        ("https://github.example.com/octo/widgets", "https://github.example.com/api/v3"),
        ("https://github.example.com:8443/octo/widgets", "https://github.example.com:8443/api/v3/"),
        ("https://octocorp.ghe.com/octo/widgets", None),
        ("https://octocorp.ghe.com/octo/widgets", "https://api.octocorp.ghe.com"),
    ],
)
def test_the_personal_token_goes_to_the_api_github_uses_for_the_host(base_url: str, api_url: str | None) -> None:
    tracker = Tracker(tenant="acme", id="gh", type="github", base_url=base_url, api_url=api_url)
    resolver = _resolver_with_alice_token(tracker, base_url.rsplit("/", 2)[0])
    assert resolver.plugins.tracker_type("github").api_url_trusted(tracker)
    resolution = resolver.resolve("alice", tracker)
    assert resolution.source == "personal"


@pytest.mark.parametrize(
    ("base_url", "api_url"),
    [
        ("https://github.com/octo/widgets", "https://evil.example.com"),
        ("https://github.com/octo/widgets", "https://evil.example.com/api/v3"),
        ("https://github.com/octo/widgets", "http://api.github.com"),  # not over TLS
        ("https://github.com/octo/widgets", "https://api.github.com.evil.example"),
        ("https://github.com/octo/widgets", "https://api.github.com:8443"),
        ("https://github.com/octo/widgets", "https://github.example.com/api/v3"),
        ("https://github.example.com/octo/widgets", "https://api.github.com"),
        ("https://github.example.com/octo/widgets", "https://api.github.example.com"),
        ("https://octocorp.ghe.com/octo/widgets", "https://api.other.ghe.com"),
    ],
)
def test_no_personal_token_for_an_api_url_on_another_host(base_url: str, api_url: str) -> None:
    tracker = Tracker(tenant="acme", id="gh", type="github", base_url=base_url, api_url=api_url)
    resolver = _resolver_with_alice_token(tracker, base_url.rsplit("/", 2)[0])
    assert not resolver.plugins.tracker_type("github").api_url_trusted(tracker)
    with pytest.raises(ConfigurationError, match="another host"):
        resolver.resolve("alice", tracker)


def test_a_service_token_never_reaches_an_api_url_on_another_host(fake: FakeGitHub) -> None:
    """End to end: alice's token for the fake's host is not sent to another server's API."""
    with FakeGitHub() as elsewhere:
        elsewhere.add_user("alice", token=ALICE_TOKEN)
        tracker = Tracker(
            tenant="acme",
            id="gh",
            type="github",
            base_url=f"{fake.url}/octo/widgets",
            api_url=f"{elsewhere.url}/api/v3",
        )
        resolver = _resolver_with_alice_token(tracker, fake.url)
        for call in (
            lambda: resolver.verify("alice", tracker),
            lambda: resolver.report_issue("alice", tracker, title="x"),
            lambda: resolver.add_comment("alice", tracker, "1", "x"),
        ):
            with pytest.raises(ConfigurationError, match="another host"):
                call()
        assert elsewhere.requests == [] and fake.requests == []


@pytest.mark.parametrize("api_url", [None, "{fake}/api/v3", "{fake}"])
def test_a_service_token_is_sent_to_the_trackers_own_api(fake: FakeGitHub, api_url: str | None) -> None:
    tracker = Tracker(
        tenant="acme",
        id="gh",
        type="github",
        base_url=f"{fake.url}/octo/widgets",
        api_url=api_url.format(fake=fake.url) if api_url else None,
    )
    resolver = _resolver_with_alice_token(tracker, fake.url)
    fake.add_user("alice", token=ALICE_TOKEN)
    assert resolver.verify("alice", tracker).login == "alice"
    assert resolver.report_issue("alice", tracker, title="x").resolution.source == "personal"  # type: ignore[union-attr]
    assert {r.identity for r in fake.requests} == {"alice"}
