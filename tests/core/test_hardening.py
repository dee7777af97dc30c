"""Defences found by review: where a token may be sent, what a credential may contain, and
inputs that used to be accepted silently."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tokenproviders import (
    ALL_TENANTS,
    ConfigurationError,
    Credentials,
    InvalidCredentialsError,
    InvalidURLError,
    MemoryTokenStore,
    NotAuthorizedError,
    PluginError,
    Policies,
    Policy,
    Resolver,
    Secret,
    Tracker,
)
from tokenproviders.stores.rows import TokenRow
from tokenproviders.testing import printed_with_locals
from tokenproviders.urls import normalize_url

from .core_world import SERVICE, World, creds


def _evil_twin(world: World, api_url: str) -> Tracker:
    """A tracker in alice's other tenant on the same service, whose API points elsewhere."""
    tracker = Tracker(
        tenant="beta", id="twin", type="memory", base_url=f"{SERVICE}/beta/twin", api_url=api_url,
        bot_credentials=creds("beta-bot-secret"),
    )
    world.directory.add_tracker(tracker)
    return tracker


def test_a_personal_token_is_never_sent_to_an_api_url_on_another_host(world: World, resolver: Resolver) -> None:
    # alice's service-wide token must not be collectable by a tenant admin who points api_url
    # at a server of theirs.
    resolver.tokens.set("alice", SERVICE, creds("alice-service-token"), scope=ALL_TENANTS)
    twin = _evil_twin(world, "https://collector.evil.test/api")
    with pytest.raises(ConfigurationError, match="another host") as excinfo:
        resolver.resolve("alice", twin)
    assert "alice-service-token" not in str(excinfo.value)
    assert world.backend.calls == []
    # The bot, configured by that tenant itself, still works for users without a token.
    assert resolver.resolve("mallory", twin).source == "bot"


def test_an_api_url_on_the_same_origin_is_trusted(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", SERVICE, creds("alice-service-token"), scope=ALL_TENANTS)
    twin = _evil_twin(world, f"{SERVICE}/api/v4")
    assert resolver.resolve("alice", twin).source == "personal"


@pytest.mark.parametrize(
    "password",
    ["token\n", "tok\r\nX-Evil: 1", "tab\there", "nul\x00", "euro\u20ac", "emoji\U0001f600"],
)
def test_credentials_that_cannot_travel_in_a_header_are_refused(
    world: World, resolver: Resolver, password: str
) -> None:
    error = _refusal(resolver, world.acme_repo.url, creds(password))
    assert isinstance(error, InvalidCredentialsError), repr(error)
    _assert_in_no_form(password, error)
    assert resolver.tokens.list("alice") == []


def _refusal(resolver: Resolver, url: str, credentials: Credentials) -> BaseException:
    """The error of storing ``credentials``, caught here so that its traceback starts in a
    frame that holds only the (masked) Secret."""
    try:
        resolver.tokens.set("alice", url, credentials, scope="acme")
    except Exception as exc:
        return exc
    raise AssertionError("the credentials were stored")


def _forms(secret: str) -> set[str]:
    """The ways a message could spell ``secret``: as given, quoted with repr() or ascii(),
    escaped, as its UTF-8 bytes shown as text, percent-, base64- or hex-encoded."""
    raw = secret.encode("utf-8", "surrogatepass")
    return {
        secret,
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        repr(raw)[2:-1],
        raw.decode("latin-1"),
        quote(secret, safe=""),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        raw.hex(),
    }


def _assert_in_no_form(secret: str, error: BaseException) -> None:
    texts = {
        "str()": str(error),
        "repr()": repr(error),
        "args": repr(error.args),
        "the hint": getattr(error, "hint", ""),
        "the traceback with locals": printed_with_locals(error),
    }
    for where, text in texts.items():
        for form in _forms(secret):
            assert form not in text, f"the password appears as {form!r} in {where} of {type(error).__name__}"


def test_the_refusal_check_sees_a_quoted_password() -> None:
    # The check above must catch a message that quotes the value with repr() or escapes it.
    for password in ["token\n", "tok\r\nX-Evil: 1", "nul\x00", "euro\u20ac", "emoji\U0001f600"]:
        for leaked in (repr(password), ascii(password), password.encode("unicode_escape").decode("ascii")):
            with pytest.raises(AssertionError, match="the password appears"):
                _assert_in_no_form(password, InvalidCredentialsError(f"bad value {leaked}", hint="h"))


def test_a_user_name_with_surrounding_spaces_is_refused(world: World, resolver: Resolver) -> None:
    with pytest.raises(InvalidCredentialsError, match="api_username"):
        resolver.tokens.set("alice", world.acme_repo.url, creds("t", " alice"), scope="acme")


def test_latin1_passwords_and_inner_spaces_are_accepted(world: World, resolver: Resolver) -> None:
    resolver.tokens.set("alice", world.acme_repo.url, creds("p\u00e4ss word"), scope="acme")
    assert resolver.resolve("alice", world.acme_repo).source == "personal"


def test_a_directory_returning_a_str_does_not_authorize_substrings(world: World) -> None:
    class SloppyDirectory:
        def tenants_of(self, user: str) -> str:
            return "acme-prod"

        def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
            return world.directory.trackers_of(tenant)

    resolver = Resolver(SloppyDirectory(), plugins=world.plugins, clock=world.clock)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="not a collection"):
        resolver.resolve("bob", world.acme_repo)


def test_revoking_a_membership_drops_the_users_cached_clients(world: World, resolver: Resolver) -> None:
    resolver.client("bob", world.acme_repo)
    assert len(resolver.clients) == 1
    world.directory.remove_member("bob", "acme")
    with pytest.raises(NotAuthorizedError):
        resolver.client("bob", world.acme_repo)
    assert len(resolver.clients) == 0


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("https://git.example.com./acme/repo", "https://git.example.com/acme/repo"),
        ("https://git.example.com/acme/x/../repo", "https://git.example.com/acme/repo"),
        ("https://git.example.com/acme/./repo/", "https://git.example.com/acme/repo"),
        ("https://git.example.com/%61cme/repo", "https://git.example.com/acme/repo"),
        ("https://git.example.com/grp%2fsub", "https://git.example.com/grp%2Fsub"),
    ],
)
def test_one_spelling_per_url(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize("url", ["https://*.example.com/", "https://-bad.example.com/", "https://a..b/"])
def test_hosts_that_are_not_names_are_refused(url: str) -> None:
    with pytest.raises(InvalidURLError, match="not a valid name"):
        normalize_url(url)


def test_refused_urls_never_echo_their_query() -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        normalize_url("https://redmine.example.com:8o8o/issues.json?key=REDMINE-API-KEY")
    assert "REDMINE-API-KEY" not in str(excinfo.value)


def test_policy_flags_must_be_booleans() -> None:
    with pytest.raises(ConfigurationError, match="True or False"):
        Policy(require_personal="no")  # type: ignore[arg-type]


def test_tracker_policy_keys_must_be_tenant_and_id_pairs() -> None:
    with pytest.raises(ConfigurationError, match="tuples"):
        Policies(trackers={"acme/repo": Policy(require_personal=True)})  # type: ignore[dict-item]


def test_trackers_are_hashable_and_equal_ones_hash_alike(world: World) -> None:
    copy = dataclasses.replace(world.acme_repo)
    assert copy == world.acme_repo and hash(copy) == hash(world.acme_repo)
    assert len({world.acme_repo, copy, world.beta_repo}) == 2


@pytest.mark.parametrize("name", ["personal", "bot"])
def test_built_in_sources_cannot_be_unregistered(world: World, name: str) -> None:
    with pytest.raises(PluginError, match="cannot be unregistered"):
        world.plugins.unregister(name)


def _row_values(value: object) -> Iterator[bytes]:
    """Every str, bytes and Secret held in a memory store's rows, as bytes (Secrets revealed)."""
    if isinstance(value, Secret):
        yield value.reveal().encode("utf-8")
    elif isinstance(value, str):
        yield value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _row_values(getattr(value, item.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _row_values(key)
            yield from _row_values(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _row_values(item)


def _stored_in_the_clear(store: MemoryTokenStore, plaintext: str) -> bool:
    rows = vars(store.backend)["_rows"]
    assert len(rows) == 1
    return any(plaintext.encode("utf-8") in value for value in _row_values(rows))


def test_the_default_store_seals_tokens_in_memory(world: World) -> None:
    resolver = Resolver(world.directory, plugins=world.plugins, clock=world.clock)
    resolver.tokens.set("alice", world.acme_repo.url, creds("alice-default-secret"), scope="acme")
    store = resolver.store
    assert isinstance(store, MemoryTokenStore)
    assert getattr(store, "keyring", None) is not None
    assert not _stored_in_the_clear(store, "alice-default-secret")
    assert resolver.resolve("alice", world.acme_repo).credentials == creds("alice-default-secret")


def test_the_row_check_finds_a_token_kept_unsealed(world: World) -> None:
    # A backend row holding the plaintext where the blob belongs: the check above must see it.
    store = MemoryTokenStore()
    now = world.clock()
    row = TokenRow(0, "alice", world.acme_repo.url, "acme", "", None, now, now, 1, "k", None, b"alice-unsealed-secret")
    store.backend.put(row, expected_version=None)
    assert _stored_in_the_clear(store, "alice-unsealed-secret")
