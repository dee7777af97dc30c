"""Helpers for the core's tests. A small world: two tenants, three users, in-memory trackers.

``acme`` and ``beta`` each have a repository tracker on ``https://git.example.com`` (one service
URL serving both) with bot credentials; ``acme`` also has a Jira-like tracker on its own host
without bot credentials. alice is in both tenants, bob only in acme, mallory only in beta.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tokenproviders import (
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Policies,
    Resolver,
    Secret,
    TokenProvidersError,
    Tracker,
)
from tokenproviders.model import PersonalToken, TokenInfo
from tokenproviders.testing.memory_tracker import MemoryTrackerBackend, MemoryTrackerPlugin, MemoryTrackerType

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
SERVICE = "https://git.example.com"
BOT_ACME = "bot-acme-secret"
BOT_BETA = "bot-beta-secret"


def creds(password: str, username: str | None = None) -> Credentials:
    return Credentials(api_password=Secret(password), api_username=username)


class Clock:
    """An injectable, movable clock."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class SpyStore(MemoryTokenStore):
    """A memory store that records every call made to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
        self.calls.append("lookup")
        return super().lookup(owner, candidates)

    def get(self, owner: str, url: str, scope: str) -> PersonalToken | None:
        self.calls.append("get")
        return super().get(owner, url, scope)

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        self.calls.append("list")
        return super().list(owner)

    def mark_used(self, token_id: int, when: datetime) -> None:
        self.calls.append("mark_used")
        super().mark_used(token_id, when)


@dataclass
class World:
    directory: MemoryDirectory
    backend: MemoryTrackerBackend
    tracker_type: MemoryTrackerType
    plugins: Plugins
    store: SpyStore
    clock: Clock
    acme_repo: Tracker
    beta_repo: Tracker
    acme_jira: Tracker
    resolvers: list[Resolver] = field(default_factory=list)

    def resolver(self, **kwargs: object) -> Resolver:
        kwargs.setdefault("plugins", self.plugins)
        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("policies", Policies())
        resolver = Resolver(self.directory, self.store, **kwargs)  # type: ignore[arg-type]
        self.resolvers.append(resolver)
        return resolver


def build_world() -> World:
    backend = MemoryTrackerBackend()
    backend.add_user("acme-bot", BOT_ACME)
    backend.add_user("beta-bot", BOT_BETA)
    tracker_type = MemoryTrackerType(backend)
    plugins = Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(tracker_type)])
    acme_repo = Tracker(
        tenant="acme", id="repo", type="memory", base_url=f"{SERVICE}/acme/repo", name="Acme repo",
        bot_credentials=creds(BOT_ACME),
    )
    beta_repo = Tracker(
        tenant="beta", id="repo", type="memory", base_url=f"{SERVICE}/beta/repo", name="Beta repo",
        bot_credentials=creds(BOT_BETA),
    )
    acme_jira = Tracker(tenant="acme", id="jira", type="memory", base_url="https://jira.acme.test", name="Acme Jira")
    directory = MemoryDirectory(
        memberships=[("alice", "acme"), ("alice", "beta"), ("bob", "acme"), ("mallory", "beta")],
        trackers=[acme_repo, beta_repo, acme_jira],
    )
    return World(directory, backend, tracker_type, plugins, SpyStore(), Clock(), acme_repo, beta_repo, acme_jira)


_SENTENCE_BREAK = re.compile(r"[.!?]\s+[A-Z]")


def assert_one_sentence(text: str) -> None:
    """A reason a person reads: one line, starting with a capital and ending with one period."""
    assert text, "a reason must not be empty"
    assert "\n" not in text, text
    assert text[0].isupper(), text
    assert text.endswith("."), text
    assert not text.endswith(".."), text
    assert not _SENTENCE_BREAK.search(text), f"more than one sentence: {text}"


def assert_actionable(error: BaseException) -> None:
    """Every error says what happened and what to do next, and shows both in ``str()``."""
    assert isinstance(error, TokenProvidersError), type(error)
    assert error.message.strip(), "an error needs a message"
    assert error.hint.strip(), f"{type(error).__name__} has no hint: {error}"
    assert str(error) == f"{error.message}; {error.hint}"


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    text = f"{error!s} {error!r} {getattr(error, 'message', '')} {getattr(error, 'hint', '')}"
    for secret in secrets:
        assert secret not in text, f"a secret leaked into {type(error).__name__}"
