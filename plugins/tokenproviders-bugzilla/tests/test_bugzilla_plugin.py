"""The bugzilla tracker type: python-bugzilla against the fake Bugzilla, through the real Resolver."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tokenproviders import (
    CredentialsRejectedError,
    InvalidInputError,
    PersonalTokenRejectedError,
    Plugins,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeBugzilla


def calls(fake: FakeBugzilla) -> list[tuple[str, str]]:
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
    print(f"bugzilla {label}: {type(info.value).__name__} after {elapsed:.2f} s")
    assert elapsed < 30  # a sanity bound only; the real number is printed
    return info.value


# --------------------------------------------------------------------------- discovery and fields


def test_discovered_from_its_entry_point_without_importing_python_bugzilla() -> None:
    # (requests is checked by the contract suite, with no other plugin loaded that may import it)
    code = (
        "import sys\n"
        "from tokenproviders import Plugins\n"
        "t = Plugins().tracker_type('bugzilla')\n"
        "print(type(t).__module__, t.title)\n"
        "print(sorted(m for m in ('bugzilla',) if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["tokenproviders_bugzilla Bugzilla (5.0 and later, REST API)", "[]"]


def test_fields_declare_one_api_key() -> None:
    bugzilla = Plugins().tracker_type("bugzilla")
    [field] = bugzilla.fields
    assert (field.name, field.label, field.required, field.secret) == ("api_password", "API key", True, True)
    assert "Preferences" in field.help and "API Keys" in field.help


# --------------------------------------------------------------------------- how the key travels


def test_key_travels_in_the_header_on_bugzilla_51_and_never_in_a_url(
    world: Any, bugzilla_fake: FakeBugzilla, keys: dict[str, str]
) -> None:
    identity = world.resolver.verify("alice", world.tracker)
    assert (identity.login, identity.name, identity.email) == (
        "alice@example.com",
        "Alice Liddell",
        "alice@example.com",
    )
    assert identity.id == str(bugzilla_fake.users["alice@example.com"].numeric_id)
    version, me = bugzilla_fake.requests
    # Construction asks for the version (login-exempt): no key at all.
    assert (version.method, version.raw_path, version.query) == ("GET", "/rest/version", {})
    assert version.header("X-BUGZILLA-API-KEY") is None
    assert (me.method, me.raw_path, me.query) == ("GET", "/rest/whoami", {})
    assert me.header("X-BUGZILLA-API-KEY") == keys["alice"]
    assert me.identity == "alice@example.com"
    world.resolver.report_issue("alice", world.tracker, title="header")
    post = bugzilla_fake.requests[-1]
    assert (post.method, post.raw_path, post.query) == ("POST", "/rest/bug", {})
    assert post.header("X-BUGZILLA-API-KEY") == keys["alice"]


def test_key_travels_as_the_query_parameter_on_bugzilla_50(
    make_world: Callable[..., Any], bugzilla50_fake: FakeBugzilla, keys: dict[str, str]
) -> None:
    w = make_world(bugzilla50_fake.url)
    w.give_token("alice", keys["alice"])
    issue = w.resolver.report_issue("alice", w.tracker, title="old Bugzilla")
    assert bugzilla50_fake.issues[issue.id].reporter == "alice@example.com"
    version, post = bugzilla50_fake.requests
    assert version.query == {}
    assert (post.method, post.raw_path, post.query) == ("POST", "/rest/bug", {"Bugzilla_api_key": [keys["alice"]]})
    assert post.header("X-BUGZILLA-API-KEY") is None
    # 5.0 has no /rest/whoami: the key is checked, the login cannot be told.
    bugzilla50_fake.clear()
    identity = w.resolver.verify("alice", w.tracker)
    assert identity.login.startswith("(Bugzilla before 5.1")
    [check] = bugzilla50_fake.requests
    assert (check.raw_path, check.query["Bugzilla_api_key"], check.identity) == (
        "/rest/user",
        [keys["alice"]],
        "alice@example.com",
    )
    w.give_token("carol", keys["wrong"])
    with pytest.raises(PersonalTokenRejectedError):
        w.resolver.verify("carol", w.tracker)


def test_bugzillarc_and_token_files_are_never_used(
    make_world: Callable[..., Any],
    bugzilla_fake: FakeBugzilla,
    keys: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bugzilla_fake.add_user("mallory@example.com", token="mallory-key")
    host = bugzilla_fake.url.removeprefix("http://")
    rc = f"[{host}]\napi_key = mallory-key\n"
    home = tmp_path / "home"
    (home / ".config" / "python-bugzilla").mkdir(parents=True)
    (home / ".cache" / "python-bugzilla").mkdir(parents=True)
    (home / ".bugzillarc").write_text(rc)
    (home / ".config" / "python-bugzilla" / "bugzillarc").write_text(rc)
    token_file = home / ".cache" / "python-bugzilla" / "bugzillatoken"
    token_file.write_text(f"[{bugzilla_fake.url}/rest]\ntoken = mallory-login-token\n")
    (home / ".netrc").write_text("default login mallory@example.com password mallory-netrc-password\n")
    (home / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    before = sorted(p.relative_to(home) for p in home.rglob("*"))

    # The control: python-bugzilla's defaults would pick mallory's credentials up from that HOME.
    import bugzilla

    default = bugzilla.Bugzilla(f"{bugzilla_fake.url}/rest", force_rest=True)
    assert default.api_key == "mallory-key"
    bugzilla_fake.clear()

    w = make_world(bugzilla_fake.url)  # carol has no personal token: the bot's key is the one
    issue = w.resolver.report_issue("carol", w.tracker, title="whose?")
    w.resolver.add_comment("carol", w.tracker, issue.id, "still the bot")
    assert bugzilla_fake.issues[issue.id].reporter == "bot@example.com"
    assert [c.author for c in bugzilla_fake.issues[issue.id].comments] == ["bot@example.com"]
    for request in bugzilla_fake.requests:
        assert request.identity in (None, "bot@example.com")
        assert "mallory" not in repr(request)
        assert request.header("Authorization") is None  # not ~/.netrc's Basic credentials either
        assert not ({"Bugzilla_login", "Bugzilla_password", "Bugzilla_token"} & set(request.query))
    client = w.resolver.client("carol", w.tracker)
    assert (client.api_key, client.user, client.configpath, client.tokenfile) == (keys["bot"], "", [], None)
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before  # no token file written


def test_bot_key_is_used_without_a_personal_token(
    world: Any, bugzilla_fake: FakeBugzilla, keys: dict[str, str]
) -> None:
    assert world.resolver.verify("carol", world.tracker).login == "bot@example.com"
    assert bugzilla_fake.requests[-1].header("X-BUGZILLA-API-KEY") == keys["bot"]


# --------------------------------------------------------------------------- reporting


def test_report_with_alice_personal_key_is_recorded_under_alice(world: Any, bugzilla_fake: FakeBugzilla) -> None:
    issue = world.resolver.report_issue("alice", world.tracker, title="It broke", body="Steps:\n1. click")
    stored = bugzilla_fake.issues[issue.id]
    assert (stored.reporter, stored.project, stored.title, stored.body) == (
        "alice@example.com",
        "Widgets",
        "It broke",
        "Steps:\n1. click",
    )
    assert (stored.payload["component"], stored.payload["version"]) == ("UI", "unspecified")
    assert issue.url == f"{bugzilla_fake.url}/show_bug.cgi?id={issue.id}"
    assert issue.resolution is not None and issue.resolution.source == "personal"
    # Cold: python-bugzilla asks for the version once when the client is built, then one POST.
    assert calls(bugzilla_fake) == [("GET", "/rest/version"), ("POST", "/rest/bug")]


def test_report_without_personal_key_is_recorded_under_the_bot(world: Any, bugzilla_fake: FakeBugzilla) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="As the bot")
    assert bugzilla_fake.issues[issue.id].reporter == "bot@example.com"
    assert issue.resolution is not None and issue.resolution.source == "bot"


def test_warm_report_costs_the_minimum_of_one_request(world: Any, bugzilla_fake: FakeBugzilla) -> None:
    world.resolver.report_issue("alice", world.tracker, title="cold")
    for n in range(3):
        bugzilla_fake.clear()
        world.resolver.report_issue("alice", world.tracker, title=f"warm {n}")
        assert calls(bugzilla_fake) == [("POST", "/rest/bug")]
        assert bugzilla_fake.connections_accepted == 0  # the cached client keeps its connection alive


def test_comment_lands_on_the_bug_as_the_commenter(world: Any, bugzilla_fake: FakeBugzilla) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="needs a comment")
    bugzilla_fake.clear()
    resolution = world.resolver.add_comment("alice", world.tracker, issue.id, "Seen it too")
    assert resolution.source == "personal"
    assert calls(bugzilla_fake) == [("GET", "/rest/version"), ("PUT", f"/rest/bug/{issue.id}")]  # cold
    bugzilla_fake.clear()
    world.resolver.add_comment("alice", world.tracker, issue.id, "And again")
    assert calls(bugzilla_fake) == [("PUT", f"/rest/bug/{issue.id}")]  # warm: one request
    stored = bugzilla_fake.issues[issue.id]
    assert [(c.author, c.text) for c in stored.comments] == [
        ("alice@example.com", "Seen it too"),
        ("alice@example.com", "And again"),
    ]


def test_options_keywords_type_and_fields(make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla) -> None:
    options = {
        "product": "Widgets",
        "component": "Backend",
        "version": "2.0",
        "severity": "major",
        "op_sys": "Linux",
        "platform": "PC",
        "type": "defect",
        "keywords": "regression, qa",
    }
    w = make_world(bugzilla_fake.url, options=options)
    issue = w.resolver.report_issue("carol", w.tracker, title="kw", labels=["crash", "qa"])
    stored = bugzilla_fake.issues[issue.id]
    payload = stored.payload
    assert (payload["component"], payload["version"], payload["severity"]) == ("Backend", "2.0", "major")
    assert (payload["op_sys"], payload["platform"], payload["type"]) == ("Linux", "PC", "defect")
    assert stored.labels == ["crash", "qa", "regression"]
    issue = w.resolver.report_issue("carol", w.tracker, title="task", issue_type="task")
    assert bugzilla_fake.issues[issue.id].issue_type == "task"


def test_missing_product_is_a_clear_configuration_error(
    make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla
) -> None:
    w = make_world(bugzilla_fake.url, options={"product": "Widgets"})
    with pytest.raises(InvalidInputError, match="'product' and 'component'"):
        w.resolver.report_issue("carol", w.tracker, title="nowhere")
    assert calls(bugzilla_fake) == [("GET", "/rest/version")]


def test_rest_url_and_service_url(make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla) -> None:
    w = make_world(f"{bugzilla_fake.url}/enter_bug.cgi")
    bugzilla = w.resolver.tracker_type("bugzilla")
    assert bugzilla.service_url(w.tracker) == bugzilla_fake.url
    w.give_token("alice", "bzkey-alice-0123456789abcdef", url=bugzilla_fake.url)  # one key per instance
    issue = w.resolver.report_issue("alice", w.tracker, title="instance token")
    assert bugzilla_fake.issues[issue.id].reporter == "alice@example.com"
    assert issue.url == f"{bugzilla_fake.url}/show_bug.cgi?id={issue.id}"
    assert calls(bugzilla_fake)[0] == ("GET", "/rest/version")  # straight to /rest: no probing


# --------------------------------------------------------------------------- the client itself


def test_client_has_its_own_timeout_retries_and_tls(
    make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # tls_verify would give the host's bundle
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("unused: the fake speaks plain HTTP")
    for kwargs, expected in (({}, True), ({"verify_tls": False}, False), ({"ca_bundle": str(bundle)}, str(bundle))):
        w = make_world(bugzilla_fake.url, timeout=7, retries=2, **kwargs)
        session = w.resolver.client("carol", w.tracker).get_requests_session()
        assert session.timeout == 7
        assert session.verify == expected
        assert session.trust_env is False  # no ~/.netrc credentials, not even on GET /rest/version
        retry = session.get_adapter(bugzilla_fake.url).max_retries
        assert (retry.total, retry.backoff_factor, retry.respect_retry_after_header) == (2, 0, False)
        assert "POST" not in retry.allowed_methods and "PUT" not in retry.allowed_methods


def test_reads_are_retried_but_writes_are_not(make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla) -> None:
    w = make_world(bugzilla_fake.url, retries=1)
    w.resolver.client("carol", w.tracker)
    bugzilla_fake.clear()
    bugzilla_fake.fail_with(503, times=1)
    assert w.resolver.verify("carol", w.tracker).login == "bot@example.com"
    assert len(bugzilla_fake.requests) == 2
    bugzilla_fake.clear()
    bugzilla_fake.fail_with(503, times=1)
    with pytest.raises(TrackerUnavailableError):
        w.resolver.report_issue("carol", w.tracker, title="not twice")
    assert calls(bugzilla_fake) == [("POST", "/rest/bug")]


# --------------------------------------------------------------------------- failures


def test_refused_connection_is_unavailable(
    make_world: Callable[..., Any], closed_port: int, secrets: tuple[str, ...]
) -> None:
    w = make_world(f"http://127.0.0.1:{closed_port}")
    exc = timed(lambda: w.resolver.report_issue("carol", w.tracker, title="x"), TrackerUnavailableError, "refused")
    assert_no_secret(exc, secrets)


def test_unresponsive_server_is_unavailable_within_our_timeout_not_the_environment(
    world: Any, bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONBUGZILLA_REQUESTS_TIMEOUT", "120")  # python-bugzilla's process-wide knob
    world.resolver.client("alice", world.tracker)  # warm: the hang hits the report itself
    bugzilla_fake.hang()
    exc = timed(lambda: world.resolver.report_issue("alice", world.tracker, title="x"), TrackerUnavailableError, "hang")
    assert "timed out" in str(exc)
    assert_no_secret(exc, secrets)


def test_unresponsive_server_while_building_the_client(
    world: Any, bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...]
) -> None:
    bugzilla_fake.hang()
    exc = timed(lambda: world.resolver.verify("alice", world.tracker), TrackerUnavailableError, "hang (cold)")
    assert_no_secret(exc, secrets)


def test_unresponsive_bugzilla_50_keeps_the_key_out_of_messages(
    make_world: Callable[..., Any], bugzilla50_fake: FakeBugzilla, secrets: tuple[str, ...], keys: dict[str, str]
) -> None:
    # On 5.0 the key is a query parameter, so requests' own exception text holds the URL with it.
    w = make_world(bugzilla50_fake.url)
    w.give_token("alice", keys["alice"])
    w.resolver.client("alice", w.tracker)
    bugzilla50_fake.hang()
    exc = timed(lambda: w.resolver.report_issue("alice", w.tracker, title="x"), TrackerUnavailableError, "hang 5.0")
    assert_no_secret(exc, secrets)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_unavailable(
    world: Any, bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...], status: int
) -> None:
    world.resolver.client("alice", world.tracker)
    bugzilla_fake.fail_with(status)
    exc = timed(
        lambda: world.resolver.report_issue("alice", world.tracker, title="x"),
        TrackerUnavailableError,
        f"HTTP {status}",
    )
    assert getattr(exc, "status", None) == status
    assert_no_secret(exc, secrets)


def test_invalid_personal_key_400_code_306_is_rejected(
    world: Any, bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...], keys: dict[str, str]
) -> None:
    world.give_token("carol", keys["wrong"])
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("carol", world.tracker, title="x")
    assert info.value.status == 400
    assert "306" in str(info.value)
    assert bugzilla_fake.issues == {}
    assert_no_secret(info.value, secrets)
    with pytest.raises(PersonalTokenRejectedError):
        world.resolver.verify("carol", world.tracker)


def test_invalid_bot_key_is_rejected_credentials(
    make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...], keys: dict[str, str]
) -> None:
    from tokenproviders import Credentials, Secret

    w = make_world(bugzilla_fake.url, bot_credentials=Credentials(api_password=Secret(keys["wrong"])))
    with pytest.raises(CredentialsRejectedError) as info:
        w.resolver.report_issue("carol", w.tracker, title="x")
    assert not isinstance(info.value, PersonalTokenRejectedError)
    assert "bot credentials" in str(info.value)
    assert_no_secret(info.value, secrets)


def test_401_code_410_and_403_are_rejected(world: Any, bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...]) -> None:
    world.resolver.client("alice", world.tracker)
    bugzilla_fake.fail_with(401)  # the fake's 401 body is code 410, "you must log in"
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("alice", world.tracker, title="x")
    assert info.value.status == 401 and "410" in str(info.value)
    assert_no_secret(info.value, secrets)
    bugzilla_fake.reset_faults()
    world.resolver.client("alice", world.tracker)  # the rejected client was dropped; build again
    bugzilla_fake.fail_with(403)
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("alice", world.tracker, title="x")
    assert info.value.status == 403
    assert_no_secret(info.value, secrets)


def test_wrong_url_is_told_apart_from_a_wrong_key(
    make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla, secrets: tuple[str, ...]
) -> None:
    w = make_world(f"{bugzilla_fake.url}/not-bugzilla")
    with pytest.raises(TrackerURLError) as info:
        w.resolver.verify("carol", w.tracker)
    assert info.value.status == 404
    assert_no_secret(info.value, secrets)


def test_comment_on_a_missing_bug_is_a_url_error(world: Any) -> None:
    with pytest.raises(TrackerURLError, match="no such bug"):
        world.resolver.add_comment("alice", world.tracker, "999", "text")
    with pytest.raises(InvalidInputError):
        world.resolver.add_comment("alice", world.tracker, "BUG-1", "text")


def test_refused_product_is_a_request_error(world: Any, bugzilla_fake: FakeBugzilla) -> None:
    world.resolver.client("alice", world.tracker)
    bugzilla_fake.fail_with(400, message="Product does not exist")  # the fake's generic code 32000
    with pytest.raises(TrackerRequestError) as info:
        world.resolver.report_issue("alice", world.tracker, title="x")
    assert not isinstance(info.value, TrackerURLError)


def test_a_site_that_is_not_bugzilla_is_a_url_error(make_world: Callable[..., Any], html_server: str) -> None:
    w = make_world(html_server)
    with pytest.raises(TrackerURLError, match="the answer was not Bugzilla's API; check base_url/api_url"):
        w.resolver.verify("carol", w.tracker)


def test_no_secret_in_reprs(world: Any, keys: dict[str, str]) -> None:
    resolution = world.resolver.resolve("alice", world.tracker)
    issue = world.resolver.report_issue("alice", world.tracker, title="repr")
    client = world.resolver.client("alice", world.tracker)
    for text in (repr(resolution), repr(issue), repr(world.tracker), repr(client), repr(client.get_requests_session())):
        assert keys["alice"] not in text and keys["bot"] not in text


@pytest.fixture
def redirecting_server() -> Iterator[Callable[[str], str]]:
    """``start(target)``: a server answering every request with 301 to ``target`` + the path."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(target: str) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(301)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_redirect_is_a_url_error_and_the_key_does_not_follow_it(
    make_world: Callable[..., Any], bugzilla_fake: FakeBugzilla, redirecting_server: Callable[[str], str]
) -> None:
    w = make_world(redirecting_server(bugzilla_fake.url))
    with pytest.raises(TrackerURLError, match="redirect to another address") as info:
        w.resolver.verify("carol", w.tracker)
    assert info.value.status == 301
    assert bugzilla_fake.requests == []  # nothing, and so no key, followed the redirect
