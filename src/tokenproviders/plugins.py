"""The plugin manager facade: discovery, blocking, broken-plugin reporting and listing.

Nothing is created at import time. :func:`create_plugins` (or ``Plugins()``) builds a fresh
``pluggy.PluginManager``, loads every entry point of the ``tokenproviders`` group (the built-in
credential sources are declared there too), skips blocked names, records plugins that fail to
load instead of failing, collects tracker types, and then calls ``check_pending()`` so a
misspelled hook fails fast.

Operator switches (environment variables):

``TOKENPROVIDERS_BLOCK_PLUGINS``
    comma-separated entry-point names not to load (built-in sources cannot be blocked).
``TOKENPROVIDERS_LOAD_PLUGINS``
    if set, a comma-separated allow-list: only these third-party plugins load.
``TOKENPROVIDERS_TRACE_HOOKS``
    if set to ``1``, every hook call and result is logged at DEBUG on the
    ``tokenproviders.hooks`` logger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, UnknownTrackerTypeError
from .model import Field
from .trackertype import TrackerType

__all__ = [
    "hookimpl",
    "ENTRY_POINT_GROUP",
    "BLOCK_ENV",
    "LOAD_ENV",
    "TRACE_ENV",
    "BUILTIN_PLUGINS",
    "PluginInfo",
    "TrackerTypeInfo",
    "Plugins",
    "create_plugins",
    "list_plugins",
    "call_hookimpl",
]

logger = logging.getLogger("tokenproviders.plugins")
hook_logger = logging.getLogger("tokenproviders.hooks")

#: The marker plugins decorate their hook implementations with.
hookimpl = pluggy.HookimplMarker(hookspecs.PROJECT_NAME)

ENTRY_POINT_GROUP = "tokenproviders"
BLOCK_ENV = "TOKENPROVIDERS_BLOCK_PLUGINS"
LOAD_ENV = "TOKENPROVIDERS_LOAD_PLUGINS"
TRACE_ENV = "TOKENPROVIDERS_TRACE_HOOKS"

#: Entry-point names of the core's own plugins, and where they live when the distribution's
#: entry points are not installed (running from a source checkout).
BUILTIN_PLUGINS: dict[str, str] = {
    "personal": "tokenproviders.sources:personal_source",
    "bot": "tokenproviders.sources:bot_source",
}


def _split_env(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


@dataclass(frozen=True)
class TrackerTypeInfo:
    """One tracker type as a listing shows it: what a form needs to ask for its credentials."""

    name: str
    title: str
    fields: tuple[Field, ...]

    @classmethod
    def of(cls, tracker_type: TrackerType) -> TrackerTypeInfo:
        return cls(name=tracker_type.name, title=tracker_type.title, fields=tuple(tracker_type.fields))

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "fields": [
                {"name": f.name, "label": f.label, "help": f.help, "required": f.required, "secret": f.secret}
                for f in self.fields
            ],
        }


@dataclass
class PluginInfo:
    """One plugin as a listing shows it. ``tracker_types`` names the types it registered;
    ``types`` describes them (title and credential fields)."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    tracker_types: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    broken: str | None = None
    blocked: bool = False
    types: list[TrackerTypeInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "tracker_types": list(self.tracker_types),
            "types": [t.as_dict() for t in self.types],
            "hooks": list(self.hooks),
            "broken": self.broken,
            "blocked": self.blocked,
        }


def call_hookimpl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one implementation directly with the arguments it asks for (pluggy lets an
    implementation take fewer arguments than its spec names)."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})


def _load_object(reference: str) -> object:
    return metadata.EntryPoint(name="", value=reference, group=ENTRY_POINT_GROUP).load()


class Plugins:
    """Owns one ``pluggy.PluginManager`` and the tracker types its plugins registered.

    ``load_entry_points=False`` registers only the built-ins (and ``extra`` plugins): handy in
    tests that want no third-party plugin to interfere.
    """

    def __init__(
        self,
        *,
        load_entry_points: bool = True,
        extra: Iterable[object] = (),
        block: Iterable[str] | None = None,
        allow: Iterable[str] | None = None,
    ) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._tracker_types: dict[str, TrackerType] = {}
        self._type_owner: dict[str, str] = {}
        self._blocked = set(block) if block is not None else _split_env(BLOCK_ENV)
        allowed = set(allow) if allow is not None else _split_env(LOAD_ENV)
        self._allowed: set[str] | None = allowed or None
        self._tracing = False
        if os.environ.get(TRACE_ENV, "") not in ("", "0"):
            self.enable_tracing()
        if load_entry_points:
            self._load_entry_points()
        self._ensure_builtins()
        # The built-in sources' objects, for the resolve fast path (names cannot be taken over).
        self._builtin_personal: object = self.manager.get_plugin("personal")
        self._builtin_bot: object = self.manager.get_plugin("bot")
        for plugin in extra:
            self.register(plugin)
        self.manager.check_pending()

    # -- loading ---------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            builtin = ep.name in BUILTIN_PLUGINS and ep.value == BUILTIN_PLUGINS[ep.name]
            if ep.name in BUILTIN_PLUGINS and not builtin:
                # A third party reusing "personal" or "bot" would replace a built-in source and
                # escape the ordering rules; list it under its own name and never load it.
                shown = f"{dist.name if dist is not None else ep.value}:{ep.name}"
                self._infos[shown] = PluginInfo(
                    name=shown,
                    distribution=dist.name if dist is not None else None,
                    version=dist.version if dist is not None else None,
                )
                self._mark_broken(shown, f"the entry-point name {ep.name!r} is reserved for a built-in source")
                continue
            if ep.name in seen:
                continue  # the same distribution visible twice on sys.path
            seen.add(ep.name)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
                builtin=builtin,
            )
            self._infos[ep.name] = info
            if not info.builtin:
                if ep.name in self._blocked:
                    info.blocked = True
                    logger.info("plugin %r is blocked by %s", ep.name, BLOCK_ENV)
                    continue
                if self._allowed is not None and ep.name not in self._allowed:
                    info.blocked = True
                    logger.info("plugin %r is not in %s", ep.name, LOAD_ENV)
                    continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the host
                self._mark_broken(ep.name, f"failed to import: {type(exc).__name__}: {exc}")
                continue
            self._register_loaded(plugin, ep.name)
        for name in self._blocked & set(BUILTIN_PLUGINS):
            logger.warning("built-in plugin %r cannot be blocked; ignoring %s for it", name, BLOCK_ENV)

    def _ensure_builtins(self) -> None:
        for name, reference in BUILTIN_PLUGINS.items():
            if self.manager.has_plugin(name):
                continue
            # Running from a source tree without installed entry points: same objects, same names.
            self._infos[name] = PluginInfo(name=name, distribution="tokenproviders", builtin=True)
            self._register_loaded(_load_object(reference), name)

    def _register_loaded(self, plugin: object, name: str) -> None:
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors, duplicate names
            if self.manager.get_plugin(name) is plugin:
                # pluggy leaves a plugin half-registered when a later hookimpl fails validation.
                self.manager.unregister(name=name)
            self._mark_broken(name, f"failed to register: {type(exc).__name__}: {exc}")
            return
        problem = self._contract_problem(name, plugin)
        if problem:
            self.manager.unregister(name=name)
            self._mark_broken(name, problem)
            return
        self._collect_tracker_types(name)
        info = self._infos.setdefault(name, PluginInfo(name=name))
        info.hooks = sorted(
            hook.name
            for hook in self.manager.get_hookcallers(plugin) or []
        )

    def _contract_problem(self, name: str, plugin: object) -> str | None:
        # An implementation of a hook nobody specified is almost always a misspelling; left
        # registered, it would make check_pending() fail the host, so it breaks only its plugin.
        unknown = sorted(
            caller.name for caller in self.manager.get_hookcallers(plugin) or [] if caller.spec is None
        )
        if unknown:
            return (
                f"implements unknown hook(s) {', '.join(unknown)}"
                " (misspelled? every hook is in tokenproviders.hookspecs)"
            )
        if name in BUILTIN_PLUGINS:
            return None
        for impl in self.manager.hook.tokenproviders_credentials.get_hookimpls():
            if impl.plugin_name != name:
                continue
            if impl.tryfirst or impl.trylast:
                return (
                    "tokenproviders_credentials may not use tryfirst/trylast: personal tokens"
                    " always come first and the bot last"
                )
            if impl.hookwrapper or impl.wrapper:
                return (
                    "tokenproviders_credentials may not be a wrapper: a wrapper could replace the"
                    " personal or bot result"
                )
        return None

    def _mark_broken(self, name: str, reason: str) -> None:
        logger.warning("plugin %r is broken and was skipped: %s", name, reason)
        info = self._infos.setdefault(name, PluginInfo(name=name))
        info.broken = reason

    def _collect_tracker_types(self, name: str) -> None:
        registered: list[TrackerType] = []

        def register(tracker_type: TrackerType) -> None:
            if not isinstance(tracker_type, TrackerType):
                raise PluginError(
                    f"register() takes a TrackerType instance, not {type(tracker_type).__name__}"
                )
            tracker_type.check_declaration()
            registered.append(tracker_type)

        for impl in self.manager.hook.tokenproviders_register_tracker_types.get_hookimpls():
            if impl.plugin_name != name:
                continue
            try:
                self.call_one(impl, register=register)
            except Exception as exc:  # noqa: BLE001 - reported, the host keeps going
                self.manager.unregister(name=name)
                self._mark_broken(name, f"registering tracker types failed: {type(exc).__name__}: {exc}")
                return
        for tracker_type in registered:
            owner = self._type_owner.get(tracker_type.name)
            if owner is not None:
                self.manager.unregister(name=name)
                self._mark_broken(
                    name, f"tracker type {tracker_type.name!r} is already provided by plugin {owner!r}"
                )
                return
        for tracker_type in registered:
            self._tracker_types[tracker_type.name] = tracker_type
            self._type_owner[tracker_type.name] = name
        info = self._infos.setdefault(name, PluginInfo(name=name))
        info.tracker_types = sorted(t.name for t in registered)
        info.types = [TrackerTypeInfo.of(t) for t in sorted(registered, key=lambda t: t.name)]

    # -- public API ------------------------------------------------------------------------
    @property
    def hook(self) -> Any:
        """The pluggy hook relay; call hooks with keyword arguments only."""
        return self.manager.hook

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object or module now (tests, embedded hosts). Returns its name."""
        plugin_name = name or self.manager.get_canonical_name(plugin)
        self._infos.setdefault(plugin_name, PluginInfo(name=plugin_name))
        self._register_loaded(plugin, plugin_name)
        info = self._infos[plugin_name]
        if info.broken:
            raise PluginError(f"plugin {plugin_name!r} was refused: {info.broken}")
        self.manager.check_pending()
        return plugin_name

    def unregister(self, name: str) -> None:
        """Remove a plugin and the tracker types it registered. The built-in sources stay:
        without the personal source the bot would silently win over personal tokens."""
        if name in BUILTIN_PLUGINS:
            raise PluginError(f"the built-in plugin {name!r} cannot be unregistered")
        self.manager.unregister(name=name)
        for type_name, owner in list(self._type_owner.items()):
            if owner == name:
                del self._type_owner[type_name]
                del self._tracker_types[type_name]
        self._infos.pop(name, None)

    @contextmanager
    def registered(self, plugin: object, name: str | None = None) -> Iterator[str]:
        """Register ``plugin`` for the duration of a ``with`` block, then unregister it."""
        plugin_name = self.register(plugin, name)
        try:
            yield plugin_name
        finally:
            self.unregister(plugin_name)

    @property
    def tracker_types(self) -> dict[str, TrackerType]:
        """Installed tracker types by name."""
        return dict(self._tracker_types)

    def tracker_type(self, name: str) -> TrackerType:
        """The tracker type called ``name`` or :class:`UnknownTrackerTypeError`."""
        try:
            return self._tracker_types[name]
        except KeyError:
            known = ", ".join(sorted(self._tracker_types)) or "none"
            broken = [i.name for i in self._infos.values() if i.broken]
            extra = f"; broken plugins: {', '.join(broken)}" if broken else ""
            raise UnknownTrackerTypeError(
                f"no installed plugin provides tracker type {name!r} (installed: {known}{extra})",
                hint=f"install it, e.g. pip install tokenproviders-{name}",
            ) from None

    def list(self) -> list[PluginInfo]:
        """Every plugin seen: loaded, blocked or broken, sorted by name."""
        return sorted(self._infos.values(), key=lambda i: (not i.builtin, i.name))

    def broken(self) -> dict[str, str]:
        """Broken plugins and why."""
        return {i.name: i.broken for i in self._infos.values() if i.broken}

    def enable_tracing(self, writer: Callable[[str], None] | None = None) -> None:
        """Log every hook call and result (for debugging plugin interplay): the calls through
        the hook relay and those made to one implementation at a time (:meth:`call_one`)."""
        write = writer or (lambda message: hook_logger.debug("%s", message.rstrip()))
        self.manager.trace.root.setwriter(write)
        if not self._tracing:
            self.manager.enable_tracing()
        self._tracing = True

    def resolve_credentials(self, request: Any) -> Any:
        """Call the ``tokenproviders_credentials`` hook (``firstresult``).

        When only the two built-in sources implement it and tracing is off, they are called
        directly in their fixed order (personal, then bot): the same result as through pluggy,
        without its per-call machinery on the resolve hot path. Any other implementation, a
        wrapper, or tracing sends the call through pluggy as usual.
        """
        hook = self.manager.hook.tokenproviders_credentials
        if not self._tracing:
            impls = hook.get_hookimpls()
            if len(impls) == 2 and impls[0].plugin is self._builtin_bot and impls[1].plugin is self._builtin_personal:
                result = impls[1].function(request=request)
                if result is None:
                    result = impls[0].function(request=request)
                return result
        return hook(request=request)

    def call_one(self, impl: pluggy.HookImpl, **kwargs: Any) -> Any:
        """Call one hook implementation directly, as :func:`call_hookimpl` does, and trace the
        call like a relayed one when tracing is on. For hooks whose implementations must be
        isolated from each other (an observer's exception must not stop the next one)."""
        if not self._tracing:
            return call_hookimpl(impl, **kwargs)
        hooktrace = self.manager.trace.root.get("hook")
        name = impl.function.__name__
        hooktrace.root.indent += 1
        try:
            hooktrace(f"{name} (plugin {impl.plugin_name!r} only)", kwargs)
            try:
                result = call_hookimpl(impl, **kwargs)
            except BaseException as exc:
                hooktrace("raised", name, "-->", type(exc).__name__)
                raise
            hooktrace("finish", name, "-->", result)
            return result
        finally:
            hooktrace.root.indent -= 1


def create_plugins(**kwargs: Any) -> Plugins:
    """Build a :class:`Plugins` (discovering entry points). Arguments as for ``Plugins``."""
    return Plugins(**kwargs)


def list_plugins() -> list[PluginInfo]:
    """Discover plugins now and list them with versions, tracker types and breakage."""
    return create_plugins().list()
