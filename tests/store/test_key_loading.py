"""Loading key rings: no key material in messages or in tracebacks rendered with their locals,
whatever is malformed; and which source wins when several are configured."""

from __future__ import annotations

import base64
import json
import os
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tokenproviders import Plugins, hookimpl
from tokenproviders.crypto import KEYS_ENV, KeyMaterial, KeyRing
from tokenproviders.errors import ConfigurationError, TokenProvidersError

K1 = os.urandom(32)
K2 = os.urandom(32)
SHORT = os.urandom(16)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def forms(key: bytes) -> list[str]:
    """Every spelling of a key a renderer could print."""
    return [
        b64(key),
        b64(key).rstrip("="),
        base64.urlsafe_b64encode(key).decode().rstrip("="),
        key.hex(),
        repr(key)[2:-1],
    ]


SECRETS = [form for key in (K1, K2, SHORT) for form in forms(key)]


def rendered(error: BaseException) -> str:
    """The traceback with every frame's local variables, from the first frame that is not this
    test module's own (the test's locals hold the malformed input, of course)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    assert tb is not None, "the error was raised by the test itself"
    return "".join(traceback.TracebackException(type(error), error, tb, capture_locals=True).format())


def assert_keeps_keys_secret(call: Callable[[], object], *fragments: str) -> TokenProvidersError:
    with pytest.raises(TokenProvidersError) as caught:
        call()
    error = caught.value
    text = rendered(error)
    assert re.search(r"^ +\w+ = ", text, re.MULTILINE), "no locals were rendered: the check would be void"
    shown = text + str(error) + repr(error) + (error.hint or "")
    for secret in (*SECRETS, *fragments):
        assert secret not in shown, f"{secret!r} appears in:\n{shown}"
    return error


# Malformed short forms of TOKENPROVIDERS_KEYS, and what the message must say instead.
SHORT_FORMS = {
    "wrong length": (f"k1:{b64(K1)},k2:{b64(SHORT)}", "position 2", "exactly 32 bytes"),
    "bad base64": (f"k1:{b64(K1)},k2:{b64(K2)[:20]}!!{b64(K2)[20:]}", "position 2", "base64"),
    "swapped fields": (f"{b64(K1)}:k1", "position 1", "not valid"),
    "hex key as the id": (f"{K1.hex()}:{b64(K2)[:-1]}", "position 1", "base64"),
    "duplicate id": (f"k1:{b64(K1)},k1:{b64(K2)}", "positions 1 and 2", "same id"),
    "no separator": (b64(K1), "position 1", "id:base64key"),
}


def document(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"format": "tokenproviders-keys", "version": 1, "primary": "k1"}
    base.update(fields)
    return base


def keys(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"id": key_id, "key": key} for key_id, key in pairs]


JSON_FORMS = {
    "missing primary": (json.dumps(document(primary="nope", keys=keys(("k1", b64(K1))))), "primary key 'nope'"),
    "a key as the primary": (json.dumps(document(primary=b64(K2), keys=keys(("k1", b64(K1))))), "'primary'"),
    # A hex key is a valid key id: it passes the parser and is refused by the ring itself.
    "a hex key as the primary": (
        json.dumps(document(primary=K2.hex(), keys=keys(("k1", b64(K1))))),
        "primary key is not",
    ),
    "a hex key as a duplicated id": (
        json.dumps(document(primary=K2.hex(), keys=keys((K2.hex(), b64(K1)), (K2.hex(), b64(K1))))),
        "positions 1 and 2",
    ),
    "a hex key as a retired id": (
        json.dumps(document(keys=keys(("k1", b64(K1)), (K2.hex(), b64(K1))), retired=[K2.hex()])),
        "key at position 2 is listed as retired",
    ),
    "invalid JSON": (json.dumps(document(keys=keys(("k1", b64(K1)), ("k2", b64(K2)))))[:-30], "not valid JSON"),
    "deeply nested JSON": ('{"keys": ' + "[" * 100_000 + b64(K1), "not valid JSON"),
    "duplicate id": (json.dumps(document(keys=keys(("k1", b64(K1)), ("k1", b64(K2))))), "positions 1 and 2"),
    "wrong length": (json.dumps(document(keys=keys(("k1", b64(K1)), ("k2", b64(SHORT))))), "position 2"),
    "bad base64": (json.dumps(document(keys=keys(("k1", b64(K1)[:-2] + "!!")))), "base64"),
    "swapped fields": (json.dumps(document(keys=keys((b64(K1), "k1")))), "position 1"),
    "a key as an entry": (json.dumps(document(keys=[b64(K1)])), "position 1"),
    "a key as the version": (json.dumps(document(version=b64(K1), keys=keys(("k1", b64(K2))))), "version"),
    "a key in 'retired'": (json.dumps(document(keys=keys(("k1", b64(K1))), retired=[b64(K2)])), "'retired'"),
    "retired but present": (
        json.dumps(document(keys=keys(("k1", b64(K1)), ("k2", b64(K2))), retired=["k2"])),
        "listed as retired",
    ),
}


@pytest.mark.parametrize("case", SHORT_FORMS)
def test_malformed_short_form_variable_keeps_keys_secret(case: str) -> None:
    value, where, what = SHORT_FORMS[case]
    fragments = [part for item in value.split(",") for part in item.split(":") if len(part) > 8]
    for call in (
        lambda: KeyRing.from_env(env={KEYS_ENV: value}),
        lambda: KeyRing.load(env={KEYS_ENV: value}),
    ):
        error = assert_keeps_keys_secret(call, *fragments)
        assert isinstance(error, ConfigurationError)
        assert where in error.message and what in str(error)


@pytest.mark.parametrize("case", JSON_FORMS)
def test_malformed_json_variable_keeps_keys_secret(case: str) -> None:
    value, expected = JSON_FORMS[case]
    for call in (
        lambda: KeyRing.from_env(env={KEYS_ENV: value}),
        lambda: KeyRing.load(env={KEYS_ENV: value}),
    ):
        error = assert_keeps_keys_secret(call)
        assert expected in str(error)


@pytest.mark.parametrize("case", JSON_FORMS)
def test_malformed_key_file_keeps_keys_secret(case: str, tmp_path: Path) -> None:
    value, expected = JSON_FORMS[case]
    path = tmp_path / "keys.json"
    path.write_text(value)
    path.chmod(0o600)
    for call in (lambda: KeyRing.from_key_file(path), lambda: KeyRing.load(key_file=path, env={})):
        error = assert_keeps_keys_secret(call)
        assert expected in str(error)


class KeyProvider:
    def __init__(self, material: KeyMaterial) -> None:
        self.material = material

    @hookimpl
    def tokenproviders_keys(self) -> KeyMaterial:
        return self.material


@pytest.mark.parametrize(
    ("material", "expected"),
    [
        (KeyMaterial({"k1": K1, "k2": SHORT}, "k1"), "exactly 32 bytes"),
        (KeyMaterial({"k1": K1}, "k2"), "primary key 'k2'"),
        (KeyMaterial({"k1": K1}, b64(K2)), "primary key id"),
        (KeyMaterial({b64(K1): K2}, "k1"), "position 1"),
        (KeyMaterial({"k1": b64(K1).encode()}, "k1"), "got 44"),
        (KeyMaterial({"k1": b64(K1)}, "k1"), "not a str"),  # type: ignore[dict-item]
    ],
)
def test_malformed_key_provider_material_keeps_keys_secret(material: KeyMaterial, expected: str) -> None:
    plugins = Plugins(load_entry_points=False, extra=[KeyProvider(material)])
    error = assert_keeps_keys_secret(lambda: KeyRing.load(plugins=plugins, env={}))
    assert expected in str(error)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: KeyRing([("k1", K1), ("k1", K2)], "k1"), "same id 'k1'"),
        (lambda: KeyRing({"k1": K1}, b64(K2)), "primary key id"),
        (lambda: KeyRing({"k1": K1}, "k1", retired=[b64(K2)]), "retired key id"),
        (lambda: KeyRing({"k1": K1, "k2": K2}, "k1", retired=["k2"]), "'k2' is listed as retired"),
        (lambda: KeyRing([("k1", K1, b64(K2))], "k1"), "not an (id, key) pair"),  # type: ignore[list-item]
        (lambda: KeyRing(None, "k1"), "malformed"),  # type: ignore[arg-type]
        (lambda: KeyRing({"k1": SHORT}, "k1"), "exactly 32 bytes"),
        (lambda: KeyRing({"k1": K1}, "k1").add_key("k2", SHORT), "exactly 32 bytes"),
    ],
)
def test_malformed_constructor_arguments_keep_keys_secret(build: Callable[[], object], expected: str) -> None:
    error = assert_keeps_keys_secret(build)
    assert expected in str(error)


def test_refusing_to_overwrite_a_key_file_keeps_the_keys_secret(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("precious")
    ring = KeyRing([("k1", K1), ("k2", K2)], "k1")
    error = assert_keeps_keys_secret(lambda: ring.write_key_file(path))
    assert "already exists" in str(error)


def test_repr_is_safe_on_a_half_built_ring() -> None:
    half = KeyRing.__new__(KeyRing)
    assert repr(half) == "KeyRing(primary=None, key_ids=[], source=None)"
    ring = KeyRing([("k1", K1), ("k2", K2)], "k2", source="test")
    assert repr(ring) == "KeyRing(primary='k2', key_ids=['k2', 'k1'], source='test')"


def test_invalid_ids_are_never_echoed() -> None:
    for bad in (b64(K1), "a b", "x" * 65):
        with pytest.raises(ConfigurationError) as caught:
            KeyRing({"k1": K1}, "k1").add_key(bad)
        assert bad not in str(caught.value) and "invalid key id" in caught.value.message
