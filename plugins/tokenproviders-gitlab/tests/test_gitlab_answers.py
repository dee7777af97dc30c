"""Answers a GitLab client must not take at face value: redirects (python-gitlab lets requests
follow them, and requests keeps the ``PRIVATE-TOKEN`` header), error statuses on a warm client,
and a wrong URL that serves some other JSON. Real python-gitlab against the fakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    Credentials,
    CredentialsRejectedError,
    Resolver,
    Secret,
    Tracker,
    TrackerUnavailableError,
    TrackerURLError,
)
from tokenproviders.testing.fakes import FakeGitLab, FakeTracker
from tokenproviders.testing.fakes._server import AuthResult, RecordedRequest, Response, json_response

ALICE_TOKEN = "glpat-alice-0000000000a11c"
BOT_TOKEN = "glpat-bot-00000000000000b07"
OPS = ("whoami", "report", "comment")
NoSecret = Callable[[BaseException], None]
GitLabWorld = Any  # conftest.GitLabWorld


def run(resolver: Resolver, tracker: Tracker, op: str, issue_id: str = "1") -> Any:
    if op == "whoami":
        return resolver.verify("bob", tracker)
    if op == "report":
        return resolver.report_issue("bob", tracker, title="Crash", body="a confidential stack trace")
    return resolver.add_comment("bob", tracker, issue_id, "a confidential comment")


class OtherJSON(FakeTracker):
    """A web server that is not GitLab: every request gets 200 and the same JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self.payload = payload

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, self.payload)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed(
    world: GitLabWorld, fake: FakeGitLab, status: int, op: str, assert_no_secret: NoSecret
) -> None:
    tracker = world.add_tracker()
    issue = world.resolver.report_issue("bob", tracker, title="first")  # a warm client, an issue
    with FakeGitLab() as other:  # another GitLab that would accept the same token
        other.add_user("bot", token=BOT_TOKEN)
        fake.fail_with(status, headers={"Location": f"{other.url}/api/v4/projects/grp%2Fsub%2Fproj/issues"})
        with pytest.raises(TrackerURLError, match="redirect to another address") as info:
            run(world.resolver, tracker, op, issue.id)
        assert other.requests == []  # neither the token nor the report went there
    assert info.value.status == status
    assert "set base_url/api_url to the final address" in str(info.value)
    assert_no_secret(info.value)


def test_a_redirect_on_the_first_request_is_not_followed(world: GitLabWorld, fake: FakeGitLab) -> None:
    """The reviewer's repro: verify and report on a fresh client, against a 307."""
    tracker = world.add_tracker()
    with FakeGitLab() as other:
        other.add_user("bot", token=BOT_TOKEN)
        fake.fail_with(307, headers={"Location": f"{other.url}/api/v4/user"})
        for call in (
            lambda: world.resolver.verify("bob", tracker),
            lambda: world.resolver.report_issue("bob", tracker, title="confidential crash", body="stack trace..."),
        ):
            with pytest.raises(TrackerURLError, match="redirect"):
                call()
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
    fast_world: GitLabWorld, fake: FakeGitLab, status: int, error: type[Exception], op: str
) -> None:
    tracker = fast_world.add_tracker()
    issue = fast_world.resolver.report_issue("bob", tracker, title="first")
    fast_world.resolver.client("bob", tracker)  # cached
    fake.fail_with(status)
    with pytest.raises(error) as info:
        run(fast_world.resolver, tracker, op, issue.id)
    assert getattr(info.value, "status", None) == status


# --------------------------------------------------------------------------- other JSON


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize(
    "payload",
    [{}, {"status": "ok"}, [], {"username": None, "iid": "7", "id": "7"}],
    ids=["empty", "status", "list", "wrong-types"],
)
def test_a_url_serving_other_json_is_a_url_error(
    world: GitLabWorld, payload: Any, op: str, assert_no_secret: NoSecret
) -> None:
    with OtherJSON(payload) as other:
        tracker = world.add_tracker(base_url=f"{other.url}/grp/sub/proj")
        with pytest.raises(TrackerURLError, match="the answer was not GitLab's API; check base_url/api_url") as info:
            run(world.resolver, tracker, op)
    assert_no_secret(info.value)


def test_verify_before_saving_refuses_a_url_serving_other_json(world: GitLabWorld) -> None:
    with OtherJSON({}) as other:
        world.add_tracker(base_url=f"{other.url}/grp/sub/proj")
        with pytest.raises(TrackerURLError):
            world.resolver.tokens.set(
                owner="alice",
                url=other.url,
                scope=ALL_TENANTS,
                credentials=Credentials(api_password=Secret(ALICE_TOKEN)),
                verify=True,
            )
    assert world.resolver.tokens.list("alice") == []
