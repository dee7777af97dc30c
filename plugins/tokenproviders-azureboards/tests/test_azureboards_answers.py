"""Answers an Azure Boards client must not take at face value: redirects, error statuses on a
warm client, and a wrong URL that serves some other JSON. The plugin's requests client against
the fakes, through the Resolver."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pytest

from tokenproviders import (
    CredentialsRejectedError,
    Resolver,
    Tracker,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeAzureBoards, FakeTracker
from tokenproviders.testing.fakes._server import AuthResult, RecordedRequest, Response, json_response

BOT_PAT = "patbot0123456789abcdefghij"
ALICE_PAT = "patalice0123456789abcdefghij"
OPS = ("whoami", "report", "comment")
AzureWorld = Any  # conftest.AzureWorld


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
    """A web server that is not Azure DevOps: every request gets 200 and the same JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, self.payload)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("user", ["carol", "alice"])  # the bot's PAT, alice's PAT
def test_a_redirect_is_never_followed(
    world: AzureWorld, azure_fake: FakeAzureBoards, status: int, op: str, user: str, secrets: tuple[str, ...]
) -> None:
    issue = world.resolver.report_issue(user, world.tracker, title="first")  # a warm client, a work item
    with FakeAzureBoards() as other:  # another Azure DevOps taking the same PATs
        other.add_user("kiwi-bot", token=BOT_PAT)
        other.add_user("alice", token=ALICE_PAT)
        azure_fake.fail_with(status, headers={"Location": f"{other.url}/contoso/Web%20Shop/_apis/wit/workitems"})
        with pytest.raises(TrackerURLError, match="redirect to another address") as info:
            run(world.resolver, world.tracker, op, user, issue.id)
        assert other.requests == []  # neither the PAT nor the work item went there
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
    world: AzureWorld, azure_fake: FakeAzureBoards, status: int, error: type[Exception], op: str
) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title="first")
    world.resolver.client("carol", world.tracker)  # cached
    azure_fake.fail_with(status)
    with pytest.raises(error) as info:
        run(world.resolver, world.tracker, op, "carol", issue.id)
    assert getattr(info.value, "status", None) == status


# --------------------------------------------------------------------------- other JSON


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"status": "ok"},
        [],
        {"id": "7", "authenticatedUser": {"properties": []}},
        {"authenticatedUser": {"id": None, "properties": {"Account": "x"}}},
    ],
    ids=["empty", "status", "list", "wrong-types", "no-login"],
)
def test_a_url_serving_other_json_is_a_url_error(
    make_world: Callable[..., AzureWorld], payload: Any, op: str, secrets: tuple[str, ...]
) -> None:
    with OtherJSON(payload) as other:
        w = make_world(f"{other.url}/contoso/WebShop")
        with pytest.raises(
            TrackerURLError, match="the answer was not Azure DevOps' API; check base_url/api_url"
        ) as info:
            run(w.resolver, w.tracker, op)
    assert_no_secret(info.value, secrets)
