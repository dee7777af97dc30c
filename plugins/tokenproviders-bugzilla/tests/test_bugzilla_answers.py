"""Answers a Bugzilla client must not take at face value (redirects, error statuses on a warm
client, a wrong URL serving other JSON), and the API key in urllib3's log records on Bugzilla
5.0. Real python-bugzilla against the fakes."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from tokenproviders_bugzilla import failure_from_answer
from tokenproviders_bugzilla._client import URL_LOGGERS, KeyRedactingFilter, install_log_redaction

from tokenproviders import (
    CredentialsRejectedError,
    PersonalTokenRejectedError,
    Resolver,
    Tracker,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeBugzilla, FakeTracker
from tokenproviders.testing.fakes._server import AuthResult, RecordedRequest, Response, json_response

BOT_KEY = "bzkey-bot-0123456789abcdef"
ALICE_KEY = "bzkey-alice-0123456789abcdef"
OPS = ("whoami", "report", "comment")
BugzillaWorld = Any  # conftest.BugzillaWorld


def run(resolver: Resolver, tracker: Tracker, op: str, user: str = "carol", issue_id: str = "1") -> Any:
    if op == "whoami":
        return resolver.verify(user, tracker)
    if op == "report":
        return resolver.report_issue(user, tracker, title="Crash", body="a confidential stack trace")
    return resolver.add_comment(user, tracker, issue_id, "a confidential comment")


def assert_no_secret(error: BaseException, secrets: tuple[str, ...]) -> None:
    text = "".join(traceback.format_exception(error)) + repr(error)
    for secret in secrets:
        assert secret not in text


@pytest.fixture(params=["5.2", "5.0.4"])
def any_fake(request: pytest.FixtureRequest) -> Any:
    """A Bugzilla 5.2 (key in a header) and a 5.0 (key in the query string)."""
    with FakeBugzilla(version=request.param) as fake:
        fake.add_user("bot@example.com", token=BOT_KEY, name="Kiwi Bot")
        fake.add_user("alice@example.com", token=ALICE_KEY, name="Alice Liddell")
        yield fake


class OtherJSON(FakeTracker):
    """A web server that is not Bugzilla: every request gets 200 and the same JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, self.payload)


class VersionOnly(FakeBugzilla):
    """Answers ``/rest/version`` like Bugzilla, and everything else with the same other JSON."""

    def __init__(self, payload: Any, version: str) -> None:
        super().__init__(version=version)
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        if request.path.rstrip("/") == "/rest/version":
            return super()._route(request, auth)
        return json_response(200, self.payload)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("user", ["carol", "alice"])  # the bot's key, alice's personal key
def test_a_redirect_is_never_followed(
    make_world: Callable[..., BugzillaWorld],
    any_fake: FakeBugzilla,
    status: int,
    op: str,
    user: str,
    secrets: tuple[str, ...],
) -> None:
    w = make_world(any_fake.url)
    w.give_token("alice", ALICE_KEY)
    issue = w.resolver.report_issue(user, w.tracker, title="first")  # a warm client, a bug
    with FakeBugzilla(version=any_fake.version) as other:  # another Bugzilla taking the same keys
        other.add_user("bot@example.com", token=BOT_KEY)
        other.add_user("alice@example.com", token=ALICE_KEY)
        any_fake.fail_with(status, headers={"Location": f"{other.url}/rest/bug"})
        with pytest.raises(TrackerURLError, match="redirect to another address") as info:
            run(w.resolver, w.tracker, op, user, issue.id)
        assert other.requests == []  # neither the key nor the bug went there
    assert info.value.status == status
    assert "set base_url/api_url to the final address" in str(info.value)
    assert_no_secret(info.value, secrets)


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
    make_world: Callable[..., BugzillaWorld], any_fake: FakeBugzilla, status: int, error: type[Exception], op: str
) -> None:
    """The reviewer's case: whoami on a cached client called a 403 or a 5xx a refused request,
    because the fake's (and a proxy's) JSON body carries a generic code."""
    w = make_world(any_fake.url)
    issue = w.resolver.report_issue("carol", w.tracker, title="first")
    w.resolver.client("carol", w.tracker)  # cached
    any_fake.fail_with(status)
    with pytest.raises(error) as info:
        run(w.resolver, w.tracker, op, "carol", issue.id)
    assert getattr(info.value, "status", None) == status


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"error": True, "code": 306}, "rejected"),  # an invalid API key is a 400 in Bugzilla
        (401, {"error": True, "code": 410}, "rejected"),
        (401, {"error": True, "code": 102}, "request"),  # may not see that bug: not about the key
        (401, {"error": True, "code": 32000}, "rejected"),
        (403, {"error": True, "code": 32000}, "rejected"),
        (403, None, "rejected"),
        (404, {"error": True, "code": 32614}, "not_found"),
        (400, {"error": True, "code": 51}, "request"),
        (429, {"error": True, "code": 306}, "unavailable"),
        (500, {"error": True, "code": 32000}, "unavailable"),
        (503, {"error": True, "code": 306}, "unavailable"),
        (504, None, "unavailable"),
        (302, None, "not_found"),
        (200, {"name": "x"}, None),
    ],
)
def test_the_http_status_decides_unless_bugzilla_sends_that_code_with_it(
    status: int, body: Any, kind: str | None
) -> None:
    failure = failure_from_answer(status, body)
    assert (failure.kind if failure else None) == kind
    if failure is not None:
        assert failure.status == status


def test_a_personal_key_that_bugzilla_refuses_is_still_rejected_on_a_warm_client(
    make_world: Callable[..., BugzillaWorld], any_fake: FakeBugzilla
) -> None:
    w = make_world(any_fake.url)
    w.give_token("alice", ALICE_KEY)
    w.resolver.verify("alice", w.tracker)
    any_fake.users.pop("alice@example.com")  # the key is revoked: 400 with code 306
    with pytest.raises(PersonalTokenRejectedError) as info:
        w.resolver.verify("alice", w.tracker)
    assert info.value.status == 400


# --------------------------------------------------------------------------- other JSON

PAYLOADS = [{}, {"status": "ok"}, [], {"name": None, "id": "7", "bugs": {}}]
PAYLOAD_IDS = ["empty", "status", "list", "wrong-types"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
def test_a_url_serving_other_json_is_a_url_error(
    make_world: Callable[..., BugzillaWorld], payload: Any, op: str, secrets: tuple[str, ...]
) -> None:
    with OtherJSON(payload) as other:
        w = make_world(other.url)
        with pytest.raises(TrackerURLError, match="the answer was not Bugzilla's API; check base_url/api_url") as info:
            run(w.resolver, w.tracker, op)
    assert_no_secret(info.value, secrets)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize("version", ["5.2", "5.0.4"])
def test_other_json_after_a_bugzilla_version_answer_is_a_url_error(
    make_world: Callable[..., BugzillaWorld], payload: Any, op: str, version: str, secrets: tuple[str, ...]
) -> None:
    with VersionOnly(payload, version) as other:
        w = make_world(other.url)
        with pytest.raises(TrackerURLError, match="the answer was not Bugzilla's API") as info:
            run(w.resolver, w.tracker, op)
    assert_no_secret(info.value, secrets)


# --------------------------------------------------------------------------- the key and the logs


def test_the_key_never_reaches_a_log_record_on_bugzilla_50(
    make_world: Callable[..., BugzillaWorld], bugzilla50_fake: FakeBugzilla, caplog: pytest.LogCaptureFixture
) -> None:
    """On 5.0 the key is a query parameter, and urllib3 logs the URL: at DEBUG for every
    request, and at WARNING for every retry after a refused connection."""
    caplog.set_level(logging.DEBUG)
    w = make_world(bugzilla50_fake.url, retries=1)
    w.give_token("alice", ALICE_KEY)
    issue = w.resolver.report_issue("alice", w.tracker, title="logged at DEBUG")
    w.resolver.add_comment("alice", w.tracker, issue.id, "so is this")
    assert w.resolver.verify("alice", w.tracker).login.startswith("(Bugzilla before 5.1")
    assert any(r.query.get("Bugzilla_api_key") == [ALICE_KEY] for r in bugzilla50_fake.requests)
    bugzilla50_fake.stop()  # connections are refused from now on
    with pytest.raises(TrackerUnavailableError):
        w.resolver.verify("alice", w.tracker)
    with pytest.raises(TrackerUnavailableError):
        w.resolver.report_issue("alice", w.tracker, title="x")
    messages = [r.getMessage() for r in caplog.records]
    assert ALICE_KEY not in caplog.text and not any(ALICE_KEY in m for m in messages)
    retried = [
        r.getMessage()
        for r in caplog.records
        if r.name == "urllib3.connectionpool" and r.levelno == logging.WARNING and "Retrying" in r.getMessage()
    ]
    assert retried and all("Bugzilla_api_key=[redacted]" in m for m in retried)
    assert any("Bugzilla_api_key=[redacted]" in m for m in messages if '"POST /rest/bug' in m)  # DEBUG lines


def test_the_log_filter_is_installed_once_and_only_on_urllib3s_url_loggers(
    make_world: Callable[..., BugzillaWorld], bugzilla50_fake: FakeBugzilla
) -> None:
    for _ in range(2):
        w = make_world(bugzilla50_fake.url)
        w.resolver.verify("carol", w.tracker)
    install_log_redaction()
    for name in URL_LOGGERS:
        assert sum(isinstance(f, KeyRedactingFilter) for f in logging.getLogger(name).filters) == 1
    for name in ("", "urllib3", "bugzilla", "tokenproviders"):
        assert not any(isinstance(f, KeyRedactingFilter) for f in logging.getLogger(name).filters)


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        ("%s", ("/rest/bug?Bugzilla_api_key=k3y&x=1",), "/rest/bug?Bugzilla_api_key=[redacted]&x=1"),
        ("url='%s'", ("/rest/user?ids=1&api_key=k3y",), "url='/rest/user?ids=1&api_key=[redacted]'"),
        ("%r", (ValueError("/rest/bug?bugzilla_token=t0k"),), "ValueError('/rest/bug?bugzilla_token=[redacted]')"),
        ("/x?Bugzilla_login=bob&Bugzilla_password=pw", (), "/x?Bugzilla_login=bob&Bugzilla_password=[redacted]"),
    ],
)
def test_the_filter_redacts_key_values_in_formatted_messages(msg: str, args: tuple[Any, ...], expected: str) -> None:
    record = logging.LogRecord("urllib3.connectionpool", logging.WARNING, __file__, 1, msg, args, None)
    assert KeyRedactingFilter().filter(record) is True
    assert record.getMessage() == expected


def test_the_filter_leaves_other_records_untouched() -> None:
    args = ("GET", "/rest/bug?ids=1", 200)
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1, '"%s %s" %s', args, None)
    assert KeyRedactingFilter().filter(record) is True
    assert (record.msg, record.args) == ('"%s %s" %s', args)


def test_a_refused_request_is_not_mistaken_for_a_refused_key(
    make_world: Callable[..., BugzillaWorld], bugzilla_fake: FakeBugzilla
) -> None:
    w = make_world(bugzilla_fake.url)
    w.resolver.verify("carol", w.tracker)
    bugzilla_fake.fail_with(400, message="Product does not exist")  # the fake's generic code 32000
    with pytest.raises(TrackerRequestError) as info:
        w.resolver.report_issue("carol", w.tracker, title="x")
    assert not isinstance(info.value, (TrackerURLError, CredentialsRejectedError))
