"""The gitlab tracker type: real python-gitlab against FakeGitLab, through the Resolver."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from tokenproviders_gitlab import instance_url, project_of

from tokenproviders import (
    ClientSettings,
    ConfigurationError,
    Credentials,
    CredentialsRejectedError,
    InvalidCredentialsError,
    InvalidInputError,
    PersonalTokenRejectedError,
    Plugins,
    Secret,
    Tracker,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeGitLab

Timed = Callable[[str, Callable[[], Any]], tuple[BaseException, float]]
NoSecret = Callable[[BaseException], None]

ALICE_TOKEN = "glpat-alice-0000000000a11c"
BOT_TOKEN = "glpat-bot-00000000000000b07"
WRONG_TOKEN = "glpat-wrong-000000000000bad"
ISSUES = "/api/v4/projects/grp%2Fsub%2Fproj/issues"


def calls(fake: FakeGitLab) -> list[tuple[str, str]]:
    return [(r.method, r.raw_path) for r in fake.requests]


def tracker_at(base_url: str, api_url: str | None = None, **options: Any) -> Tracker:
    return Tracker(tenant="t", id="x", type="gitlab", base_url=base_url, api_url=api_url, options=options)


# --------------------------------------------------------------------------- declaration and URLs


def test_discovered_from_its_entry_point_without_importing_python_gitlab() -> None:
    code = (
        "import sys; from tokenproviders import Plugins; p = Plugins();"
        "t = p.tracker_type('gitlab'); print(type(t).__name__, 'gitlab' in sys.modules, p.broken())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(None, 2)[:2] == ["GitLabTrackerType", "False"], out


def test_fields_say_what_a_form_needs() -> None:
    (token,) = Plugins().tracker_type("gitlab").fields
    assert (token.name, token.required, token.secret) == ("api_password", True, True)
    assert "scope api" in token.help and "read_api" in token.help
    assert "Access tokens" in token.help


@pytest.mark.parametrize(
    ("base_url", "api_url", "instance", "project"),
    [
        ("https://gitlab.com/grp/proj", None, "https://gitlab.com", "grp/proj"),
        ("https://GitLab.example.com/grp/sub/proj/", None, "https://gitlab.example.com", "grp/sub/proj"),
        ("https://gitlab.example.com/grp/proj.git", None, "https://gitlab.example.com", "grp/proj"),
        ("https://gitlab.example.com/grp/proj/-/issues", None, "https://gitlab.example.com", "grp/proj"),
        ("https://example.com/gitlab/grp/proj", "https://example.com/gitlab", "https://example.com/gitlab", "grp/proj"),
        ("https://example.com/gl/a/b/c", "https://example.com/gl/api/v4/", "https://example.com/gl", "a/b/c"),
        ("https://gitlab.example.com/grp/proj", "http://10.0.0.5:8080", "http://10.0.0.5:8080", "grp/proj"),
    ],
)
def test_instance_and_project_from_urls(base_url: str, api_url: str | None, instance: str, project: str) -> None:
    tracker = tracker_at(base_url, api_url)
    assert instance_url(tracker) == instance
    assert project_of(tracker) == project
    assert Plugins().tracker_type("gitlab").service_url(tracker) == instance


def test_project_option_wins() -> None:
    assert project_of(tracker_at("https://gitlab.com/grp/proj", project=42)) == 42
    assert project_of(tracker_at("https://gitlab.com/grp/proj", project="4242")) == 4242
    assert project_of(tracker_at("https://gitlab.com", project="/other/proj/")) == "other/proj"


@pytest.mark.parametrize(
    ("base_url", "api_url"),
    [
        ("https://gitlab.com", None),
        ("https://gitlab.com/grp", None),
        ("https://gitlab.com/grp/../x", None),
        ("https://example.com/elsewhere/grp/proj", "https://example.com/gitlab"),
    ],
)
def test_a_base_url_that_is_no_project_is_a_configuration_error(base_url: str, api_url: str | None) -> None:
    with pytest.raises(ConfigurationError):
        project_of(tracker_at(base_url, api_url))


# --------------------------------------------------------------------------- credentials and whoami


def test_private_token_header_and_whoami(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    identity = world.resolver.verify("alice", tracker)
    assert (identity.login, identity.name, identity.email) == ("alice", "Alice Liddell", "alice@example.com")
    assert identity.id and identity.id.isdigit()
    assert calls(world.fake) == [("GET", "/api/v4/user")]
    request = world.fake.requests[0]
    assert request.header("PRIVATE-TOKEN") == ALICE_TOKEN
    assert request.header("Authorization") is None
    assert request.identity == "alice"


def test_bot_whoami(world: Any) -> None:
    tracker = world.add_tracker()
    assert world.resolver.verify("bob", tracker).login == "bot"
    assert world.fake.requests[0].header("PRIVATE-TOKEN") == BOT_TOKEN


@pytest.mark.parametrize("token", ["glpat-with\nnewline", "glpat with space", "glpat-\u00e9"])
def test_a_token_that_cannot_travel_in_a_header_is_refused_before_storing(world: Any, token: str) -> None:
    world.add_tracker()
    with pytest.raises(InvalidCredentialsError) as err:
        world.give_alice_her_token(token=token)
    assert token not in str(err.value)


def test_verify_before_saving(world: Any) -> None:
    world.add_tracker()
    with pytest.raises(CredentialsRejectedError):
        world.resolver.tokens.set(
            owner="alice",
            url=world.fake.url,
            scope="acme",
            credentials=Credentials(api_password=Secret(WRONG_TOKEN)),
            verify=True,
        )
    assert world.resolver.tokens.list("alice") == []


# --------------------------------------------------------------------------- reporting


def test_report_with_personal_token_is_recorded_under_alice(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("alice", tracker, "Login page crashes", "Steps: open /login")
    stored = world.fake.issues[issue.id]
    assert (stored.reporter, stored.project) == ("alice", "grp/sub/proj")
    assert (stored.title, stored.body) == ("Login page crashes", "Steps: open /login")
    assert issue.url == f"{world.fake.url}/grp/sub/proj/-/issues/{issue.id}" == stored.url
    assert issue.resolution is not None
    assert (issue.resolution.source, issue.resolution.matched_url) == ("personal", world.fake.url)


def test_report_without_personal_token_is_recorded_under_the_bot(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("bob", tracker, "Bob's bug")
    assert world.fake.issues[issue.id].reporter == "bot"
    assert issue.resolution is not None and issue.resolution.source == "bot"


def test_instance_token_serves_every_project_and_a_project_token_wins(world: Any) -> None:
    proj = world.add_tracker("proj", path="grp/sub/proj")
    other = world.add_tracker("other", path="team/other")
    world.give_alice_her_token()
    first = world.resolver.report_issue("alice", proj, "one")
    second = world.resolver.report_issue("alice", other, "two")
    assert (world.fake.issues[first.id].project, world.fake.issues[second.id].project) == ("grp/sub/proj", "team/other")
    assert {world.fake.issues[i.id].reporter for i in (first, second)} == {"alice"}
    world.fake.add_user("alice-proj", token="glpat-project-token")  # e.g. a project access token
    world.give_alice_her_token(url=proj.base_url, token="glpat-project-token", scope="acme")
    third = world.resolver.report_issue("alice", proj, "three")
    assert world.fake.issues[third.id].reporter == "alice-proj"


def test_instance_under_a_path(fake: FakeGitLab, world: Any) -> None:
    """api_url names the instance; the fake serves /api/v4 at its root, so base_url carries the
    project path alone and the token for the instance URL serves it."""
    tracker = world.add_tracker(api_url=f"{fake.url}/api/v4")
    world.give_alice_her_token()
    issue = world.resolver.report_issue("alice", tracker, "t")
    assert fake.issues[issue.id].reporter == "alice"


def test_issue_attributes_from_options_and_draft(world: Any) -> None:
    tracker = world.add_tracker(labels="from kiwi, bug", issue_type="incident", fields={"confidential": True})
    world.give_alice_her_token()
    title = "A  title\nwith a line break " + "x" * 300
    issue = world.resolver.report_issue("alice", tracker, title, labels=["needs triage", "a,b"])
    stored = world.fake.issues[issue.id]
    assert stored.labels == ["from kiwi", "bug", "needs triage", "a b"]
    assert stored.issue_type == "incident"
    assert stored.payload["confidential"] is True
    assert len(stored.title) == 255 and stored.title.startswith("A title with a line break x")
    assert "description" not in stored.payload
    issue = world.resolver.report_issue("alice", tracker, "t", issue_type="Bug")
    assert world.fake.issues[issue.id].issue_type == "issue"  # "bug" is what GitLab calls an issue


def test_an_unknown_issue_type_fails_before_any_request(world: Any) -> None:
    tracker = world.add_tracker()
    with pytest.raises(InvalidInputError, match="incident"):
        world.resolver.report_issue("bob", tracker, "t", issue_type="Epic")
    configured = world.add_tracker("configured", issue_type="Story")
    with pytest.raises(ConfigurationError, match="option 'issue_type'"):
        world.resolver.report_issue("bob", configured, "t")
    assert world.fake.requests == []


def test_comment_lands_on_the_issue_in_one_request(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("alice", tracker, "t")
    world.fake.clear()
    world.resolver.add_comment("alice", tracker, issue.id, "It happens on Firefox too.")
    assert calls(world.fake) == [("POST", f"{ISSUES}/{issue.id}/notes")]
    world.resolver.add_comment("bob", tracker, issue.id, "Seen by the bot.")
    comments = world.fake.issues[issue.id].comments
    assert [(c.author, c.text) for c in comments] == [
        ("alice", "It happens on Firefox too."),
        ("bot", "Seen by the bot."),
    ]


@pytest.mark.parametrize("issue_id", ["1/../../user", "#1", "", "\u0661"])
def test_comment_on_a_malformed_number_is_refused_locally(world: Any, issue_id: str) -> None:
    tracker = world.add_tracker()
    with pytest.raises(InvalidInputError):
        world.resolver.add_comment("bob", tracker, issue_id, "x")
    assert world.fake.requests == []


def test_warm_report_costs_one_post_and_no_sleep(world: Any, no_sleep: list[float]) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    world.resolver.verify("alice", tracker)
    whoami = len(world.fake.requests)
    world.resolver.forget_clients()
    world.fake.clear()
    world.resolver.report_issue("alice", tracker, "cold")
    cold = calls(world.fake)
    world.fake.clear()
    issue = world.resolver.report_issue("alice", tracker, "warm")
    warm = calls(world.fake)
    new_connections = world.fake.connections_accepted
    world.fake.clear()
    world.resolver.add_comment("alice", tracker, issue.id, "c")
    comment = calls(world.fake)
    counts = f"whoami={whoami} cold report={len(cold)} warm report={len(warm)} comment={len(comment)}"
    print(f"\n[gitlab] requests: {counts}")
    assert whoami == 1
    assert cold == warm == [("POST", ISSUES)]  # no GET of the project
    assert new_connections == 0
    assert len(comment) == 1
    assert no_sleep == []


# --------------------------------------------------------------------------- failures


def test_refused_connection_is_unavailable_fast(
    fast_world: Any, closed_port_url: str, timed: Timed, assert_no_secret: NoSecret
) -> None:
    tracker = fast_world.add_tracker(base_url=f"{closed_port_url}/grp/sub/proj")
    err, elapsed = timed("refused connection", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, TrackerUnavailableError)
    assert "connection refused" in str(err)
    assert elapsed < 30
    assert_no_secret(err)


@pytest.mark.parametrize("operation", ["report", "verify"])
def test_unresponsive_server_times_out(
    fast_world: Any, timed: Timed, assert_no_secret: NoSecret, operation: str
) -> None:
    tracker = fast_world.add_tracker()
    fast_world.give_alice_her_token()
    fast_world.fake.hang()
    if operation == "report":
        err, elapsed = timed("hung server (report)", lambda: fast_world.resolver.report_issue("alice", tracker, "t"))
    else:
        err, elapsed = timed("hung server (verify)", lambda: fast_world.resolver.verify("alice", tracker))
    assert isinstance(err, TrackerUnavailableError)
    assert "timeout" in str(err)
    assert 0.9 < elapsed < 30
    assert len(fast_world.fake.requests) == 1
    assert_no_secret(err)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_unavailable(fast_world: Any, timed: Timed, assert_no_secret: NoSecret, status: int) -> None:
    tracker = fast_world.add_tracker()
    fast_world.fake.fail_with(status)
    err, elapsed = timed(f"HTTP {status}", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, TrackerUnavailableError)
    assert err.status == status
    assert elapsed < 30
    assert len(fast_world.fake.requests) == 1
    assert_no_secret(err)


def test_429_is_unavailable_at_once(fast_world: Any, timed: Timed, no_sleep: list[float]) -> None:
    tracker = fast_world.add_tracker()
    fast_world.fake.fail_with(429, headers={"Retry-After": "60"})
    err, _ = timed("HTTP 429", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, TrackerUnavailableError) and err.status == 429
    assert len(fast_world.fake.requests) == 1  # python-gitlab would wait and retry 10 times
    assert no_sleep == []


def test_retries_resend_a_whoami_but_never_a_post(
    fake: FakeGitLab, world_with: Callable[[ClientSettings], Any]
) -> None:
    world = world_with(ClientSettings(timeout=1, retries=2))
    tracker = world.add_tracker()
    fake.fail_with(503)
    with pytest.raises(TrackerUnavailableError):
        world.resolver.verify("bob", tracker)
    assert calls(fake) == [("GET", "/api/v4/user")] * 3
    fake.clear()
    with pytest.raises(TrackerUnavailableError):
        world.resolver.report_issue("bob", tracker, "t")
    assert calls(fake) == [("POST", ISSUES)]


def test_wrong_personal_token_is_rejected_as_personal(world: Any, timed: Timed, assert_no_secret: NoSecret) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token(token=WRONG_TOKEN)
    err, _ = timed("401 personal", lambda: world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, PersonalTokenRejectedError)
    assert err.status == 401
    assert "wrong, expired or revoked" in str(err) and "personal token" in str(err)
    assert world.fake.issues == {}
    assert_no_secret(err)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_bot_credentials(fast_world: Any, timed: Timed, assert_no_secret: NoSecret, status: int) -> None:
    tracker = fast_world.add_tracker()
    fast_world.fake.fail_with(status)
    err, _ = timed(f"{status} bot", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, CredentialsRejectedError) and not isinstance(err, PersonalTokenRejectedError)
    assert err.status == status
    assert "bot credentials" in str(err)
    assert_no_secret(err)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_personal_token(fast_world: Any, timed: Timed, assert_no_secret: NoSecret, status: int) -> None:
    tracker = fast_world.add_tracker()
    fast_world.give_alice_her_token()
    fast_world.fake.fail_with(status)
    err, _ = timed(f"{status} personal", lambda: fast_world.resolver.verify("alice", tracker))
    assert isinstance(err, PersonalTokenRejectedError)
    assert err.status == status
    assert_no_secret(err)


def test_404_is_a_url_error_that_explains_private_projects(
    fast_world: Any, timed: Timed, assert_no_secret: NoSecret
) -> None:
    tracker = fast_world.add_tracker(project=424242)  # an unknown numeric project id
    err, _ = timed("404", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, TrackerURLError)
    assert err.status == 404
    assert "private one" in str(err)
    assert_no_secret(err)


def test_comment_on_a_missing_issue_is_a_url_error(fast_world: Any) -> None:
    tracker = fast_world.add_tracker()
    with pytest.raises(TrackerURLError):
        fast_world.resolver.add_comment("bob", tracker, "999", "x")


def test_400_quotes_gitlabs_message(fast_world: Any, timed: Timed) -> None:
    tracker = fast_world.add_tracker()
    fast_world.fake.fail_with(400, message="title is too long (maximum is 255 characters)")
    err, _ = timed("400", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert type(err) is TrackerRequestError
    assert "title is too long" in str(err)


# --------------------------------------------------------------------------- client settings


@pytest.mark.parametrize(
    ("verify_tls", "ca_bundle", "expected"),
    [(True, None, True), (True, "/etc/ssl/private-ca.pem", "/etc/ssl/private-ca.pem"), (False, None, False)],
)
def test_build_client_applies_settings_and_tls(
    verify_tls: bool, ca_bundle: str | None, expected: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # tls_verify would give the host's bundle
        monkeypatch.delenv(name, raising=False)
    tracker = Tracker(
        tenant="t",
        id="x",
        type="gitlab",
        base_url="https://example.com/gitlab/grp/proj",
        api_url="https://example.com/gitlab",
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
    )
    client = Plugins().tracker_type("gitlab").build_client(
        tracker,
        Credentials(api_password=Secret(ALICE_TOKEN)),
        ClientSettings(timeout=2.5, retries=3, user_agent="ua/1"),
    )
    assert client.ssl_verify == expected
    assert client.session.trust_env is False  # no ~/.netrc credentials
    assert client.timeout == 2.5
    assert client.headers["User-Agent"] == "ua/1"
    assert client.url == "https://example.com/gitlab"
    assert client.retry_transient_errors is False
    retry = client.session.get_adapter("https://example.com").max_retries
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, 3, False, 3)
    assert "POST" not in retry.allowed_methods
