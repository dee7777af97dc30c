"""The hook snippets the plugin-author guide quotes (doc_snippets.py) do what the guide says."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
from collections.abc import Callable

import pytest

from tokenproviders import Credentials, Plugins, Secret
from tokenproviders.crypto import AssociatedData, KeyRing
from tokenproviders.plugins import BLOCK_ENV, LOAD_ENV, TRACE_ENV
from tokenproviders.testing import World

from .doc_snippets import AuditObserver, EnvironmentKMS, VaultSource

SPEC = {
    "tenants": {
        "acme": {
            "members": ["alice", "bob", "carol"],
            "trackers": [{"id": "bugs", "type": "memory", "bot": {"login": "bot", "api_password": "bot-pw"}}],
        }
    },
    "tokens": [{"owner": "carol", "tracker": "acme/bugs", "api_password": "carol-pw"}],
}


@pytest.fixture(autouse=True)
def _no_operator_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (BLOCK_ENV, LOAD_ENV, TRACE_ENV):
        monkeypatch.delenv(name, raising=False)


def test_the_vault_source_sits_between_personal_tokens_and_the_bot(
    tp_make_world: Callable[..., World], tp_register_plugin: Callable[..., str]
) -> None:
    world = tp_make_world(SPEC)
    tracker = world.tracker("acme/bugs")
    vault = {
        ("alice", "acme", tracker.url): "alice-vault-token",
        ("carol", "acme", tracker.url): "carol-vault-token",
    }
    tp_register_plugin(VaultSource(vault))
    alice = world.resolver.resolve("alice", tracker)
    assert (alice.source, alice.credentials) == ("vault", Credentials(api_password=Secret("alice-vault-token")))
    assert (alice.scope, alice.reason) == ("acme", f"Using alice's token from the vault for {tracker.url}.")
    assert world.resolver.resolve("carol", tracker).source == "personal"  # personal tokens win
    assert world.resolver.resolve("bob", tracker).source == "bot"  # the vault deferred


@pytest.mark.parametrize(
    "twin", [{"api_url": "https://collector.evil.test/api"}, {"verify_tls": False}], ids=["api_url", "tls"]
)
def test_the_vault_source_never_hands_a_token_to_another_tenants_tracker_with_the_same_url(
    tp_make_world: Callable[..., World], tp_register_plugin: Callable[..., str], twin: dict[str, object]
) -> None:
    # Another tenant's administrator adds a tracker with acme's URL, pointing its API at their
    # own server or weakening its TLS; alice is a member there too.
    world = tp_make_world(SPEC)
    tracker = world.tracker("acme/bugs")
    evil = dataclasses.replace(tracker, tenant="evil", id="twin", **twin)
    world.directory.add_tracker(evil)
    world.directory.add_member("alice", "evil")
    tp_register_plugin(VaultSource({("alice", "acme", tracker.url): "alice-vault-token"}))
    assert world.resolver.resolve("alice", evil).source == "bot"  # evil's own bot, not alice's token
    assert world.resolver.verify("alice", evil).login == "bot"
    assert world.resolver.resolve("alice", tracker).source == "vault"


def test_the_audit_observer_logs_who_and_how_never_the_secret(
    tp_make_world: Callable[..., World], tp_register_plugin: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="myhost.audit")
    world = tp_make_world(SPEC)
    tp_register_plugin(AuditObserver())
    world.resolver.resolve("carol", world.tracker("acme/bugs"))
    world.resolver.resolve("bob", world.tracker("acme/bugs"))
    assert [r.getMessage() for r in caplog.records if r.name == "myhost.audit"] == [
        "carol acts on acme/bugs with personal credentials",
        "bob acts on acme/bugs with bot credentials",
    ]
    assert "carol-pw" not in caplog.text and "bot-pw" not in caplog.text


def test_the_key_provider_supplies_the_key_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv("MYHOST_TOKEN_KEY", base64.b64encode(key).decode())
    ring = KeyRing.load(plugins=Plugins(load_entry_points=False, extra=[EnvironmentKMS()]))
    assert ring.key_ids == ("myhost-1",)
    aad = AssociatedData.for_bot(tenant="acme", tracker="bugs", field="api_password")
    assert KeyRing({"myhost-1": key}, "myhost-1").open(ring.seal("bot-pw", aad), aad) == "bot-pw"


def test_the_key_provider_defers_without_its_variable(monkeypatch: pytest.MonkeyPatch, tp_key_file: object) -> None:
    monkeypatch.delenv("MYHOST_TOKEN_KEY", raising=False)
    ring = KeyRing.load(plugins=Plugins(load_entry_points=False, extra=[EnvironmentKMS()]), key_file=str(tp_key_file))
    assert ring.key_ids == ("test-key",)
