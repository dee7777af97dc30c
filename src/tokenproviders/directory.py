"""What the host tells us: which tenants a user belongs to, and which trackers a tenant has.

A host with its own database implements :class:`Directory` (two methods). :class:`MemoryDirectory`
is a complete in-memory implementation for tests and small hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol, runtime_checkable

from .errors import InvalidInputError, UnknownTrackerError
from .model import Tracker, check_tenant_id, check_user_id

__all__ = ["Directory", "MemoryDirectory", "find_tracker"]


@runtime_checkable
class Directory(Protocol):
    """The host's answer to *who may act where*.

    ``tenants_of`` is called on every resolution before any token is looked at, so it must be
    authoritative (a revoked membership must disappear at once) and cheap.
    """

    def tenants_of(self, user: str) -> Collection[str]:
        """The ids of the tenants ``user`` is authorized for (empty if none or unknown)."""
        ...

    def trackers_of(self, tenant: str) -> Sequence[Tracker]:
        """The trackers configured in ``tenant`` (empty if none or unknown)."""
        ...


def find_tracker(directory: Directory, tenant: str, tracker_id: str) -> Tracker:
    """The tracker ``tracker_id`` of ``tenant``, or :class:`UnknownTrackerError`.

    A directory that stores trackers itself may skip rows it cannot read in ``trackers_of``
    and offer ``broken_trackers(tenant)`` (``{(tenant, id): error}``, as
    :class:`~tokenproviders.stores.sqlite_directory.SQLiteDirectory` does): such a tracker's
    error is raised instead of saying it does not exist.
    """
    trackers = directory.trackers_of(tenant)
    for tracker in trackers:
        if tracker.id == tracker_id:
            return tracker
    broken_trackers = getattr(directory, "broken_trackers", None)
    if callable(broken_trackers):
        error = broken_trackers(tenant).get((tenant, tracker_id))
        if isinstance(error, Exception):
            raise error
    known = ", ".join(sorted(t.id for t in trackers)) or "none"
    raise UnknownTrackerError(
        f"tenant {tenant!r} has no tracker {tracker_id!r} (its trackers: {known})"
    )


class MemoryDirectory:
    """An in-memory :class:`Directory`, thread-safe.

    >>> d = MemoryDirectory()
    >>> d.add_member("alice", "acme")
    >>> sorted(d.tenants_of("alice"))
    ['acme']
    """

    def __init__(
        self,
        *,
        memberships: Iterable[tuple[str, str]] = (),
        trackers: Iterable[Tracker] = (),
    ) -> None:
        self._lock = threading.Lock()
        self._tenants: set[str] = set()
        self._members: dict[str, set[str]] = {}
        self._trackers: dict[str, dict[str, Tracker]] = {}
        for user, tenant in memberships:
            self.add_member(user, tenant)
        for tracker in trackers:
            self.add_tracker(tracker)

    # -- Directory protocol -------------------------------------------------------------
    def tenants_of(self, user: str) -> frozenset[str]:
        return frozenset(self._members.get(user, ()))

    def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
        return tuple(self._trackers.get(tenant, {}).values())

    # -- administration -----------------------------------------------------------------
    def add_tenant(self, tenant: str) -> None:
        check_tenant_id(tenant)
        with self._lock:
            self._tenants.add(tenant)
            self._trackers.setdefault(tenant, {})

    def tenants(self) -> frozenset[str]:
        return frozenset(self._tenants)

    def add_member(self, user: str, tenant: str) -> None:
        check_user_id(user)
        self.add_tenant(tenant)
        with self._lock:
            self._members.setdefault(user, set()).add(tenant)

    def remove_member(self, user: str, tenant: str) -> None:
        with self._lock:
            self._members.get(user, set()).discard(tenant)

    def add_tracker(self, tracker: Tracker, *, replace: bool = False) -> None:
        if not isinstance(tracker, Tracker):
            raise InvalidInputError("add_tracker() takes a Tracker")
        self.add_tenant(tracker.tenant)
        with self._lock:
            existing = self._trackers[tracker.tenant]
            if tracker.id in existing and not replace:
                raise InvalidInputError(
                    f"tenant {tracker.tenant!r} already has a tracker {tracker.id!r}",
                    hint="pass replace=True to change it, or choose another id",
                )
            existing[tracker.id] = tracker

    def remove_tracker(self, tenant: str, tracker_id: str) -> None:
        with self._lock:
            if self._trackers.get(tenant, {}).pop(tracker_id, None) is None:
                raise UnknownTrackerError(f"tenant {tenant!r} has no tracker {tracker_id!r}")
