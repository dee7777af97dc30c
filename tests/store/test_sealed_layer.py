"""The one sealing layer: associated data spelled once and byte-identical to the stored data's,
bot credentials bound to their URLs, key checks on any backend."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tokenproviders import Credentials, Secret
from tokenproviders.crypto import AssociatedData, KeyRing, encode_token_aad
from tokenproviders.errors import KeyMismatchError, SecretUnreadableError
from tokenproviders.stores.memory import MemoryRows, MemoryTokenStore
from tokenproviders.stores.sealed import (
    BotBinding,
    SealedTokenStore,
    bot_aad,
    open_bot_secret,
    reseal_bot_secret,
    seal_bot_secret,
    token_aad,
    upgrade_legacy_bot_secret,
)

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
URL = "https://git.example.com/acme/repo"


def test_token_aad_is_the_spelling_existing_blobs_were_sealed_with() -> None:
    # Blobs sealed by earlier releases (SQLite files, crypto's for_token) must keep opening.
    ours = token_aad("alice", "acme", URL)
    assert ours == AssociatedData.for_token(owner="alice", scope="acme", url=URL, field="api_password")
    assert ours.encode() == encode_token_aad("alice", "acme", URL, "api_password")
    assert ours.encode() == (
        b"tokenproviders/aad/v1\x00token\x00"
        b"\x00\x05alice\x00\x04acme\x00\x21https://git.example.com/acme/repo\x00\x0capi_password"
    )


def test_a_blob_sealed_the_old_way_opens_through_the_layer() -> None:
    ring = KeyRing.generate("k1")
    store = MemoryTokenStore(keyring=ring)
    info = store.put("alice", URL, "acme", Credentials(Secret("s3cret")), now=NOW)
    legacy = ring.seal(
        Secret("old-blob"), AssociatedData.for_token(owner="alice", scope="acme", url=URL, field="api_password")
    )
    assert isinstance(store.backend, MemoryRows)
    row = store.backend.get("alice", URL, "acme")
    assert row is not None and row.id == info.id
    from tokenproviders.stores.rows import SecretUpdate

    assert store.backend.replace_secrets([SecretUpdate(row.id, row.secret, legacy, "k1")]) == 1
    token = store.get("alice", URL, "acme")
    assert token is not None and token.credentials is not None
    assert token.credentials.api_password.reveal() == "old-blob"


BINDING = BotBinding("acme", "repo", "https://jira.example.com", None)


@pytest.mark.parametrize(
    "moved",
    [
        BotBinding("beta", "repo", "https://jira.example.com", None),
        BotBinding("acme", "other", "https://jira.example.com", None),
        BotBinding("acme", "repo", "https://evil.example.com", None),
        BotBinding("acme", "repo", "https://jira.example.com", "https://evil.example.com/api"),
    ],
)
def test_a_bot_secret_is_bound_to_tenant_tracker_and_both_urls(moved: BotBinding) -> None:
    ring = KeyRing.generate("k1")
    blob = seal_bot_secret(ring, Secret("bot-pass"), BINDING)
    assert open_bot_secret(ring, blob, BINDING).reveal() == "bot-pass"
    with pytest.raises(SecretUnreadableError):
        open_bot_secret(ring, blob, moved)
    with pytest.raises(SecretUnreadableError):
        open_bot_secret(ring, blob, BINDING, field="api_username")
    # An admin's change re-seals for the new binding; the old binding no longer opens it.
    moved_blob = reseal_bot_secret(ring, blob, BINDING, moved)
    assert open_bot_secret(ring, moved_blob, moved).reveal() == "bot-pass"
    with pytest.raises(SecretUnreadableError):
        open_bot_secret(ring, moved_blob, BINDING)
    # A blob that does not open under the binding claimed as old is refused, not laundered.
    with pytest.raises(SecretUnreadableError):
        reseal_bot_secret(ring, blob, moved, BINDING)


def test_a_legacy_bot_blob_is_upgraded_only_by_the_migration_path() -> None:
    ring = KeyRing.generate("k1")
    legacy = ring.seal(Secret("bot-pass"), AssociatedData.for_bot(tenant="acme", tracker="repo", field="api_password"))
    with pytest.raises(SecretUnreadableError):
        open_bot_secret(ring, legacy, BINDING)
    upgraded = upgrade_legacy_bot_secret(ring, legacy, BINDING)
    assert open_bot_secret(ring, upgraded, BINDING).reveal() == "bot-pass"
    assert bot_aad(BINDING).parts == ("acme", "repo", "api_password", "https://jira.example.com", "")


def test_a_different_key_under_a_known_id_is_refused_on_any_backend() -> None:
    rows = MemoryRows()
    SealedTokenStore(rows, KeyRing([("k1", b"\x01" * 32)], "k1"))
    with pytest.raises(KeyMismatchError):
        SealedTokenStore(rows, KeyRing([("k1", b"\x02" * 32)], "k1"))
    with pytest.raises(KeyMismatchError, match="none of the keys"):
        SealedTokenStore(rows, KeyRing([("k2", b"\x02" * 32)], "k2"))
    both = KeyRing([("k1", b"\x01" * 32), ("k2", b"\x02" * 32)], "k2")
    assert SealedTokenStore(rows, both, check_keys=False).check_keys() == {
        "k1": "ok",
        "k2": "recorded",
    }
