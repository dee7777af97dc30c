"""The jira tracker type: the real ``jira`` library against FakeJira, through the Resolver."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ClientSettings,
    ConfigurationError,
    Credentials,
    CredentialsRejectedError,
    InvalidCredentialsError,
    InvalidInputError,
    PersonalTokenRejectedError,
    Plugins,
    Secret,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeJira

Timed = Callable[[str, Callable[[], Any]], tuple[BaseException, float]]
NoSecret = Callable[[BaseException], None]


def calls(fake: FakeJira) -> list[tuple[str, str]]:
    return [(r.method, r.raw_path) for r in fake.requests]


# --------------------------------------------------------------------------- discovery


def test_discovered_from_its_entry_point_without_importing_jira() -> None:
    code = (
        "import sys; from tokenproviders import Plugins; p = Plugins();"
        "t = p.tracker_type('jira'); print(type(t).__name__, 'jira' in sys.modules, p.broken())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(None, 2)[:2] == ["JiraTrackerType", "False"], out


def test_fields_say_what_a_form_needs() -> None:
    jira = Plugins().tracker_type("jira")
    username, password = jira.fields
    assert (username.name, username.required, username.secret) == ("api_username", False, False)
    assert (password.name, password.required, password.secret) == ("api_password", True, True)
    assert "e-mail" in username.label.lower()
    assert "id.atlassian.com/manage-profile/security/api-tokens" in password.help
    assert "Personal Access Tokens" in password.help


# --------------------------------------------------------------------------- credential kinds


def test_cloud_email_and_api_token_send_basic_auth(world: Any, basic_header: Callable[[str, str], str]) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    identity = world.resolver.verify("alice", tracker)
    assert (identity.login, identity.name, identity.email) == ("alice", "Alice Liddell", "alice@example.com")
    assert identity.id
    assert calls(world.fake) == [("GET", "/rest/api/2/myself")]  # no serverInfo probe
    request = world.fake.requests[0]
    assert request.header("Authorization") == basic_header("alice@example.com", "alice-cloud-token-5f1c")
    assert request.identity == "alice"


def test_server_personal_access_token_sends_lower_case_bearer(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_carol_her_pat()
    assert world.resolver.verify("carol", tracker).login == "carol"
    request = world.fake.requests[0]
    assert ("authorization", "Bearer carol-server-pat-41d2") in request.headers  # name exactly as sent
    assert request.identity == "carol"


def test_bot_whoami(world: Any) -> None:
    tracker = world.add_tracker()
    identity = world.resolver.verify("bob", tracker)
    assert (identity.login, identity.email) == ("bot", "bot@example.com")


def test_verify_before_saving(world: Any) -> None:
    world.add_tracker()
    info = world.resolver.tokens.set(
        owner="carol",
        url=world.fake.url,
        scope="acme",
        credentials=Credentials(api_password=Secret("carol-server-pat-41d2")),
        verify=True,
    )
    assert info.owner == "carol"
    with pytest.raises(CredentialsRejectedError):
        world.resolver.tokens.set(
            owner="alice",
            url=world.fake.url,
            scope="acme",
            credentials=Credentials(api_password=Secret("not-a-pat")),
            verify=True,
        )
    assert world.resolver.tokens.list("alice") == []


@pytest.mark.parametrize("token", ["pat-with\nnewline", "pat with space", "pat-\u00e9"])
def test_a_pat_that_cannot_travel_in_a_header_is_refused_before_storing(world: Any, token: str) -> None:
    world.add_tracker()
    with pytest.raises(InvalidCredentialsError) as err:
        world.resolver.tokens.set(
            owner="carol", url=world.fake.url, scope="acme", credentials=Credentials(api_password=Secret(token))
        )
    assert token not in str(err.value)
    assert world.fake.requests == []


# --------------------------------------------------------------------------- reporting


def test_report_with_personal_token_is_recorded_under_alice(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("alice", tracker, "Login page crashes", "Steps:\n1. open /login")
    stored = world.fake.issues[issue.id]
    assert stored.reporter == "alice"
    assert (stored.project, stored.issue_type, stored.title) == ("PROJ", "Bug", "Login page crashes")
    assert stored.body == "Steps:\n1. open /login"
    assert issue.id == "PROJ-1"
    assert issue.url == f"{world.fake.url}/browse/PROJ-1" == stored.url
    assert issue.resolution is not None and issue.resolution.source == "personal"


def test_report_without_personal_token_is_recorded_under_the_bot(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("bob", tracker, "Bob's bug")
    assert world.fake.issues[issue.id].reporter == "bot"
    assert issue.resolution is not None and issue.resolution.source == "bot"


def test_report_with_a_server_pat_is_recorded_under_carol(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_carol_her_pat()
    issue = world.resolver.report_issue("carol", tracker, "Carol's bug")
    assert world.fake.issues[issue.id].reporter == "carol"


def test_one_instance_token_serves_every_project_tracker(world: Any) -> None:
    proj = world.add_tracker("jira-proj", project="PROJ")
    ops = world.add_tracker("jira-ops", project="OPS", issue_type="Task")
    world.give_alice_her_token(url=world.fake.url + "/")  # the instance URL, as a user might paste it
    first = world.resolver.report_issue("alice", proj, "in PROJ")
    second = world.resolver.report_issue("alice", ops, "in OPS")
    assert (first.id, second.id) == ("PROJ-1", "OPS-1")
    assert world.fake.issues["OPS-1"].issue_type == "Task"
    assert {world.fake.issues[i].reporter for i in ("PROJ-1", "OPS-1")} == {"alice"}
    assert [c.url for c in world.resolver.trackers_for("alice")] == [world.fake.url]


def test_issue_fields_from_options_and_draft(world: Any) -> None:
    tracker = world.add_tracker(
        project="QA", issue_type="Defect", labels="kiwi, from tcms", fields={"priority": {"name": "High"}}
    )
    world.give_alice_her_token()
    title = "A  title\nwith a line break " + "x" * 300
    issue = world.resolver.report_issue("alice", tracker, title, labels=["needs triage", "kiwi"], issue_type="Story")
    sent = world.fake.issues[issue.id].payload["fields"]
    assert sent["project"] == {"key": "QA"}
    assert sent["issuetype"] == {"name": "Story"}  # the draft's type wins over the option
    assert sent["labels"] == ["kiwi", "from-tcms", "needs-triage"]
    assert sent["priority"] == {"name": "High"}
    assert "\n" not in sent["summary"] and len(sent["summary"]) == 255
    assert sent["summary"].startswith("A title with a line break x")
    assert "description" not in sent


def test_missing_project_option_fails_before_any_request(world: Any) -> None:
    tracker = world.add_tracker(project="")
    with pytest.raises(ConfigurationError, match="project"):
        world.resolver.report_issue("bob", tracker, "t")
    assert world.fake.requests == []


def test_comment_lands_on_the_issue_in_one_request(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    issue = world.resolver.report_issue("alice", tracker, "t")
    world.fake.clear()
    world.resolver.add_comment("alice", tracker, issue.id, "It happens on Firefox too.")
    assert calls(world.fake) == [("POST", "/rest/api/2/issue/PROJ-1/comment")]
    comments = world.fake.issues["PROJ-1"].comments
    assert [(c.author, c.text) for c in comments] == [("alice", "It happens on Firefox too.")]
    world.resolver.add_comment("bob", tracker, issue.id, "Seen by the bot.")
    assert [c.author for c in comments] == ["alice", "bot"]


def test_comment_on_a_malformed_key_is_refused_locally(world: Any) -> None:
    tracker = world.add_tracker()
    with pytest.raises(InvalidInputError):
        world.resolver.add_comment("bob", tracker, "PROJ-1/../../myself", "x")
    assert world.fake.requests == []


def test_warm_report_costs_one_post(world: Any) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    world.resolver.verify("alice", tracker)
    whoami = len(world.fake.requests)
    world.fake.clear()
    world.resolver.report_issue("alice", tracker, "cold")  # the client is cached since verify()
    world.resolver.forget_clients()
    world.fake.clear()
    world.resolver.report_issue("alice", tracker, "cold, new client")
    cold = calls(world.fake)
    world.fake.clear()
    world.resolver.report_issue("alice", tracker, "warm")
    warm = calls(world.fake)
    new_connections = world.fake.connections_accepted
    world.fake.clear()
    world.resolver.add_comment("alice", tracker, "PROJ-1", "c")
    comment = calls(world.fake)
    print(f"\n[jira] requests: whoami={whoami} cold report={len(cold)} warm report={len(warm)} comment={len(comment)}")
    assert whoami == 1
    assert cold == warm == [("POST", "/rest/api/2/issue")]
    assert new_connections == 0  # the cached client's keep-alive connection was reused
    assert comment == [("POST", "/rest/api/2/issue/PROJ-1/comment")]


# --------------------------------------------------------------------------- failures


def test_refused_connection_is_unavailable_fast(
    fast_world: Any, closed_port_url: str, timed: Timed, assert_no_secret: NoSecret
) -> None:
    tracker = fast_world.add_tracker(base_url=closed_port_url)
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


def test_429_is_unavailable_without_waiting_for_retry_after(fast_world: Any, timed: Timed) -> None:
    tracker = fast_world.add_tracker()
    fast_world.fake.fail_with(429, headers={"Retry-After": "60"})
    err, elapsed = timed("HTTP 429", lambda: fast_world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, TrackerUnavailableError) and err.status == 429
    assert elapsed < 30


def test_retries_resend_a_whoami_but_never_a_post(fake: FakeJira, world_with: Callable[[ClientSettings], Any]) -> None:
    world = world_with(ClientSettings(timeout=1, retries=2))
    tracker = world.add_tracker()
    fake.fail_with(503)
    with pytest.raises(TrackerUnavailableError):
        world.resolver.verify("bob", tracker)
    assert calls(fake) == [("GET", "/rest/api/2/myself")] * 3
    fake.clear()
    with pytest.raises(TrackerUnavailableError):
        world.resolver.report_issue("bob", tracker, "t")
    assert calls(fake) == [("POST", "/rest/api/2/issue")]  # a 503 to a POST may have filed it


def test_wrong_personal_token_is_rejected_as_personal(world: Any, timed: Timed, assert_no_secret: NoSecret) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token(token="wrong-token-0000")
    err, _ = timed("401 personal", lambda: world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, PersonalTokenRejectedError)
    assert err.status == 401
    assert "alice" in str(err) and "personal token" in str(err) and "(Basic)" in str(err)
    assert world.fake.issues == {}
    assert_no_secret(err)


def test_wrong_pat_says_cloud_needs_the_email(world: Any, timed: Timed) -> None:
    tracker = world.add_tracker()
    world.give_carol_her_pat(token="wrong-token-0000")
    err, _ = timed("401 PAT", lambda: world.resolver.verify("carol", tracker))
    assert isinstance(err, PersonalTokenRejectedError)
    assert "Bearer" in str(err) and "e-mail" in str(err)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_bot_credentials(world: Any, timed: Timed, assert_no_secret: NoSecret, status: int) -> None:
    tracker = world.add_tracker()
    world.fake.fail_with(status)
    err, _ = timed(f"{status} bot", lambda: world.resolver.report_issue("bob", tracker, "t"))
    assert isinstance(err, CredentialsRejectedError) and not isinstance(err, PersonalTokenRejectedError)
    assert err.status == status
    assert "bot credentials" in str(err)
    assert_no_secret(err)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_personal_token(world: Any, timed: Timed, assert_no_secret: NoSecret, status: int) -> None:
    tracker = world.add_tracker()
    world.give_alice_her_token()
    world.fake.fail_with(status)
    err, _ = timed(f"{status} personal", lambda: world.resolver.report_issue("alice", tracker, "t"))
    assert isinstance(err, PersonalTokenRejectedError)
    assert err.status == status
    assert_no_secret(err)


def test_captcha_403_says_what_to_do(world: Any) -> None:
    tracker = world.add_tracker()
    world.fake.fail_with(403, headers={"X-Seraph-LoginReason": "AUTHENTICATION_DENIED"})
    with pytest.raises(CredentialsRejectedError, match="CAPTCHA"):
        world.resolver.verify("bob", tracker)


def test_404_is_a_url_error(world: Any, timed: Timed, assert_no_secret: NoSecret) -> None:
    tracker = world.add_tracker(base_url=world.fake.url + "/jira")  # a context path the server lacks
    err, _ = timed("404 whoami", lambda: world.resolver.verify("bob", tracker))
    assert isinstance(err, TrackerURLError)
    assert err.status == 404
    assert "context path" in str(err)
    assert_no_secret(err)


def test_comment_on_a_missing_issue_is_a_url_error(world: Any) -> None:
    tracker = world.add_tracker()
    with pytest.raises(TrackerURLError, match="issue does not exist"):
        world.resolver.add_comment("bob", tracker, "PROJ-99", "x")


def test_a_bad_request_quotes_jiras_field_errors(world: Any, timed: Timed) -> None:
    tracker = world.add_tracker(project="lower")  # not a valid project key
    err, _ = timed("400", lambda: world.resolver.report_issue("bob", tracker, "t"))
    assert type(err) is TrackerRequestError
    assert "project: valid project is required" in str(err)


def test_a_service_wide_token_is_not_matched_by_prefix(world: Any) -> None:
    tracker = world.add_tracker(base_url=world.fake.url + "/jira")
    with pytest.raises(Exception, match="no tracker"):
        world.resolver.tokens.set(
            owner="alice",
            url=world.fake.url,
            scope=ALL_TENANTS,
            credentials=Credentials(api_username="alice@example.com", api_password=Secret("x")),
        )
    assert world.resolver.resolve("alice", tracker).source == "bot"


# --------------------------------------------------------------------------- client settings


@pytest.mark.parametrize(
    ("verify_tls", "ca_bundle", "expected"),
    [(True, None, True), (True, "/etc/ssl/private-ca.pem", "/etc/ssl/private-ca.pem"), (False, None, False)],
)
def test_build_client_applies_settings_and_tls(
    verify_tls: bool, ca_bundle: str | None, expected: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenproviders import Tracker

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # tls_verify would give the host's bundle
        monkeypatch.delenv(name, raising=False)

    tracker = Tracker(
        tenant="t",
        id="x",
        type="jira",
        base_url="https://jira.example.com/jira/",
        api_url=None,
        verify_tls=verify_tls,
        ca_bundle=ca_bundle,
    )
    client = Plugins().tracker_type("jira").build_client(
        tracker, Credentials(api_password=Secret("pat")), ClientSettings(timeout=2.5, retries=3, user_agent="ua/1")
    )
    session = client._session
    assert session.verify == expected
    assert session.trust_env is False  # no ~/.netrc credentials
    assert session.timeout == 2.5
    assert session.max_retries == 0  # jira's own sleeping retry loop is off
    assert session.headers["User-Agent"] == "ua/1"
    assert client.server_url == "https://jira.example.com/jira"
    retry = session.get_adapter("https://jira.example.com").max_retries
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, 3, False, 3)
    assert "POST" not in retry.allowed_methods


def test_api_url_serves_the_api_and_base_url_the_links(world: Any) -> None:
    tracker = world.add_tracker(base_url="https://acme.atlassian.net")
    from dataclasses import replace

    tracker = replace(tracker, id="other", api_url=world.fake.url)
    world.directory.add_tracker(tracker)
    issue = world.resolver.report_issue("bob", tracker, "t")
    assert issue.url == f"https://acme.atlassian.net/browse/{issue.id}"
    assert world.fake.issues[issue.id].reporter == "bot"


@pytest.mark.parametrize(
    ("base_url", "api_url", "trusted"),
    [
        ("https://acme.atlassian.net", None, True),
        ("https://acme.atlassian.net", "https://acme.atlassian.net/", True),
        ("https://acme.atlassian.net", "https://api.atlassian.com/ex/jira/1234-abcd", True),
        ("https://acme.atlassian.net", "https://api.atlassian.com/other", False),
        ("https://acme.atlassian.net", "https://collector.evil.test/ex/jira/1", False),
        ("https://jira.example.com", "https://api.atlassian.com/ex/jira/1234", False),
        ("https://jira.example.com/jira", "https://jira-internal.example.com/jira", False),
    ],
)
def test_personal_tokens_go_only_to_the_instance_or_atlassians_gateway(
    base_url: str, api_url: str | None, trusted: bool
) -> None:
    from tokenproviders_jira import JiraTrackerType

    from tokenproviders import Tracker

    tracker = Tracker(tenant="acme", id="jira", type="jira", base_url=base_url, api_url=api_url)
    assert JiraTrackerType().api_url_trusted(tracker) is trusted
