"""The resolve path's shortcuts give exactly what the plain code gives.

``resolve()`` skips work in the common case: frozen dataclasses are built without their
per-field ``object.__setattr__``, printable ASCII credentials and ids skip the full checks, and
a personal token's associated data is encoded with its scope and URL remembered. Each shortcut
is checked here against the plain code it stands in for, across generated inputs, so a field
added to a class or a rule added to a check cannot silently diverge.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenproviders import ALL_TENANTS, Credentials, Field, PersonalToken, Policies, Policy, Resolution, Secret, Tracker
from tokenproviders._printable import LONE_SURROGATE
from tokenproviders.crypto import AssociatedData, KeyRing, encode_token_aad
from tokenproviders.errors import ConfigurationError, InvalidCredentialsError, InvalidInputError
from tokenproviders.model import (
    _check_id,
    _make_personal_token,
    _make_resolution,
    _trusted_credentials,
    _trusted_secret,
)
from tokenproviders.testing.memory_tracker import MemoryTrackerType

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)
TRACKER = Tracker(tenant="acme", id="main", type="memory", base_url="https://tracker.example.com/acme")

# Text that reaches the slow paths too: control characters, Latin-1, other scripts, surrogates.
texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="ascii"),
        st.sampled_from("\x00\t\n\r\x1f\x7f\x85\xa0é\u2028\u3000€😀 "),
        st.characters(),
    ),
    max_size=30,
)


def _field_values(cls: type) -> dict[str, Any]:
    return {f.name: f"value of {f.name}" for f in dataclasses.fields(cls)}


# -- dataclasses built without __init__ ------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "make"),
    [(PersonalToken, _make_personal_token), (Resolution, _make_resolution)],
)
def test_fast_constructors_take_every_field_in_order(cls: type, make: Any) -> None:
    values = _field_values(cls)
    fast = make(*values.values())
    assert type(fast) is cls
    assert fast == cls(*values.values())
    assert vars(fast) == values
    assert not hasattr(cls, "__post_init__"), f"{cls.__name__} gained a __post_init__ the fast path skips"


def test_fast_objects_stay_frozen() -> None:
    token = _make_personal_token(*_field_values(PersonalToken).values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.owner = "mallory"  # type: ignore[misc]


def test_trusted_credentials_and_secret_equal_the_checked_ones() -> None:
    secret = _trusted_secret("tok")
    assert type(secret) is Secret and secret == Secret("tok") and repr(secret) == repr(Secret("tok"))
    with pytest.raises(AttributeError):
        secret._value = "other"
    for username in (None, "alice"):
        credentials = _trusted_credentials(secret, username)
        assert credentials == Credentials(Secret("tok"), username)
        assert vars(credentials) == vars(Credentials(Secret("tok"), username))
    assert [f.name for f in dataclasses.fields(Credentials)] == ["api_password", "api_username"]


# -- ids -------------------------------------------------------------------------------------
def _full_check_id(value: object) -> str | type[Exception]:
    """_check_id without its shortcut: the checks after it, as they stand."""
    if not isinstance(value, str):
        return InvalidInputError
    if not value or value.strip() != value or len(value) > 200:
        return InvalidInputError
    if any(ch < "\x20" or ch == "\x7f" for ch in value):
        return InvalidInputError
    if any("\ud800" <= ch <= "\udfff" for ch in value):  # lone surrogates: not UTF-8 text
        return InvalidInputError
    return value


@given(texts)
def test_id_check_shortcut_agrees_with_the_full_check(value: str) -> None:
    try:
        outcome: str | type[Exception] = _check_id("user", value)
    except InvalidInputError:
        outcome = InvalidInputError
    assert outcome == _full_check_id(value)


def test_long_and_non_str_ids_are_still_refused() -> None:
    for bad in ("x" * 201, "", " a", 5, b"alice"):
        with pytest.raises(InvalidInputError):
            _check_id("user", bad)


# -- credentials -----------------------------------------------------------------------------
class _UserAndToken(MemoryTrackerType):
    """Both fields required (the memory type's user name is optional)."""

    name = "memory-basic"
    fields = (Field("api_username", "User name"), Field("api_password", "API token", secret=True))


class _TokenOnly(MemoryTrackerType):
    name = "memory-token"
    fields = (Field("api_password", "API token", secret=True, required=False),)


def _outcome(tracker_type: MemoryTrackerType, credentials: Credentials, *, shortcut: bool) -> str | None:
    if not shortcut:
        tracker_type._fits_plainly = lambda credentials: False  # type: ignore[method-assign]
    try:
        tracker_type.validate_credentials(credentials)
    except InvalidCredentialsError as exc:
        return exc.message
    finally:
        tracker_type.__dict__.pop("_fits_plainly", None)
    return None


@given(username=st.one_of(st.none(), texts), password=texts)
def test_credential_check_shortcut_agrees_with_the_full_check(username: str | None, password: str) -> None:
    try:
        credentials = Credentials(Secret(password), username)
    except InvalidInputError:
        # A user name that is not UTF-8 text is refused before any field check runs.
        assert username is not None and LONE_SURROGATE.search(username)
        return
    for tracker_type in (MemoryTrackerType(), _UserAndToken(), _TokenOnly()):
        fast = _outcome(tracker_type, credentials, shortcut=True)
        assert fast == _outcome(tracker_type, credentials, shortcut=False)
        if tracker_type._fits_plainly(credentials):
            assert fast is None


def test_credential_check_follows_a_changed_field_declaration() -> None:
    tracker_type = MemoryTrackerType()
    with_name = Credentials(Secret("tok"), "alice")
    tracker_type.validate_credentials(with_name)
    tracker_type.fields = tuple(f for f in tracker_type.fields if f.name == "api_password")  # type: ignore[misc]
    with pytest.raises(InvalidCredentialsError, match="does not take api_username"):
        tracker_type.validate_credentials(with_name)


# -- associated data -------------------------------------------------------------------------
@given(owner=texts, scope=texts, url=texts, field=st.sampled_from(["api_password", "api_username"]))
def test_token_aad_encoding_is_the_canonical_one(owner: str, scope: str, url: str, field: str) -> None:
    expected = AssociatedData.for_token(owner=owner, scope=scope, url=url, field=field).encode()
    assert encode_token_aad(owner, scope, url, field) == expected
    assert encode_token_aad(owner, scope, url, field) == expected  # the remembered tail too


def test_token_aad_keeps_the_part_length_limit() -> None:
    with pytest.raises(ConfigurationError, match="65535"):
        encode_token_aad("o" * 70_000, "acme", "https://x.example", "api_password")
    with pytest.raises(ConfigurationError, match="65535"):
        encode_token_aad("alice", "acme", "https://x.example/" + "p" * 70_000, "api_password")


def test_open_secret_takes_the_encoded_aad_and_refuses_other_types() -> None:
    ring = KeyRing.generate("k1")
    aad = AssociatedData.for_token(owner="alice", scope=ALL_TENANTS, url="https://x.example", field="api_password")
    blob = ring.seal("tok", aad)
    assert ring.open_secret(blob, aad).reveal() == "tok"
    assert ring.open_secret(blob, aad.encode()).reveal() == "tok"
    with pytest.raises(TypeError, match="AssociatedData"):
        ring.open_secret(blob, "alice")  # type: ignore[arg-type]


# -- policies --------------------------------------------------------------------------------
def test_policy_lookup_order_is_unchanged() -> None:
    strict, lenient = Policy(require_personal=True), Policy(fallback_on_unusable=True)
    other = Tracker(tenant="globex", id="main", type="memory", base_url="https://tracker.example.com/globex")
    assert Policies().for_tracker(TRACKER) == Policy()
    assert Policies(tenants={"acme": strict}).for_tracker(TRACKER) is strict
    assert Policies(tenants={"acme": strict}).for_tracker(other) == Policy()
    both = Policies(tenants={"acme": strict}, trackers={("acme", "main"): lenient})
    assert both.for_tracker(TRACKER) is lenient
    assert Policies(trackers={("acme", "other"): lenient}).for_tracker(TRACKER) == Policy()


# -- a whole resolution ----------------------------------------------------------------------
def test_a_personal_resolution_is_what_the_plain_constructors_build() -> None:
    from tokenproviders import MemoryDirectory, MemoryTokenStore, Plugins, Resolver
    from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin

    resolver = Resolver(
        MemoryDirectory(memberships=[("alice", "acme")], trackers=[TRACKER]),
        MemoryTokenStore(keyring=KeyRing.generate("k1")),
        plugins=Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(MemoryTrackerType())]),
        clock=lambda: NOW,
    )
    info = resolver.tokens.set(
        owner="alice",
        url=TRACKER.url,
        scope="acme",
        credentials=Credentials(Secret("tok")),
        label="laptop",
        expires_at=NOW + timedelta(days=1),
    )
    resolution = resolver.resolve("alice", TRACKER)
    assert resolution == Resolution(
        user="alice",
        tracker=TRACKER,
        credentials=Credentials(Secret("tok")),
        source="personal",
        reason=(
            f"Using alice's personal token #{info.id} 'laptop' for {TRACKER.url} (tenant 'acme'), matched on"
            f" the tracker's own URL {TRACKER.url} and scoped for tenant 'acme', so 'main' (acme/main)"
            " records alice as the author."
        ),
        scope="acme",
        token_id=info.id,
        token_version=info.version,
        matched_url=TRACKER.url,
        expires_at=NOW + timedelta(days=1),
    )


def test_credential_check_works_on_a_frozen_dataclass_tracker_type() -> None:
    @dataclasses.dataclass(frozen=True)
    class Configured(MemoryTrackerType):
        name = "memory-frozen"
        region: str = "eu"

    tracker_type = Configured()
    tracker_type.validate_credentials(Credentials(Secret("tok")))
    with pytest.raises(InvalidCredentialsError, match="control character"):
        tracker_type.validate_credentials(Credentials(Secret("tok\n")))


def test_an_api_url_rule_of_the_type_is_asked_even_without_api_url() -> None:
    from tokenproviders import ConfigurationError as Refused
    from tokenproviders import MemoryDirectory, MemoryTokenStore, Plugins, Resolver
    from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin

    class Distrustful(MemoryTrackerType):
        def api_url_trusted(self, tracker: Tracker) -> bool:
            return False

    per_instance = MemoryTrackerType()
    per_instance.api_url_trusted = lambda tracker: False  # type: ignore[method-assign]
    for tracker_type in (Distrustful(), per_instance):
        resolver = Resolver(
            MemoryDirectory(memberships=[("alice", "acme")], trackers=[TRACKER]),
            MemoryTokenStore(keyring=KeyRing.generate("k1")),
            plugins=Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(tracker_type)]),
            clock=lambda: NOW,
        )
        resolver.tokens.set(owner="alice", url=TRACKER.url, scope="acme", credentials=Credentials(Secret("tok")))
        with pytest.raises(Refused, match="personal tokens are not sent there"):
            resolver.resolve("alice", TRACKER)
