"""Fixtures for the Bugzilla plugin's tests: fake Bugzillas (5.2 and 5.0) and resolvers wired to them."""

from __future__ import annotations

import http.server
import socket
import threading
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
from tokenproviders.testing.fakes import FakeBugzilla

BOT_KEY = "bzkey-bot-0123456789abcdef"
ALICE_KEY = "bzkey-alice-0123456789abcdef"
WRONG_KEY = "bzkey-wrong-0123456789abcdef"
#: Every secret the tests use; no error message, repr or traceback may contain one.
SECRETS = (BOT_KEY, ALICE_KEY, WRONG_KEY)


def _fake(version: str) -> FakeBugzilla:
    fake = FakeBugzilla(version=version)
    fake.add_user("bot@example.com", token=BOT_KEY, name="Kiwi Bot")
    fake.add_user("alice@example.com", token=ALICE_KEY, name="Alice Liddell")
    return fake


@pytest.fixture
def bugzilla_fake() -> Iterator[FakeBugzilla]:
    with _fake("5.2") as fake:
        yield fake


@pytest.fixture
def bugzilla50_fake() -> Iterator[FakeBugzilla]:
    """A Bugzilla 5.0: it understands the API key only as a query parameter."""
    with _fake("5.0.4") as fake:
        yield fake


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class BugzillaWorld:
    """Tenant ``acme`` with members alice and carol, and one Bugzilla tracker."""

    def __init__(self, base_url: str, settings: ClientSettings, **tracker_args: Any) -> None:
        self.directory = MemoryDirectory()
        for user in ("alice", "carol"):
            self.directory.add_member(user, "acme")
        args: dict[str, Any] = {
            "options": {"product": "Widgets", "component": "UI"},
            "bot_credentials": Credentials(api_password=Secret(BOT_KEY)),
        }
        args.update(tracker_args)
        self.tracker = Tracker(tenant="acme", id="bugzilla", type="bugzilla", base_url=base_url, **args)
        self.directory.add_tracker(self.tracker)
        self.resolver = Resolver(self.directory, MemoryTokenStore(), plugins=Plugins(), settings=settings)

    def give_token(self, owner: str, key: str, url: str | None = None) -> None:
        self.resolver.tokens.set(
            owner=owner,
            url=url or self.tracker.base_url,
            scope="acme",
            credentials=Credentials(api_password=Secret(key)),
        )


@pytest.fixture
def make_world() -> Callable[..., BugzillaWorld]:
    def make(base_url: str, timeout: float = 1, retries: int = 0, **tracker_args: Any) -> BugzillaWorld:
        return BugzillaWorld(base_url, ClientSettings(timeout=timeout, retries=retries), **tracker_args)

    return make


@pytest.fixture
def world(bugzilla_fake: FakeBugzilla, make_world: Callable[..., BugzillaWorld]) -> BugzillaWorld:
    w = make_world(bugzilla_fake.url)
    w.give_token("alice", ALICE_KEY)
    return w


@pytest.fixture
def keys() -> dict[str, str]:
    return {"bot": BOT_KEY, "alice": ALICE_KEY, "wrong": WRONG_KEY}


@pytest.fixture
def secrets() -> tuple[str, ...]:
    return SECRETS


@pytest.fixture
def html_server() -> Iterator[str]:
    """A web server that is not Bugzilla: every GET answers 200 with an HTML page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Welcome to some other site</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
