"""Values a host passes in are bounded and are text: clear InvalidInputErrors, never a crash later.

Ids with lone surrogates (what undecodable bytes become in Python) cannot be stored or sent, so
they are refused where they come in, with a message that can itself be printed; ``api_username``
is bounded like every other field, so a 10 MB user name is not stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from tokenproviders import ALL_TENANTS, Credentials, Secret, Tracker
from tokenproviders.errors import InvalidInputError
from tokenproviders.model import MAX_USERNAME_LENGTH, check_scope, check_tenant_id, check_user_id

from .core_world import SERVICE, World

SURROGATES = ["a\udcffb", "\ud800", "alice\udfff", "\udc80"]


@pytest.mark.parametrize("value", SURROGATES)
@pytest.mark.parametrize("check", [check_user_id, check_tenant_id, check_scope])
def test_an_id_with_a_lone_surrogate_is_refused(check: Any, value: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check(value)
    # The message can be printed and encoded (it does not carry the surrogate itself).
    str(info.value).encode("utf-8")
    assert "UTF-8" in info.value.message


@pytest.mark.parametrize("field", ["tenant", "id"])
def test_a_tracker_id_with_a_lone_surrogate_is_refused(field: str) -> None:
    values = {"tenant": "acme", "id": "bugs", field: "a\udcffb"}
    with pytest.raises(InvalidInputError):
        Tracker(type="memory", base_url="https://bugs.example.com", **values)


def test_the_api_refuses_an_owner_with_a_lone_surrogate(world: World) -> None:
    resolver = world.resolver()
    secret = Credentials(api_password=Secret("alice-secret"))
    with pytest.raises(InvalidInputError):
        resolver.tokens.set("al\udcffice", world.acme_repo.base_url, secret, scope="acme")
    with pytest.raises(InvalidInputError):
        resolver.resolve("al\udcffice", world.acme_repo)
    with pytest.raises(InvalidInputError):
        world.directory.add_member("al\udcffice", "acme")
    assert world.store.list() == []


def test_printable_ids_outside_the_basic_plane_are_ids() -> None:
    assert check_user_id("ali😀ce") == "ali😀ce"
    assert check_scope(ALL_TENANTS) == ALL_TENANTS


def test_api_username_is_bounded(world: World) -> None:
    at_the_limit = "u" * MAX_USERNAME_LENGTH
    assert Credentials(api_password=Secret("s"), api_username=at_the_limit).api_username == at_the_limit
    for too_long in ("u" * (MAX_USERNAME_LENGTH + 1), "u" * 10_000_000):
        with pytest.raises(InvalidInputError) as info:
            Credentials(api_password=Secret("s"), api_username=too_long)
        assert str(MAX_USERNAME_LENGTH) in info.value.message and len(str(info.value)) < 300


def test_a_10_mb_user_name_is_not_stored(world: World) -> None:
    resolver = world.resolver()
    with pytest.raises(InvalidInputError):
        resolver.tokens.set(
            "alice",
            SERVICE,
            Credentials(api_password=Secret("alice-secret"), api_username="u" * 10_000_000),
            scope=ALL_TENANTS,
        )
    assert world.store.list() == []


def test_api_username_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        Credentials(api_password=Secret("s"), api_username="al\udcffice")
    str(info.value).encode("utf-8")


def test_a_token_label_with_a_lone_surrogate_is_refused(world: World) -> None:
    resolver = world.resolver()
    with pytest.raises(InvalidInputError) as info:
        resolver.tokens.set("alice", SERVICE, Credentials(api_password=Secret("alice-secret")),
                            scope=ALL_TENANTS, label="work\udcff")
    str(info.value).encode("utf-8")
    assert world.store.list() == []


def test_an_expiry_beyond_what_utc_can_hold_is_refused(world: World, tmp_path: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    with SQLiteDatabase(tmp_path / "t.db", KeyRing.generate("k1")) as db:
        resolver = world.resolver()
        resolver.store = db.tokens
        with pytest.raises(InvalidInputError, match="expires_at") as info:
            resolver.tokens.set("alice", SERVICE, Credentials(api_password=Secret("alice-secret")),
                                scope=ALL_TENANTS, expires_at=far)
        assert "9999" in info.value.message
        assert db.tokens.list() == []
