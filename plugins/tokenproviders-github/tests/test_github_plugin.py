"""The github tracker type: real PyGithub against FakeGitHub, through the Resolver."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from tokenproviders_github import api_root, repository_of

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
from tokenproviders.testing.fakes import FakeGitHub

Timed = Callable[[str, Callable[[], Any]], tuple[BaseException, float]]
NoSecret = Callable[[BaseException], None]

ALICE_TOKEN = "ghp_alice0000000000000000000000000000a11c"
BOT_TOKEN = "ghp_bot00000000000000000000000000000000b07"
WRONG_TOKEN = "ghp_wrong000000000000000000000000000000bad"


def calls(fake: FakeGitHub) -> list[tuple[str, str]]:
    return [(r.method, r.raw_path) for r in fake.requests]


def tracker_at(base_url: str, api_url: str | None = None) -> Tracker:
    return Tracker(tenant="t", id="x", type="github", base_url=base_url, api_url=api_url)


# --------------------------------------------------------------------------- declaration and URLs


def test_discovered_from_its_entry_point_without_importing_pygithub() -> None:
    code = (
        "import sys; from tokenproviders import Plugins; p = Plugins();"
        "t = p.tracker_type('github'); print(type(t).__name__, 'github' in sys.modules, p.broken())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(None, 2)[:2] == ["GitHubTrackerType", "False"], out


def test_fields_say_what_a_form_needs() -> None:
    (token,) = Plugins().tracker_type("github").fields
    assert (token.name, token.required, token.secret) == ("api_password", True, True)
    assert "Issues: Read and write" in token.help and "public_repo" in token.help
    assert "github.com/settings/personal-access-tokens" in token.help


@pytest.mark.parametrize(
    ("base_url", "api_url", "expected"),
    [
        ("https://github.com/octo/widgets", None, "https://api.github.com"),
        ("https://GitHub.com/octo/widgets/", None, "https://api.github.com"),
        ("https://github.example.com/octo/widgets", None, "https://github.example.com/api/v3"),
        ("https://github.example.com:8443/octo/widgets", None, "https://github.example.com:8443/api/v3"),
        ("https://octocorp.ghe.com/octo/widgets", None, "https://api.octocorp.ghe.com"),
        ("https://github.example.com/octo/widgets", "https://api.internal:9000/", "https://api.internal:9000"),
    ],
)
def test_api_root(base_url: str, api_url: str | None, expected: str) -> None:
    assert api_root(tracker_at(base_url, api_url)) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "https://github.com/octo/widgets",
        "https://github.com/octo/widgets.git",
        "https://github.com/octo/widgets/issues",
        "https://github.com/octo/widgets/",
    ],
)
def test_repository_from_base_url(base_url: str) -> None:
    assert repository_of(tracker_at(base_url)) == ("octo", "widgets")


@pytest.mark.parametrize("base_url", ["https://github.com", "https://github.com/octo", "https://github.com/oc_to/x"])
def test_a_base_url_that_is_no_repository_is_a_configuration_error(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="OWNER/REPO"):
        repository_of(tracker_at(base_url))


def test_service_url_is_the_host() -> None:
    github = Plugins().tracker_type("github")
    assert github.service_url(tracker_at("https://GitHub.com/octo/widgets")) == "https://github.com"


# --------------------------------------------------------------------------- credentials and whoami


def test_token_header_and_whoami(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    identity = world.resolver.verify("alice", tracker)
    assert (identity.login, identity.name, identity.email) == ("alice", "Alice Liddell", "alice@example.com")
    assert identity.id and identity.id.isdigit()
    assert calls(world.fake) == [("GET", f"{world.prefix}/user")]
    request = world.fake.requests[0]
    assert request.header("Authorization") == f"token {ALICE_TOKEN}"
    assert request.identity == "alice"


def test_bot_whoami(world: Any) -> None:
    tracker = world.add_tracker()
    assert world.resolver.verify("bob", tracker).login == "bot"
    assert world.fake.requests[0].header("Authorization") == f"token {BOT_TOKEN}"


@pytest.mark.parametrize("token", ["ghp_with\nnewline", "ghp with space", "ghp_\u00e9"])
def test_a_token_that_cannot_travel_in_a_header_is_refused_before_storing(world: Any, token: str) -> None:
    world.add_tracker()
    with pytest.raises(InvalidCredentialsError) as err:
        world.give_alice_her_token(token=token)
    assert token not in str(err.value)


def test_a_user_name_is_not_taken(world: Any) -> None:
    world.add_tracker()
    with pytest.raises(InvalidCredentialsError, match="api_username"):
        world.resolver.tokens.set(
            owner="alice",
            url=world.fake.url,
            scope="acme",
            credentials=Credentials(api_username="alice", api_password=Secret(ALICE_TOKEN)),
        )


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
    assert (stored.reporter, stored.project) == ("alice", "octo/widgets")
    assert (stored.title, stored.body) == ("Login page crashes", "Steps: open /login")
    assert issue.url == f"{world.fake.url}/octo/widgets/issues/{issue.id}" == stored.url  # the browser URL
    assert issue.resolution is not None
    assert (issue.resolution.source, issue.resolution.matched_url) == ("personal", world.fake.url)


def test_report_without_personal_token_is_recorded_under_the_bot(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("bob", tracker, "Bob's bug")
    assert world.fake.issues[issue.id].reporter == "bot"
    assert issue.resolution is not None and issue.resolution.source == "bot"


def test_service_token_serves_every_repository_and_a_repository_token_wins(world: Any) -> None:
    widgets = world.add_tracker("widgets", repo="octo/widgets")
    gadgets = world.add_tracker("gadgets", repo="acme/gadgets")
    world.give_alice_her_token()  # https://HOST
    first = world.resolver.report_issue("alice", widgets, "one")
    second = world.resolver.report_issue("alice", gadgets, "two")
    assert world.fake.issues[first.id].project == "octo/widgets"
    assert world.fake.issues[second.id].project == "acme/gadgets"
    assert {world.fake.issues[i.id].reporter for i in (first, second)} == {"alice"}
    # A token for the repository itself is more specific than the service token.
    world.fake.add_user("alice-widgets", token="ghp_widgets_only")
    world.give_alice_her_token(url=widgets.base_url, token="ghp_widgets_only", scope="acme")
    third = world.resolver.report_issue("alice", widgets, "three")
    assert world.fake.issues[third.id].reporter == "alice-widgets"
    assert third.resolution is not None and third.resolution.matched_url == widgets.url


def test_issue_payload_from_options_and_draft(world: Any) -> None:
    tracker = world.add_tracker(labels="from kiwi, bug", issue_type="Bug", fields={"assignees": ["alice"]})
    world.give_alice_her_token()
    title = "A  title\nwith a line break " + "x" * 300
    issue = world.resolver.report_issue("alice", tracker, title, labels=["needs triage", "bug"])
    sent = world.fake.issues[issue.id].payload
    assert sent["labels"] == ["from kiwi", "bug", "needs triage"]
    assert sent["type"] == "Bug"
    assert sent["assignees"] == ["alice"]
    assert len(sent["title"]) == 256 and sent["title"].startswith("A title with a line break x")
    assert "body" not in sent
    plain = world.add_tracker("plain")
    issue = world.resolver.report_issue("alice", plain, "t", "b")
    assert world.fake.issues[issue.id].payload == {"title": "t", "body": "b"}  # no type unless asked


def test_comment_lands_on_the_issue_in_one_request(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("alice", tracker, "t")
    world.fake.clear()
    world.resolver.add_comment("alice", tracker, issue.id, "It happens on Firefox too.")
    assert calls(world.fake) == [("POST", f"{world.prefix}/repos/octo/widgets/issues/{issue.id}/comments")]
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
    print(f"\n[github] requests: {counts}")
    assert whoami == 1
    assert cold == warm == [("POST", f"{world.prefix}/repos/octo/widgets/issues")]  # no GET of the repository
    assert new_connections == 0
    assert len(comment) == 1
    assert no_sleep == []  # PyGithub's throttling (0.25 s per request, 1 s per write) is off


# --------------------------------------------------------------------------- failures


def test_refused_connection_is_unavailable_fast(
    fast_world: Any, closed_port_url: str, timed: Timed, assert_no_secret: NoSecret
) -> None:
    tracker = fast_world.add_tracker(base_url=f"{closed_port_url}/octo/widgets")
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


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [
        (429, {"Retry-After": "60"}, None),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"}, "API rate limit exceeded for user"),
        (403, {"Retry-After": "60"}, "You have exceeded a secondary rate limit. Please wait a few minutes."),
    ],
    ids=["429", "primary-403", "secondary-403"],
)
def test_rate_limits_are_unavailable_at_once(
    fast_world: Any, timed: Timed, no_sleep: list[float], status: int, headers: dict[str, str], message: str | None
) -> None:
    tracker = fast_world.add_tracker()
    fast_world.give_alice_her_token()
    fast_world.fake.fail_with(status, headers=headers, message=message)
    err, _ = timed(f"rate limit {status}", lambda: fast_world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, TrackerUnavailableError) and not isinstance(err, CredentialsRejectedError)
    assert "rate limit" in str(err)
    assert ("2023-11-14 22:13:20 UTC" in str(err)) == ("X-RateLimit-Reset" in headers)
    assert len(fast_world.fake.requests) == 1
    assert no_sleep == []


def test_retries_resend_a_whoami_but_never_a_post(
    fake: FakeGitHub, world_with: Callable[[ClientSettings], Any]
) -> None:
    world = world_with(ClientSettings(timeout=1, retries=2))
    tracker = world.add_tracker()
    fake.fail_with(503)
    with pytest.raises(TrackerUnavailableError):
        world.resolver.verify("bob", tracker)
    assert calls(fake) == [("GET", "/api/v3/user")] * 3
    fake.clear()
    with pytest.raises(TrackerUnavailableError):
        world.resolver.report_issue("bob", tracker, "t")
    assert calls(fake) == [("POST", "/api/v3/repos/octo/widgets/issues")]


def test_wrong_personal_token_is_rejected_as_personal(world: Any, timed: Timed, assert_no_secret: NoSecret) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token(token=WRONG_TOKEN)
    err, _ = timed("401 personal", lambda: world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, PersonalTokenRejectedError)
    assert err.status == 401
    assert "Bad credentials" in str(err) and "personal token" in str(err)
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
    err, _ = timed(f"{status} personal", lambda: fast_world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, PersonalTokenRejectedError)
    assert err.status == status
    assert_no_secret(err)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("Resource not accessible by personal access token", "Issues read and write"),
        ("Resource protected by organization SAML enforcement. You must grant your token access.", "SAML"),
    ],
)
def test_403_says_what_the_token_lacks(fast_world: Any, timed: Timed, message: str, words: str) -> None:
    tracker = fast_world.add_tracker()
    fast_world.give_alice_her_token()
    fast_world.fake.fail_with(403, message=message)
    err, _ = timed("403 permission", lambda: fast_world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, PersonalTokenRejectedError)
    assert words in str(err)


def test_404_is_a_url_error_that_explains_private_repositories(
    fast_world: Any, timed: Timed, assert_no_secret: NoSecret
) -> None:
    tracker = fast_world.add_tracker()
    fast_world.give_alice_her_token()
    fast_world.fake.fail_with(404)
    err, _ = timed("404", lambda: fast_world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, TrackerURLError)
    assert err.status == 404
    assert "private one this token may not see" in str(err)
    assert_no_secret(err)


def test_wrong_api_root_is_a_url_error(fast_world: Any, timed: Timed) -> None:
    tracker = fast_world.add_tracker(api_url=fast_world.fake.url + "/nowhere")
    err, _ = timed("404 whoami", lambda: fast_world.resolver.verify("bob", tracker))
    assert isinstance(err, TrackerURLError)


def test_410_issues_disabled(fast_world: Any) -> None:
    tracker = fast_world.add_tracker()
    fast_world.fake.fail_with(410, message="Issues are disabled for this repo")
    with pytest.raises(TrackerURLError, match="issues are disabled"):
        fast_world.resolver.report_issue("bob", tracker, "t")


def test_422_quotes_githubs_validation_errors(fast_world: Any, timed: Timed) -> None:
    tracker = fast_world.add_tracker(fields={"title": "   "})
    fast_world.fake.fail_with(422, message="Validation Failed")
    err, _ = timed("422", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert type(err) is TrackerRequestError
    assert "Validation Failed" in str(err)


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
        type="github",
        base_url="https://github.example.com/octo/widgets",
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
    )
    client = Plugins().tracker_type("github").build_client(
        tracker,
        Credentials(api_password=Secret(ALICE_TOKEN)),
        ClientSettings(timeout=2.5, retries=3, user_agent="ua/1"),
    )
    kwargs = client.requester.kwargs
    assert kwargs["verify"] == expected
    assert kwargs["timeout"] == 3  # PyGithub takes an int: rounded up, never down to 0
    assert kwargs["user_agent"] == "ua/1"
    assert kwargs["base_url"] == "https://github.example.com/api/v3"
    assert (kwargs["seconds_between_requests"], kwargs["seconds_between_writes"], kwargs["lazy"]) == (None, None, True)
    retry = kwargs["retry"]
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, 3, False, 3)
    assert 403 not in retry.status_forcelist and "POST" not in retry.allowed_methods
