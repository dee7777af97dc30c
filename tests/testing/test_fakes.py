"""The fake trackers against the real client libraries (and plain ``requests`` for the generic parts).

Each client library is optional here: its tests are skipped when it is not installed.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tokenproviders.testing.fakes import (
    FAKES,
    FakeAzureBoards,
    FakeBugzilla,
    FakeGitHub,
    FakeGitLab,
    FakeJira,
    FakeRedmine,
    FakeTracker,
    RecordedRequest,
)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def only(fake: FakeTracker) -> RecordedRequest:
    assert len(fake.requests) == 1, [(r.method, r.raw_path) for r in fake.requests]
    return fake.requests[0]


def calls(fake: FakeTracker) -> list[tuple[str, str]]:
    return [(r.method, r.raw_path) for r in fake.requests]


@pytest.fixture
def jira_fake() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        fake.add_user("alice", username="alice@example.com", token="cloud-token-a", name="Alice")
        fake.add_user("bob", token="pat-bob", name="Bob")
        yield fake


@pytest.fixture
def github_fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_user("alice", token="ghp_alice")
        fake.add_user("bot", token="ghp_bot")
        yield fake


@pytest.fixture
def gitlab_fake() -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        fake.add_user("alice", token="glpat-alice")
        yield fake


@pytest.fixture
def redmine_fake() -> Iterator[FakeRedmine]:
    with FakeRedmine() as fake:
        fake.add_user("alice", token="key-alice", name="Alice Liddell")
        fake.add_user("bob", username="bob", password="pw-bob")
        yield fake


@pytest.fixture
def bugzilla_fake() -> Iterator[FakeBugzilla]:
    with FakeBugzilla() as fake:
        fake.add_user("alice@example.com", token="bzkey-alice", name="Alice")
        yield fake


@pytest.fixture
def azure_fake() -> Iterator[FakeAzureBoards]:
    with FakeAzureBoards() as fake:
        fake.add_user("alice", token="pat-alice", email="alice@contoso.com", name="Alice A")
        yield fake


# --------------------------------------------------------------------------- Jira


def jira_client(url: str, timeout: float = 5, **auth: Any) -> Any:
    jira = pytest.importorskip("jira")
    return jira.JIRA(url, get_server_info=False, timeout=timeout, max_retries=0, **auth)


def test_jira_cloud_basic_auth_whoami(jira_fake: FakeJira) -> None:
    client = jira_client(jira_fake.url, basic_auth=("alice@example.com", "cloud-token-a"))
    assert jira_fake.requests == []  # get_server_info=False: no I/O at construction
    me = client.myself()
    assert me["emailAddress"] == "alice@example.com"
    assert me["displayName"] == "Alice"
    assert me["accountId"]
    req = only(jira_fake)
    assert (req.method, req.raw_path) == ("GET", "/rest/api/2/myself")
    assert req.header("Authorization") == basic("alice@example.com", "cloud-token-a")
    assert req.identity == "alice"


def test_jira_pat_bearer_whoami(jira_fake: FakeJira) -> None:
    client = jira_client(jira_fake.url, token_auth="pat-bob")
    assert client.myself()["name"] == "bob"
    req = only(jira_fake)
    assert req.header("AUTHORIZATION") == "Bearer pat-bob"
    assert ("authorization", "Bearer pat-bob") in req.headers  # the jira library sends it lower-case
    assert req.identity == "bob"


def test_jira_server_info_fetched_at_construction_by_default(jira_fake: FakeJira) -> None:
    jira = pytest.importorskip("jira")
    client = jira.JIRA(jira_fake.url, token_auth="pat-bob", timeout=5, max_retries=0)
    assert calls(jira_fake) == [("GET", "/rest/api/2/serverInfo")]
    assert client._version == (9, 12, 2)
    assert client.deploymentType == "Server"


def test_jira_create_issue_and_comment(jira_fake: FakeJira) -> None:
    client = jira_client(jira_fake.url, basic_auth=("alice@example.com", "cloud-token-a"))
    issue = client.create_issue(
        fields={
            "project": {"key": "PROJ"},
            "issuetype": {"name": "Bug"},
            "summary": "It broke",
            "description": "Details",
            "labels": ["crash", "auto"],
        },
        prefetch=False,
    )
    assert issue.key == "PROJ-1"
    assert calls(jira_fake) == [("POST", "/rest/api/2/issue")]
    jira_fake.clear()
    client.add_comment(issue.key, "More details")
    req = only(jira_fake)
    assert (req.method, req.raw_path, req.identity) == ("POST", "/rest/api/2/issue/PROJ-1/comment", "alice")

    stored = jira_fake.issues["PROJ-1"]
    assert (stored.title, stored.body, stored.reporter, stored.project) == ("It broke", "Details", "alice", "PROJ")
    assert (stored.labels, stored.issue_type) == (["crash", "auto"], "Bug")
    assert [(c.author, c.text) for c in stored.comments] == [("alice", "More details")]
    assert stored.url == f"{jira_fake.url}/browse/PROJ-1"


def test_jira_issue_with_pat_is_recorded_under_pat_owner(jira_fake: FakeJira) -> None:
    client = jira_client(jira_fake.url, token_auth="pat-bob")
    issue = client.create_issue(
        fields={"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "s"}, prefetch=False
    )
    assert jira_fake.issues[issue.key].reporter == "bob"


def test_jira_wrong_token_is_401(jira_fake: FakeJira) -> None:
    jira = pytest.importorskip("jira")
    client = jira_client(jira_fake.url, basic_auth=("alice@example.com", "wrong"))
    with pytest.raises(jira.JIRAError) as err:
        client.myself()
    assert err.value.status_code == 401
    assert only(jira_fake).identity is None


def test_jira_fail_with_503(jira_fake: FakeJira) -> None:
    jira = pytest.importorskip("jira")
    client = jira_client(jira_fake.url, token_auth="pat-bob")
    jira_fake.fail_with(503, times=1)
    with pytest.raises(jira.JIRAError) as err:
        client.myself()
    assert err.value.status_code == 503
    assert client.myself()["name"] == "bob"
    assert len(jira_fake.requests) == 2


def test_jira_hang_times_out(jira_fake: FakeJira) -> None:
    client = jira_client(jira_fake.url, timeout=1, token_auth="pat-bob")
    jira_fake.hang()
    with pytest.raises(requests.exceptions.Timeout):
        client.myself()


# --------------------------------------------------------------------------- GitHub


def github_client(base_url: str, token: str | None, timeout: int = 5) -> Any:
    github = pytest.importorskip("github")
    auth = github.Auth.Token(token) if token is not None else None
    return github.Github(
        base_url=base_url,
        auth=auth,
        timeout=timeout,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
    )


@pytest.mark.parametrize("prefix", ["", "/api/v3"], ids=["github.com", "enterprise"])
def test_github_whoami_issue_comment(github_fake: FakeGitHub, prefix: str) -> None:
    gh = github_client(f"{github_fake.url}{prefix}", "ghp_alice")
    assert gh.get_user().login == "alice"
    req = only(github_fake)
    assert (req.method, req.raw_path) == ("GET", f"{prefix}/user")
    assert req.header("authorization") == "token ghp_alice"
    assert req.identity == "alice"

    github_fake.clear()
    repo = gh.get_repo("octo/widgets")  # lazy client: no GET /repos/octo/widgets
    assert github_fake.requests == []
    issue = repo.create_issue(title="It broke", body="Details", labels=["bug"])
    assert calls(github_fake) == [("POST", f"{prefix}/repos/octo/widgets/issues")]
    assert issue.url == f"{github_fake.url}{prefix}/repos/octo/widgets/issues/{issue.number}"
    assert issue.html_url == f"{github_fake.url}/octo/widgets/issues/{issue.number}"
    assert issue.user.login == "alice"

    github_fake.clear()
    comment = issue.create_comment("More details")
    assert comment.user.login == "alice"
    req = only(github_fake)
    assert (req.method, req.raw_path, req.identity) == (
        "POST",
        f"{prefix}/repos/octo/widgets/issues/{issue.number}/comments",
        "alice",
    )
    stored = github_fake.issues[str(issue.number)]
    assert (stored.reporter, stored.project, stored.labels) == ("alice", "octo/widgets", ["bug"])
    assert [(c.author, c.text) for c in stored.comments] == [("alice", "More details")]


def test_github_bot_and_user_tokens_are_told_apart(github_fake: FakeGitHub) -> None:
    for token, login in (("ghp_bot", "bot"), ("ghp_alice", "alice")):
        issue = github_client(github_fake.url, token).get_repo("o/r").create_issue(title=f"from {login}")
        assert github_fake.issues[str(issue.number)].reporter == login


def test_github_bearer_header_accepted(github_fake: FakeGitHub) -> None:
    r = requests.get(f"{github_fake.url}/api/v3/user", headers={"Authorization": "Bearer ghp_bot"}, timeout=5)
    assert r.status_code == 200
    assert r.json()["login"] == "bot"


def test_github_non_lazy_get_repo_fetches_the_repo(github_fake: FakeGitHub) -> None:
    github = pytest.importorskip("github")
    gh = github.Github(
        base_url=f"{github_fake.url}/api/v3",
        auth=github.Auth.Token("ghp_alice"),
        timeout=5,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    assert gh.get_repo("o/r").full_name == "o/r"
    assert calls(github_fake) == [("GET", "/api/v3/repos/o/r")]


def test_github_wrong_and_missing_token(github_fake: FakeGitHub) -> None:
    github = pytest.importorskip("github")
    with pytest.raises(github.BadCredentialsException) as bad:
        _ = github_client(github_fake.url, "ghp_wrong").get_user().login
    assert bad.value.status == 401
    assert bad.value.data["message"] == "Bad credentials"
    with pytest.raises(github.GithubException) as missing:
        _ = github_client(github_fake.url, None).get_user().login
    assert missing.value.status == 401
    assert not isinstance(missing.value, github.BadCredentialsException)
    assert [r.identity for r in github_fake.requests] == [None, None]


def test_github_fail_with_503(github_fake: FakeGitHub) -> None:
    github = pytest.importorskip("github")
    github_fake.fail_with(503)
    with pytest.raises(github.GithubException) as err:
        github_client(github_fake.url, "ghp_alice").get_repo("o/r").create_issue(title="t")
    assert err.value.status == 503
    assert len(github_fake.requests) == 1  # retry=None: no retries
    assert github_fake.issues == {}


def test_github_hang_times_out(github_fake: FakeGitHub) -> None:
    github_fake.hang()
    with pytest.raises(requests.exceptions.Timeout):
        _ = github_client(github_fake.url, "ghp_alice", timeout=1).get_user().login


# --------------------------------------------------------------------------- GitLab


def gitlab_client(url: str, timeout: float = 5, **auth: Any) -> Any:
    gitlab = pytest.importorskip("gitlab")
    return gitlab.Gitlab(url, timeout=timeout, retry_transient_errors=False, **auth)


def test_gitlab_whoami_issue_note(gitlab_fake: FakeGitLab) -> None:
    gl = gitlab_client(gitlab_fake.url, private_token="glpat-alice")
    assert gitlab_fake.requests == []
    gl.auth()
    assert gl.user.username == "alice"
    req = only(gitlab_fake)
    assert (req.method, req.raw_path) == ("GET", "/api/v4/user")
    assert req.header("private-token") == "glpat-alice"
    assert req.identity == "alice"

    gitlab_fake.clear()
    project = gl.projects.get("grp/sub/proj", lazy=True)
    issue = project.issues.create({"title": "It broke", "description": "Details", "labels": ["bug", "auto"]})
    req = only(gitlab_fake)
    assert (req.method, req.raw_path, req.path) == (
        "POST",
        "/api/v4/projects/grp%2Fsub%2Fproj/issues",
        "/api/v4/projects/grp/sub/proj/issues",
    )
    assert issue.web_url == f"{gitlab_fake.url}/grp/sub/proj/-/issues/{issue.iid}"
    assert issue.author["username"] == "alice"

    gitlab_fake.clear()
    issue.notes.create({"body": "More details"})
    req = only(gitlab_fake)
    assert (req.method, req.raw_path, req.identity) == (
        "POST",
        f"/api/v4/projects/{issue.project_id}/issues/{issue.iid}/notes",
        "alice",
    )
    stored = gitlab_fake.issues[str(issue.iid)]
    assert (stored.reporter, stored.project, stored.labels) == ("alice", "grp/sub/proj", ["bug", "auto"])
    assert [(c.author, c.text) for c in stored.comments] == [("alice", "More details")]


def test_gitlab_oauth_bearer(gitlab_fake: FakeGitLab) -> None:
    gl = gitlab_client(gitlab_fake.url, oauth_token="glpat-alice")
    gl.auth()
    assert only(gitlab_fake).header("Authorization") == "Bearer glpat-alice"
    assert gl.user.username == "alice"


def test_gitlab_wrong_token_is_401(gitlab_fake: FakeGitLab) -> None:
    gitlab = pytest.importorskip("gitlab")
    with pytest.raises(gitlab.GitlabAuthenticationError) as err:
        gitlab_client(gitlab_fake.url, private_token="nope").auth()
    assert err.value.response_code == 401
    assert only(gitlab_fake).identity is None


def test_gitlab_unknown_numeric_project_is_404(gitlab_fake: FakeGitLab) -> None:
    gitlab = pytest.importorskip("gitlab")
    gl = gitlab_client(gitlab_fake.url, private_token="glpat-alice")
    with pytest.raises(gitlab.GitlabCreateError) as err:
        gl.projects.get(424242, lazy=True).issues.create({"title": "t"})
    assert err.value.response_code == 404


def test_gitlab_fail_with_503(gitlab_fake: FakeGitLab) -> None:
    gitlab = pytest.importorskip("gitlab")
    gitlab_fake.fail_with(503, times=1)
    with pytest.raises(gitlab.GitlabError) as err:
        gitlab_client(gitlab_fake.url, private_token="glpat-alice").auth()
    assert err.value.response_code == 503
    assert len(gitlab_fake.requests) == 1


def test_gitlab_hang_times_out(gitlab_fake: FakeGitLab) -> None:
    gitlab_fake.hang()
    with pytest.raises(requests.exceptions.Timeout):
        gitlab_client(gitlab_fake.url, timeout=1, private_token="glpat-alice").auth()


# --------------------------------------------------------------------------- Redmine


def test_redmine_api_key_whoami_issue_note(redmine_fake: FakeRedmine) -> None:
    redminelib = pytest.importorskip("redminelib")
    redmine = redminelib.Redmine(redmine_fake.url, key="key-alice")
    assert redmine_fake.requests == []
    user = redmine.user.get("current")
    assert (user.login, user.firstname, user.lastname) == ("alice", "Alice", "Liddell")
    req = only(redmine_fake)
    assert (req.method, req.raw_path) == ("GET", "/users/current.json")
    assert req.header("x-redmine-api-key") == "key-alice"
    assert req.identity == "alice"

    redmine_fake.clear()
    issue = redmine.issue.create(project_id="webshop", subject="It broke", description="Details")
    assert issue.author.name == "Alice Liddell"
    req = only(redmine_fake)
    assert (req.method, req.raw_path) == ("POST", "/projects/webshop/issues.json")

    redmine_fake.clear()
    assert redmine.issue.update(issue.id, notes="More details") is True
    req = only(redmine_fake)
    assert (req.method, req.raw_path, req.identity) == ("PUT", f"/issues/{issue.id}.json", "alice")
    stored = redmine_fake.issues[str(issue.id)]
    assert (stored.title, stored.reporter, stored.project) == ("It broke", "alice", "webshop")
    assert [(c.author, c.text) for c in stored.comments] == [("alice", "More details")]
    journals = redmine.issue.get(issue.id, include=["journals"]).journals
    assert [j.notes for j in journals] == ["More details"]


def test_redmine_basic_auth(redmine_fake: FakeRedmine) -> None:
    redminelib = pytest.importorskip("redminelib")
    redmine = redminelib.Redmine(redmine_fake.url, username="bob", password="pw-bob")
    assert redmine.user.get("current").login == "bob"
    req = only(redmine_fake)
    assert req.header("Authorization") == basic("bob", "pw-bob")
    assert req.identity == "bob"
    issue = redmine.issue.create(project_id="webshop", subject="s")
    assert redmine_fake.issues[str(issue.id)].reporter == "bob"


def test_redmine_key_query_parameter(redmine_fake: FakeRedmine) -> None:
    r = requests.get(f"{redmine_fake.url}/users/current.json", params={"key": "key-alice"}, timeout=5)
    assert r.json()["user"]["login"] == "alice"
    assert only(redmine_fake).query == {"key": ["key-alice"]}


def test_redmine_wrong_key_is_401(redmine_fake: FakeRedmine) -> None:
    redminelib = pytest.importorskip("redminelib")
    with pytest.raises(redminelib.exceptions.AuthError):
        redminelib.Redmine(redmine_fake.url, key="wrong").user.get("current")
    r = requests.get(f"{redmine_fake.url}/users/current.json", headers={"X-Redmine-API-Key": "wrong"}, timeout=5)
    assert (r.status_code, r.content) == (401, b"")
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Redmine API"'
    assert [x.identity for x in redmine_fake.requests] == [None, None]


def test_redmine_fail_with_503(redmine_fake: FakeRedmine) -> None:
    redminelib = pytest.importorskip("redminelib")
    redmine_fake.fail_with(503, times=1)
    # python-redmine maps only 500 to ServerError; a 503 is an UnknownError carrying the status.
    with pytest.raises(redminelib.exceptions.UnknownError, match="503"):
        redminelib.Redmine(redmine_fake.url, key="key-alice").user.get("current")
    redmine_fake.fail_with(500, times=1)
    with pytest.raises(redminelib.exceptions.ServerError):
        redminelib.Redmine(redmine_fake.url, key="key-alice").user.get("current")


def test_redmine_hang_times_out_with_a_timeout_engine(redmine_fake: FakeRedmine) -> None:
    redminelib = pytest.importorskip("redminelib")
    from redminelib.engines.sync import SyncEngine

    class TimeoutEngine(SyncEngine):  # type: ignore[misc]
        """python-redmine ignores requests={'timeout': ...}; this engine passes one per request."""

        @staticmethod
        def construct_request_kwargs(method: str, headers: Any, params: Any, data: Any) -> dict[str, Any]:
            kwargs: dict[str, Any] = SyncEngine.construct_request_kwargs(method, headers, params, data)
            kwargs["timeout"] = 1
            return kwargs

    redmine = redminelib.Redmine(redmine_fake.url, key="key-alice", engine=TimeoutEngine)
    redmine_fake.hang()
    with pytest.raises(requests.exceptions.Timeout):
        redmine.user.get("current")


# --------------------------------------------------------------------------- Bugzilla


def bugzilla_client(url: str, api_key: str | None) -> Any:
    bugzilla = pytest.importorskip("bugzilla")
    return bugzilla.Bugzilla(f"{url}/rest", api_key=api_key, use_creds=False, tokenfile=None, force_rest=True)


def test_bugzilla_startup_whoami_bug_comment(bugzilla_fake: FakeBugzilla) -> None:
    bz = bugzilla_client(bugzilla_fake.url, "bzkey-alice")
    # Construction costs exactly one request: GET /rest/version, with the key in the query string.
    req = only(bugzilla_fake)
    assert (req.method, req.raw_path, req.query) == ("GET", "/rest/version", {"Bugzilla_api_key": ["bzkey-alice"]})
    assert bz.bz_ver_major == 5

    bugzilla_fake.clear()
    me = bz._backend._get("/whoami")  # python-bugzilla has no public whoami; the backend adds the key
    assert (me["name"], me["real_name"]) == ("alice@example.com", "Alice")
    req = only(bugzilla_fake)
    assert (req.raw_path, req.identity) == ("/rest/whoami", "alice@example.com")

    bugzilla_fake.clear()
    create = bz.build_createbug(product="Widgets", component="UI", version="1.0", summary="It broke", description="D")
    bug = bz.createbug(create)
    req = only(bugzilla_fake)
    assert (req.method, req.raw_path, req.query) == ("POST", "/rest/bug", {"Bugzilla_api_key": ["bzkey-alice"]})

    bugzilla_fake.clear()
    bug.addcomment("More details")  # PUT /rest/bug/{id} with comment.comment
    bz._backend._post(f"/bug/{bug.id}/comment", {"comment": "Even more"})
    assert calls(bugzilla_fake) == [("PUT", f"/rest/bug/{bug.id}"), ("POST", f"/rest/bug/{bug.id}/comment")]
    stored = bugzilla_fake.issues[str(bug.id)]
    assert (stored.title, stored.body, stored.reporter, stored.project) == (
        "It broke",
        "D",
        "alice@example.com",
        "Widgets",
    )
    assert [(c.author, c.text) for c in stored.comments] == [
        ("alice@example.com", "More details"),
        ("alice@example.com", "Even more"),
    ]
    assert bz.getbug(bug.id).summary == "It broke"


def test_bugzilla_header_api_key(bugzilla_fake: FakeBugzilla) -> None:
    r = requests.get(f"{bugzilla_fake.url}/rest/whoami", headers={"X-BUGZILLA-API-KEY": "bzkey-alice"}, timeout=5)
    assert r.json()["name"] == "alice@example.com"
    assert only(bugzilla_fake).identity == "alice@example.com"


def test_bugzilla_wrong_key(bugzilla_fake: FakeBugzilla) -> None:
    bugzilla = pytest.importorskip("bugzilla")
    bz = bugzilla_client(bugzilla_fake.url, "wrong")  # GET /rest/version is login-exempt: no error yet
    with pytest.raises(bugzilla.BugzillaError) as err:
        bz._backend._get("/whoami")
    assert err.value.code == 306
    r = requests.get(f"{bugzilla_fake.url}/rest/whoami", params={"Bugzilla_api_key": "wrong"}, timeout=5)
    assert r.status_code == 400  # Bugzilla maps code 306 to HTTP 400, not 401
    assert r.json() == {
        "error": True,
        "code": 306,
        "message": "The API key you specified is invalid. Please check that you typed it correctly.",
        "documentation": r.json()["documentation"],
    }
    anonymous = requests.get(f"{bugzilla_fake.url}/rest/whoami", timeout=5)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 410)


def test_bugzilla_logged_in(bugzilla_fake: FakeBugzilla) -> None:
    assert bugzilla_client(bugzilla_fake.url, "bzkey-alice").logged_in is True
    assert bugzilla_client(bugzilla_fake.url, None).logged_in is False


def test_bugzilla_fail_with_503(bugzilla_fake: FakeBugzilla) -> None:
    exceptions = pytest.importorskip("bugzilla.exceptions")
    bz = bugzilla_client(bugzilla_fake.url, "bzkey-alice")
    bugzilla_fake.fail_with(503)
    with pytest.raises(exceptions.BugzillaHTTPError) as err:
        bz._backend._get("/whoami")
    assert err.value.response.status_code == 503


def test_bugzilla_hang_times_out(bugzilla_fake: FakeBugzilla, monkeypatch: pytest.MonkeyPatch) -> None:
    bz = bugzilla_client(bugzilla_fake.url, "bzkey-alice")
    monkeypatch.setenv("PYTHONBUGZILLA_REQUESTS_TIMEOUT", "1")  # read on every request
    bugzilla_fake.hang()
    with pytest.raises(requests.exceptions.Timeout):
        bz._backend._get("/whoami")


# --------------------------------------------------------------------------- Azure Boards

PATCH = "application/json-patch+json"


def azure_session(pat: str) -> requests.Session:
    session = requests.Session()
    session.auth = ("", pat)
    return session


def test_azure_whoami_work_item_comment(azure_fake: FakeAzureBoards) -> None:
    s = azure_session("pat-alice")
    r = s.get(f"{azure_fake.url}/contoso/_apis/connectionData", timeout=5)
    me = r.json()["authenticatedUser"]
    assert (r.status_code, me["providerDisplayName"], me["properties"]["Account"]["$value"]) == (
        200,
        "Alice A",
        "alice@contoso.com",
    )
    assert me["id"] == FakeAzureBoards.user_id("alice")
    req = only(azure_fake)
    assert req.header("Authorization") == basic("", "pat-alice")
    assert req.identity == "alice"

    azure_fake.clear()
    ops = [
        {"op": "add", "path": "/fields/System.Title", "value": "It broke"},
        {"op": "add", "path": "/fields/System.Description", "value": "Details"},
        {"op": "add", "path": "/fields/System.Tags", "value": "crash; auto"},
    ]
    r = s.post(
        f"{azure_fake.url}/contoso/Web%20Shop/_apis/wit/workitems/$Bug?api-version=7.1",
        json=ops,
        headers={"Content-Type": PATCH},
        timeout=5,
    )
    assert r.status_code == 200
    item = r.json()
    assert item["fields"]["System.CreatedBy"]["displayName"] == "Alice A"
    assert item["_links"]["html"]["href"] == f"{azure_fake.url}/contoso/Web%20Shop/_workitems/edit/{item['id']}"
    req = only(azure_fake)
    assert req.raw_path == "/contoso/Web%20Shop/_apis/wit/workitems/$Bug"
    assert req.query == {"api-version": ["7.1"]}

    azure_fake.clear()
    r = s.post(
        f"{azure_fake.url}/contoso/Web%20Shop/_apis/wit/workItems/{item['id']}/comments",
        params={"api-version": "7.1-preview.4"},
        json={"text": "More details"},
        timeout=5,
    )
    assert (r.status_code, r.json()["createdBy"]["uniqueName"]) == (200, "alice@contoso.com")
    assert only(azure_fake).identity == "alice"
    stored = azure_fake.issues[str(item["id"])]
    assert (stored.title, stored.body, stored.project) == ("It broke", "Details", "contoso/Web Shop")
    assert (stored.reporter, stored.labels, stored.issue_type) == ("alice", ["crash", "auto"], "Bug")
    assert [(c.author, c.text) for c in stored.comments] == [("alice", "More details")]


def test_azure_api_rules(azure_fake: FakeAzureBoards) -> None:
    s = azure_session("any-user-name-is-fine")
    s.auth = ("someone", "pat-alice")
    base = f"{azure_fake.url}/contoso/proj/_apis/wit"
    title = [{"op": "add", "path": "/fields/System.Title", "value": "t"}]
    assert s.post(f"{base}/workitems/$Task?api-version=7.1", json=title, timeout=5).status_code == 415
    r = s.post(f"{base}/workitems/$Task", data=b"[]", headers={"Content-Type": PATCH}, timeout=5)
    assert r.json()["typeKey"] == "VssVersionNotSpecifiedException"
    r = s.post(f"{base}/workitems/$Task?api-version=7.1", data=b"[]", headers={"Content-Type": PATCH}, timeout=5)
    assert (r.status_code, r.json()["typeKey"]) == (400, "RuleValidationException")
    r = s.post(f"{base}/workItems/1/comments?api-version=7.1", json={"text": "x"}, timeout=5)
    assert r.json()["typeKey"] == "VssInvalidPreviewVersionException"
    assert all(x.identity == "alice" for x in azure_fake.requests)


def test_azure_wrong_pat_is_401_or_signin_page(azure_fake: FakeAzureBoards) -> None:
    url = f"{azure_fake.url}/contoso/_apis/connectionData"
    assert azure_session("wrong").get(url, timeout=5).status_code == 401
    assert requests.get(url, timeout=5).status_code == 401
    azure_fake.signin_page_for_unauthenticated = True
    r = azure_session("wrong").get(url, timeout=5)
    assert r.status_code == 203
    assert r.headers["Content-Type"].startswith("text/html")
    assert b"Sign In" in r.content
    assert [x.identity for x in azure_fake.requests] == [None, None, None]


def test_azure_fail_with_503(azure_fake: FakeAzureBoards) -> None:
    azure_fake.fail_with(503, times=1)
    s = azure_session("pat-alice")
    r = s.get(f"{azure_fake.url}/contoso/_apis/connectionData", timeout=5)
    assert (r.status_code, r.json()["message"]) == (503, "Service Unavailable")
    assert s.get(f"{azure_fake.url}/contoso/_apis/connectionData", timeout=5).status_code == 200


def test_azure_hang_times_out(azure_fake: FakeAzureBoards) -> None:
    azure_fake.hang()
    with pytest.raises(requests.exceptions.Timeout):
        azure_session("pat-alice").get(f"{azure_fake.url}/contoso/_apis/connectionData", timeout=1)


# --------------------------------------------------------------------------- generic behaviour (plain requests)

#: A route each fake answers for an authenticated user, and the credentials to get there.
WHOAMI: dict[str, tuple[str, dict[str, str]]] = {
    "jira": ("/rest/api/2/myself", {"Authorization": "Bearer tok"}),
    "github": ("/user", {"Authorization": "token tok"}),
    "gitlab": ("/api/v4/user", {"PRIVATE-TOKEN": "tok"}),
    "redmine": ("/users/current.json", {"X-Redmine-API-Key": "tok"}),
    "bugzilla": ("/rest/whoami", {"X-BUGZILLA-API-KEY": "tok"}),
    "azureboards": ("/org/_apis/connectionData", {"Authorization": basic("", "tok")}),
}

#: What an unknown route's JSON error body looks like (Redmine answers 404 with an empty body).
NOT_FOUND_KEY = {
    "jira": "errorMessages",
    "github": "message",
    "gitlab": "error",
    "redmine": None,
    "bugzilla": "code",
    "azureboards": "typeKey",
}


@pytest.fixture(params=sorted(FAKES))
def any_fake(request: pytest.FixtureRequest) -> Iterator[FakeTracker]:
    with FAKES[request.param]() as fake:
        fake.add_user("carol", token="tok")
        yield fake


def get_whoami(fake: FakeTracker, session: requests.Session | None = None, timeout: float = 5) -> requests.Response:
    path, headers = WHOAMI[fake.type_name]
    return (session or requests.Session()).get(fake.url + path, headers=headers, timeout=timeout)


def test_fakes_registry_names() -> None:
    assert sorted(FAKES) == ["azureboards", "bugzilla", "github", "gitlab", "jira", "redmine"]


def test_whoami_and_keep_alive(any_fake: FakeTracker) -> None:
    session = requests.Session()
    for _ in range(3):
        r = get_whoami(any_fake, session)
        assert r.status_code == 200
        assert r.headers["Content-Length"] == str(len(r.content))
    assert [x.identity for x in any_fake.requests] == ["carol"] * 3
    assert any_fake.connections_accepted == 1  # HTTP/1.1 keep-alive: one connection for three requests


def test_unknown_route_is_404_in_tracker_shape(any_fake: FakeTracker) -> None:
    r = requests.get(f"{any_fake.url}/no/such/thing", headers=WHOAMI[any_fake.type_name][1], timeout=5)
    assert r.status_code == 404
    assert "Content-Length" in r.headers
    key = NOT_FOUND_KEY[any_fake.type_name]
    if key is None:
        assert r.content == b""
    else:
        assert key in r.json()


def test_fail_with_times_then_recovers(any_fake: FakeTracker) -> None:
    any_fake.fail_with(503, times=2)
    assert [get_whoami(any_fake).status_code for _ in range(3)] == [503, 503, 200]
    assert [x.identity for x in any_fake.requests] == ["carol"] * 3


def test_fail_with_until_reset_and_headers(any_fake: FakeTracker) -> None:
    any_fake.fail_with(429)
    for _ in range(2):
        r = get_whoami(any_fake)
        assert (r.status_code, r.headers["Retry-After"]) == (429, "1")
    any_fake.fail_with(403, headers={"X-RateLimit-Remaining": "0"})
    r = get_whoami(any_fake)
    assert (r.status_code, r.headers["X-RateLimit-Remaining"]) == (403, "0")
    assert any_fake.requests[-1].identity is None  # a forced 401/403 counts as rejected
    any_fake.reset_faults()
    assert get_whoami(any_fake).status_code == 200


def test_fail_with_401_body_shape(any_fake: FakeTracker) -> None:
    any_fake.fail_with(401, times=1)
    r = get_whoami(any_fake)
    assert r.status_code == 401
    if any_fake.type_name != "redmine":
        assert isinstance(r.json(), dict)


def test_delay(any_fake: FakeTracker) -> None:
    any_fake.delay(0.3)
    with pytest.raises(requests.exceptions.Timeout):
        get_whoami(any_fake, timeout=0.05)
    any_fake.reset_faults()
    assert get_whoami(any_fake).status_code == 200


def test_hang_released_by_reset_faults(any_fake: FakeTracker) -> None:
    any_fake.hang()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(get_whoami(any_fake, timeout=10).status_code))
    worker.start()
    wait_for(lambda: len(any_fake.requests) == 1)  # recorded although not answered
    assert result == []
    any_fake.reset_faults()
    worker.join(5)
    assert result == [200]


def test_stop_drops_hung_and_idle_connections(any_fake: FakeTracker) -> None:
    idle = requests.Session()
    assert get_whoami(any_fake, idle).status_code == 200  # leaves an idle keep-alive connection
    any_fake.hang()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            get_whoami(any_fake, timeout=30)
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    wait_for(lambda: len(any_fake.requests) == 2)
    any_fake.stop()
    worker.join(5)
    assert not worker.is_alive()
    assert len(errors) == 1 and not isinstance(errors[0], requests.exceptions.Timeout)


def test_quiet(any_fake: FakeTracker, capfd: pytest.CaptureFixture[str]) -> None:
    get_whoami(any_fake)
    requests.get(f"{any_fake.url}/nope", timeout=5)
    any_fake.fail_with(500, times=1)
    get_whoami(any_fake)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert any_fake.errors == []


def test_recorded_request_helpers(any_fake: FakeTracker) -> None:
    requests.post(
        f"{any_fake.url}/some%2Fthing/x?a=1&a=2&b=",
        json={"k": [1, 2]},
        headers={"X-Custom": "v"},
        timeout=5,
    )
    req = only(any_fake)
    assert (req.method, req.raw_path, req.path) == ("POST", "/some%2Fthing/x", "/some/thing/x")
    assert req.query == {"a": ["1", "2"], "b": [""]}
    assert req.header("x-custom") == req.header("X-CUSTOM") == "v"
    assert req.header("missing") is None
    assert req.json() == {"k": [1, 2]}
    assert req.identity is None
    any_fake.clear()
    assert any_fake.requests == []
    assert any_fake.connections_accepted == 0


def test_lifecycle_errors() -> None:
    fake = FakeGitHub()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        with pytest.raises(RuntimeError):
            fake.start()
        port = fake.port
        assert fake.url == f"http://127.0.0.1:{port}"
    fake.stop()  # idempotent
    with pytest.raises(ValueError):
        fake.fail_with(500, times=0)
