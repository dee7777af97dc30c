"""The redmine tracker type: python-redmine against the fake Redmine, through the real Resolver."""

from __future__ import annotations

import base64
import http.server
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tokenproviders import (
    CredentialsRejectedError,
    InvalidInputError,
    PersonalTokenRejectedError,
    Plugins,
    TokenProvidersError,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeRedmine


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def assert_no_secret(exc: BaseException, secrets: tuple[str, ...]) -> None:
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    shown.append(getattr(exc, "hint", ""))
    for text in shown:
        for secret in secrets:
            assert secret not in text


def timed(call: Callable[[], Any], expected: type[BaseException], label: str) -> BaseException:
    start = time.monotonic()
    with pytest.raises(expected) as info:
        call()
    elapsed = time.monotonic() - start
    print(f"redmine {label}: {type(info.value).__name__} after {elapsed:.2f} s")
    assert elapsed < 30  # a sanity bound only; the real number is printed
    return info.value


# --------------------------------------------------------------------------- discovery


def test_discovered_from_its_entry_point_without_importing_python_redmine() -> None:
    # (requests is checked by the contract suite, with no other plugin loaded that may import it)
    code = (
        "import sys\n"
        "from tokenproviders import Plugins\n"
        "p = Plugins()\n"
        "t = p.tracker_type('redmine')\n"
        "print(type(t).__module__, t.title)\n"
        "print(sorted(m for m in ('redminelib',) if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["tokenproviders_redmine Redmine", "[]"]


def test_fields_declare_key_or_login_and_password() -> None:
    redmine = Plugins().tracker_type("redmine")
    fields = {f.name: f for f in redmine.fields}
    assert fields["api_password"].required and fields["api_password"].secret
    assert not fields["api_username"].required
    assert "My account" in fields["api_password"].help
    assert "API access key" in fields["api_password"].help


# --------------------------------------------------------------------------- credential kinds


def test_api_key_travels_as_x_redmine_api_key(world: Any, redmine_fake: FakeRedmine) -> None:
    identity = world.resolver.verify("alice", world.tracker)
    assert (identity.login, identity.name, identity.email) == ("alice", "Alice Liddell", "alice@example.com")
    assert identity.id == str(redmine_fake.users["alice"].numeric_id)
    [req] = redmine_fake.requests
    assert (req.method, req.raw_path) == ("GET", "/users/current.json")
    assert req.header("X-Redmine-API-Key") == "key-alice-0123456789"
    assert req.header("Authorization") is None
    assert req.query == {}
    assert req.header("User-Agent") == "tokenproviders"


def test_login_and_password_travel_as_basic_auth(world: Any, redmine_fake: FakeRedmine) -> None:
    identity = world.resolver.verify("bob", world.tracker)
    assert (identity.login, identity.name) == ("bob", "Bob Builder")
    [req] = redmine_fake.requests
    assert req.header("Authorization") == basic("bob", "pw-bob-0123456789")
    assert req.header("X-Redmine-API-Key") is None
    assert req.identity == "bob"


def test_bot_key_is_used_without_a_personal_token(world: Any, redmine_fake: FakeRedmine) -> None:
    assert world.resolver.verify("carol", world.tracker).login == "tpbot"
    assert redmine_fake.requests[0].header("X-Redmine-API-Key") == "key-bot-0123456789"


# --------------------------------------------------------------------------- reporting


def test_report_with_alice_personal_key_is_recorded_under_alice(world: Any, redmine_fake: FakeRedmine) -> None:
    issue = world.resolver.report_issue("alice", world.tracker, title="It broke", body="Steps:\n1. click")
    stored = redmine_fake.issues[issue.id]
    assert (stored.reporter, stored.project, stored.title, stored.body) == (
        "alice",
        "webshop",
        "It broke",
        "Steps:\n1. click",
    )
    assert issue.url == f"{redmine_fake.url}/issues/{issue.id}"
    assert issue.resolution is not None and issue.resolution.source == "personal"
    # Cold: building the client costs no request, so the report is the one POST.
    assert [(r.method, r.raw_path) for r in redmine_fake.requests] == [("POST", "/projects/webshop/issues.json")]


def test_report_without_personal_key_is_recorded_under_the_bot(world: Any, redmine_fake: FakeRedmine) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="As the bot")
    assert redmine_fake.issues[issue.id].reporter == "tpbot"
    assert issue.resolution is not None and issue.resolution.source == "bot"


def test_report_with_login_and_password_is_recorded_under_bob(world: Any, redmine_fake: FakeRedmine) -> None:
    issue = world.resolver.report_issue("bob", world.tracker, title="Basic auth")
    assert redmine_fake.issues[issue.id].reporter == "bob"


def test_warm_report_costs_the_minimum_of_one_request(world: Any, redmine_fake: FakeRedmine) -> None:
    world.resolver.report_issue("alice", world.tracker, title="cold")
    for n in range(3):
        redmine_fake.clear()
        world.resolver.report_issue("alice", world.tracker, title=f"warm {n}")
        assert [(r.method, r.raw_path) for r in redmine_fake.requests] == [("POST", "/projects/webshop/issues.json")]
        assert redmine_fake.connections_accepted == 0  # the cached client keeps its connection alive


def test_comment_lands_on_the_issue_as_the_commenter(world: Any, redmine_fake: FakeRedmine) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="needs a note")
    redmine_fake.clear()
    resolution = world.resolver.add_comment("alice", world.tracker, issue.id, "Seen it too")
    assert resolution.source == "personal"
    assert [(r.method, r.raw_path) for r in redmine_fake.requests] == [("PUT", f"/issues/{issue.id}.json")]
    assert redmine_fake.requests[0].json() == {"issue": {"notes": "Seen it too"}}
    stored = redmine_fake.issues[issue.id]
    assert [(c.author, c.text) for c in stored.comments] == [("alice", "Seen it too")]
    world.resolver.add_comment("carol", world.tracker, f"#{issue.id}", "bot note")
    assert stored.comments[-1].author == "tpbot"


def test_comment_needs_a_numeric_issue_id(world: Any) -> None:
    with pytest.raises(InvalidInputError):
        world.resolver.add_comment("alice", world.tracker, "ABC-1", "text")


def test_tracker_and_priority_options(make_world: Callable[..., Any], redmine_fake: FakeRedmine) -> None:
    w = make_world(
        redmine_fake.url,
        options={"project": "webshop", "tracker_id": "2", "priority_id": 4, "tracker_ids": {"Support": 3}},
    )
    issue = w.resolver.report_issue("carol", w.tracker, title="feature")
    payload = redmine_fake.issues[issue.id].payload["issue"]
    assert (payload["tracker_id"], payload["priority_id"]) == (2, 4)
    assert redmine_fake.issues[issue.id].project == "webshop"
    assert redmine_fake.issues[issue.id].issue_type == "Feature"
    issue = w.resolver.report_issue("carol", w.tracker, title="support", issue_type="support")
    assert redmine_fake.issues[issue.id].issue_type == "Support"
    issue = w.resolver.report_issue("carol", w.tracker, title="bug", issue_type="1")
    assert redmine_fake.issues[issue.id].issue_type == "Bug"
    with pytest.raises(InvalidInputError, match="tracker_ids"):
        w.resolver.report_issue("carol", w.tracker, title="x", issue_type="Epic")


def test_missing_project_is_a_clear_configuration_error(
    make_world: Callable[..., Any], redmine_fake: FakeRedmine
) -> None:
    w = make_world(redmine_fake.url, options={})
    with pytest.raises(InvalidInputError, match="option 'project'"):
        w.resolver.report_issue("carol", w.tracker, title="nowhere")
    assert redmine_fake.requests == []


def test_project_url_as_base_url_and_instance_token(make_world: Callable[..., Any], redmine_fake: FakeRedmine) -> None:
    w = make_world(f"{redmine_fake.url}/projects/webshop", options={})
    redmine = w.resolver.tracker_type("redmine")
    assert redmine.service_url(w.tracker) == redmine_fake.url
    # One key for the whole instance serves the project tracker.
    w.give_token("alice", "key-alice-0123456789", url=redmine_fake.url)
    issue = w.resolver.report_issue("alice", w.tracker, title="via the project URL")
    assert issue.url == f"{redmine_fake.url}/issues/{issue.id}"
    assert redmine_fake.issues[issue.id].reporter == "alice"
    assert redmine_fake.requests[-1].raw_path == "/projects/webshop/issues.json"
    assert [c.kind for c in w.resolver.trackers_for("alice")] == ["service", "tracker"]


def test_validation_error_is_a_request_error(make_world: Callable[..., Any], redmine_fake: FakeRedmine) -> None:
    w = make_world(redmine_fake.url, options={"project": "webshop", "tracker_id": 99})
    with pytest.raises(TrackerRequestError, match="Tracker is not included") as info:
        w.resolver.report_issue("carol", w.tracker, title="bad tracker")
    assert not isinstance(info.value, TrackerURLError)
    assert info.value.status == 422


# --------------------------------------------------------------------------- the client itself


def test_client_has_bounded_timeout_retries_and_tls_settings(
    make_world: Callable[..., Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # tls_verify would give the host's bundle
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not used: no TLS in this test")
    for kwargs, expected in (({}, True), ({"verify_tls": False}, False), ({"ca_bundle": str(bundle)}, str(bundle))):
        w = make_world("https://redmine.example.com", timeout=7, retries=2, **kwargs)
        client = w.resolver.client("carol", w.tracker)
        engine = client.engine
        assert engine.timeout == 7
        assert engine.session.verify == expected
        assert engine.session.trust_env is False  # no ~/.netrc credentials with an API key
        retry = engine.session.get_adapter("https://redmine.example.com").max_retries
        assert (retry.total, retry.backoff_factor, retry.respect_retry_after_header) == (2, 0, False)
        assert "POST" not in retry.allowed_methods and "PUT" not in retry.allowed_methods
        assert engine.construct_request_kwargs("get", {}, {}, None)["timeout"] == 7


def test_reads_are_retried_but_writes_are_not(make_world: Callable[..., Any], redmine_fake: FakeRedmine) -> None:
    w = make_world(redmine_fake.url, retries=1)
    redmine_fake.fail_with(503, times=1)
    assert w.resolver.verify("carol", w.tracker).login == "tpbot"
    assert len(redmine_fake.requests) == 2
    redmine_fake.clear()
    redmine_fake.fail_with(503, times=1)
    with pytest.raises(TrackerUnavailableError):
        w.resolver.report_issue("carol", w.tracker, title="not twice")
    assert len(redmine_fake.requests) == 1  # a lost POST answer must not file the bug twice
    assert redmine_fake.issues == {}


# --------------------------------------------------------------------------- failures


def test_refused_connection_is_unavailable(
    make_world: Callable[..., Any], closed_port: int, secrets: tuple[str, ...]
) -> None:
    w = make_world(f"http://127.0.0.1:{closed_port}")
    exc = timed(lambda: w.resolver.report_issue("carol", w.tracker, title="x"), TrackerUnavailableError, "refused")
    assert_no_secret(exc, secrets)


def test_unresponsive_server_is_unavailable_within_the_timeout(
    world: Any, redmine_fake: FakeRedmine, secrets: tuple[str, ...]
) -> None:
    redmine_fake.hang()
    exc = timed(lambda: world.resolver.report_issue("alice", world.tracker, title="x"), TrackerUnavailableError, "hang")
    assert "timed out" in str(exc)
    assert_no_secret(exc, secrets)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_unavailable(
    world: Any, redmine_fake: FakeRedmine, secrets: tuple[str, ...], status: int
) -> None:
    redmine_fake.fail_with(status)
    exc = timed(lambda: world.resolver.verify("alice", world.tracker), TrackerUnavailableError, f"HTTP {status}")
    assert getattr(exc, "status", None) == status
    assert_no_secret(exc, secrets)


def test_wrong_bot_key_is_rejected_credentials(
    make_world: Callable[..., Any], redmine_fake: FakeRedmine, secrets: tuple[str, ...]
) -> None:
    from tokenproviders import Credentials, Secret

    w = make_world(redmine_fake.url, bot_credentials=Credentials(api_password=Secret("key-wrong-0123456789")))
    with pytest.raises(CredentialsRejectedError) as info:
        w.resolver.report_issue("carol", w.tracker, title="x")
    assert not isinstance(info.value, PersonalTokenRejectedError)
    assert info.value.status == 401
    assert "bot credentials" in str(info.value)
    assert_no_secret(info.value, secrets)


def test_wrong_personal_key_is_personal_token_rejected(
    world: Any, redmine_fake: FakeRedmine, secrets: tuple[str, ...]
) -> None:
    world.give_token("carol", "key-wrong-0123456789")
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("carol", world.tracker, title="x")
    assert info.value.status == 401
    assert redmine_fake.issues == {}
    assert_no_secret(info.value, secrets)


def test_wrong_password_is_personal_token_rejected(world: Any, secrets: tuple[str, ...]) -> None:
    world.give_token("carol", "key-wrong-0123456789", username="bob")
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.verify("carol", world.tracker)
    assert_no_secret(info.value, secrets)


def test_forbidden_is_rejected_credentials(world: Any, redmine_fake: FakeRedmine, secrets: tuple[str, ...]) -> None:
    redmine_fake.fail_with(403)
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("alice", world.tracker, title="x")
    assert info.value.status == 403
    assert_no_secret(info.value, secrets)
    with pytest.raises(CredentialsRejectedError) as bot:
        world.resolver.report_issue("carol", world.tracker, title="x")
    assert bot.value.status == 403 and not isinstance(bot.value, PersonalTokenRejectedError)


def test_wrong_url_is_told_apart_from_a_wrong_key(
    make_world: Callable[..., Any], redmine_fake: FakeRedmine, secrets: tuple[str, ...]
) -> None:
    w = make_world(f"{redmine_fake.url}/not-redmine")
    with pytest.raises(TrackerURLError) as info:
        w.resolver.verify("carol", w.tracker)
    assert info.value.status == 404
    assert_no_secret(info.value, secrets)


def test_unknown_project_is_a_url_error(make_world: Callable[..., Any], redmine_fake: FakeRedmine) -> None:
    w = make_world(redmine_fake.url, options={"project": "424242"})  # a numeric id nobody has
    with pytest.raises(TrackerURLError):
        w.resolver.report_issue("carol", w.tracker, title="x")


def test_comment_on_a_missing_issue_is_a_url_error(world: Any) -> None:
    with pytest.raises(TrackerURLError):
        world.resolver.add_comment("alice", world.tracker, "999", "text")


@pytest.fixture
def html_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Welcome to some other site</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_site_that_is_not_redmine_is_a_url_error(make_world: Callable[..., Any], html_server: str) -> None:
    w = make_world(html_server)
    with pytest.raises(TrackerURLError, match="the answer was not Redmine's API"):
        w.resolver.verify("carol", w.tracker)


def test_no_secret_in_reprs(world: Any) -> None:
    resolution = world.resolver.resolve("alice", world.tracker)
    issue = world.resolver.report_issue("alice", world.tracker, title="repr")
    for text in (repr(resolution), repr(issue), repr(world.tracker), str(resolution.credentials)):
        for secret in ("key-alice-0123456789", "key-bot-0123456789"):
            assert secret not in text


def test_every_failure_is_a_tokenproviders_error(world: Any, redmine_fake: FakeRedmine) -> None:
    redmine_fake.fail_with(418)
    with pytest.raises(TokenProvidersError):
        world.resolver.verify("alice", world.tracker)


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
    make_world: Callable[..., Any], redmine_fake: FakeRedmine, redirecting_server: Callable[[str], str]
) -> None:
    w = make_world(redirecting_server(redmine_fake.url))
    with pytest.raises(TrackerURLError, match="redirect") as info:
        w.resolver.verify("carol", w.tracker)
    assert info.value.status == 301
    assert redmine_fake.requests == []  # the bot's key never reached the redirect's target
