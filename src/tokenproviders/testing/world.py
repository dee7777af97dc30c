"""A small test world from a declarative description: tenants, members, trackers, tokens.

:func:`build_world` turns a plain dict into a :class:`MemoryDirectory`, a token store and a
:class:`Resolver` wired to them, registering every credential it mentions with the server that
must accept it (a fake tracker, or the in-memory tracker type), so that ``resolver.verify(...)``
answers with the right login::

    world = build_world({
        "tenants": {
            "acme": {
                "members": ["alice", "bob"],
                "trackers": [
                    {"id": "bugs", "type": "memory",
                     "bot": {"login": "acme-bot", "api_password": "bot-secret"}},
                    {"id": "gh", "type": "github", "base_url": "{fake}/acme/widgets",
                     "bot": {"login": "acme-bot", "api_password": "ghp_bot"}},
                ],
            },
            "beta": {"members": ["alice"]},
        },
        "tokens": [
            {"owner": "alice", "tracker": "acme/gh", "api_password": "ghp_alice"},
            {"owner": "alice", "tracker": "acme/bugs", "scope": "*", "api_password": "alice-secret"},
        ],
    }, fake_for=...)

The keys:

``tenants``
    tenant id → ``{"members": [user, ...], "trackers": [tracker, ...]}``.
tracker
    ``id`` and ``type`` (required); ``base_url`` (``{fake}`` is replaced by the URL of the fake
    server of the tracker's type, or of the type named by ``fake``; trackers of type ``memory``
    and of a type with a fake get a default), ``api_url``, ``name``, ``options``,
    ``verify_tls``, and ``bot``: credentials.
credentials
    ``api_password`` (required), ``api_username``, and ``login``: who the tracker says these
    credentials belong to (default: the token's owner; ``"bot"`` for bot credentials).
``tokens``
    personal tokens: ``owner`` and ``tracker`` (``"tenant/id"``) or ``url``; ``scope`` (a tenant
    id or ``"*"`` for all tenants; default: the tracker's tenant); ``service: true`` to store
    it for the tracker type's service URL; ``label``; and the credential keys above.

Unknown keys are refused, so a typo fails loudly instead of building a different world.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..directory import MemoryDirectory
from ..errors import InvalidInputError
from ..model import ALL_TENANTS, ClientSettings, Credentials, Secret, TokenInfo, Tracker
from ..plugins import Plugins
from ..policy import Policies
from ..resolver import Resolver, utc_now
from ..stores import MemoryTokenStore, TokenStore
from .memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

if TYPE_CHECKING:
    from .fakes import FakeTracker

__all__ = [
    "World",
    "build_world",
    "credentials_from",
    "register_on_fake",
    "DEFAULT_WORLD",
    "MEMORY_TYPE",
]

#: The name of the in-memory tracker type (:class:`MemoryTrackerType`).
MEMORY_TYPE = "memory"

#: The world the ``tp_world`` fixture builds unless a test overrides ``tp_world_spec``:
#: alice is in acme and beta, bob only in acme; each tenant has one in-memory tracker with
#: bot credentials.
DEFAULT_WORLD: Mapping[str, Any] = {
    "tenants": {
        "acme": {
            "members": ["alice", "bob"],
            "trackers": [
                {"id": "bugs", "type": "memory", "bot": {"login": "acme-bot", "api_password": "acme-bot-secret"}}
            ],
        },
        "beta": {
            "members": ["alice"],
            "trackers": [
                {"id": "bugs", "type": "memory", "bot": {"login": "beta-bot", "api_password": "beta-bot-secret"}}
            ],
        },
    },
}

_WORLD_KEYS = {"tenants", "tokens"}
_TENANT_KEYS = {"members", "trackers"}
_TRACKER_KEYS = {"id", "type", "base_url", "api_url", "name", "options", "verify_tls", "ca_bundle", "bot", "fake"}
_CREDENTIAL_KEYS = {"api_username", "api_password", "login"}
_TOKEN_KEYS = {"owner", "tracker", "url", "scope", "service", "label", "expires_at"} | _CREDENTIAL_KEYS


@dataclass
class World:
    """What :func:`build_world` built. ``trackers`` is keyed by ``"tenant/id"``; ``fakes`` by
    tracker type; ``tokens`` lists the personal tokens stored, in the order given."""

    directory: MemoryDirectory
    plugins: Plugins
    store: TokenStore
    resolver: Resolver
    trackers: dict[str, Tracker] = field(default_factory=dict)
    fakes: dict[str, FakeTracker] = field(default_factory=dict)
    memory: MemoryTrackerType | None = None
    tokens: list[TokenInfo] = field(default_factory=list)
    #: "tenant/id" -> the type of the fake server a tracker talks to (when not its own type)
    fake_types: dict[str, str] = field(default_factory=dict)

    def tracker(self, ref: str) -> Tracker:
        """The tracker ``"tenant/id"``, with a message listing the known ones if absent."""
        try:
            return self.trackers[ref]
        except KeyError:
            known = ", ".join(sorted(self.trackers)) or "none"
            raise KeyError(f"the world has no tracker {ref!r} (it has: {known})") from None


def credentials_from(spec: Mapping[str, Any], where: str) -> Credentials:
    """``{"api_password": ..., "api_username": ...}`` as :class:`Credentials`."""
    password = spec.get("api_password")
    if not isinstance(password, str) or not password:
        raise InvalidInputError(f"{where}: credentials need a non-empty 'api_password' string")
    username = spec.get("api_username")
    if username is not None and not isinstance(username, str):
        raise InvalidInputError(f"{where}: 'api_username' must be a string")
    return Credentials(api_password=Secret(password), api_username=username)


def register_on_fake(fake: FakeTracker, login: str, credentials: Credentials) -> None:
    """Tell ``fake`` that ``credentials`` authenticate as ``login``, the common way.

    With a user name, the fake accepts it with the password both as a password and as a token
    (Jira Cloud's ``email:api_token``, Redmine's ``user:password``); without one, the password
    is a token (a personal access token, an API key). A tracker whose fake needs something
    else registers its users itself.
    """
    secret = credentials.api_password.reveal()
    if credentials.api_username:
        fake.add_user(login, username=credentials.api_username, password=secret, token=secret)
    else:
        fake.add_user(login, token=secret)


def _check_keys(spec: object, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"{where} must be a mapping, not {type(spec).__name__}")
    unknown = set(spec) - allowed
    if unknown:
        raise InvalidInputError(
            f"{where} has unknown key(s) {', '.join(sorted(map(str, unknown)))}",
            hint=f"use: {', '.join(sorted(allowed))}",
        )
    return spec


def build_world(
    spec: Mapping[str, Any] = DEFAULT_WORLD,
    *,
    plugins: Plugins | None = None,
    store: TokenStore | None = None,
    fake_for: Callable[[str], FakeTracker] | None = None,
    memory: MemoryTrackerType | None = None,
    settings: ClientSettings | None = None,
    policies: Policies | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> World:
    """Build the directory, store and resolver ``spec`` describes (see the module docstring).

    :param plugins: the plugins the resolver uses (default: installed ones, from entry points).
        If the world has ``memory`` trackers and no ``memory`` type is installed, ``memory``
        (or a fresh :class:`MemoryTrackerType`) is registered into it.
    :param store: the token store (default: a new :class:`MemoryTokenStore`).
    :param fake_for: returns the running fake server of a tracker type; needed for trackers
        whose ``base_url`` mentions ``{fake}`` (the pytest fixtures pass one that starts
        ``fake_<type>``).
    """
    world_spec = _check_keys(spec, _WORLD_KEYS, "the world")
    plugins = plugins if plugins is not None else Plugins()
    store = store if store is not None else MemoryTokenStore()
    directory = MemoryDirectory()
    world = World(
        directory=directory,
        plugins=plugins,
        store=store,
        resolver=Resolver(directory, store, plugins=plugins, settings=settings, policies=policies, clock=clock),
    )
    tenants = world_spec.get("tenants", {})
    if not isinstance(tenants, Mapping):
        raise InvalidInputError("'tenants' must map tenant ids to tenant descriptions")
    for tenant, tenant_spec in tenants.items():
        tenant_spec = _check_keys(tenant_spec, _TENANT_KEYS, f"tenant {tenant!r}")
        directory.add_tenant(tenant)
        members = tenant_spec.get("members", [])
        if isinstance(members, str) or not isinstance(members, Sequence):
            raise InvalidInputError(f"tenant {tenant!r}: 'members' must be a list of user ids")
        for user in members:
            directory.add_member(user, tenant)
        for tracker_spec in tenant_spec.get("trackers", []):
            tracker = _tracker(world, tenant, tracker_spec, fake_for, memory)
            directory.add_tracker(tracker)
            world.trackers[f"{tenant}/{tracker.id}"] = tracker
    tokens = world_spec.get("tokens", [])
    if isinstance(tokens, (str, Mapping)) or not isinstance(tokens, Sequence):
        raise InvalidInputError("'tokens' must be a list of token descriptions")
    for index, token_spec in enumerate(tokens):
        world.tokens.append(_token(world, token_spec, f"tokens[{index}]"))
    return world


def _tracker(
    world: World,
    tenant: str,
    spec: object,
    fake_for: Callable[[str], FakeTracker] | None,
    memory: MemoryTrackerType | None,
) -> Tracker:
    where = f"a tracker of tenant {tenant!r}"
    tracker_spec = _check_keys(spec, _TRACKER_KEYS, where)
    tracker_id, type_name = tracker_spec.get("id"), tracker_spec.get("type")
    if not isinstance(tracker_id, str) or not isinstance(type_name, str):
        raise InvalidInputError(f"{where} needs 'id' and 'type' strings")
    where = f"tracker {tenant}/{tracker_id}"
    if type_name == MEMORY_TYPE:
        _ensure_memory_type(world, memory)
    base_url = tracker_spec.get("base_url")
    fake_type = tracker_spec.get("fake", type_name)
    if base_url is None:
        if type_name == MEMORY_TYPE and "fake" not in tracker_spec:
            base_url = f"https://memory.example/{tenant}/{tracker_id}"
        elif fake_for is not None:
            base_url = "{fake}"
        else:
            raise InvalidInputError(f"{where} needs a 'base_url'")
    api_url = tracker_spec.get("api_url")
    if "{fake}" in base_url or (api_url is not None and "{fake}" in api_url):
        fake = _fake(world, fake_type, fake_for, where)
        base_url = base_url.replace("{fake}", fake.url)
        api_url = api_url.replace("{fake}", fake.url) if api_url is not None else None
    bot_spec = tracker_spec.get("bot")
    bot = None
    if bot_spec is not None:
        _check_keys(bot_spec, _CREDENTIAL_KEYS, f"{where}: 'bot'")
        bot = credentials_from(bot_spec, f"{where}: 'bot'")
    tracker = Tracker(
        tenant=tenant,
        id=tracker_id,
        type=type_name,
        base_url=base_url,
        api_url=api_url,
        name=tracker_spec.get("name", ""),
        bot_credentials=bot,
        options=tracker_spec.get("options", {}),
        verify_tls=tracker_spec.get("verify_tls", True),
        ca_bundle=tracker_spec.get("ca_bundle"),
    )
    world.fake_types[f"{tenant}/{tracker_id}"] = fake_type
    if bot is not None and bot_spec is not None:
        _register(world, tracker, str(bot_spec.get("login", "bot")), bot)
    return tracker


def _ensure_memory_type(world: World, memory: MemoryTrackerType | None) -> None:
    if world.memory is not None:
        return
    installed = world.plugins.tracker_types.get(MEMORY_TYPE)
    if isinstance(installed, MemoryTrackerType):
        world.memory = installed
        return
    world.memory = memory if memory is not None else MemoryTrackerType()
    world.plugins.register(MemoryTrackerPlugin(world.memory), name="tokenproviders-testing-memory")


def _fake(world: World, type_name: str, fake_for: Callable[[str], FakeTracker] | None, where: str) -> FakeTracker:
    fake = world.fakes.get(type_name)
    if fake is None:
        if fake_for is None:
            raise InvalidInputError(f"{where} mentions {{fake}} but no fake server was offered to build_world")
        fake = fake_for(type_name)
        world.fakes[type_name] = fake
    return fake


def _register(world: World, tracker: Tracker, login: str, credentials: Credentials) -> None:
    fake_type = world.fake_types.get(f"{tracker.tenant}/{tracker.id}", tracker.type)
    if fake_type == MEMORY_TYPE and world.memory is not None:
        world.memory.backend.add_user(login, credentials.api_password.reveal(), credentials.api_username)
    elif fake_type in world.fakes:
        register_on_fake(world.fakes[fake_type], login, credentials)


def _token(world: World, spec: object, where: str) -> TokenInfo:
    token_spec = _check_keys(spec, _TOKEN_KEYS, where)
    owner = token_spec.get("owner")
    if not isinstance(owner, str):
        raise InvalidInputError(f"{where} needs an 'owner'")
    credentials = credentials_from(token_spec, where)
    ref, url = token_spec.get("tracker"), token_spec.get("url")
    if (ref is None) == (url is None):
        raise InvalidInputError(f"{where} needs exactly one of 'tracker' (\"tenant/id\") or 'url'")
    tracker = world.tracker(ref) if ref is not None else None
    scope = token_spec.get("scope", tracker.tenant if tracker is not None else ALL_TENANTS)
    if tracker is not None:
        url = tracker.base_url
        if token_spec.get("service"):
            url = world.plugins.tracker_type(tracker.type).service_url(tracker)
            if url is None:
                raise InvalidInputError(f"{where}: tracker type {tracker.type!r} has no service URL")
    assert url is not None
    info = world.resolver.tokens.set(
        owner=owner,
        url=url,
        credentials=credentials,
        scope=scope,
        label=token_spec.get("label", ""),
        expires_at=token_spec.get("expires_at"),
    )
    login = str(token_spec.get("login", owner))
    for target in world.resolver.tokens.targets(owner, url, scope):
        _register(world, target.tracker, login, credentials)
    return info
