"""The embedded directory: tenants, memberships and trackers in the token database.

:class:`SQLiteDirectory` implements the :class:`~tokenproviders.directory.Directory` protocol
for the command-line tool and single-machine hosts; a host with its own database implements the
protocol instead. Trackers' bot passwords are sealed at rest by the one sealing layer
(:func:`~tokenproviders.stores.sealed.seal_bot_secret`), bound to tenant, tracker id, field,
``base_url`` and ``api_url``: a changed URL in the file makes them unreadable, and
``update_tracker`` re-seals them for the new URLs. Its administration methods mirror
:class:`~tokenproviders.directory.MemoryDirectory` (adding a member or tracker creates its
tenant). Obtain it as ``SQLiteDatabase(...).directory``.

Listing trackers (``trackers_of``, ``list_trackers``) opens no secret: a tracker's bot password
is a :class:`SealedBotSecret`, which keeps the sealed blob and opens it when the value is first
needed (a client is built, credentials are compared). One unreadable blob (a missing or wrong
key, a damaged or moved blob) so fails only where that tracker's bot credentials are used, with
a :class:`~tokenproviders.errors.SecretUnreadableError` naming the tracker; every other tracker
of the tenant, ``trackers_for`` and storing personal tokens keep working, and the tracker's bot
credentials can be set again. ``get_tracker`` opens the secret at once.

Every change (a tenant added or removed, a membership granted or revoked, a tracker added,
changed or removed) writes its entry into the database's audit trail in the same transaction,
with the principal and correlation id of the current :func:`tokenproviders.acting` block.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

from ..crypto import KeyRing
from ..errors import InvalidInputError, SecretUnreadableError, StoreError, TokenProvidersError, UnknownTrackerError
from ..model import Credentials, Secret, Tracker, _check_id, check_tenant_id, check_user_id
from ..urls import normalize_url
from ._sqlite_base import SQLiteCore, to_db_time
from .audit import record_change
from .sealed import BotBinding, open_bot_secret, seal_bot_secret, upgrade_legacy_bot_secret

__all__ = ["SQLiteDirectory", "SealedBotSecret"]

logger = logging.getLogger("tokenproviders.stores.sqlite")

_TRACKER_COLUMNS: Final = (
    "tenant, id, type, base_url, api_url, name, options, verify_tls, ca_bundle, bot_username, bot_secret, row_id"
)


#: What ``_tracker_values`` returns, and the columns a change is described by (same order).
_CHANGE_COLUMNS: Final = "type, base_url, api_url, name, options, verify_tls, ca_bundle, bot_username, bot_secret"
_CHANGE_NAMES: Final = ("type", "base_url", "api_url", "name", "options", "verify_tls", "ca_bundle", "bot_username")
#: Settings whose new value an audit entry shows (where the secrets go, and how).
_SHOWN: Final = frozenset({"type", "base_url", "api_url", "verify_tls", "ca_bundle"})


def _setting(name: str, value: Any) -> str:
    if name == "verify_tls":
        return f"verify_tls={bool(value)}"
    return f"{name}={value if value is not None else 'none'}"


def _describe_new(values: tuple[Any, ...]) -> str:
    """An audit detail for a new tracker: where it points, and whether it has bot credentials."""
    shown = [_setting(name, value) for name, value in zip(_CHANGE_NAMES, values, strict=False) if name in _SHOWN]
    bot = "with bot credentials" if values[8] is not None else "without bot credentials"
    return f"{' '.join(shown)}; {bot}"


def _describe_change(keyring: KeyRing, tracker: Tracker, old: Sequence[Any], values: tuple[Any, ...]) -> str:
    """An audit detail for a changed tracker: which settings changed (new values of those that
    decide where secrets go), and what happened to its bot credentials."""
    words: list[str] = []
    for index, name in enumerate(_CHANGE_NAMES):
        before, after = old[index], values[index]
        if name == "verify_tls":
            before, after = bool(before), bool(after)
        if before != after:
            words.append(_setting(name, after) if name in _SHOWN else f"{name} changed")
    bot = tracker.bot_credentials
    if bot is not None and old[8] is None:
        words.append("bot credentials added")
    elif bot is None and old[8] is not None:
        words.append("bot credentials removed")
    elif bot is not None:
        try:  # compared sealed to sealed would always differ (a fresh nonce each time)
            binding = BotBinding(tracker.tenant, tracker.id, old[1], old[2])
            same = _open_bot_secret(keyring, old[8], binding) == bot.api_password
        except SecretUnreadableError:
            same = False
        if not same:
            words.append("bot password replaced")
    return "; ".join(words) or "nothing changed"


def _open_bot_secret(keyring: KeyRing, blob: bytes, binding: BotBinding) -> Secret:
    try:
        return open_bot_secret(keyring, blob, binding)
    except SecretUnreadableError as exc:
        raise SecretUnreadableError(
            f"the bot credentials of tracker {binding.tenant}/{binding.tracker} cannot be opened: {exc.message}",
            hint=f"{exc.hint}; or set the tracker's bot credentials again"
            if exc.hint
            else ("set the tracker's bot credentials again"),
            key_id=exc.key_id,
        ) from None


def _row_name(row: Sequence[Any]) -> str:
    """How a trackers row is named in errors: ``tenant/id``, or ``#row_id`` if those are odd."""
    tenant, tracker_id = row[0], row[1]
    try:
        check_tenant_id(tenant)
        _check_id("tracker", tracker_id)
    except (TokenProvidersError, TypeError):
        return f"#{row[11]}"
    return f"{tenant}/{tracker_id}"


def _malformed(row: Sequence[Any], column: str, what: str) -> StoreError:
    # Names the row and the column, never the value: a damaged column may hold anything.
    name = _row_name(row)
    return StoreError(
        f"the trackers row {name} of the token database is malformed: its {column} {what}",
        hint="correct the tracker's settings (trackers update/remove and add again), or restore the database",
        table="trackers",
        row=name,
    )


def _options(row: Sequence[Any]) -> dict[str, Any]:
    if not isinstance(row[6], str):
        raise _malformed(row, "options", "is not JSON text")
    try:
        options = json.loads(row[6])
    except ValueError:
        raise _malformed(row, "options", "is not valid JSON") from None
    if not isinstance(options, dict):
        raise _malformed(row, "options", "is not a JSON object")
    return options


def _diagnosed(row: Sequence[Any], exc: BaseException) -> StoreError:
    """Which column made ``Tracker(...)`` refuse the row (the slow path, for the error only)."""
    if _row_name(row).startswith("#"):
        return _malformed(row, "tenant or id", "is not a valid id")
    if not isinstance(row[2], str) or not row[2]:
        return _malformed(row, "type", "is not a tracker type name")
    for index, column in ((3, "base_url"), (4, "api_url")):
        if row[index] is None and column == "api_url":
            continue
        try:
            normalize_url(row[index])
        except (TokenProvidersError, TypeError, ValueError):
            return _malformed(row, column, "is not a valid http(s) URL")
    if row[7] == 0 and row[8]:
        return _malformed(row, "verify_tls", "is off while a ca_bundle is set (they contradict each other)")
    return _malformed(row, "settings", f"do not make a valid tracker ({type(exc).__name__})")


def _binding(row: Sequence[Any]) -> BotBinding:
    """What the bot credential of a row of ``_TRACKER_COLUMNS`` is sealed for."""
    return BotBinding(row[0], row[1], row[3], row[4])


class SealedBotSecret(Secret):
    """A tracker's bot password as listed by :class:`SQLiteDirectory`: the sealed blob, opened
    the first time the value is needed (``reveal()``, ``bool()``, ``==``).

    It is a :class:`~tokenproviders.model.Secret` in every respect (masked ``repr``, no
    pickling); opening it raises :class:`~tokenproviders.errors.SecretUnreadableError` naming
    the tracker if the blob cannot be opened, each time it is asked for.
    """

    __slots__ = ("_binding", "_blob", "_keyring", "_opened")
    _blob: bytes
    _keyring: KeyRing
    _opened: Secret | None
    _binding: BotBinding

    def __init__(self, keyring: KeyRing, blob: bytes, binding: BotBinding) -> None:
        object.__setattr__(self, "_keyring", keyring)
        object.__setattr__(self, "_blob", blob)
        object.__setattr__(self, "_binding", binding)
        object.__setattr__(self, "_opened", None)

    @property
    def _value(self) -> str:  # type: ignore[override]
        # Secret reads ``self._value`` (reveal, bool, ==): this property shadows its slot.
        opened: Secret | None = object.__getattribute__(self, "_opened")
        if opened is None:
            opened = _open_bot_secret(self._keyring, self._blob, self._binding)
            object.__setattr__(self, "_opened", opened)
        return opened.reveal()


class SQLiteDirectory:
    """Tenants, user memberships and trackers (with sealed bot credentials) in SQLite."""

    def __init__(self, core: SQLiteCore) -> None:
        self._core = core
        self._reported: set[str] = set()  # malformed rows already logged

    def __repr__(self) -> str:
        return f"SQLiteDirectory({self._core.path!r})"

    @property
    def _keyring(self) -> KeyRing:
        keyring = self._core.keyring
        assert keyring is not None  # SQLiteDatabase always has one
        return keyring

    def upgrade_legacy_bot_secrets(self) -> int:
        """Re-seal bot credentials sealed before their URLs were bound (schema 3 and older) for
        their tenant, tracker id, ``base_url`` and ``api_url``; those the key ring cannot open
        are left (and say so when used). Returns how many were upgraded."""
        rows = self._core.read(
            "SELECT row_id, tenant, id, base_url, api_url, bot_secret FROM trackers"
            " WHERE bot_secret IS NOT NULL AND bound_urls = 0"
        )
        if not rows:
            return 0
        keyring = self._core.sealing_keyring()
        upgraded: list[tuple[bytes, str, int, bytes]] = []
        for row_id, tenant, tracker_id, base_url, api_url, blob in rows:
            try:
                new = upgrade_legacy_bot_secret(keyring, blob, BotBinding(tenant, tracker_id, base_url, api_url))
            except SecretUnreadableError as exc:
                logger.warning(
                    "could not bind the bot credentials of tracker %s/%s to its URLs: %s",
                    tenant,
                    tracker_id,
                    exc.message,
                )
                continue
            upgraded.append((new, keyring.primary_id, row_id, blob))

        def run(conn: sqlite3.Connection) -> int:
            self._core.refuse_retired(conn, keyring.primary_id)
            return int(
                conn.executemany(
                    "UPDATE trackers SET bot_secret = ?, key_id = ?, bound_urls = 1"
                    " WHERE row_id = ? AND bot_secret = ?",
                    upgraded,
                ).rowcount
            )

        return int(self._core.write(run, "bind bot credentials to their URLs")) if upgraded else 0

    # -- Directory protocol -------------------------------------------------------------
    def tenants_of(self, user: str) -> frozenset[str]:
        return frozenset([row[0] for row in self._core.read("SELECT tenant FROM members WHERE user = ?", (user,))])

    def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
        """The tenant's trackers; a malformed row is skipped with a logged error (see
        :meth:`broken_trackers`), so it fails alone instead of taking its tenant down."""
        rows = self._core.read(f"SELECT {_TRACKER_COLUMNS} FROM trackers WHERE tenant = ? ORDER BY id", (tenant,))  # noqa: S608 - constant SQL, values bound
        return tuple(self._listed(rows))

    def _listed(self, rows: Iterable[Sequence[Any]]) -> list[Tracker]:
        trackers: list[Tracker] = []
        for row in rows:
            try:
                trackers.append(self._tracker(row))
            except StoreError as exc:
                # Once per problem and process: a host lists trackers on every request.
                if exc.message not in self._reported:
                    self._reported.add(exc.message)
                    logger.error("skipped a tracker: %s", exc.message)
        return trackers

    def _tracker(self, row: Sequence[Any], *, open_now: bool = False) -> Tracker:
        tenant, tracker_id = row[0], row[1]
        options = _options(row)
        if type(row[7]) is not int or row[7] not in (0, 1):
            raise _malformed(row, "verify_tls", "is not 0 or 1")
        if row[10] is not None and not isinstance(row[10], bytes):
            raise _malformed(row, "bot_secret", "is not a sealed blob")
        if row[9] is not None and not isinstance(row[9], str):
            raise _malformed(row, "bot_username", "is not text")
        if not isinstance(row[5], str):
            raise _malformed(row, "name", "is not text")
        if row[8] is not None and not isinstance(row[8], str):
            raise _malformed(row, "ca_bundle", "is not a path")
        credentials = None
        if row[10] is not None and not open_now:
            credentials = Credentials(SealedBotSecret(self._keyring, row[10], _binding(row)), row[9])
        try:
            tracker = Tracker(
                tenant=tenant,
                id=tracker_id,
                type=row[2],
                base_url=row[3],
                api_url=row[4],
                name=row[5],
                bot_credentials=credentials,
                options=options,
                verify_tls=bool(row[7]),
                ca_bundle=row[8],
            )
        except (TokenProvidersError, TypeError, ValueError) as exc:
            raise _diagnosed(row, exc) from None
        if row[10] is not None and open_now:
            # Opened only once the row is known to be well-formed.
            opened = Credentials(_open_bot_secret(self._keyring, row[10], _binding(row)), row[9])
            tracker = dataclasses.replace(tracker, bot_credentials=opened)
        return tracker

    def broken_trackers(self, tenant: str | None = None) -> dict[tuple[str, str], StoreError]:
        """The trackers rows (of ``tenant``, or of every tenant) that are malformed, by
        ``(tenant, id)``, each with the :class:`StoreError` that says what is wrong.
        ``trackers_of`` and ``list_trackers`` skip them; :func:`~tokenproviders.find_tracker`
        raises their error instead of saying the tracker does not exist."""
        if tenant is None:
            rows = self._core.read(f"SELECT {_TRACKER_COLUMNS} FROM trackers ORDER BY tenant, id")  # noqa: S608 - constant SQL
        else:
            rows = self._core.read(f"SELECT {_TRACKER_COLUMNS} FROM trackers WHERE tenant = ? ORDER BY id", (tenant,))  # noqa: S608 - constant SQL, values bound
        broken: dict[tuple[str, str], StoreError] = {}
        for row in rows:
            try:
                self._tracker(row)
            except StoreError as exc:
                broken[(str(row[0]), str(row[1]))] = exc
        return broken

    # -- tenants -------------------------------------------------------------------------
    def add_tenant(self, tenant: str, name: str = "") -> bool:
        """Create a tenant; returns ``False`` if it already existed (nothing changes then)."""
        check_tenant_id(tenant)
        now = to_db_time(self._core.clock())

        def run(conn: sqlite3.Connection) -> bool:
            added = conn.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (tenant, name, now),
            ).rowcount
            if added:
                record_change(self._core, conn, "tenant.add", tenant=tenant)
            return bool(added)

        added: bool = self._core.write(run, "add a tenant")
        return added

    def list_tenants(self) -> list[str]:
        return [row[0] for row in self._core.read("SELECT id FROM tenants ORDER BY id")]

    def tenants(self) -> frozenset[str]:
        """Every tenant id (as :meth:`MemoryDirectory.tenants`)."""
        return frozenset(self.list_tenants())

    def remove_tenant(self, tenant: str) -> dict[str, int]:
        """Remove a tenant with its memberships, its trackers and the personal tokens scoped to
        it, in one transaction. Returns how many of each were removed."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            if conn.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant,)).fetchone() is None:
                raise InvalidInputError(f"there is no tenant {tenant!r}", hint="list the tenants to see which exist")
            counts = {
                "members": conn.execute("DELETE FROM members WHERE tenant = ?", (tenant,)).rowcount,
                "trackers": conn.execute("DELETE FROM trackers WHERE tenant = ?", (tenant,)).rowcount,
                "tokens": conn.execute("DELETE FROM tokens WHERE scope = ?", (tenant,)).rowcount,
            }
            conn.execute("DELETE FROM tenants WHERE id = ?", (tenant,))
            record_change(
                self._core,
                conn,
                "tenant.remove",
                tenant=tenant,
                detail=", ".join(f"{count} {what} removed" for what, count in counts.items()),
            )
            return counts

        counts: dict[str, int] = self._core.write(run, "remove a tenant")
        logger.info("removed tenant %r (%s)", tenant, counts)
        return counts

    # -- memberships ---------------------------------------------------------------------
    def add_member(self, user: str, tenant: str) -> None:
        """Authorize ``user`` for ``tenant`` (creating the tenant if needed)."""
        check_user_id(user)
        check_tenant_id(tenant)
        now = to_db_time(self._core.clock())

        def run(conn: sqlite3.Connection) -> None:
            self._add_tenants(conn, [tenant], now)
            if conn.execute(
                "INSERT INTO members (user, tenant, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (user, tenant, now),
            ).rowcount:
                record_change(self._core, conn, "member.grant", user=user, tenant=tenant)

        self._core.write(run, "add a member")

    def _add_tenants(self, conn: sqlite3.Connection, tenants: Iterable[str], now: str) -> None:
        """Create the tenants that do not exist yet (each audited as ``tenant.add``)."""
        for tenant in tenants:
            if conn.execute(
                "INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", (tenant, now)
            ).rowcount:
                record_change(self._core, conn, "tenant.add", tenant=tenant)

    def add_members(self, memberships: Iterable[tuple[str, str]]) -> int:
        """Authorize many ``(user, tenant)`` pairs in one transaction (bulk import); returns
        how many were new."""
        pairs = [(check_user_id(user), check_tenant_id(tenant)) for user, tenant in memberships]
        now = to_db_time(self._core.clock())

        def run(conn: sqlite3.Connection) -> int:
            self._add_tenants(conn, sorted({tenant for _, tenant in pairs}), now)
            added = 0
            for user, tenant in pairs:  # one by one: each new membership is audited
                if conn.execute(
                    "INSERT INTO members (user, tenant, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (user, tenant, now),
                ).rowcount:
                    record_change(self._core, conn, "member.grant", user=user, tenant=tenant)
                    added += 1
            return added

        added: int = self._core.write(run, "add members")
        return added

    def remove_member(self, user: str, tenant: str) -> bool:
        """Revoke ``user``'s membership of ``tenant`` at once; ``False`` if there was none."""

        def run(conn: sqlite3.Connection) -> bool:
            removed = conn.execute("DELETE FROM members WHERE user = ? AND tenant = ?", (user, tenant)).rowcount
            if removed:
                record_change(self._core, conn, "member.revoke", user=user, tenant=tenant)
            return bool(removed)

        revoked: bool = self._core.write(run, "remove a member")
        return revoked

    def members_of(self, tenant: str) -> list[str]:
        return [row[0] for row in self._core.read("SELECT user FROM members WHERE tenant = ? ORDER BY user", (tenant,))]

    # -- trackers ------------------------------------------------------------------------
    def _tracker_values(self, tracker: Tracker) -> tuple[Any, ...]:
        if not isinstance(tracker, Tracker):
            raise InvalidInputError("trackers are given as Tracker objects")
        try:
            options = json.dumps(dict(tracker.options), sort_keys=True)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"the options of tracker {tracker.label} must be JSON values (strings, numbers, lists, maps)"
            ) from None
        bot = tracker.bot_credentials
        keyring = self._core.sealing_keyring()
        binding = BotBinding(tracker.tenant, tracker.id, tracker.base_url, tracker.api_url)
        blob = seal_bot_secret(keyring, bot.api_password, binding) if bot is not None else None
        return (
            tracker.type,
            tracker.base_url,
            tracker.api_url,
            tracker.name,
            options,
            int(tracker.verify_tls),
            tracker.ca_bundle,
            bot.api_username if bot is not None else None,
            blob,
            keyring.primary_id if bot is not None else None,
        )

    def add_tracker(self, tracker: Tracker, *, replace: bool = False) -> None:
        """Add a tracker (creating its tenant if needed); an existing id is refused unless
        ``replace=True``. Bot credentials are sealed before they are stored."""
        values = self._tracker_values(tracker)
        now = to_db_time(self._core.clock())

        def run(conn: sqlite3.Connection) -> None:
            self._refuse_retired(conn, values)
            self._add_tenants(conn, [tracker.tenant], now)
            exists = conn.execute(
                "SELECT 1 FROM trackers WHERE tenant = ? AND id = ?", (tracker.tenant, tracker.id)
            ).fetchone()
            if exists and not replace:
                raise InvalidInputError(
                    f"tenant {tracker.tenant!r} already has a tracker {tracker.id!r}",
                    hint="pass replace=True (or use update_tracker) to change it, or choose another id",
                )
            if exists:
                self._update(conn, tracker, values, now)
            else:
                conn.execute(
                    "INSERT INTO trackers (tenant, id, type, base_url, api_url, name, options, verify_tls,"
                    " ca_bundle, bot_username, bot_secret, key_id, created_at, updated_at, bound_urls)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (tracker.tenant, tracker.id, *values, now, now),
                )
                record_change(
                    self._core,
                    conn,
                    "tracker.add",
                    tenant=tracker.tenant,
                    tracker=tracker.id,
                    detail=_describe_new(values),
                )

        self._core.write(run, "add a tracker")

    def _refuse_retired(self, conn: sqlite3.Connection, values: tuple[Any, ...]) -> None:
        if values[-1] is not None:  # the key id of the sealed bot secret
            self._core.refuse_retired(conn, values[-1])

    def _update(self, conn: sqlite3.Connection, tracker: Tracker, values: tuple[Any, ...], now: str) -> int:
        self._refuse_retired(conn, values)
        old = conn.execute(
            f"SELECT {_CHANGE_COLUMNS} FROM trackers WHERE tenant = ? AND id = ?",  # noqa: S608 - constant SQL
            (tracker.tenant, tracker.id),
        ).fetchone()
        if old is None:
            return 0
        changed: int = conn.execute(
            "UPDATE trackers SET type = ?, base_url = ?, api_url = ?, name = ?, options = ?, verify_tls = ?,"
            " ca_bundle = ?, bot_username = ?, bot_secret = ?, key_id = ?, updated_at = ?, bound_urls = 1"
            " WHERE tenant = ? AND id = ?",
            (*values, now, tracker.tenant, tracker.id),
        ).rowcount
        if changed:
            record_change(
                self._core,
                conn,
                "tracker.change",
                tenant=tracker.tenant,
                tracker=tracker.id,
                detail=_describe_change(self._keyring, tracker, old, values),
            )
        return changed

    def update_tracker(self, tracker: Tracker) -> None:
        """Replace an existing tracker's settings and bot credentials (re-sealed)."""
        values = self._tracker_values(tracker)
        now = to_db_time(self._core.clock())
        if not self._core.write(lambda conn: self._update(conn, tracker, values, now), "update a tracker"):
            raise UnknownTrackerError(f"tenant {tracker.tenant!r} has no tracker {tracker.id!r}")

    def remove_tracker(self, tenant: str, tracker_id: str) -> None:
        def run(conn: sqlite3.Connection) -> int:
            removed: int = conn.execute(
                "DELETE FROM trackers WHERE tenant = ? AND id = ?", (tenant, tracker_id)
            ).rowcount
            if removed:
                record_change(self._core, conn, "tracker.remove", tenant=tenant, tracker=tracker_id)
            return removed

        removed = self._core.write(run, "remove a tracker")
        if not removed:
            raise UnknownTrackerError(f"tenant {tenant!r} has no tracker {tracker_id!r}")

    def get_tracker(self, tenant: str, tracker_id: str) -> Tracker:
        """The tracker with its bot credentials opened, or :class:`UnknownTrackerError`."""
        row = self._core.read_one(
            f"SELECT {_TRACKER_COLUMNS} FROM trackers WHERE tenant = ? AND id = ?",  # noqa: S608 - constant SQL, values bound
            (tenant, tracker_id),
        )
        if row is None:
            known = ", ".join(
                r[0] for r in self._core.read("SELECT id FROM trackers WHERE tenant = ? ORDER BY id", (tenant,))
            )
            raise UnknownTrackerError(
                f"tenant {tenant!r} has no tracker {tracker_id!r} (its trackers: {known or 'none'})"
            )
        return self._tracker(row, open_now=True)

    def list_trackers(self, tenant: str | None = None) -> list[Tracker]:
        """Trackers of ``tenant`` (every tenant's if ``None``), ordered by tenant and id;
        malformed rows are skipped with a logged error, as by :meth:`trackers_of`."""
        if tenant is not None:
            return list(self.trackers_of(tenant))
        rows = self._core.read(f"SELECT {_TRACKER_COLUMNS} FROM trackers ORDER BY tenant, id")  # noqa: S608 - constant SQL, values bound
        return self._listed(rows)
