"""Integration test against a real Redmine (Debian's package), started by ``.ci/redmine.sh``.

``.ci/run`` starts the server and exports ``TOKENPROVIDERS_REDMINE_JSON`` (the file
``redmine.sh start`` writes: URL, project, admin key, and tpbot/alice/bob with ids, API keys and
passwords). Without it these tests skip — except under ``CI=true``, where a missing Redmine is a
failure: CI must prove the integration, not skip it.

Run locally::

    bash .ci/redmine.sh start /tmp/tp-redmine.json 3300
    TOKENPROVIDERS_REDMINE_JSON=/tmp/tp-redmine.json pytest -m redmine plugins/tokenproviders-redmine/tests
    bash .ci/redmine.sh stop
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from tokenproviders import (
    ClientSettings,
    Credentials,
    CredentialsRejectedError,
    MemoryDirectory,
    MemoryTokenStore,
    PersonalTokenRejectedError,
    Plugins,
    Resolver,
    Secret,
    Tracker,
    TrackerURLError,
)

pytestmark = pytest.mark.redmine

ENV = "TOKENPROVIDERS_REDMINE_JSON"


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    path = os.environ.get(ENV)
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {ENV} is not set: .ci/run must start the real Redmine (.ci/redmine.sh start)")
        pytest.skip(f"no real Redmine: set {ENV} (bash .ci/redmine.sh start OUT_JSON PORT writes the file)")
    try:
        info: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        pytest.fail(f"{ENV}={path} cannot be read as the JSON redmine.sh writes: {exc}")
    try:
        requests.get(f"{info['url']}/users/current.json", timeout=10)
    except requests.RequestException as exc:
        pytest.fail(f"the real Redmine at {info['url']} does not answer: {type(exc).__name__}")
    return info


def admin_get(real: dict[str, Any], path: str, **params: Any) -> Any:
    """Redmine's own record, read with the administrator's key (not through tokenproviders)."""
    response = requests.get(
        f"{real['url']}{path}", headers={"X-Redmine-API-Key": real["admin_key"]}, params=params, timeout=30
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def world(real: dict[str, Any]) -> Any:
    bot = real["users"]["tpbot"]
    directory = MemoryDirectory()
    for user in ("alice", "bob", "carol", "mallory"):
        directory.add_member(user, "acme")
    tracker = Tracker(
        tenant="acme",
        id="redmine",
        type="redmine",
        base_url=real["url"],
        options={"project": real["project"]},
        bot_credentials=Credentials(api_password=Secret(bot["api_key"])),
    )
    directory.add_tracker(tracker)
    resolver = Resolver(
        directory, MemoryTokenStore(), plugins=Plugins(), settings=ClientSettings(timeout=30, retries=0)
    )

    return SimpleNamespace(tracker=tracker, resolver=resolver)


def set_token(world: Any, owner: str, password: str, username: str | None = None) -> None:
    world.resolver.tokens.set(
        owner=owner,
        url=world.tracker.base_url,
        scope="acme",
        credentials=Credentials(api_username=username, api_password=Secret(password)),
    )


def title(what: str) -> str:
    return f"tokenproviders {what} {uuid.uuid4().hex[:8]}"


def test_personal_api_key_makes_alice_the_author(real: dict[str, Any], world: Any) -> None:
    alice = real["users"]["alice"]
    set_token(world, "alice", alice["api_key"])
    assert world.resolver.verify("alice", world.tracker).login == "alice"
    issue = world.resolver.report_issue("alice", world.tracker, title=title("alice"), body="filed with a personal key")
    assert issue.resolution.source == "personal"
    assert issue.url == f"{real['url']}/issues/{issue.id}"
    record = admin_get(real, f"/issues/{issue.id}.json")["issue"]
    assert record["author"]["id"] == alice["id"]
    assert record["project"]["name"] and record["subject"].startswith("tokenproviders alice")
    print(f"real Redmine: issue #{issue.id} author {record['author']}")


def test_without_a_personal_key_the_bot_is_the_author(real: dict[str, Any], world: Any) -> None:
    issue = world.resolver.report_issue("carol", world.tracker, title=title("bot"))
    assert issue.resolution.source == "bot"
    record = admin_get(real, f"/issues/{issue.id}.json")["issue"]
    assert record["author"]["id"] == real["users"]["tpbot"]["id"]


def test_login_and_password_make_bob_the_author(real: dict[str, Any], world: Any) -> None:
    bob = real["users"]["bob"]
    set_token(world, "bob", bob["password"], username=bob["login"])
    issue = world.resolver.report_issue("bob", world.tracker, title=title("bob"))
    assert admin_get(real, f"/issues/{issue.id}.json")["issue"]["author"]["id"] == bob["id"]


def test_comment_lands_as_the_commenter(real: dict[str, Any], world: Any) -> None:
    alice = real["users"]["alice"]
    set_token(world, "alice", alice["api_key"])
    issue = world.resolver.report_issue("carol", world.tracker, title=title("comment"))
    note = f"seen it too {uuid.uuid4().hex[:6]}"
    world.resolver.add_comment("alice", world.tracker, issue.id, note)
    journals = admin_get(real, f"/issues/{issue.id}.json", include="journals")["issue"]["journals"]
    assert [(j["user"]["id"], j["notes"]) for j in journals if j.get("notes")] == [(alice["id"], note)]


def test_wrong_personal_key_is_rejected(real: dict[str, Any], world: Any) -> None:
    wrong = "0" * 40
    set_token(world, "mallory", wrong)
    with pytest.raises(PersonalTokenRejectedError) as info:
        world.resolver.report_issue("mallory", world.tracker, title=title("never"))
    assert isinstance(info.value, CredentialsRejectedError)
    assert info.value.status == 401
    assert wrong not in str(info.value)


def test_wrong_bot_key_is_rejected(real: dict[str, Any], world: Any) -> None:
    tracker = Tracker(
        tenant="acme",
        id="redmine-wrong",
        type="redmine",
        base_url=real["url"],
        options={"project": real["project"]},
        bot_credentials=Credentials(api_password=Secret("f" * 40)),
    )
    world.resolver.directory.add_tracker(tracker)
    with pytest.raises(CredentialsRejectedError) as info:
        world.resolver.verify("carol", tracker)
    assert not isinstance(info.value, PersonalTokenRejectedError)
    assert info.value.status == 401


def test_unknown_project_is_a_url_error(real: dict[str, Any], world: Any) -> None:
    tracker = Tracker(
        tenant="acme",
        id="redmine-nowhere",
        type="redmine",
        base_url=real["url"],
        options={"project": "no-such-project-here"},
        bot_credentials=Credentials(api_password=Secret(real["users"]["tpbot"]["api_key"])),
    )
    world.resolver.directory.add_tracker(tracker)
    with pytest.raises(TrackerURLError):
        world.resolver.report_issue("carol", tracker, title=title("nowhere"))
