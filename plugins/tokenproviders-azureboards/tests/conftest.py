"""Fixtures for the Azure Boards plugin's tests: a fake Azure DevOps and a resolver wired to it."""

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
from tokenproviders.testing.fakes import FakeAzureBoards

BOT_PAT = "patbot0123456789abcdefghij"
ALICE_PAT = "patalice0123456789abcdefghij"
WRONG_PAT = "patwrong0123456789abcdefghij"


@pytest.fixture
def azure_fake() -> Iterator[FakeAzureBoards]:
    with FakeAzureBoards() as fake:
        fake.add_user("kiwi-bot", token=BOT_PAT, email="bot@contoso.com", name="Kiwi Bot")
        fake.add_user("alice", token=ALICE_PAT, email="alice@contoso.com", name="Alice Liddell")
        yield fake


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class AzureWorld:
    """Tenant ``acme`` with members alice and carol, and one Azure Boards tracker."""

    def __init__(self, base_url: str, settings: ClientSettings, **tracker_args: Any) -> None:
        self.directory = MemoryDirectory()
        for user in ("alice", "carol"):
            self.directory.add_member(user, "acme")
        args: dict[str, Any] = {"bot_credentials": Credentials(api_password=Secret(BOT_PAT))}
        args.update(tracker_args)
        self.tracker = Tracker(tenant="acme", id="boards", type="azureboards", base_url=base_url, **args)
        self.directory.add_tracker(self.tracker)
        self.resolver = Resolver(self.directory, MemoryTokenStore(), plugins=Plugins(), settings=settings)

    def give_token(self, owner: str, pat: str, url: str | None = None) -> None:
        self.resolver.tokens.set(
            owner=owner,
            url=url or self.tracker.base_url,
            scope="acme",
            credentials=Credentials(api_password=Secret(pat)),
        )


@pytest.fixture
def make_world() -> Callable[..., AzureWorld]:
    def make(base_url: str, timeout: float = 1, retries: int = 0, **tracker_args: Any) -> AzureWorld:
        return AzureWorld(base_url, ClientSettings(timeout=timeout, retries=retries), **tracker_args)

    return make


@pytest.fixture
def world(azure_fake: FakeAzureBoards, make_world: Callable[..., AzureWorld]) -> AzureWorld:
    w = make_world(f"{azure_fake.url}/contoso/Web%20Shop")
    w.give_token("alice", ALICE_PAT)
    return w


@pytest.fixture
def pats() -> dict[str, str]:
    return {"bot": BOT_PAT, "alice": ALICE_PAT, "wrong": WRONG_PAT}


@pytest.fixture
def secrets() -> tuple[str, ...]:
    import base64

    plain = (BOT_PAT, ALICE_PAT, WRONG_PAT)
    return plain + tuple(base64.b64encode(f":{p}".encode()).decode() for p in plain)


@pytest.fixture
def odd_server() -> Iterator[Callable[[int, dict[str, str], bytes], str]]:
    """A web server that is not Azure DevOps; ``configure(status, headers, body)`` returns its URL."""
    answer: dict[str, Any] = {"status": 200, "headers": {}, "body": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["status"])
            for name, value in answer["headers"].items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def configure(status: int, headers: dict[str, str], body: bytes) -> str:
        answer.update(status=status, headers=headers, body=body)
        return f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield configure
    finally:
        server.shutdown()
        server.server_close()
