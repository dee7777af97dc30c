"""The hook specifications of the ``tokenproviders`` plugin contract.

Every hook is prefixed ``tokenproviders_``. Implement them with :data:`tokenproviders.hookimpl`
in a module or object exposed under the ``tokenproviders`` entry-point group. Implementations
may accept fewer arguments than the spec names; new arguments may be added to a spec in later
versions without breaking existing plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .audit import AuditEvent
    from .crypto import KeyMaterial
    from .model import Resolution
    from .sources import CredentialRequest
    from .trackertype import TrackerType

PROJECT_NAME = "tokenproviders"

# The spec marker is private: plugins only ever need the implementation marker.
_hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = [
    "PROJECT_NAME",
    "tokenproviders_register_tracker_types",
    "tokenproviders_credentials",
    "tokenproviders_resolved",
    "tokenproviders_audit",
    "tokenproviders_keys",
]


@_hookspec
def tokenproviders_register_tracker_types(register: Callable[[TrackerType], None]) -> None:
    """Register the tracker types a plugin provides.

    Call ``register(MyTrackerType())`` once per type. A type whose name is already taken, or
    whose declaration is malformed, marks the plugin as broken instead of failing the host.
    The return value is ignored.
    """


@_hookspec(firstresult=True)
def tokenproviders_credentials(request: CredentialRequest) -> Resolution | None:
    """Decide the credentials for ``request.user`` on ``request.tracker``.

    ``firstresult``: the first implementation returning a :class:`~tokenproviders.Resolution`
    wins; return ``None`` to defer to the next source. Build the result with
    ``request.resolution(credentials, source="my-source", reason="...")``.

    The built-in personal-token source runs first (``tryfirst``) and the bot source last
    (``trylast``); third-party sources run in between and must not use ``tryfirst``,
    ``trylast`` or a wrapper themselves (such a plugin is refused and listed as broken). The
    entry-point names ``personal`` and ``bot`` are reserved for the built-ins. By the time this
    hook is called, the user is known to be authorized for the tracker's tenant. Raise a
    :class:`~tokenproviders.errors.TokenProvidersError` to stop the resolution with an error;
    never swallow an error and return ``None``, or the bot would silently be used instead.
    """


@_hookspec
def tokenproviders_resolved(resolution: Resolution) -> None:
    """Observe a finished resolution (metrics, the credentials a host is about to use).

    Called once per successful resolution, including those a ``verify``, ``report_issue`` or
    ``add_comment`` makes before it acts (and again after a rejected personal token when the
    policy falls back). The return value is ignored and the resolution is immutable, so an
    observer cannot change the outcome. An exception raised by an observer is logged with the
    plugin's name and does not fail the resolution. Never log ``resolution.credentials``.
    For an audit trail implement :func:`tokenproviders_audit`, which also sees failures.
    """


@_hookspec
def tokenproviders_audit(event: AuditEvent) -> None:
    """Observe one audited action: an :class:`~tokenproviders.AuditEvent` with its outcome.

    Called once per public :class:`~tokenproviders.Resolver` action (``resolve``, ``client``,
    ``verify``, ``report_issue``, ``add_comment``, ``whoami_with``) and per ``tokens.set`` and
    ``tokens.delete``, whether it succeeded, was refused or failed (the event's ``outcome``
    says which), after it finished. An action that calls another is one event. ``principal``
    and ``correlation_id`` come from :func:`tokenproviders.acting`. The event is immutable and
    holds no secret; the return value is ignored, and an exception raised by an observer is
    logged with the plugin's name and changes nothing for the action. The resolver builds no
    event while no plugin implements this hook.
    """


@_hookspec(firstresult=True)
def tokenproviders_keys() -> KeyMaterial | None:
    """Supply the key ring's keys from a KMS, Vault or similar, instead of a key file.

    ``firstresult``: return a :class:`~tokenproviders.crypto.KeyMaterial` (the keys and the
    primary key's id), or ``None`` to let the next provider (and finally the environment
    variable or key file) supply them.
    """
