"""The azureboards tracker type: requests against the fake Azure DevOps, through the real Resolver."""

from __future__ import annotations

import base64
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tokenproviders_azureboards import locate

from tokenproviders import (
    Credentials,
    CredentialsRejectedError,
    InvalidInputError,
    PersonalTokenRejectedError,
    Plugins,
    Secret,
    Tracker,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeAzureBoards


def basic_pat(pat: str) -> str:
    return "Basic " + base64.b64encode(f":{pat}".encode()).decode()


def calls(fake: FakeAzureBoards) -> list[tuple[str, str]]:
    return [(r.method, r.raw_path) for r in fake.requests]


def assert_no_secret(exc: BaseException, secrets: tuple[str, ...]) -> None:
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), getattr(exc, "hint", "")]
    for text in shown:
        for secret in secrets:
            assert secret not in text


def timed(call: Callable[[], Any], expected: type[BaseException], label: str) -> BaseException:
    start = time.monotonic()
    with pytest.raises(expected) as info:
        call()
    elapsed = time.monotonic() - start
    print(f"azureboards {label}: {type(info.value).__name__} after {elapsed:.2f} s")
    assert elapsed < 30  # a sanity bound only; the real number is printed
    return info.value


def tracker(base_url: str, api_url: str | None = None, **options: Any) -> Tracker:
    return Tracker(tenant="t", id="b", type="azureboards", base_url=base_url, api_url=api_url, options=options)


# --------------------------------------------------------------------------- declaration and URLs


def test_discovered_from_its_entry_point() -> None:
    azure = Plugins().tracker_type("azureboards")
    assert (type(azure).__module__, azure.title) == ("tokenproviders_azureboards", "Azure Boards (Azure DevOps)")
    [field] = azure.fields
    assert (field.name, field.label, field.required, field.secret) == (
        "api_password",
        "Personal access token",
        True,
        True,
    )
    assert "Personal access tokens" in field.help and "Work Items: Read & write" in field.help


@pytest.mark.parametrize(
    ("base_url", "api_url", "options", "organization", "project"),
    [
        ("https://dev.azure.com/contoso/WebShop", None, {}, "https://dev.azure.com/contoso", "WebShop"),
        (
            "https://dev.azure.com/contoso/Web%20Shop/_boards/board",
            None,
            {},
            "https://dev.azure.com/contoso",
            "Web Shop",
        ),
        ("https://dev.azure.com/contoso", None, {"project": "Ops"}, "https://dev.azure.com/contoso", "Ops"),
        ("https://dev.azure.com/contoso/_workitems", None, {}, "https://dev.azure.com/contoso", None),
        ("https://Contoso.VisualStudio.com/WebShop/", None, {}, "https://contoso.visualstudio.com", "WebShop"),
        (
            "https://tfs.example.com/tfs/DefaultCollection/WebShop",
            "https://tfs.example.com/tfs/DefaultCollection",
            {},
            "https://tfs.example.com/tfs/DefaultCollection",
            "WebShop",
        ),
        ("https://ado.example.com/Coll/Proj", None, {"project": "Other"}, "https://ado.example.com/Coll", "Other"),
    ],
)
def test_organization_and_project_from_the_url(
    base_url: str, api_url: str | None, options: dict[str, str], organization: str, project: str | None
) -> None:
    t = tracker(base_url, api_url, **options)
    assert locate(t).organization_url == organization
    assert locate(t).project == project
    assert Plugins().tracker_type("azureboards").service_url(t) == organization


# --------------------------------------------------------------------------- credentials


def test_pat_travels_as_basic_with_an_empty_user_name(
    world: Any, azure_fake: FakeAzureBoards, pats: dict[str, str]
) -> None:
    identity = world.resolver.verify("alice", world.tracker)
    assert (identity.login, identity.name, identity.email) == (
        "alice@contoso.com",
        "Alice Liddell",
        "alice@contoso.com",
    )
    assert identity.id == FakeAzureBoards.user_id("alice")
    issue = world.resolver.report_issue("alice", world.tracker, title="t")
    world.resolver.add_comment("alice", world.tracker, issue.id, "c")
    assert calls(azure_fake) == [
        ("GET", "/contoso/_apis/connectionData"),
        ("POST", "/contoso/Web%20Shop/_apis/wit/workitems/$Bug"),
        ("POST", f"/contoso/Web%20Shop/_apis/wit/workItems/{issue.id}/comments"),
    ]
    for request in azure_fake.requests:
        assert request.header("Authorization") == basic_pat(pats["alice"])  # base64(":" + pat)
        assert request.identity == "alice"
        assert request.header("User-Agent") == "tokenproviders"


def test_bot_pat_is_used_without_a_personal_token(
    world: Any, azure_fake: FakeAzureBoards, pats: dict[str, str]
) -> None:
    assert world.resolver.verify("carol", world.tracker).login == "bot@contoso.com"
    assert azure_fake.requests[0].header("Authorization") == basic_pat(pats["bot"])


def test_one_organization_token_serves_every_project(
    make_world: Callable[..., Any], azure_fake: FakeAzureBoards, pats: dict[str, str]
) -> None:
    w = make_world(f"{azure_fake.url}/contoso/Web%20Shop")
    w.give_token("alice", pats["alice"], url=f"{azure_fake.url}/contoso")
    issue = w.resolver.report_issue("alice", w.tracker, title="via the org token")
    assert azure_fake.issues[issue.id].reporter == "alice"
    assert [(c.kind, c.url) for c in w.resolver.trackers_for("alice")] == [
        ("service", f"{azure_fake.url}/contoso"),
        ("tracker", f"{azure_fake.url}/contoso/Web%20Shop"),
    ]


# --------------------------------------------------------------------------- reporting


def test_report_with_alice_pat_is_recorded_under_alice(world: Any, azure_fake: FakeAzureBoards) -> None:
    issue = world.resolver.report_issue(
        "alice", world.tracker, title="It broke", body="Steps:\n1. click <Save> & wait", labels=["crash", "ui"]
    )
    stored = azure_fake.issues[issue.id]
    assert (stored.reporter, stored.project, stored.title, stored.issue_type) == (
        "alice",
        "contoso/Web Shop",
        "It broke",
        "Bug",
    )
    assert stored.body == "Steps:<br>1. click &lt;Save&gt; &amp; wait"  # Azure's fields hold HTML
    assert stored.labels == ["crash", "ui"]
    fields = {op["path"]: op["value"] for op in stored.payload}
    assert fields["/fields/Microsoft.VSTS.TCM.ReproSteps"] == stored.body  # what a Bug's form shows
    assert issue.url == f"{azure_fake.url}/contoso/Web%20Shop/_workitems/edit/{issue.id}"
    assert issue.resolution is not None and issue.resolution.source == "personal"
    request = azure_fake.requests[-1]
    assert (request.query, request.header("Content-Type")) == ({"api-version": ["7.1"]}, "application/json-patch+json")
    # Cold: building the client costs no request.
    assert calls(azure_fake) == [("POST", "/contoso/Web%20Shop/_apis/wit/workitems/$Bug")]


def test_report_without_personal_pat_is_recorded_under_the_bot(world: Any, azure_fake: FakeAzureBoards) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="As the bot")
    assert azure_fake.issues[issue.id].reporter == "kiwi-bot"
    assert issue.resolution is not None and issue.resolution.source == "bot"


def test_warm_report_costs_the_minimum_of_one_request(world: Any, azure_fake: FakeAzureBoards) -> None:
    world.resolver.report_issue("alice", world.tracker, title="cold")
    for n in range(3):
        azure_fake.clear()
        world.resolver.report_issue("alice", world.tracker, title=f"warm {n}")
        assert calls(azure_fake) == [("POST", "/contoso/Web%20Shop/_apis/wit/workitems/$Bug")]
        assert azure_fake.connections_accepted == 0  # the cached client keeps its connection alive


def test_comment_lands_on_the_work_item_as_the_commenter(world: Any, azure_fake: FakeAzureBoards) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="needs a comment")
    azure_fake.clear()
    resolution = world.resolver.add_comment("alice", world.tracker, issue.id, "Seen it too")
    assert resolution.source == "personal"
    [request] = azure_fake.requests
    assert (request.method, request.raw_path, request.query) == (
        "POST",
        f"/contoso/Web%20Shop/_apis/wit/workItems/{issue.id}/comments",
        {"api-version": ["7.1-preview.4"]},
    )
    assert [(c.author, c.text) for c in azure_fake.issues[issue.id].comments] == [("alice", "Seen it too")]
    with pytest.raises(InvalidInputError):
        world.resolver.add_comment("alice", world.tracker, "WI-1", "x")


def test_options_type_paths_tags_and_fields(make_world: Callable[..., Any], azure_fake: FakeAzureBoards) -> None:
    options = {
        "work_item_type": "Task",
        "area_path": "Web Shop\\Frontend",
        "iteration_path": "Web Shop\\Sprint 7",
        "tags": "kiwi; triage",
        "description_fields": ["System.Description"],
    }
    w = make_world(f"{azure_fake.url}/contoso/Web%20Shop", options=options)
    issue = w.resolver.report_issue("carol", w.tracker, title="task", body="b", labels=["kiwi"])
    stored = azure_fake.issues[issue.id]
    fields = {op["path"].removeprefix("/fields/"): op["value"] for op in stored.payload}
    assert stored.issue_type == "Task"
    assert (fields["System.AreaPath"], fields["System.IterationPath"]) == ("Web Shop\\Frontend", "Web Shop\\Sprint 7")
    assert stored.labels == ["kiwi", "triage"]
    assert "Microsoft.VSTS.TCM.ReproSteps" not in fields
    issue = w.resolver.report_issue("carol", w.tracker, title="story", issue_type="User Story")
    assert azure_fake.requests[-1].raw_path == "/contoso/Web%20Shop/_apis/wit/workitems/$User%20Story"
    assert azure_fake.issues[issue.id].issue_type == "User Story"


def test_missing_project_is_a_clear_configuration_error(
    make_world: Callable[..., Any], azure_fake: FakeAzureBoards
) -> None:
    w = make_world(f"{azure_fake.url}/contoso")
    with pytest.raises(InvalidInputError, match="option 'project'"):
        w.resolver.report_issue("carol", w.tracker, title="nowhere")
    assert azure_fake.requests == []


# --------------------------------------------------------------------------- the client itself


def test_client_has_bounded_timeout_retries_and_tls(
    make_world: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # tls_verify would give the host's bundle
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("unused: no TLS in this test")
    for kwargs, expected in (({}, True), ({"verify_tls": False}, False), ({"ca_bundle": str(bundle)}, str(bundle))):
        w = make_world("https://dev.azure.com/contoso/WebShop", timeout=7, retries=2, **kwargs)
        client = w.resolver.client("carol", w.tracker)
        assert (client.timeout, client.session.verify) == (7, expected)
        assert client.session.trust_env is False  # no ~/.netrc credentials
        retry = client.session.get_adapter("https://dev.azure.com").max_retries
        assert (retry.total, retry.backoff_factor, retry.respect_retry_after_header) == (2, 0, False)
        assert "POST" not in retry.allowed_methods
        assert repr(client) == "<AzureBoardsClient https://dev.azure.com/contoso>"


def test_reads_are_retried_but_writes_are_not(make_world: Callable[..., Any], azure_fake: FakeAzureBoards) -> None:
    w = make_world(f"{azure_fake.url}/contoso/Web%20Shop", retries=1)
    azure_fake.fail_with(503, times=1)
    assert w.resolver.verify("carol", w.tracker).login == "bot@contoso.com"
    assert len(azure_fake.requests) == 2
    azure_fake.clear()
    azure_fake.fail_with(503, times=1)
    with pytest.raises(TrackerUnavailableError):
        w.resolver.report_issue("carol", w.tracker, title="not twice")
    assert len(azure_fake.requests) == 1
    assert azure_fake.issues == {}


# --------------------------------------------------------------------------- failures


def test_refused_connection_is_unavailable(
    make_world: Callable[..., Any], closed_port: int, secrets: tuple[str, ...]
) -> None:
    w = make_world(f"http://127.0.0.1:{closed_port}/contoso/WebShop")
    exc = timed(lambda: w.resolver.report_issue("carol", w.tracker, title="x"), TrackerUnavailableError, "refused")
    assert_no_secret(exc, secrets)


def test_unresponsive_server_is_unavailable_within_the_timeout(
    world: Any, azure_fake: FakeAzureBoards, secrets: tuple[str, ...]
) -> None:
    azure_fake.hang()
    exc = timed(lambda: world.resolver.report_issue("alice", world.tracker, title="x"), TrackerUnavailableError, "hang")
    assert "timed out" in str(exc)
    assert_no_secret(exc, secrets)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_unavailable(
    world: Any, azure_fake: FakeAzureBoards, secrets: tuple[str, ...], status: int
) -> None:
    azure_fake.fail_with(status)
    exc = timed(lambda: world.resolver.verify("alice", world.tracker), TrackerUnavailableError, f"HTTP {status}")
    assert getattr(exc, "status", None) == status
    assert_no_secret(exc, secrets)


def test_sign_in_page_203_is_rejected_credentials(
    world: Any, azure_fake: FakeAzureBoards, secrets: tuple[str, ...], pats: dict[str, str]
) -> None:
    azure_fake.signin_page_for_unauthenticated = True
    world.give_token("carol", pats["wrong"])
    for call in (
        lambda: world.resolver.verify("carol", world.tracker),
        lambda: world.resolver.report_issue("carol", world.tracker, title="x"),
    ):
        with pytest.raises(PersonalTokenRejectedError) as info:
            call()
        assert info.value.status == 203 and "sign-in page" in str(info.value)
        assert_no_secret(info.value, secrets)
    assert azure_fake.issues == {}
    assert [r.identity for r in azure_fake.requests] == [None, None]


def test_wrong_bot_pat_is_rejected_credentials(
    make_world: Callable[..., Any], azure_fake: FakeAzureBoards, secrets: tuple[str, ...], pats: dict[str, str]
) -> None:
    azure_fake.signin_page_for_unauthenticated = True
    w = make_world(
        f"{azure_fake.url}/contoso/Web%20Shop", bot_credentials=Credentials(api_password=Secret(pats["wrong"]))
    )
    with pytest.raises(CredentialsRejectedError) as info:
        w.resolver.report_issue("carol", w.tracker, title="x")
    assert not isinstance(info.value, PersonalTokenRejectedError)
    assert "bot credentials" in str(info.value)
    assert_no_secret(info.value, secrets)
    azure_fake.signin_page_for_unauthenticated = False
    with pytest.raises(CredentialsRejectedError) as info:
        w.resolver.verify("carol", w.tracker)
    assert info.value.status == 401


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_rejected(
    world: Any, azure_fake: FakeAzureBoards, secrets: tuple[str, ...], status: int
) -> None:
    azure_fake.fail_with(status)
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("alice", world.tracker, title="x")
    assert info.value.status == status
    assert_no_secret(info.value, secrets)


def test_redirect_to_sign_in_is_rejected_and_not_followed(
    make_world: Callable[..., Any], odd_server: Callable[..., str]
) -> None:
    url = odd_server(302, {"Location": "https://login.microsoftonline.com/common/oauth2/authorize"}, b"")
    w = make_world(f"{url}/contoso/WebShop")
    with pytest.raises(CredentialsRejectedError, match="sign-in"):
        w.resolver.verify("carol", w.tracker)


def test_a_site_that_is_not_azure_devops_is_a_url_error(
    make_world: Callable[..., Any], odd_server: Callable[..., str]
) -> None:
    url = odd_server(200, {"Content-Type": "text/html"}, b"<html>some other site</html>")
    w = make_world(f"{url}/contoso/WebShop")
    with pytest.raises(TrackerURLError):
        w.resolver.verify("carol", w.tracker)


def test_wrong_url_is_told_apart_from_a_wrong_token(
    make_world: Callable[..., Any], azure_fake: FakeAzureBoards, secrets: tuple[str, ...]
) -> None:
    w = make_world(f"{azure_fake.url}/_nothing/WebShop")
    with pytest.raises(TrackerURLError) as info:
        w.resolver.verify("carol", w.tracker)
    assert info.value.status == 404
    assert_no_secret(info.value, secrets)


def test_comment_on_a_missing_work_item_is_a_url_error(world: Any) -> None:
    with pytest.raises(TrackerURLError):
        world.resolver.add_comment("alice", world.tracker, "999", "text")


def test_a_refused_field_is_a_request_error(world: Any, azure_fake: FakeAzureBoards) -> None:
    azure_fake.fail_with(400, message="TF51535: Cannot find field System.Nope.")
    with pytest.raises(TrackerRequestError) as info:
        world.resolver.report_issue("alice", world.tracker, title="x")
    assert not isinstance(info.value, TrackerURLError)
    assert info.value.status == 400 and "VssServiceException" in str(info.value)


def test_no_secret_in_reprs(world: Any, pats: dict[str, str]) -> None:
    resolution = world.resolver.resolve("alice", world.tracker)
    issue = world.resolver.report_issue("alice", world.tracker, title="repr")
    client = world.resolver.client("alice", world.tracker)
    for text in (repr(resolution), repr(issue), repr(world.tracker), repr(client)):
        assert pats["alice"] not in text and pats["bot"] not in text
