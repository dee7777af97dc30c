"""Fixtures for the GitLab plugin's tests: real python-gitlab against ``FakeGitLab``, through the
real :class:`~tokenproviders.Resolver` with the plugin discovered from its entry point."""

from __future__ import annotations

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
from tokenproviders.testing.fakes import FakeGitLab

ALICE_TOKEN = "glpat-alice-0000000000a11c"
BOT_TOKEN = "glpat-bot-00000000000000b07"
WRONG_TOKEN = "glpat-wrong-000000000000bad"
SECRETS = (ALICE_TOKEN, BOT_TOKEN, WRONG_TOKEN)
PROJECT = "grp/sub/proj"


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeGitLab]:
    with FakeGitLab() as gitlab:
        gitlab.add_user("alice", token=ALICE_TOKEN, name="Alice Liddell", email="alice@example.com")
        gitlab.add_user("bot", token=BOT_TOKEN, name="Bug Bot")
        yield gitlab


@dataclass
class GitLabWorld:
    """One tenant ``acme`` with alice and bob, and project trackers on one fake GitLab."""

    fake: FakeGitLab
    directory: MemoryDirectory = field(default_factory=MemoryDirectory)
    store: MemoryTokenStore = field(default_factory=MemoryTokenStore)
    settings: ClientSettings = field(default_factory=lambda: ClientSettings(timeout=5, retries=0))
    _resolver: Resolver | None = None

    def __post_init__(self) -> None:
        for user in ("alice", "bob"):
            self.directory.add_member(user, "acme")

    def add_tracker(
        self,
        tracker_id: str = "gl",
        *,
        path: str = PROJECT,
        base_url: str | None = None,
        api_url: str | None = None,
        with_bot: bool = True,
        **options: Any,
    ) -> Tracker:
        tracker = Tracker(
            tenant="acme",
            id=tracker_id,
            type="gitlab",
            base_url=base_url or f"{self.fake.url}/{path}",
            api_url=api_url,
            bot_credentials=Credentials(api_password=Secret(BOT_TOKEN)) if with_bot else None,
            options=options,
        )
        self.directory.add_tracker(tracker)
        return tracker

    @property
    def resolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = Resolver(self.directory, self.store, plugins=Plugins(), settings=self.settings)
        return self._resolver

    def give_alice_her_token(self, url: str | None = None, token: str = ALICE_TOKEN, scope: str = ALL_TENANTS) -> None:
        """By default for the service URL (the instance): it serves every project there."""
        self.resolver.tokens.set(
            owner="alice", url=url or self.fake.url, scope=scope, credentials=Credentials(api_password=Secret(token))
        )


@pytest.fixture
def world(fake: FakeGitLab) -> GitLabWorld:
    return GitLabWorld(fake)


@pytest.fixture
def fast_world(fake: FakeGitLab) -> GitLabWorld:
    """A world whose clients time out after one second and never retry."""
    return GitLabWorld(fake, settings=ClientSettings(timeout=1, retries=0))


@pytest.fixture
def world_with(fake: FakeGitLab) -> Callable[[ClientSettings], GitLabWorld]:
    return lambda settings: GitLabWorld(fake, settings=settings)


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every time.sleep() instead of sleeping (python-gitlab waits out rate limits with it)."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def assert_no_secret() -> Callable[[BaseException], None]:
    def check(err: BaseException) -> None:
        shown = [str(err), repr(err), "".join(traceback.format_exception(err))]
        shown += [str(getattr(err, "message", "")), str(getattr(err, "hint", ""))]
        for text in shown:
            for secret in SECRETS:
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
            print(f"\n[gitlab] {label}: {type(exc).__name__} after {elapsed:.3f} s: {exc}")
            return exc, elapsed
        raise AssertionError(f"{label}: no error raised")

    return run
