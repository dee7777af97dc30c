"""Answers a Redmine client must not take at face value: redirects, error statuses on a warm
client, and a wrong URL that serves some other JSON. Real python-redmine against the fakes."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pytest

from tokenproviders import (
    Credentials,
    CredentialsRejectedError,
    PersonalTokenRejectedError,
    Resolver,
    Secret,
    Tracker,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeRedmine, FakeTracker
from tokenproviders.testing.fakes._server import AuthResult, RecordedRequest, Response, json_response

OPS = ("whoami", "report", "comment")
RedmineWorld = Any  # conftest.RedmineWorld


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


class OtherJSON(FakeTracker):
    """A web server that is not Redmine: every request gets 200 and the same JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, self.payload)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("user", ["carol", "alice", "bob"])  # the bot's key, alice's key, bob's password
def test_a_redirect_is_never_followed(
    world: RedmineWorld, redmine_fake: FakeRedmine, status: int, op: str, user: str, secrets: tuple[str, ...]
) -> None:
    issue = world.resolver.report_issue(user, world.tracker, title="first")  # a warm client, an issue
    with FakeRedmine() as other:  # another Redmine that would accept the same credentials
        other.add_user("tpbot", token="key-bot-0123456789")
        other.add_user("alice", token="key-alice-0123456789")
        other.add_user("bob", username="bob", password="pw-bob-0123456789")
        other.add_project("webshop")
        redmine_fake.fail_with(status, headers={"Location": f"{other.url}/projects/webshop/issues.json"})
        with pytest.raises(TrackerURLError, match="redirect to another address") as info:
            run(world.resolver, world.tracker, op, user, issue.id)
        assert other.requests == []  # neither the credentials nor the report went there
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
    world: RedmineWorld, redmine_fake: FakeRedmine, status: int, error: type[Exception], op: str
) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="first")
    world.resolver.client("carol", world.tracker)  # cached
    redmine_fake.fail_with(status)
    with pytest.raises(error) as info:
        run(world.resolver, world.tracker, op, "carol", issue.id)
    assert not isinstance(info.value, PersonalTokenRejectedError)  # carol has the bot's key
    assert getattr(info.value, "status", None) == status


# --------------------------------------------------------------------------- other JSON


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "payload",
    [{}, {"status": "ok"}, [], {"user": {"name": "x"}, "issue": {"subject": "x"}}, {"user": "x", "issue": 7}],
    ids=["empty", "status", "list", "fields-missing", "wrong-types"],
)
def test_a_url_serving_other_json_is_a_url_error(
    make_world: Callable[..., RedmineWorld], payload: Any, op: str, secrets: tuple[str, ...]
) -> None:
    with OtherJSON(payload) as other:
        w = make_world(other.url)
        with pytest.raises(TrackerURLError, match="the answer was not Redmine's API; check base_url/api_url") as info:
            run(w.resolver, w.tracker, op)
    assert_no_secret(info.value, secrets)


def test_verify_before_saving_refuses_a_url_serving_other_json(make_world: Callable[..., RedmineWorld]) -> None:
    with OtherJSON({"status": "ok"}) as other:
        w = make_world(other.url)
        with pytest.raises(TrackerURLError):
            w.resolver.tokens.set(
                owner="alice",
                url=other.url,
                scope="acme",
                credentials=Credentials(api_password=Secret("key-alice-0123456789")),
                verify=True,
            )
        assert w.resolver.tokens.list("alice") == []
