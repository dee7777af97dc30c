"""Sealing: round trips, fresh nonces, tamper and misplacement detection, keys and key files."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenproviders import Plugins, Secret, hookimpl
from tokenproviders.crypto import (
    KEY_FILE_ENV,
    KEYS_ENV,
    MAX_SECRET_LENGTH,
    NONCE_SIZE,
    TAG_SIZE,
    AssociatedData,
    KeyMaterial,
    KeyRing,
    blob_key_id,
    encode_token_aad,
    main,
)
from tokenproviders.errors import (
    ConfigurationError,
    InvalidInputError,
    KeyMismatchError,
    MissingKeyError,
    SecretUnreadableError,
)
from tokenproviders.stores.sqlite import SQLiteDatabase

FIXTURES = Path(__file__).parent / "fixtures"
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
AAD = AssociatedData.for_token(owner="alice", scope="acme", url="https://jira.example.com", field="api_password")
SECRET_4K = "x" * 4096


def ring(*pairs: tuple[str, bytes], primary: str | None = None) -> KeyRing:
    return KeyRing(list(pairs), primary or pairs[0][0])


def key_encodings(key: bytes) -> list[bytes]:
    return [key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key)]


def assert_names_only_key_id(error: SecretUnreadableError, key_id: str | None, *keys: bytes) -> None:
    text = str(error) + repr(error)
    if key_id is not None:
        assert error.key_id == key_id
        assert repr(key_id) in error.message
    for key in keys:
        for form in key_encodings(key):
            assert form.decode("latin-1") not in text


# -- round trips --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "plaintext",
    ["", "a", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "pässwörd ✓ 密码 🔑", SECRET_4K, "\ud800lone surrogate"],
    ids=["empty", "one-char", "short", "unicode", "4KB", "surrogate"],
)
def test_round_trip(plaintext: str) -> None:
    keys = ring(("k1", KEY_A))
    blob = keys.seal(plaintext, AAD)
    assert keys.open(blob, AAD) == plaintext
    assert keys.open_secret(blob, AAD).reveal() == plaintext
    assert keys.seal(Secret(plaintext), AAD) != blob
    assert len(blob) == 2 + len("k1") + NONCE_SIZE + len(plaintext.encode("utf-8", "surrogatepass")) + 16


@settings(max_examples=200, deadline=None)
@given(plaintext=st.text(max_size=300), parts=st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_round_trip_property(plaintext: str, parts: list[str]) -> None:
    keys = ring(("k1", KEY_A))
    aad = AssociatedData("token", tuple(parts))
    assert keys.open(keys.seal(plaintext, aad), aad) == plaintext


def test_two_seals_of_the_same_secret_differ() -> None:
    keys = ring(("k1", KEY_A))
    assert keys.seal("same", AAD) != keys.seal("same", AAD)


def test_100k_nonces_never_repeat() -> None:
    keys = ring(("k1", KEY_A))
    start = 2 + len("k1")
    nonces = {keys.seal("s", AAD)[start : start + NONCE_SIZE] for _ in range(100_000)}
    assert len(nonces) == 100_000


def test_no_caller_can_supply_a_nonce() -> None:
    assert set(inspect.signature(KeyRing.seal).parameters) == {"self", "plaintext", "aad"}


# -- tampering ----------------------------------------------------------------------------
def test_every_flipped_byte_and_bit_fails_to_open() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    blob = keys.seal("ghp_secret-token", AAD)
    for index in range(len(blob)):
        for mask in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF):
            damaged = bytearray(blob)
            damaged[index] ^= mask
            with pytest.raises(SecretUnreadableError) as caught:
                keys.open(bytes(damaged), AAD)
            assert caught.value.message  # a sentence, not a bare cryptography exception
            assert_names_only_key_id(caught.value, None, KEY_A, KEY_B)


def test_truncated_or_extended_blob_fails_to_open() -> None:
    keys = ring(("k1", KEY_A))
    blob = keys.seal("ghp_secret-token", AAD)
    for length in range(len(blob)):
        with pytest.raises(SecretUnreadableError):
            keys.open(blob[:length], AAD)
    for extra in (b"\x00", b"x" * 16, blob):
        with pytest.raises(SecretUnreadableError, match="'k1'"):
            keys.open(blob + extra, AAD)


def test_unsupported_version_is_named() -> None:
    keys = ring(("k1", KEY_A))
    blob = bytearray(keys.seal("s", AAD))
    blob[0] = 2
    with pytest.raises(SecretUnreadableError, match="format version 2"):
        keys.open(bytes(blob), AAD)


MOVED = {
    "another row (scope)": AssociatedData.for_token(
        owner="alice", scope="*", url="https://jira.example.com", field="api_password"
    ),
    "another user": AssociatedData.for_token(
        owner="bob", scope="acme", url="https://jira.example.com", field="api_password"
    ),
    "another tenant": AssociatedData.for_token(
        owner="alice", scope="globex", url="https://jira.example.com", field="api_password"
    ),
    "another URL": AssociatedData.for_token(
        owner="alice", scope="acme", url="https://jira.example.com/x", field="api_password"
    ),
    "another field": AssociatedData.for_token(
        owner="alice", scope="acme", url="https://jira.example.com", field="api_username"
    ),
    "a bot credential": AssociatedData.for_bot(tenant="acme", tracker="jira", field="api_password"),
    "ambiguous concatenation": AssociatedData.for_token(
        owner="alice", scope="acmehttps://jira.example.com", url="", field="api_password"
    ),
}


@pytest.mark.parametrize("where", list(MOVED))
def test_blob_moved_elsewhere_fails_to_open(where: str) -> None:
    keys = ring(("k1", KEY_A))
    blob = keys.seal("ghp_secret-token", AAD)
    with pytest.raises(SecretUnreadableError, match="copied from another row or field"):
        keys.open(blob, MOVED[where])


@pytest.mark.parametrize(
    "other",
    [
        AssociatedData.for_bot(tenant="globex", tracker="jira", field="api_password"),
        AssociatedData.for_bot(tenant="acme", tracker="github", field="api_password"),
        AssociatedData.for_bot(tenant="acme", tracker="jira", field="api_username"),
    ],
)
def test_bot_blob_moved_to_another_tenant_tracker_or_field_fails(other: AssociatedData) -> None:
    keys = ring(("k1", KEY_A))
    aad = AssociatedData.for_bot(tenant="acme", tracker="jira", field="api_password")
    blob = keys.seal("bot-secret", aad)
    assert keys.open(blob, aad) == "bot-secret"
    with pytest.raises(SecretUnreadableError):
        keys.open(blob, other)


# -- wrong, unknown and retired keys ------------------------------------------------------
def test_wrong_key_under_the_same_id_names_the_key_id_only() -> None:
    blob = ring(("k1", KEY_A)).seal("ghp_secret-token", AAD)
    with pytest.raises(SecretUnreadableError) as caught:
        ring(("k1", KEY_B)).open(blob, AAD)
    assert "different key" in caught.value.message
    assert_names_only_key_id(caught.value, "k1", KEY_A, KEY_B)


def test_unknown_key_id_names_the_key_id_only() -> None:
    blob = ring(("k1", KEY_A)).seal("ghp_secret-token", AAD)
    with pytest.raises(SecretUnreadableError) as caught:
        ring(("k2", KEY_B)).open(blob, AAD)
    assert "not in the key ring" in caught.value.message
    assert_names_only_key_id(caught.value, "k1", KEY_A, KEY_B)
    assert blob_key_id(blob) == "k1"


def test_retired_key_names_the_key_id_only() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    blob = keys.seal("ghp_secret-token", AAD)
    keys.set_primary("k2")
    keys.retire("k1")
    assert keys.key_ids == ("k2",)
    assert keys.retired_ids == {"k1"}
    with pytest.raises(SecretUnreadableError) as caught:
        keys.open(blob, AAD)
    assert "retired" in caught.value.message
    assert_names_only_key_id(caught.value, "k1", KEY_A, KEY_B)


def test_primary_key_cannot_be_retired() -> None:
    with pytest.raises(ConfigurationError, match="primary"):
        ring(("k1", KEY_A)).retire("k1")


# -- the format stays stable --------------------------------------------------------------
def test_known_answer_blobs_still_open() -> None:
    document = json.loads((FIXTURES / "known_answer_v1.json").read_text(encoding="utf-8"))
    keys = KeyRing({document["key_id"]: base64.b64decode(document["key_b64"])}, document["key_id"])
    assert document["cases"]
    for case in document["cases"]:
        aad = AssociatedData(case["kind"], tuple(case["parts"]))
        blob = bytes.fromhex(case["blob_hex"])
        assert blob[0] == 1 and blob_key_id(blob) == document["key_id"]
        assert keys.open(blob, aad) == case["plaintext"]


def test_known_answer_blobs_open_with_the_associated_data_the_stores_build() -> None:
    document = json.loads((FIXTURES / "known_answer_v1.json").read_text(encoding="utf-8"))
    keys = KeyRing({document["key_id"]: base64.b64decode(document["key_b64"])}, document["key_id"])
    for case in document["cases"]:
        blob = bytes.fromhex(case["blob_hex"])
        if case["kind"] == "token":
            owner, scope, url, field = case["parts"]
            aad = AssociatedData.for_token(owner=owner, scope=scope, url=url, field=field)
            assert keys.open(blob, encode_token_aad(owner, scope, url, field)) == case["plaintext"]
            assert keys.open(blob, encode_token_aad(owner, scope, url, field)) == case["plaintext"]  # remembered
        else:
            tenant, tracker, field = case["parts"]
            aad = AssociatedData.for_bot(tenant=tenant, tracker=tracker, field=field)
        assert keys.open(blob, aad) == case["plaintext"]


def test_associated_data_parts_may_hold_lone_surrogates() -> None:
    # Ids are checked before they get here; the encoding itself must not be what fails.
    keys = ring(("k1", KEY_A))
    aad = AssociatedData.for_token(owner="\ud800", scope="acme", url="https://x.test", field="f")
    blob = keys.seal("s", aad)
    assert keys.open(blob, aad) == "s"
    assert keys.open(blob, encode_token_aad("\ud800", "acme", "https://x.test", "f")) == "s"
    with pytest.raises(SecretUnreadableError):
        keys.open(blob, AssociatedData.for_token(owner="\udc00", scope="acme", url="https://x.test", field="f"))


def test_associated_data_parts_are_bounded_at_65535_bytes() -> None:
    longest, too_long = "u" * 0xFFFF, "u" * 0x10000
    assert AssociatedData("token", (longest,)).encode().endswith(b"\xff\xff" + longest.encode())
    token = AssociatedData.for_token(owner=longest, scope="acme", url="https://x.test", field="f")
    assert encode_token_aad(longest, "acme", "https://x.test", "f") == token.encode()
    for build in (
        lambda: AssociatedData("token", ("alice", too_long)).encode(),
        lambda: encode_token_aad(too_long, "acme", "https://x.test", "f"),
        lambda: encode_token_aad("alice", "acme", too_long, "f"),
    ):
        with pytest.raises(ConfigurationError, match="longer than 65535 bytes"):
            build()


def test_the_remembered_token_aad_tails_stay_bounded() -> None:
    from tokenproviders import crypto

    for n in range(5000):
        encode_token_aad("alice", f"tenant-{n}", "https://x.test", "api_password")
    assert 0 < len(crypto._token_aad_tails) <= 4096
    token = AssociatedData.for_token(owner="alice", scope="tenant-1", url="https://x.test", field="api_password")
    assert encode_token_aad("alice", "tenant-1", "https://x.test", "api_password") == token.encode()


def test_associated_data_cannot_be_changed() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        AAD.kind = "bot"  # type: ignore[misc]


#: HMAC-SHA256(KEY_A, b"tokenproviders key check v1")[:16], computed once outside the library.
#: Stores keep these values: a changed derivation would refuse every existing database's keys.
KEY_A_CHECK_VALUE = "ef891a3c5a63a5c37aec57a85e45d8b1"
KEY_B_CHECK_VALUE = "ccca9c1f325f986956fea4837b4abe84"


def test_key_check_values_known_answer() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    assert keys.check_value("k1").hex() == KEY_A_CHECK_VALUE
    assert keys.check_value("k2").hex() == KEY_B_CHECK_VALUE
    # The value depends on the key only, not on its id or the ring.
    assert ring(("other-id", KEY_A)).check_value("other-id").hex() == KEY_A_CHECK_VALUE


def test_the_check_value_of_a_missing_or_retired_key_is_refused() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    with pytest.raises(SecretUnreadableError, match="'k9' is not in the key ring") as caught:
        keys.check_value("k9")
    assert caught.value.key_id == "k9"
    keys.retire("k2")
    with pytest.raises(SecretUnreadableError, match="'k2' was retired"):
        keys.check_value("k2")


# -- malformed blobs: each is named for what it is ----------------------------------------
PAYLOAD = bytes(NONCE_SIZE + TAG_SIZE)


@pytest.mark.parametrize("blob", ["01026b31", None, 12, ["k1"]], ids=["str", "None", "int", "list"])
def test_a_blob_that_is_not_bytes_is_unreadable_not_a_crash(blob: Any) -> None:
    with pytest.raises(SecretUnreadableError, match=f"must be bytes, not {type(blob).__name__}"):
        blob_key_id(blob)
    with pytest.raises(SecretUnreadableError, match=f"must be bytes, not {type(blob).__name__}"):
        ring(("k1", KEY_A)).open(blob, AAD)


@pytest.mark.parametrize("blob", [b"", b"\x01"], ids=["empty", "version-only"])
def test_a_blob_without_a_header_is_truncated(blob: bytes) -> None:
    with pytest.raises(SecretUnreadableError, match=r"truncated \(no header\)"):
        blob_key_id(blob)


@pytest.mark.parametrize(
    "blob",
    [
        bytes([1, 0]) + PAYLOAD,
        bytes([1, 65]) + b"k" * 65 + PAYLOAD,
        bytes([1, 200]) + b"k" * 200 + PAYLOAD,
        bytes([1, 3]) + b"k1",
        bytes([1, 2]),
    ],
    ids=["no-id", "id-of-65", "id-of-200", "id-past-the-end", "header-only"],
)
def test_a_bad_key_id_length_is_a_malformed_header(blob: bytes) -> None:
    for parse in (blob_key_id, lambda b: ring(("k1", KEY_A)).open(b, AAD)):
        with pytest.raises(SecretUnreadableError, match=r"header is malformed \(bad key id length\)") as caught:
            parse(blob)
        assert caught.value.key_id is None


@pytest.mark.parametrize("raw_id", [b"\xff\xfe", b"-k", b"a b"], ids=["not-ascii", "leading-dash", "space"])
def test_an_invalid_key_id_in_the_header_is_named_so(raw_id: bytes) -> None:
    with pytest.raises(SecretUnreadableError, match=r"header is malformed \(the key id is not valid\)"):
        blob_key_id(bytes([1, len(raw_id)]) + raw_id + PAYLOAD)


def test_the_longest_key_id_and_the_shortest_payload_parse() -> None:
    longest = "k" * 64
    assert blob_key_id(bytes([1, 64]) + longest.encode() + PAYLOAD) == longest
    assert blob_key_id(bytes([1, 2]) + b"k1" + PAYLOAD) == "k1"
    for short in (b"", PAYLOAD[:-1]):
        with pytest.raises(SecretUnreadableError, match="the blob sealed under key 'k1' is truncated") as caught:
            blob_key_id(bytes([1, 2]) + b"k1" + short)
        assert caught.value.key_id == "k1"


@pytest.mark.parametrize("key_id", ["k", "k1", "a" * 33, "z" * 64])
def test_blobs_under_key_ids_of_any_length_round_trip(key_id: str) -> None:
    keys = ring((key_id, KEY_A))
    blob = keys.seal("ghp_secret-token", AAD)
    assert blob[:2] == bytes([1, len(key_id)]) and blob[2 : 2 + len(key_id)] == key_id.encode()
    assert blob_key_id(blob) == key_id
    assert keys.open_secret(blob, AAD).reveal() == "ghp_secret-token"
    for other in (bytearray(blob), memoryview(blob)):
        assert keys.open(other, AAD) == "ghp_secret-token"  # type: ignore[arg-type]
    assert keys.open(blob, AAD.encode()) == "ghp_secret-token"
    with pytest.raises(SecretUnreadableError):
        keys.open(blob[:-1], AAD)


# -- key ring checks ----------------------------------------------------------------------
def test_keys_must_be_32_bytes() -> None:
    for size in (0, 16, 31, 33, 64):
        with pytest.raises(ConfigurationError, match="exactly 32 bytes"):
            KeyRing({"k1": b"k" * size}, "k1")


def test_key_ids_must_be_unique_and_valid() -> None:
    with pytest.raises(ConfigurationError, match="have the same id 'k1'"):
        KeyRing([("k1", KEY_A), ("k1", KEY_B)], "k1")
    for bad in ("", "-x", "a b", "ä", "x" * 65, "a/b"):
        with pytest.raises(ConfigurationError, match="invalid key id"):
            KeyRing({bad: KEY_A}, bad)


def test_primary_must_exist() -> None:
    with pytest.raises(ConfigurationError, match="primary key 'k9'"):
        KeyRing({"k1": KEY_A}, "k9")


def test_empty_ring_is_a_missing_key() -> None:
    with pytest.raises(MissingKeyError):
        KeyRing({}, "k1")


def test_add_key_makes_a_new_primary_and_refuses_reused_ids() -> None:
    keys = ring(("k1", KEY_A))
    new = keys.add_key()
    assert keys.primary_id == new and set(keys.key_ids) == {"k1", new}
    with pytest.raises(ConfigurationError, match="already used"):
        keys.add_key("k1")
    keys.set_primary("k1")
    keys.retire(new)
    with pytest.raises(ConfigurationError, match="already used"):
        keys.add_key(new)


def test_a_key_ring_knows_which_ids_it_holds() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    assert "k1" in keys and "k2" in keys
    assert "k9" not in keys and None not in keys
    keys.retire("k2")
    assert "k2" not in keys


def test_add_key_checks_the_id_and_the_key() -> None:
    keys = ring(("k1", KEY_A))
    for bad in ("", "-x", "a b", "x" * 65):
        with pytest.raises(ConfigurationError, match="invalid key id"):
            keys.add_key(bad, KEY_B)
    for size in (16, 31, 33):
        with pytest.raises(ConfigurationError, match="exactly 32 bytes"):
            keys.add_key("k2", b"k" * size)
    assert keys.key_ids == ("k1",) and keys.unsaved_ids == frozenset()


def test_add_key_keeps_its_own_copy_of_the_key() -> None:
    keys = ring(("k1", KEY_A))
    given = bytearray(KEY_B)
    keys.add_key("k2", given)  # type: ignore[arg-type]
    blob = keys.seal("s", AAD)
    given[:] = bytes(32)
    assert keys.check_value("k2").hex() == KEY_B_CHECK_VALUE
    assert keys.open(blob, AAD) == "s"


def test_added_keys_are_unsaved_until_retired_or_saved() -> None:
    keys = ring(("k1", KEY_A))
    keys.add_key("k2", KEY_B, primary=False)
    keys.add_key("k3")
    assert keys.unsaved_ids == {"k2", "k3"} and keys.primary_id == "k3"
    keys.retire("k2")
    assert keys.unsaved_ids == {"k3"}
    keys.mark_saved()
    assert keys.unsaved_ids == frozenset()


def test_set_primary_and_retire_need_a_known_valid_id() -> None:
    keys = ring(("k1", KEY_A), ("k2", KEY_B))
    with pytest.raises(SecretUnreadableError, match="'k9' is not in the key ring"):
        keys.set_primary("k9")
    assert keys.primary_id == "k1"
    with pytest.raises(ConfigurationError, match="invalid key id"):
        keys.retire("not valid")
    assert keys.retired_ids == frozenset()


def test_seal_takes_a_str_or_secret_and_associated_data() -> None:
    keys = ring(("k1", KEY_A))
    with pytest.raises(TypeError, match="takes a str or Secret, not bytes"):
        keys.seal(b"secret", AAD)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs an AssociatedData"):
        keys.seal("secret", AAD.encode())  # type: ignore[arg-type]


def test_secrets_are_sealed_up_to_the_length_limit() -> None:
    keys = ring(("k1", KEY_A))
    longest = "x" * MAX_SECRET_LENGTH
    assert keys.open(keys.seal(longest, AAD), AAD) == longest
    with pytest.raises(InvalidInputError, match=f"at most {MAX_SECRET_LENGTH} characters"):
        keys.seal(longest + "x", AAD)


def test_keyring_repr_and_pickle_show_no_key_material() -> None:
    keys = ring(("k1", KEY_A))
    text = repr(keys) + str(keys)
    assert "k1" in text
    for form in key_encodings(KEY_A):
        assert form.decode("latin-1") not in text
    with pytest.raises(TypeError):
        pickle.dumps(keys)
    with pytest.raises(TypeError):
        pickle.dumps(KeyMaterial({"k1": KEY_A}, "k1"))
    assert "keys=" not in repr(KeyMaterial({"k1": KEY_A}, "k1"))


def test_pickling_a_secret_raises() -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(Secret("ghp_secret-token"), protocol=protocol)


# -- key files ----------------------------------------------------------------------------
def test_generate_key_file_is_0600_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    generated = KeyRing.generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = KeyRing.from_key_file(path)
    assert loaded.key_ids == generated.key_ids
    assert loaded.check_value(loaded.primary_id) == generated.check_value(generated.primary_id)
    document = json.loads(path.read_text())
    assert document["format"] == "tokenproviders-keys" and document["version"] == 1
    assert document["primary"] == generated.primary_id
    assert len(base64.b64decode(document["keys"][0]["key"])) == 32


def test_generate_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("precious")
    with pytest.raises(ConfigurationError, match="already exists"):
        KeyRing.generate_key_file(path)
    assert path.read_text() == "precious"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666])
def test_group_or_other_readable_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        KeyRing.from_key_file(path)
    assert f"{mode:04o}" in caught.value.message


def test_write_key_file_replace_is_atomic_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = KeyRing.generate_key_file(path, key_id="k1")
    keys.add_key("k2")
    keys.write_key_file(path, replace=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyRing.from_key_file(path).key_ids == ("k2", "k1")
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_malformed_key_files_are_refused_without_echoing_them(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    for content in ('{"keys": [{"id": "k1", "key": "c2VjcmV0LWtleS1tYXRlcmlhbA"', '{"keys": []}', "[]"):
        path.write_text(content)
        os.chmod(path, 0o600)
        with pytest.raises(ConfigurationError) as caught:
            KeyRing.from_key_file(path)
        assert "c2VjcmV0" not in str(caught.value)


def test_retired_ids_in_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    keys = KeyRing({"k2": KEY_B}, "k2", retired=["k1"])
    keys.write_key_file(path)
    loaded = KeyRing.from_key_file(path)
    assert loaded.retired_ids == {"k1"}
    with pytest.raises(SecretUnreadableError, match="retired"):
        loaded.open(ring(("k1", KEY_A)).seal("s", AAD), AAD)


def test_missing_key_file_is_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(MissingKeyError, match="generate"):
        KeyRing.from_key_file(tmp_path / "nope.json")


def test_command_line_generation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    assert main(["generate", str(path)]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert main(["generate", str(path)]) == 1
    assert main([]) == 2
    key = json.loads(path.read_text())["keys"][0]["key"]
    output = capsys.readouterr()
    assert key not in output.out + output.err


# -- environment and key-provider hook ----------------------------------------------------
def test_from_env_short_form_first_is_primary() -> None:
    env = {KEYS_ENV: f"new:{base64.b64encode(KEY_B).decode()}, old:{base64.b64encode(KEY_A).decode()}"}
    keys = KeyRing.from_env(env=env)
    assert keys.primary_id == "new" and set(keys.key_ids) == {"new", "old"}
    assert keys.open(ring(("old", KEY_A)).seal("s", AAD), AAD) == "s"


def test_from_env_json_form(tmp_path: Path) -> None:
    document = ring(("k1", KEY_A)).to_document()
    keys = KeyRing.from_env(env={KEYS_ENV: json.dumps(document)})
    assert keys.key_ids == ("k1",)


@pytest.mark.parametrize("value", ["k1", "k1:not base64!", "k1:" + base64.b64encode(b"short").decode()])
def test_bad_env_values_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing.from_env(env={KEYS_ENV: value})


def test_load_with_nothing_says_how_to_create_a_key() -> None:
    with pytest.raises(MissingKeyError) as caught:
        KeyRing.load(env={})
    hint = caught.value.hint
    assert "python -m tokenproviders.crypto generate" in hint
    assert KEY_FILE_ENV in hint and KEYS_ENV in hint


class KeyProvider:
    def __init__(self, material: KeyMaterial | None) -> None:
        self.material = material

    @hookimpl
    def tokenproviders_keys(self) -> KeyMaterial | None:
        return self.material


def test_load_order_explicit_file_then_hook_then_env_then_env_file_then_default(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate_key_file(path, key_id="from-file")
    env_file = tmp_path / "env-keys.json"
    KeyRing.generate_key_file(env_file, key_id="from-env-file")
    default = tmp_path / "default-keys.json"
    KeyRing.generate_key_file(default, key_id="from-default")
    keys_env = {KEYS_ENV: f"from-env:{base64.b64encode(KEY_A).decode()}"}
    env = {**keys_env, KEY_FILE_ENV: str(env_file)}
    with_hook = Plugins(load_entry_points=False, extra=[KeyProvider(KeyMaterial({"from-hook": KEY_B}, "from-hook"))])
    deferring = Plugins(load_entry_points=False, extra=[KeyProvider(None)])

    def load(**kwargs: Any) -> str:
        return KeyRing.load(default_key_file=default, **kwargs).primary_id

    # An explicit key file wins over everything implicit (it used to lose to the hook and the variable).
    assert load(key_file=path, plugins=with_hook, env=env) == "from-file"
    assert load(key_file=path, env=keys_env) == "from-file"
    assert load(plugins=with_hook, env=env) == "from-hook"
    assert load(plugins=deferring, env=env) == "from-env"
    assert load(plugins=deferring, env={KEY_FILE_ENV: str(env_file)}) == "from-env-file"
    assert load(env={}) == "from-default"
    assert KeyRing.load(env={KEY_FILE_ENV: str(path)}).primary_id == "from-file"
    with pytest.raises(MissingKeyError):
        KeyRing.load(env={})
    # A configured but broken source is an error, not skipped in favour of the next one.
    with pytest.raises(ConfigurationError):
        load(env={KEYS_ENV: "k1:not base64!", KEY_FILE_ENV: str(env_file)})
    with pytest.raises(MissingKeyError, match="does not exist"):
        load(key_file=tmp_path / "missing.json", env=keys_env)


def test_hook_material_is_checked() -> None:
    bad = Plugins(load_entry_points=False, extra=[KeyProvider(KeyMaterial({"k1": b"short"}, "k1"))])
    with pytest.raises(ConfigurationError, match="32 bytes"):
        KeyRing.load(plugins=bad, env={})


# -- key-check values catch a different key under a reused id -----------------------------
def test_database_refuses_a_different_key_under_a_recorded_id(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    SQLiteDatabase(path, ring(("k1", KEY_A))).close()
    with pytest.raises(KeyMismatchError) as caught:
        SQLiteDatabase(path, ring(("k1", KEY_B)))
    assert "'k1'" in caught.value.message
    for form in key_encodings(KEY_A) + key_encodings(KEY_B):
        assert form.decode("latin-1") not in str(caught.value)
    with SQLiteDatabase(path, ring(("k1", KEY_A))) as db:
        assert db.check_keys() == {"k1": "ok"}


def test_database_requires_a_key_ring(tmp_path: Path) -> None:
    with pytest.raises(MissingKeyError):
        SQLiteDatabase(tmp_path / "tokens.db", None)  # type: ignore[arg-type]
    assert not (tmp_path / "tokens.db").exists()


def test_a_symlinked_key_file_is_followed_and_its_target_checked(tmp_path: Path) -> None:
    target = tmp_path / "keys.json"
    KeyRing.generate_key_file(target, key_id="linked")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert KeyRing.from_key_file(link).primary_id == "linked"
    os.chmod(target, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        KeyRing.from_key_file(link)
