"""The plugin manager facade: discovery, blocking, broken-plugin reporting and listing.

Nothing is created at import time. :func:`create_plugins` (or ``Plugins()``) builds a fresh
``pluggy.PluginManager``, loads every entry point of the ``tokenproviders`` group (the built-in
credential sources are declared there too), skips blocked names, records plugins that fail to
load instead of failing, collects tracker types, and then calls ``check_pending()`` so a
misspelled hook fails fast.

Operator switches (environment variables):

``TOKENPROVIDERS_BLOCK_PLUGINS``
    comma-separated plugins not to load (built-in sources cannot be blocked): an entry-point
    name (``jira``), or ``dist:`` and a distribution name (``dist:tokenproviders-jira``) for
    every entry point of that distribution.
``TOKENPROVIDERS_LOAD_PLUGINS``
    if set, a comma-separated allow-list in the same syntax: only these third-party plugins load.
``TOKENPROVIDERS_TRACE_HOOKS``
    if set to ``1``, every hook call and result is logged at DEBUG on the
    ``tokenproviders.hooks`` logger.

Plugin code cannot end the host while plugins load: any exception from a plugin's import or
registration, ``SystemExit`` and ``KeyboardInterrupt`` included, makes that plugin broken. Only a
real Ctrl-C (a SIGINT that arrives while plugins load) still interrupts the host.

Nothing is decided by entry-point enumeration (``sys.path``) order. An entry-point name that
several distributions declare loads none of them, and a tracker type that several plugins
register is refused with all of them, each listed as broken naming the others, until the
operator picks one with the switches above.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from types import FrameType, TracebackType
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
    "DIST_PREFIX",
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
#: In the block and allow lists, ``dist:NAME`` names every entry point of distribution NAME.
DIST_PREFIX = "dist:"

#: Entry-point names of the core's own plugins, and where they live when the distribution's
#: entry points are not installed (running from a source checkout).
BUILTIN_PLUGINS: dict[str, str] = {
    "personal": "tokenproviders.sources:personal_source",
    "bot": "tokenproviders.sources:bot_source",
}


def _split_env(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _dist_key(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class _Selection:
    """A block or allow list: entry-point names and (``dist:``) distribution names."""

    names: frozenset[str]
    dists: frozenset[str]

    @classmethod
    def parse(cls, items: Iterable[str]) -> _Selection:
        names: set[str] = set()
        dists: set[str] = set()
        for item in (part.strip() for part in items):
            if item.startswith(DIST_PREFIX):
                dists.add(_dist_key(item[len(DIST_PREFIX) :].strip()))
            elif item:
                names.add(item)
        return cls(frozenset(names), frozenset(dists))

    def __bool__(self) -> bool:
        return bool(self.names or self.dists)

    def matches(self, name: str, dist_key: str | None) -> bool:
        return name in self.names or (dist_key is not None and dist_key in self.dists)


def _describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _CtrlC:
    """Tells a real Ctrl-C from a plugin raising ``KeyboardInterrupt`` while plugin code runs.

    In the main thread, under a Python-level SIGINT handler, a handler that notes the signal
    wraps it for the duration. A ``KeyboardInterrupt`` with no SIGINT noted was raised by code;
    so is any in another thread (Python runs signal handlers in the main thread only) or under
    ``SIG_DFL``/``SIG_IGN`` (a real Ctrl-C raises none there).
    """

    def __init__(self) -> None:
        self.pressed = False
        self._depth = 0
        self._previous: Any = None
        self._installed: Any = None

    def __enter__(self) -> _CtrlC:
        self._depth += 1
        if self._depth > 1:
            return self
        self.pressed = False
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return self

        def note(signum: int, frame: FrameType | None) -> Any:
            self.pressed = True
            return previous(signum, frame)

        try:
            signal.signal(signal.SIGINT, note)
        except ValueError:  # not the main interpreter
            return self
        self._previous, self._installed = previous, note
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return
        # A plugin that installed its own handler meanwhile keeps it.
        if self._installed is not None and signal.getsignal(signal.SIGINT) is self._installed:
            signal.signal(signal.SIGINT, self._previous)
        self._previous = self._installed = None

    def reraise_if_pressed(self, exc: BaseException) -> None:
        """Raise again what must end the host: a real Ctrl-C, whatever the plugin made of it."""
        if self.pressed:
            if isinstance(exc, KeyboardInterrupt):
                raise exc
            raise KeyboardInterrupt from exc


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
    ``types`` describes them (title and credential fields). An entry-point name declared by
    several distributions is listed as ``distribution:name`` for each of them, except the one
    that loaded (the operator picked it)."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    tracker_types: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    broken: str | None = None
    blocked: bool = False
    types: list[TrackerTypeInfo] = field(default_factory=list)
    #: Other distributions declare the same entry-point name, or other plugins the same
    #: tracker type: what collides with what (also when the operator settled it).
    conflict: str | None = None

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
            "conflict": self.conflict,
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
        self._type_conflicts: dict[str, str] = {}  # refused tracker type -> why
        self._pending_types: dict[str, list[TrackerType]] = {}  # registered, not yet adopted
        self._blocked = _Selection.parse(block if block is not None else _split_env(BLOCK_ENV))
        allowed = _Selection.parse(allow if allow is not None else _split_env(LOAD_ENV))
        self._allowed: _Selection | None = allowed or None
        self._tracing = False
        if os.environ.get(TRACE_ENV, "") not in ("", "0"):
            self.enable_tracing()
        self._ctrl_c = _CtrlC()
        with self._ctrl_c:
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
        # Every entry point is gathered first and then decided by name, so nothing depends on
        # the order in which sys.path lists the distributions.
        by_name: dict[str, list[tuple[metadata.EntryPoint, PluginInfo, str | None]]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.name if dist is not None else None,
                version=dist.version if dist is not None else None,
                builtin=ep.name in BUILTIN_PLUGINS and ep.value == BUILTIN_PLUGINS[ep.name],
            )
            if ep.name in BUILTIN_PLUGINS and not info.builtin:
                # A third party reusing "personal" or "bot" would replace a built-in source and
                # escape the ordering rules; list it under its own name and never load it.
                info.name = f"{info.distribution or ep.value}:{ep.name}"
                self._infos[info.name] = info
                self._mark_broken(info.name, f"the entry-point name {ep.name!r} is reserved for a built-in source")
                continue
            key = _dist_key(info.distribution) if info.distribution is not None else None
            entries = by_name.setdefault(ep.name, [])
            if any(k == key and e.value == ep.value for e, _, k in entries):
                continue  # the same distribution visible twice on sys.path
            entries.append((ep, info, key))
        for name in self._blocked.names & set(BUILTIN_PLUGINS):
            logger.warning("built-in plugin %r cannot be blocked; ignoring %s for it", name, BLOCK_ENV)
        if _dist_key("tokenproviders") in self._blocked.dists:
            logger.warning("the built-in plugins cannot be blocked; ignoring %s=dist:tokenproviders", BLOCK_ENV)
        loaded: list[str] = []
        for name, entries in sorted(by_name.items()):
            chosen = self._choose(name, entries)
            if chosen is not None:
                ep, info = chosen
                if self._load(ep, info.name):
                    loaded.append(info.name)
        self._adopt_types(loaded)

    def _choose(
        self, name: str, entries: list[tuple[metadata.EntryPoint, PluginInfo, str | None]]
    ) -> tuple[metadata.EntryPoint, PluginInfo] | None:
        """The one entry point of ``name`` to load, if any; lists every one of them."""
        shared = len(entries) > 1
        candidates: list[tuple[metadata.EntryPoint, PluginInfo]] = []
        for ep, info, key in entries:
            if shared:
                info.name = f"{info.distribution or ep.value}:{name}"
            self._infos[info.name] = info
            if info.builtin:
                candidates.append((ep, info))
            elif self._blocked.matches(name, key):
                info.blocked = True
                logger.info("plugin %r is blocked by %s", info.name, BLOCK_ENV)
            elif self._allowed is not None and not self._allowed.matches(name, key):
                info.blocked = True
                logger.info("plugin %r is not in %s", info.name, LOAD_ENV)
            else:
                candidates.append((ep, info))
        if shared:
            dists = ", ".join(sorted(info.distribution or ep.value for ep, info, _ in entries))
            note = f"the entry-point name {name!r} is declared by several distributions ({dists})"
            for _, info, _ in entries:
                info.conflict = note
            if len(candidates) > 1:
                for _, info in candidates:
                    self._mark_broken(
                        info.name,
                        f"{note}: none is loaded; choose one with {LOAD_ENV}={DIST_PREFIX}DISTRIBUTION"
                        f" or block the others with {BLOCK_ENV}={DIST_PREFIX}DISTRIBUTION",
                    )
                return None
            if candidates:
                # The operator picked this one: it loads under the plain name.
                ep, info = candidates[0]
                del self._infos[info.name]
                info.name = name
                self._infos[name] = info
                logger.info("%s; loading the one from %s", note, info.distribution or ep.value)
        return candidates[0] if candidates else None

    def _load(self, ep: metadata.EntryPoint, name: str) -> bool:
        try:
            plugin = ep.load()
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too: a plugin must not end the host
            self._ctrl_c.reraise_if_pressed(exc)
            self._mark_broken(name, f"failed to import: {_describe_exception(exc)}")
            return False
        return self._register_loaded(plugin, name)

    def _ensure_builtins(self) -> None:
        for name, reference in BUILTIN_PLUGINS.items():
            if self.manager.has_plugin(name):
                continue
            # Running from a source tree without installed entry points: same objects, same names.
            self._infos[name] = PluginInfo(name=name, distribution="tokenproviders", builtin=True)
            self._register_loaded(_load_object(reference), name)
            self._adopt_types([name])

    def _register_loaded(self, plugin: object, name: str) -> bool:
        """Register ``plugin`` and collect the tracker types it offers (kept pending until
        :meth:`_adopt_types`). ``False`` if it was refused (then it is listed as broken)."""
        try:
            self.manager.register(plugin, name=name)
        except BaseException as exc:  # noqa: BLE001 - pluggy validation errors, duplicate names, plugin code in getattr
            self._ctrl_c.reraise_if_pressed(exc)
            if self.manager.get_plugin(name) is plugin:
                # pluggy leaves a plugin half-registered when a later hookimpl fails validation.
                self.manager.unregister(name=name)
            self._mark_broken(name, f"failed to register: {_describe_exception(exc)}")
            return False
        problem = self._contract_problem(name, plugin)
        if problem:
            self.manager.unregister(name=name)
            self._mark_broken(name, problem)
            return False
        if not self._collect_tracker_types(name):
            return False
        info = self._infos.setdefault(name, PluginInfo(name=name))
        info.hooks = sorted(
            hook.name
            for hook in self.manager.get_hookcallers(plugin) or []
        )
        return True

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

    def _collect_tracker_types(self, name: str) -> bool:
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
            except BaseException as exc:  # noqa: BLE001 - reported, the host keeps going (SystemExit too)
                self._ctrl_c.reraise_if_pressed(exc)
                self.manager.unregister(name=name)
                self._mark_broken(name, f"registering tracker types failed: {_describe_exception(exc)}")
                return False
        names = [t.name for t in registered]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            self.manager.unregister(name=name)
            self._mark_broken(name, f"registers tracker type(s) {', '.join(map(repr, twice))} twice")
            return False
        info = self._infos.setdefault(name, PluginInfo(name=name))
        info.tracker_types = sorted(names)
        info.types = [TrackerTypeInfo.of(t) for t in sorted(registered, key=lambda t: t.name)]
        self._pending_types[name] = registered
        return True

    def _who(self, name: str) -> str:
        info = self._infos.get(name)
        where = " ".join(filter(None, (info.distribution, info.version))) if info is not None else ""
        return f"{name!r} ({where})" if where else repr(name)

    def _adopt_types(self, names: list[str]) -> None:
        """Install the tracker types of the newly registered plugins ``names``.

        A type that two of them register is refused with every plugin that registers it: none
        wins by enumeration order. A type that an installed plugin already provides refuses
        the newcomer (entry points load first; the host's own ``register()`` calls come later).
        """
        offered = {name: self._pending_types.pop(name, []) for name in names}
        providers: dict[str, list[str]] = {}
        for name in names:
            for tracker_type in offered[name]:
                providers.setdefault(tracker_type.name, []).append(name)
        refused: dict[str, list[str]] = {}
        notes: dict[str, list[str]] = {}
        for type_name, plugins in sorted(providers.items()):
            owner = self._type_owner.get(type_name)
            if owner is not None:
                for plugin in plugins:
                    refused.setdefault(plugin, []).append(
                        f"tracker type {type_name!r} is already provided by plugin {self._who(owner)}"
                    )
                continue
            if len(plugins) < 2:
                continue
            who = sorted(plugins)
            listed = ", ".join(self._who(n) for n in who[:-1]) + f" and {self._who(who[-1])}"
            note = f"tracker type {type_name!r} is registered by plugins {listed}"
            self._type_conflicts[type_name] = note
            for plugin in who:
                notes.setdefault(plugin, []).append(note)
                refused.setdefault(plugin, []).append(
                    f"{note}; none of them is loaded; choose one with {LOAD_ENV}={DIST_PREFIX}DISTRIBUTION"
                    f" or block the others with {BLOCK_ENV}={DIST_PREFIX}DISTRIBUTION"
                )
        for plugin, reasons in sorted(refused.items()):
            self.manager.unregister(name=plugin)
            self._mark_broken(plugin, "; ".join(reasons))
            if plugin in notes:
                self._infos[plugin].conflict = "; ".join(notes[plugin])
        for name in names:
            if name not in refused:
                for tracker_type in offered[name]:
                    self._tracker_types[tracker_type.name] = tracker_type
                    self._type_owner[tracker_type.name] = name

    # -- public API ------------------------------------------------------------------------
    @property
    def hook(self) -> Any:
        """The pluggy hook relay; call hooks with keyword arguments only."""
        return self.manager.hook

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object or module now (tests, embedded hosts). Returns its name."""
        plugin_name = name or self.manager.get_canonical_name(plugin)
        self._infos.setdefault(plugin_name, PluginInfo(name=plugin_name))
        with self._ctrl_c:
            if self._register_loaded(plugin, plugin_name):
                self._adopt_types([plugin_name])
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
            if name in self._type_conflicts:
                raise UnknownTrackerTypeError(
                    f"{self._type_conflicts[name]}, so none of them is used",
                    hint=f"choose one with {LOAD_ENV}={DIST_PREFIX}DISTRIBUTION or block the others"
                    f" with {BLOCK_ENV}={DIST_PREFIX}DISTRIBUTION, or uninstall all but one",
                ) from None
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
