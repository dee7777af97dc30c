"""Fixtures for the Redmine plugin's tests: a fake Redmine and a resolver wired to it."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tokenproviders import (
    ClientSettings,
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Resolver,
    Secret,
    Tracker,
)
from tokenproviders.testing.fakes import FakeRedmine

#: Every secret the fake knows; no error message, repr or traceback may contain one.
SECRETS = ("key-bot-0123456789", "key-alice-0123456789", "pw-bob-0123456789", "key-wrong-0123456789")


@pytest.fixture
def redmine_fake() -> Iterator[FakeRedmine]:
    with FakeRedmine() as fake:
        fake.add_user("tpbot", token="key-bot-0123456789", name="Tokenproviders Bot")
        fake.add_user("alice", token="key-alice-0123456789", name="Alice Liddell", email="alice@example.com")
        fake.add_user("bob", username="bob", password="pw-bob-0123456789", name="Bob Builder")
        fake.add_project("webshop")
        yield fake


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedmineWorld:
    """Tenant ``acme`` with members alice, bob and carol, and one Redmine tracker."""

    def __init__(self, base_url: str, settings: ClientSettings, **tracker_args: Any) -> None:
        self.directory = MemoryDirectory()
        for user in ("alice", "bob", "carol"):
            self.directory.add_member(user, "acme")
        args: dict[str, Any] = {
            "options": {"project": "webshop"},
            "bot_credentials": Credentials(api_password=Secret("key-bot-0123456789")),
        }
        args.update(tracker_args)
        self.tracker = Tracker(tenant="acme", id="redmine", type="redmine", base_url=base_url, **args)
        self.directory.add_tracker(self.tracker)
        self.resolver = Resolver(self.directory, MemoryTokenStore(), plugins=Plugins(), settings=settings)

    def give_token(self, owner: str, password: str, username: str | None = None, url: str | None = None) -> None:
        self.resolver.tokens.set(
            owner=owner,
            url=url or self.tracker.base_url,
            scope="acme",
            credentials=Credentials(api_username=username, api_password=Secret(password)),
        )


@pytest.fixture
def make_world() -> Callable[..., RedmineWorld]:
    def make(base_url: str, timeout: float = 1, retries: int = 0, **tracker_args: Any) -> RedmineWorld:
        return RedmineWorld(base_url, ClientSettings(timeout=timeout, retries=retries), **tracker_args)

    return make


@pytest.fixture
def world(redmine_fake: FakeRedmine, make_world: Callable[..., RedmineWorld]) -> RedmineWorld:
    w = make_world(redmine_fake.url)
    w.give_token("alice", "key-alice-0123456789")
    w.give_token("bob", "pw-bob-0123456789", username="bob")
    return w


@pytest.fixture
def secrets() -> tuple[str, ...]:
    return SECRETS
