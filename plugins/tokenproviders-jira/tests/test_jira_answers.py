"""Answers a Jira client must not take at face value: redirects, error statuses on a warm
client, and a wrong URL that serves some other JSON. Real ``jira`` against the fakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tokenproviders import (
    Credentials,
    CredentialsRejectedError,
    Secret,
    Tracker,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeJira, FakeTracker
from tokenproviders.testing.fakes._server import AuthResult, RecordedRequest, Response, json_response

ALICE_EMAIL = "alice@example.com"
ALICE_TOKEN = "alice-cloud-token-5f1c"
BOT_EMAIL = "bot@example.com"
BOT_TOKEN = "bot-cloud-token-9a7e"
CAROL_PAT = "carol-server-pat-41d2"
OPS = ("whoami", "report", "comment")
NoSecret = Callable[[BaseException], None]
JiraWorld = Any  # conftest.JiraWorld


def run(world: JiraWorld, tracker: Tracker, op: str, issue_id: str = "PROJ-1") -> Any:
    if op == "whoami":
        return world.resolver.verify("bob", tracker)
    if op == "report":
        return world.resolver.report_issue("bob", tracker, title="Crash", body="a confidential stack trace")
    return world.resolver.add_comment("bob", tracker, issue_id, "a confidential comment")


class OtherJSON(FakeTracker):
    """A web server that is not Jira: every request gets 200 and the same JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, self.payload)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed(
    world: JiraWorld, fake: FakeJira, status: int, op: str, assert_no_secret: NoSecret
) -> None:
    tracker = world.add_tracker()
    issue = world.resolver.report_issue("bob", tracker, title="first")  # a warm client, an issue
    with FakeJira() as other:  # another Jira that would accept the same credentials
        other.add_user("bot", username=BOT_EMAIL, token=BOT_TOKEN)
        fake.fail_with(status, headers={"Location": f"{other.url}/rest/api/2/issue"})
        with pytest.raises(TrackerURLError, match="redirect to another address") as info:
            run(world, tracker, op, issue.id)
        assert other.requests == []  # neither the credentials nor the report went there
    assert info.value.status == status
    assert "set base_url/api_url to the final address" in str(info.value)
    assert_no_secret(info.value)


def test_a_redirect_with_a_bearer_pat_is_not_followed_either(world: JiraWorld, fake: FakeJira) -> None:
    tracker = world.add_tracker()
    world.give_carol_her_pat()
    with FakeJira() as other:
        other.add_user("carol", token=CAROL_PAT)
        fake.fail_with(307, headers={"Location": f"{other.url}/rest/api/2/issue"})
        with pytest.raises(TrackerURLError, match="redirect"):
            world.resolver.report_issue("carol", tracker, title="x")
        assert other.requests == []


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
    world: JiraWorld, fake: FakeJira, status: int, error: type[Exception], op: str
) -> None:
    tracker = world.add_tracker()
    issue = world.resolver.report_issue("bob", tracker, title="first")
    world.resolver.client("bob", tracker)  # cached
    fake.fail_with(status)
    with pytest.raises(error) as info:
        run(world, tracker, op, issue.id)
    assert getattr(info.value, "status", None) == status


# --------------------------------------------------------------------------- other JSON


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("payload", [{}, {"status": "ok"}, [], {"key": ""}], ids=["empty", "status", "list", "nokey"])
def test_a_url_serving_other_json_is_a_url_error(
    world: JiraWorld, payload: Any, op: str, assert_no_secret: NoSecret
) -> None:
    with OtherJSON(payload) as other:
        tracker = world.add_tracker(base_url=other.url)
        with pytest.raises(TrackerURLError, match="the answer was not Jira's API; check base_url/api_url") as info:
            run(world, tracker, op)
    assert_no_secret(info.value)


def test_verify_before_saving_refuses_a_url_serving_other_json(world: JiraWorld) -> None:
    with OtherJSON({}) as other:
        world.add_tracker(base_url=other.url)
        with pytest.raises(TrackerURLError):
            world.resolver.tokens.set(
                owner="alice",
                url=other.url,
                scope="acme",
                credentials=Credentials(api_username=ALICE_EMAIL, api_password=Secret(ALICE_TOKEN)),
                verify=True,
            )
    assert world.resolver.tokens.list("alice") == []
