"""Fixtures for the Jira plugin's tests: the real ``jira`` library against ``FakeJira``, through
the real :class:`~tokenproviders.Resolver` with the plugin discovered from its entry point."""

from __future__ import annotations

import base64
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ClientSettings,
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Resolver,
    Secret,
    Tracker,
)
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV, TRACE_ENV
from tokenproviders.testing.fakes import FakeJira

ALICE_EMAIL = "alice@example.com"
ALICE_TOKEN = "alice-cloud-token-5f1c"
BOT_EMAIL = "bot@example.com"
BOT_TOKEN = "bot-cloud-token-9a7e"
CAROL_PAT = "carol-server-pat-41d2"
SECRETS = (ALICE_TOKEN, BOT_TOKEN, CAROL_PAT)


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeJira]:
    with FakeJira() as jira:
        jira.add_user("alice", username=ALICE_EMAIL, token=ALICE_TOKEN, name="Alice Liddell")
        jira.add_user("bot", username=BOT_EMAIL, token=BOT_TOKEN, name="Bug Bot")
        jira.add_user("carol", token=CAROL_PAT, name="Carol Server")
        yield jira


@dataclass
class JiraWorld:
    """One tenant ``acme`` with alice, bob and carol, and Jira trackers on one fake."""

    fake: FakeJira
    directory: MemoryDirectory = field(default_factory=MemoryDirectory)
    store: MemoryTokenStore = field(default_factory=MemoryTokenStore)
    settings: ClientSettings = field(default_factory=lambda: ClientSettings(timeout=5, retries=0))
    _resolver: Resolver | None = None

    def __post_init__(self) -> None:
        for user in ("alice", "bob", "carol"):
            self.directory.add_member(user, "acme")

    def add_tracker(
        self,
        tracker_id: str = "jira",
        *,
        base_url: str | None = None,
        with_bot: bool = True,
        **options: Any,
    ) -> Tracker:
        options.setdefault("project", "PROJ")
        bot = Credentials(api_username=BOT_EMAIL, api_password=Secret(BOT_TOKEN)) if with_bot else None
        tracker = Tracker(
            tenant="acme",
            id=tracker_id,
            type="jira",
            base_url=base_url or self.fake.url,
            bot_credentials=bot,
            options=options,
        )
        self.directory.add_tracker(tracker)
        return tracker

    @property
    def resolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = Resolver(self.directory, self.store, plugins=Plugins(), settings=self.settings)
        return self._resolver

    def give_alice_her_token(self, url: str | None = None, token: str = ALICE_TOKEN) -> None:
        self.resolver.tokens.set(
            owner="alice",
            url=url or self.fake.url,
            scope=ALL_TENANTS,
            credentials=Credentials(api_username=ALICE_EMAIL, api_password=Secret(token)),
        )

    def give_carol_her_pat(self, token: str = CAROL_PAT) -> None:
        self.resolver.tokens.set(
            owner="carol", url=self.fake.url, scope="acme", credentials=Credentials(api_password=Secret(token))
        )


@pytest.fixture
def world(fake: FakeJira) -> JiraWorld:
    return JiraWorld(fake)


@pytest.fixture
def fast_world(fake: FakeJira) -> JiraWorld:
    """A world whose clients time out after one second and never retry."""
    return JiraWorld(fake, settings=ClientSettings(timeout=1, retries=0))


@pytest.fixture
def world_with(fake: FakeJira) -> Callable[[ClientSettings], JiraWorld]:
    """A factory of worlds with other client settings."""
    return lambda settings: JiraWorld(fake, settings=settings)


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def basic_header() -> Callable[[str, str], str]:
    return basic


@pytest.fixture
def assert_no_secret() -> Callable[[BaseException], None]:
    """Check that neither a token nor its Basic encoding shows in an error, however printed."""
    forms = set(SECRETS)
    for user, token in ((ALICE_EMAIL, ALICE_TOKEN), (BOT_EMAIL, BOT_TOKEN)):
        forms.add(basic(user, token).split(" ", 1)[1])
    forms.update({"wrong-token-0000", basic(ALICE_EMAIL, "wrong-token-0000").split(" ", 1)[1]})

    def check(err: BaseException) -> None:
        shown = [str(err), repr(err), "".join(traceback.format_exception(err))]
        shown += [str(getattr(err, "message", "")), str(getattr(err, "hint", ""))]
        for text in shown:
            for secret in forms:
                assert secret not in text, f"a secret leaked into: {text!r}"

    return check


@pytest.fixture
def timed() -> Callable[[str, Callable[[], Any]], tuple[BaseException, float]]:
    """Run a call that must fail; return the error and the seconds it took (and print them)."""

    def run(label: str, call: Callable[[], Any]) -> tuple[BaseException, float]:
        start = time.monotonic()
        try:
            call()
        except Exception as exc:
            elapsed = time.monotonic() - start
            print(f"\n[jira] {label}: {type(exc).__name__} after {elapsed:.3f} s: {exc}")
            return exc, elapsed
        raise AssertionError(f"{label}: no error raised")

    return run
