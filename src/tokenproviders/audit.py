"""Audit events: one record per action, refusal and admin change, never a secret.

The :class:`~tokenproviders.Resolver` hands an :class:`AuditEvent` to every
``tokenproviders_audit`` observer once per public action it performs (``resolve``, ``client``,
``verify``, ``report_issue``, ``add_comment``, ``whoami_with``, and ``tokens.set`` /
``tokens.delete``), with its outcome, also when the action raises (the error is classified,
then re-raised unchanged). An action that calls another (a report resolves first) is one event.
With no observer registered nothing is built at all, so the resolve path pays only for the check.

:func:`acting` names who acts (the host's principal) and groups the calls of one user action
under one correlation id; it is a context variable, so each thread and each asyncio task has
its own::

    with acting(principal=request.user.username, correlation_id=request_id):
        resolver.report_issue(user, tracker, title)

The embedded SQLite database records these events through its observer
(``db.audit.observer()``), and writes its own admin changes (memberships, trackers, keys) into
the same trail, in the transaction that makes the change.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Final, ParamSpec, TypeVar

from ._printable import printable
from .errors import (
    ConfigurationError,
    CredentialsRejectedError,
    InvalidInputError,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenUnusableError,
    PluginError,
    SecretUnreadableError,
    StoreError,
    TokenNotFoundError,
    TokenProvidersError,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
    UnknownTrackerError,
    UnknownTrackerTypeError,
)
from .model import Credentials, Identity, ReportedIssue, Resolution, Secret, TokenInfo, Tracker, _check_id

if TYPE_CHECKING:
    from .plugins import Plugins

__all__ = ["ACTIONS", "OUTCOMES", "AuditEvent", "Acting", "acting", "current_acting", "outcome_of"]

logger = logging.getLogger("tokenproviders.audit")

#: What an event records. The first four act on a tracker for a user; the rest are admin changes.
ACTIONS: Final = (
    "resolve",
    "verify",
    "report",
    "comment",
    "token.set",
    "token.delete",
    "tenant.add",
    "tenant.remove",
    "member.grant",
    "member.revoke",
    "tracker.add",
    "tracker.change",
    "tracker.remove",
    "key.generate",
    "key.rotate",
    "key.retire",
)
#: How it ended: ``ok``, a refusal, the tracker's answer, or the kind of error (see :func:`outcome_of`).
OUTCOMES: Final = (
    "ok",
    "refused",
    "rejected",
    "unavailable",
    "not_found",
    "request",
    "invalid",
    "unreadable",
    "store",
    "plugin",
    "configuration",
    "error",
)
#: Longest ``detail`` kept (characters); longer ones are cut with an ellipsis.
MAX_DETAIL: Final = 500
#: Longest principal or correlation id.
MAX_LABEL: Final = 200

_TEXT_FIELDS: Final = (
    "user",
    "tenant",
    "tracker",
    "source",
    "scope",
    "matched_url",
    "fallback_from",
    "principal",
    "correlation_id",
    "error",
    "detail",
)
_MASK: Final = "**********"


@dataclass(frozen=True)
class AuditEvent:
    """One audited action, refusal or admin change: what, how it ended, when, for whom, by whom.

    ``action`` is one of :data:`ACTIONS`; ``outcome`` one of :data:`OUTCOMES`; ``at`` a
    timezone-aware time. ``user`` is the user acted for (a token's owner, a member);
    ``tenant`` and ``tracker`` name the tracker (a tracker id) or tenant concerned; ``source``,
    ``token_id``, ``scope``, ``matched_url`` and ``fallback_from`` describe the credentials used
    (as in :class:`~tokenproviders.Resolution`). ``principal`` and ``correlation_id`` come from
    :func:`acting`. ``error`` is the raised exception's class name, and ``detail`` one short
    sentence (an error's message without its hint, the issue filed, the fields changed).

    Text fields are stored as given except that control characters are shown escaped and
    ``detail`` is cut at :data:`MAX_DETAIL` characters. No field ever holds a secret: events are
    built from ids, URLs and our own messages, which never quote one.
    """

    action: str
    outcome: str
    at: datetime
    user: str | None = None
    tenant: str | None = None
    tracker: str | None = None
    source: str | None = None
    token_id: int | None = None
    scope: str | None = None
    matched_url: str | None = None
    fallback_from: str | None = None
    principal: str | None = None
    correlation_id: str | None = None
    error: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise InvalidInputError(f"unknown audit action {self.action!r}", hint=f"use one of {', '.join(ACTIONS)}")
        if self.outcome not in OUTCOMES:
            raise InvalidInputError(f"unknown audit outcome {self.outcome!r}", hint=f"use one of {', '.join(OUTCOMES)}")
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise InvalidInputError("an audit event's time must be a timezone-aware datetime")
        if self.token_id is not None and (type(self.token_id) is not int):
            raise InvalidInputError("an audit event's token_id must be an int or None")
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidInputError(f"an audit event's {name} must be a string or None, not {type(value).__name__}")
            clean = _clip(printable(value), MAX_DETAIL)
            if clean is not value:
                object.__setattr__(self, name, clean)


_new = object.__new__
_DEFAULTS: Final = {name: None for name in ("fallback_from", "principal", "correlation_id", "error", "detail")}


def _resolved_event(resolution: Resolution, at: datetime, acting_now: Acting | None) -> AuditEvent:
    """``AuditEvent("resolve", "ok", ...)`` for a successful resolution, without the checks
    (its values were checked when the resolution was made): the audited resolve path."""
    event = _new(AuditEvent)
    tracker = resolution.tracker
    event.__dict__.update(
        _DEFAULTS,
        action="resolve",
        outcome="ok",
        at=at,
        user=resolution.user,
        tenant=tracker.tenant,
        tracker=tracker.id,
        source=resolution.source,
        token_id=resolution.token_id,
        scope=resolution.scope,
        matched_url=resolution.matched_url,
        fallback_from=resolution.fallback_from,
    )
    if acting_now is not None:
        event.__dict__.update(principal=acting_now.principal, correlation_id=acting_now.correlation_id)
    return event


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- who acts, and which calls belong together ------------------------------------------------
@dataclass(frozen=True)
class Acting:
    """Who acts (``principal``, if the host knows) and the id grouping the calls of one action."""

    principal: str | None
    correlation_id: str


_ACTING: contextvars.ContextVar[Acting | None] = contextvars.ContextVar("tokenproviders_acting", default=None)


def _check_label(kind: str, value: object) -> str:
    if isinstance(value, str) and len(value) > MAX_LABEL:
        raise InvalidInputError(f"a {kind} may have at most {MAX_LABEL} characters")
    return _check_id(kind, value)


@contextmanager
def acting(principal: str | None = None, correlation_id: str | None = None) -> Iterator[Acting]:
    """Record ``principal`` and ``correlation_id`` with every audit event inside the block.

    Wrap one user action (one web request, one command) in it. ``principal`` is who acts as
    the host knows them (an administrator acting for a user, the user themself, a job's name);
    ``correlation_id`` groups the resolver calls of that one action (a request id): without
    one, an enclosing block's is kept, or a random one is made. Inside a nested block, a value
    not given is the enclosing block's. Bound to the current thread or asyncio task.
    """
    outer = _ACTING.get()
    if principal is None:
        principal = outer.principal if outer is not None else None
    else:
        principal = _check_label("principal", principal)
    if correlation_id is None:
        correlation_id = outer.correlation_id if outer is not None else os.urandom(8).hex()
    else:
        correlation_id = _check_label("correlation id", correlation_id)
    now = Acting(principal, correlation_id)
    token = _ACTING.set(now)
    try:
        yield now
    finally:
        _ACTING.reset(token)


def current_acting() -> Acting | None:
    """The :class:`Acting` of the innermost :func:`acting` block, or ``None`` outside any."""
    return _ACTING.get()


# -- outcomes ---------------------------------------------------------------------------------
# Most specific first: PersonalTokenRejectedError is both rejected and unusable.
_OUTCOME_OF: Final[tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...]] = (
    (CredentialsRejectedError, "rejected"),
    ((NotAuthorizedError, NoCredentialsError, PersonalTokenUnusableError), "refused"),
    (TrackerUnavailableError, "unavailable"),
    ((TrackerURLError, UnknownTrackerError, TokenNotFoundError), "not_found"),
    (TrackerRequestError, "request"),
    (InvalidInputError, "invalid"),
    (SecretUnreadableError, "unreadable"),
    (StoreError, "store"),
    ((PluginError, UnknownTrackerTypeError), "plugin"),
    (ConfigurationError, "configuration"),
)


def outcome_of(exc: BaseException) -> str:
    """The :data:`OUTCOMES` word for an exception an action raised.

    ``refused`` for :class:`~tokenproviders.NotAuthorizedError`,
    :class:`~tokenproviders.NoCredentialsError` and an unusable (expired, unreadable) personal
    token; ``rejected`` when the tracker refused the credentials (401/403); ``unavailable``,
    ``not_found`` and ``request`` for the tracker's other failures; otherwise the error's kind
    (``invalid``, ``unreadable``, ``store``, ``plugin``, ``configuration``), or ``error``.
    """
    for kinds, outcome in _OUTCOME_OF:
        if isinstance(exc, kinds):
            return outcome
    return "error"


# -- the resolver's side --------------------------------------------------------------------
class _Running:
    """The audited action in progress: the resolution it acts with, once known, and the tracker
    an inner call acted on (verifying a token before saving it picks one)."""

    __slots__ = ("resolution", "tracker")

    def __init__(self) -> None:
        self.resolution: Resolution | None = None
        self.tracker: Tracker | None = None


_RUNNING: contextvars.ContextVar[_Running | None] = contextvars.ContextVar("tokenproviders_running", default=None)


def note_resolution(resolution: Resolution) -> None:
    """Tell the audited action in progress (if any) which resolution it now acts with (the
    resolver calls this when it resolves again after a rejected personal token)."""
    running = _RUNNING.get()
    if running is not None:
        running.resolution = resolution


def observers(plugins: Plugins) -> list[Any]:
    """The ``tokenproviders_audit`` implementations (an empty list: record nothing)."""
    impls: list[Any] = plugins.manager.hook.tokenproviders_audit.get_hookimpls()
    return impls


def emit(plugins: Plugins, impls: list[Any], event: AuditEvent) -> None:
    """Hand ``event`` to each observer; one that raises is logged and the others still run."""
    for impl in impls:
        try:
            plugins.call_one(impl, event=event)
        except Exception:  # an observer cannot change or fail the action
            logger.exception("tokenproviders_audit observer %r failed", impl.plugin_name)


def audit_resolve(resolver: Any, impls: list[Any], user: str, tracker: Tracker) -> Resolution:
    """``resolver._resolve(user, tracker, ())`` recorded as one ``resolve`` event."""
    if _RUNNING.get() is not None:  # inside another audited action, which records it
        resolution: Resolution = resolver._resolve(user, tracker, ())
        note_resolution(resolution)
        return resolution
    token = _RUNNING.set(_Running())
    try:
        resolution = resolver._resolve(user, tracker, ())
    except BaseException as exc:
        _RUNNING.reset(token)
        _emit_failure(resolver, impls, "resolve", {"user": user, "tracker": tracker}, _Running(), exc, None)
        raise
    _RUNNING.reset(token)
    try:
        event = _resolved_event(resolution, resolver.now(), _ACTING.get())
    except Exception:  # never fail a resolution for its audit event
        logger.exception("could not build the audit event of a resolution")
        return resolution
    emit(resolver.plugins, impls, event)
    return resolution


S = TypeVar("S")
P = ParamSpec("P")
T = TypeVar("T")


def audited(
    action: str, *, via: str | None = None, source: str | None = None
) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """Record each call of a resolver (or ``via``: its attribute that is the resolver) method
    as one ``action`` event with its outcome; the method's result or error is passed on as it is.

    The event's user, tracker, URL and scope come from the arguments named ``user`` or
    ``owner``, ``tracker``, ``url`` and ``scope``; the credentials used from the resolution the
    call acted with (``source`` when there is none, as for explicit credentials).
    """

    def decorate(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        names = tuple(inspect.signature(method).parameters)[1:]

        @functools.wraps(method)
        def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            resolver: Any = getattr(self, via) if via is not None else self
            impls = observers(resolver.plugins)
            if not impls:
                return method(self, *args, **kwargs)
            running = _RUNNING.get()
            if running is not None:  # inside another audited action, which records it
                if running.tracker is None:
                    running.tracker = next((a for a in (*args, *kwargs.values()) if isinstance(a, Tracker)), None)
                result = method(self, *args, **kwargs)
                if isinstance(result, Resolution):
                    running.resolution = result
                return result
            arguments: dict[str, Any] = dict(zip(names, args, strict=False))
            arguments.update(kwargs)
            record = _Running()
            token = _RUNNING.set(record)
            try:
                result = method(self, *args, **kwargs)
            except BaseException as exc:
                _RUNNING.reset(token)
                _emit_failure(resolver, impls, action, arguments, record, exc, source)
                raise
            _RUNNING.reset(token)
            try:
                event = _event(resolver, action, "ok", arguments, record, result, None, source)
            except Exception:  # never fail a finished action for its audit event
                logger.exception("could not build the audit event of %s", action)
                return result
            emit(resolver.plugins, impls, event)
            return result

        return wrapper

    return decorate


def _emit_failure(
    resolver: Any,
    impls: list[Any],
    action: str,
    arguments: dict[str, Any],
    record: _Running,
    exc: BaseException,
    source: str | None,
) -> None:
    try:
        event = _event(resolver, action, outcome_of(exc), arguments, record, None, exc, source)
    except Exception:  # never replace the action's own error
        logger.exception("could not build the audit event of a failed %s", action)
        return
    emit(resolver.plugins, impls, event)


def _valid_id(value: object) -> str | None:
    try:
        return _check_id("audit", value)
    except InvalidInputError:
        return None


def _event(
    resolver: Any,
    action: str,
    outcome: str,
    arguments: dict[str, Any],
    record: _Running,
    result: object,
    exc: BaseException | None,
    source: str | None,
) -> AuditEvent:
    from .urls import normalize_url

    fields: dict[str, Any] = {"user": _valid_id(arguments.get("user", arguments.get("owner"))), "source": source}
    resolution = record.resolution
    tracker = arguments.get("tracker")
    if not isinstance(tracker, Tracker):
        tracker = record.tracker
    if tracker is not None:
        fields.update(tenant=tracker.tenant, tracker=tracker.id)
    if "url" in arguments:
        try:
            fields["matched_url"] = normalize_url(arguments["url"])
        except (InvalidInputError, TypeError):
            pass
    if "scope" in arguments:
        fields["scope"] = _valid_id(arguments["scope"])
    if isinstance(result, Resolution):
        resolution = result
    elif isinstance(result, ReportedIssue) and result.resolution is not None:
        resolution = result.resolution
    if resolution is not None:
        fields.update(
            user=resolution.user,
            tenant=resolution.tracker.tenant,
            tracker=resolution.tracker.id,
            source=resolution.source,
            token_id=resolution.token_id,
            scope=resolution.scope,
            matched_url=resolution.matched_url,
            fallback_from=resolution.fallback_from,
        )
    if isinstance(result, TokenInfo):
        fields.update(user=result.owner, token_id=result.id, scope=result.scope, matched_url=result.url)
    detail: str | None
    if exc is not None:
        fields["error"] = type(exc).__name__
        if isinstance(exc, PersonalTokenUnusableError) and resolution is None:
            fields.update(source="personal", token_id=exc.token_id)
        # Our messages never quote a secret; a library's might, so only its class is named.
        detail = exc.message if isinstance(exc, TokenProvidersError) else f"unexpected {type(exc).__name__}"
    else:
        detail = _success_detail(action, arguments, result)
    if detail is not None:
        secrets = [arguments.get("credentials"), resolution.credentials if resolution is not None else None]
        detail = _scrub(detail, [c.api_password for c in secrets if isinstance(c, Credentials)])
    acting_now = _ACTING.get()
    if acting_now is not None:
        fields.update(principal=acting_now.principal, correlation_id=acting_now.correlation_id)
    return AuditEvent(action, outcome, resolver.now(), detail=detail, **fields)


def _success_detail(action: str, arguments: dict[str, Any], result: object) -> str | None:
    if isinstance(result, ReportedIssue):
        return f"filed issue {result.id}"
    if isinstance(result, Identity):
        return f"the tracker knows the credentials as {result.login}"
    if action == "comment":
        return f"commented on issue {arguments.get('issue_id')}"
    if isinstance(result, TokenInfo):
        verb = "stored" if action == "token.set" else "deleted"
        return f"{verb} version {result.version}"
    return None


def _scrub(text: str, secrets: list[Secret]) -> str:
    """``text`` with any of ``secrets`` masked: a plugin's failure text might echo one."""
    for secret in secrets:
        try:
            value = secret.reveal()  # compared here, never kept or shown
        except TokenProvidersError:  # a sealed bot secret that cannot be opened
            continue
        if value and value in text:
            text = text.replace(value, _MASK)
    return text
