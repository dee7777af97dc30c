"""The directory on PostgreSQL: tenants, memberships and trackers next to the tokens.

:class:`PostgresDirectory` implements the :class:`~tokenproviders.directory.Directory` protocol
over the tables of a :class:`~tokenproviders.stores.postgres.PostgresRows` (same pool, schema
and migrations), for hosts on several machines that keep their directory with the tokens::

    rows = PostgresRows("postgresql://app@db.internal/kiwi", schema="public")
    directory = PostgresDirectory(rows, keyring)
    store = SealedTokenStore(rows, keyring)

A tracker's bot password is sealed with :func:`~tokenproviders.stores.sealed.seal_bot_secret`,
bound to tenant, tracker id, field, ``base_url`` and ``api_url``: a blob copied to another
tracker, or left in place when the URLs are edited behind the library's back, fails to open and
is never sent. When an admin changes the URLs through this class the blob is re-sealed
(:func:`~tokenproviders.stores.sealed.reseal_bot_secret`) in the same transaction. Listing
trackers opens no secret (:class:`PostgresBotSecret` opens on first use), and a malformed row
fails alone with a :class:`~tokenproviders.errors.StoreError` naming it, as in
:class:`~tokenproviders.stores.sqlite_directory.SQLiteDirectory`.

Every admin change writes its audit entry (principal and correlation id from
:func:`~tokenproviders.acting`) in the transaction that makes it. Concurrent admins are
serialized per row (``SELECT ... FOR UPDATE``); nothing is lost.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from ..audit import AuditEvent, current_acting
from ..errors import InvalidInputError, SecretUnreadableError, StoreError, TokenProvidersError, UnknownTrackerError
from ..model import Credentials, Secret, Tracker, _check_id, check_tenant_id, check_user_id
from ..urls import normalize_url
from .rows import AuditRow
from .sealed import BotBinding, open_bot_secret, reseal_bot_secret, seal_bot_secret

if TYPE_CHECKING:
    import psycopg

    from ..crypto import KeyRing
    from .postgres import PostgresRows

__all__ = ["PostgresDirectory", "PostgresBotSecret"]

logger = logging.getLogger("tokenproviders.stores.postgres")

_COLUMNS: Final = (
    "tenant, id, type, base_url, api_url, name, options, verify_tls, ca_bundle, bot_username, bot_secret,"
    " row_id, key_id"
)
_SETTINGS: Final = ("type", "base_url", "api_url", "name", "options", "verify_tls", "ca_bundle", "bot_username")
#: Settings whose new value an audit entry shows (where the secrets go, and how).
_SHOWN: Final = frozenset({"type", "base_url", "api_url", "verify_tls", "ca_bundle"})


def _binding(tenant: str, tracker_id: str, base_url: str, api_url: str | None) -> BotBinding:
    return BotBinding(tenant, tracker_id, base_url, api_url)


def _open(keyring: KeyRing, blob: bytes, binding: BotBinding) -> Secret:
    try:
        return open_bot_secret(keyring, blob, binding)
    except SecretUnreadableError as exc:
        raise SecretUnreadableError(
            f"the bot credentials of tracker {binding.tenant}/{binding.tracker} cannot be opened: {exc.message}",
            hint="set the tracker's bot credentials again (set_bot_credentials)",
            key_id=exc.key_id,
        ) from None


class PostgresBotSecret(Secret):
    """A listed tracker's bot password: the sealed blob, opened the first time the value is
    needed (``reveal()``, ``bool()``, ``==``); an unreadable blob raises
    :class:`~tokenproviders.errors.SecretUnreadableError` naming the tracker, each time."""

    __slots__ = ("_binding", "_blob", "_keyring", "_opened")
    _binding: BotBinding
    _blob: bytes
    _keyring: KeyRing
    _opened: Secret | None

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
            opened = _open(self._keyring, self._blob, self._binding)
            object.__setattr__(self, "_opened", opened)
        return opened.reveal()


def _row_name(row: Sequence[Any]) -> str:
    try:
        check_tenant_id(row[0])
        _check_id("tracker", row[1])
    except (TokenProvidersError, TypeError):
        return f"#{row[11]}"
    return f"{row[0]}/{row[1]}"


def _malformed(row: Sequence[Any], column: str, what: str) -> StoreError:
    # Names the row and the column, never the value: a damaged column may hold anything.
    name = _row_name(row)
    return StoreError(
        f"the trackers row {name} of the PostgreSQL directory is malformed: its {column} {what}",
        hint="correct the tracker's settings (update_tracker, or remove and add it again)",
        table="tokenproviders_trackers",
        row=name,
    )


def _diagnosed(row: Sequence[Any], exc: BaseException) -> StoreError:
    """Which column made ``Tracker(...)`` refuse the row (the slow path, for the error only)."""
    if _row_name(row).startswith("#"):
        return _malformed(row, "tenant or id", "is not a valid id")
    if not row[2]:
        return _malformed(row, "type", "is not a tracker type name")
    for index, column in ((3, "base_url"), (4, "api_url")):
        if row[index] is None and column == "api_url":
            continue
        try:
            normalize_url(row[index])
        except (TokenProvidersError, TypeError, ValueError):
            return _malformed(row, column, "is not a valid http(s) URL")
    if not row[7] and row[8]:
        return _malformed(row, "verify_tls", "is off while a ca_bundle is set (they contradict each other)")
    return _malformed(row, "settings", f"do not make a valid tracker ({type(exc).__name__})")


def _options_json(tracker: Tracker) -> str:
    try:
        return json.dumps(dict(tracker.options), sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"the options of tracker {tracker.label} must be JSON values (strings, numbers, lists, maps)"
        ) from None


class PostgresDirectory:
    """Tenants, user memberships and trackers (with sealed bot credentials) in PostgreSQL.

    :param rows: the :class:`~tokenproviders.stores.postgres.PostgresRows` whose pool, schema
        and migrations it shares.
    :param keyring: seals and opens the bot credentials.
    """

    def __init__(self, rows: PostgresRows, keyring: KeyRing) -> None:
        self._rows = rows
        self._keyring = keyring
        self._reported: set[str] = set()  # malformed rows already logged

    def __repr__(self) -> str:
        return f"PostgresDirectory(schema={self._rows.schema!r})"

    # -- plumbing --------------------------------------------------------------------------
    def _read(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        statement = self._rows._q(text)
        return self._rows._run(lambda conn: conn.execute(statement, params).fetchall(), "read the directory", read=True)

    def _audit(self, conn: psycopg.Connection[Any], action: str, **fields: Any) -> None:
        acting_now = current_acting()
        if acting_now is not None:
            fields.setdefault("principal", acting_now.principal)
            fields.setdefault("correlation_id", acting_now.correlation_id)
        event = AuditEvent(action=action, outcome="ok", at=datetime.now(timezone.utc), **fields)
        values = {f.name: getattr(event, f.name) for f in dataclasses.fields(AuditRow) if f.name != "id"}
        self._rows._insert_audit(conn, [AuditRow(0, **values)])

    def _add_tenants(self, conn: psycopg.Connection[Any], tenants: Iterable[str]) -> None:
        for tenant in tenants:
            if conn.execute(
                self._rows._q(
                    "INSERT INTO {s}.tokenproviders_tenants (id, created_at) VALUES (%s, now())"
                    " ON CONFLICT (id) DO NOTHING"
                ),
                (tenant,),
            ).rowcount:
                self._audit(conn, "tenant.add", tenant=tenant)

    # -- Directory protocol ----------------------------------------------------------------
    def tenants_of(self, user: str) -> frozenset[str]:
        rows = self._read('SELECT tenant FROM {s}.tokenproviders_members WHERE "user" = %s', (user,))
        return frozenset(row[0] for row in rows)

    def trackers_of(self, tenant: str) -> tuple[Tracker, ...]:
        """The tenant's trackers; a malformed row is skipped with a logged error (see
        :meth:`broken_trackers`), so it fails alone instead of taking its tenant down."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM {{s}}.tokenproviders_trackers WHERE tenant = %s ORDER BY id",  # noqa: S608
            (tenant,),
        )
        return tuple(self._listed(rows))

    def _listed(self, rows: Iterable[Sequence[Any]]) -> list[Tracker]:
        trackers: list[Tracker] = []
        for row in rows:
            try:
                trackers.append(self._tracker(row))
            except StoreError as exc:
                if exc.message not in self._reported:  # once per problem and process
                    self._reported.add(exc.message)
                    logger.error("skipped a tracker: %s", exc.message)
        return trackers

    def _tracker(self, row: Sequence[Any], *, open_now: bool = False) -> Tracker:
        tenant, tracker_id = row[0], row[1]
        try:
            options = json.loads(row[6])
        except ValueError:
            raise _malformed(row, "options", "is not valid JSON") from None
        if not isinstance(options, dict):
            raise _malformed(row, "options", "is not a JSON object")
        try:
            tracker = Tracker(
                tenant=tenant,
                id=tracker_id,
                type=row[2],
                base_url=row[3],
                api_url=row[4],
                name=row[5],
                options=options,
                verify_tls=bool(row[7]),
                ca_bundle=row[8],
            )
        except (TokenProvidersError, TypeError, ValueError) as exc:
            raise _diagnosed(row, exc) from None
        if row[10] is None:
            return tracker
        binding = _binding(tenant, tracker_id, row[3], row[4])
        blob = bytes(row[10])
        secret = _open(self._keyring, blob, binding) if open_now else PostgresBotSecret(self._keyring, blob, binding)
        return dataclasses.replace(tracker, bot_credentials=Credentials(secret, row[9]))

    def broken_trackers(self, tenant: str | None = None) -> dict[tuple[str, str], StoreError]:
        """The malformed trackers rows (of ``tenant``, or of every tenant) by ``(tenant, id)``,
        each with the :class:`StoreError` saying what is wrong; :func:`~tokenproviders.find_tracker`
        raises it instead of saying the tracker does not exist."""
        if tenant is None:
            rows = self._read(f"SELECT {_COLUMNS} FROM {{s}}.tokenproviders_trackers ORDER BY tenant, id")  # noqa: S608
        else:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM {{s}}.tokenproviders_trackers WHERE tenant = %s ORDER BY id",  # noqa: S608
                (tenant,),
            )
        broken: dict[tuple[str, str], StoreError] = {}
        for row in rows:
            try:
                self._tracker(row)
            except StoreError as exc:
                broken[(str(row[0]), str(row[1]))] = exc
        return broken

    # -- tenants ---------------------------------------------------------------------------
    def add_tenant(self, tenant: str, name: str = "") -> bool:
        """Create a tenant; ``False`` if it already existed (nothing changes then)."""
        check_tenant_id(tenant)

        def run(conn: psycopg.Connection[Any]) -> bool:
            added = conn.execute(
                self._rows._q(
                    "INSERT INTO {s}.tokenproviders_tenants (id, name, created_at) VALUES (%s, %s, now())"
                    " ON CONFLICT (id) DO NOTHING"
                ),
                (tenant, name),
            ).rowcount
            if added:
                self._audit(conn, "tenant.add", tenant=tenant)
            return bool(added)

        return self._rows._run(run, "add a tenant")

    def list_tenants(self) -> list[str]:
        return [row[0] for row in self._read("SELECT id FROM {s}.tokenproviders_tenants ORDER BY id")]

    def tenants(self) -> frozenset[str]:
        return frozenset(self.list_tenants())

    def remove_tenant(self, tenant: str) -> dict[str, int]:
        """Remove a tenant with its memberships, trackers and the personal tokens scoped to it,
        in one transaction; returns how many of each were removed."""

        def run(conn: psycopg.Connection[Any]) -> dict[str, int]:
            q = self._rows._q
            if (
                conn.execute(
                    q("SELECT 1 FROM {s}.tokenproviders_tenants WHERE id = %s FOR UPDATE"), (tenant,)
                ).fetchone()
                is None
            ):
                raise InvalidInputError(f"there is no tenant {tenant!r}", hint="list the tenants to see which exist")
            counts = {
                "members": conn.execute(
                    q("DELETE FROM {s}.tokenproviders_members WHERE tenant = %s"), (tenant,)
                ).rowcount,
                "trackers": conn.execute(
                    q("DELETE FROM {s}.tokenproviders_trackers WHERE tenant = %s"), (tenant,)
                ).rowcount,
                "tokens": conn.execute(q("DELETE FROM {s}.tokenproviders_tokens WHERE scope = %s"), (tenant,)).rowcount,
            }
            conn.execute(q("DELETE FROM {s}.tokenproviders_tenants WHERE id = %s"), (tenant,))
            detail = ", ".join(f"{count} {what} removed" for what, count in counts.items())
            self._audit(conn, "tenant.remove", tenant=tenant, detail=detail)
            return counts

        return self._rows._run(run, "remove a tenant")

    # -- memberships -----------------------------------------------------------------------
    def add_member(self, user: str, tenant: str) -> None:
        """Authorize ``user`` for ``tenant`` (creating the tenant if needed)."""
        self.add_members([(user, tenant)])

    def add_members(self, memberships: Iterable[tuple[str, str]]) -> int:
        """Authorize many ``(user, tenant)`` pairs in one transaction; returns how many were new."""
        pairs = [(check_user_id(user), check_tenant_id(tenant)) for user, tenant in memberships]

        def run(conn: psycopg.Connection[Any]) -> int:
            self._add_tenants(conn, sorted({tenant for _, tenant in pairs}))
            added = 0
            for user, tenant in pairs:  # one by one: each new membership is audited
                if conn.execute(
                    self._rows._q(
                        'INSERT INTO {s}.tokenproviders_members ("user", tenant, added_at) VALUES (%s, %s, now())'
                        " ON CONFLICT DO NOTHING"
                    ),
                    (user, tenant),
                ).rowcount:
                    self._audit(conn, "member.grant", user=user, tenant=tenant)
                    added += 1
            return added

        return self._rows._run(run, "add members")

    def remove_member(self, user: str, tenant: str) -> bool:
        """Revoke ``user``'s membership of ``tenant`` at once; ``False`` if there was none."""

        def run(conn: psycopg.Connection[Any]) -> bool:
            removed = conn.execute(
                self._rows._q('DELETE FROM {s}.tokenproviders_members WHERE "user" = %s AND tenant = %s'),
                (user, tenant),
            ).rowcount
            if removed:
                self._audit(conn, "member.revoke", user=user, tenant=tenant)
            return bool(removed)

        return self._rows._run(run, "remove a member")

    def members_of(self, tenant: str) -> list[str]:
        rows = self._read('SELECT "user" FROM {s}.tokenproviders_members WHERE tenant = %s ORDER BY "user"', (tenant,))
        return [row[0] for row in rows]

    # -- trackers --------------------------------------------------------------------------
    def _sealed(
        self, conn: psycopg.Connection[Any], tracker: Tracker, old: Sequence[Any] | None
    ) -> tuple[bytes | None, str | None]:
        """The bot blob to store for ``tracker`` and its key id. A :class:`PostgresBotSecret`
        of this very row is re-sealed for the new binding (an admin changed the URLs);
        anything else is sealed afresh."""
        bot = tracker.bot_credentials
        if bot is None:
            return None, None
        new = _binding(tracker.tenant, tracker.id, tracker.base_url, tracker.api_url)
        secret = bot.api_password
        if (
            isinstance(secret, PostgresBotSecret)
            and old is not None
            and old[10] is not None
            and bytes(old[10]) == secret._blob
        ):
            before = _binding(tracker.tenant, tracker.id, old[3], old[4])
            if before == new:
                return bytes(old[10]), old[12]  # unchanged: kept as sealed
            blob = reseal_bot_secret(self._keyring, secret._blob, before, new)
        else:
            blob = seal_bot_secret(self._keyring, secret, new)
        key_id = self._keyring.primary_id
        self._rows._refuse_retired(conn, key_id)
        return blob, key_id

    def _locked(self, conn: psycopg.Connection[Any], tenant: str, tracker_id: str) -> Any:
        return conn.execute(
            self._rows._q(
                f"SELECT {_COLUMNS} FROM {{s}}.tokenproviders_trackers WHERE tenant = %s AND id = %s FOR UPDATE"  # noqa: S608
            ),
            (tenant, tracker_id),
        ).fetchone()

    def _write(self, conn: psycopg.Connection[Any], tracker: Tracker, old: Sequence[Any] | None) -> None:
        blob, key_id = self._sealed(conn, tracker, old)
        values = (
            tracker.type,
            tracker.base_url,
            tracker.api_url,
            tracker.name,
            _options_json(tracker),
            tracker.verify_tls,
            tracker.ca_bundle,
            tracker.bot_credentials.api_username if tracker.bot_credentials is not None else None,
        )
        q = self._rows._q
        if old is None:
            conn.execute(
                q(
                    "INSERT INTO {s}.tokenproviders_trackers (tenant, id, type, base_url, api_url, name, options,"
                    " verify_tls, ca_bundle, bot_username, bot_secret, key_id, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())"
                ),
                (tracker.tenant, tracker.id, *values, blob, key_id),
            )
            shown = [
                f"{name}={value if value is not None else 'none'}"
                for name, value in zip(_SETTINGS, values, strict=True)
                if name in _SHOWN
            ]
            bot = "with bot credentials" if blob is not None else "without bot credentials"
            self._audit(
                conn, "tracker.add", tenant=tracker.tenant, tracker=tracker.id, detail=f"{' '.join(shown)}; {bot}"
            )
            return
        conn.execute(
            q(
                "UPDATE {s}.tokenproviders_trackers SET type = %s, base_url = %s, api_url = %s, name = %s,"
                " options = %s, verify_tls = %s, ca_bundle = %s, bot_username = %s, bot_secret = %s, key_id = %s,"
                " updated_at = now() WHERE row_id = %s"
            ),
            (*values, blob, key_id, old[11]),
        )
        self._audit(
            conn,
            "tracker.change",
            tenant=tracker.tenant,
            tracker=tracker.id,
            detail=self._describe(tracker, old, values, blob),
        )

    def _describe(self, tracker: Tracker, old: Sequence[Any], values: Sequence[Any], blob: bytes | None) -> str:
        words: list[str] = []
        for index, name in enumerate(_SETTINGS):
            if old[index + 2] != values[index]:
                words.append(
                    f"{name}={values[index] if values[index] is not None else 'none'}"
                    if name in _SHOWN
                    else f"{name} changed"
                )
        if blob is not None and old[10] is None:
            words.append("bot credentials added")
        elif blob is None and old[10] is not None:
            words.append("bot credentials removed")
        elif blob is not None and bytes(old[10]) != blob:
            bot = tracker.bot_credentials
            assert bot is not None
            if isinstance(bot.api_password, PostgresBotSecret) and bot.api_password._blob == bytes(old[10]):
                words.append("bot credentials re-sealed for the new URLs")
            else:
                try:  # sealed to sealed would always differ (a fresh nonce each time)
                    same = (
                        _open(self._keyring, bytes(old[10]), _binding(tracker.tenant, tracker.id, old[3], old[4]))
                        == bot.api_password
                    )
                except SecretUnreadableError:
                    same = False
                words.append("bot password sealed again" if same else "bot password replaced")
        return "; ".join(words) or "nothing changed"

    def add_tracker(self, tracker: Tracker, *, replace: bool = False) -> None:
        """Add a tracker (creating its tenant if needed); an existing id is refused unless
        ``replace=True``. Bot credentials are sealed before they are stored."""
        if not isinstance(tracker, Tracker):
            raise InvalidInputError("trackers are given as Tracker objects")

        def run(conn: psycopg.Connection[Any]) -> None:
            self._add_tenants(conn, [tracker.tenant])
            old = self._locked(conn, tracker.tenant, tracker.id)
            if old is not None and not replace:
                raise InvalidInputError(
                    f"tenant {tracker.tenant!r} already has a tracker {tracker.id!r}",
                    hint="pass replace=True (or use update_tracker) to change it, or choose another id",
                )
            self._write(conn, tracker, old)

        self._rows._run(run, "add a tracker")

    def update_tracker(self, tracker: Tracker) -> None:
        """Replace an existing tracker's settings and bot credentials. Bot credentials listed
        from this directory (a :class:`PostgresBotSecret`) are re-sealed for the new URLs."""
        if not isinstance(tracker, Tracker):
            raise InvalidInputError("trackers are given as Tracker objects")

        def run(conn: psycopg.Connection[Any]) -> None:
            old = self._locked(conn, tracker.tenant, tracker.id)
            if old is None:
                raise UnknownTrackerError(f"tenant {tracker.tenant!r} has no tracker {tracker.id!r}")
            self._write(conn, tracker, old)

        self._rows._run(run, "update a tracker")

    def change_tracker(self, tenant: str, tracker_id: str, **changes: Any) -> Tracker:
        """Change some settings of a tracker (``base_url=...``, ``api_url=...``, ``name=...``)
        in one transaction, keeping its bot credentials: they are re-sealed for new URLs.
        Returns the tracker as stored (bot password not opened)."""
        if "bot_credentials" in changes or "tenant" in changes or "id" in changes:
            raise InvalidInputError(
                "change_tracker() changes settings only", hint="use set_bot_credentials, or remove and add the tracker"
            )

        def run(conn: psycopg.Connection[Any]) -> Tracker:
            old = self._locked(conn, tenant, tracker_id)
            if old is None:
                raise UnknownTrackerError(f"tenant {tenant!r} has no tracker {tracker_id!r}")
            try:
                tracker = dataclasses.replace(self._tracker(old), **changes)
            except TypeError as exc:
                raise InvalidInputError(f"change_tracker(): {exc}") from None
            self._write(conn, tracker, old)
            return self._tracker(self._locked(conn, tenant, tracker_id))

        return self._rows._run(run, "change a tracker")

    def set_bot_credentials(self, tenant: str, tracker_id: str, credentials: Credentials | None) -> None:
        """Set (sealed afresh) or remove a tracker's bot credentials."""

        def run(conn: psycopg.Connection[Any]) -> None:
            old = self._locked(conn, tenant, tracker_id)
            if old is None:
                raise UnknownTrackerError(f"tenant {tenant!r} has no tracker {tracker_id!r}")
            self._write(conn, dataclasses.replace(self._tracker(old), bot_credentials=credentials), old)

        self._rows._run(run, "set bot credentials")

    def remove_tracker(self, tenant: str, tracker_id: str) -> None:
        def run(conn: psycopg.Connection[Any]) -> int:
            removed = conn.execute(
                self._rows._q("DELETE FROM {s}.tokenproviders_trackers WHERE tenant = %s AND id = %s"),
                (tenant, tracker_id),
            ).rowcount
            if removed:
                self._audit(conn, "tracker.remove", tenant=tenant, tracker=tracker_id)
            return int(removed)

        if not self._rows._run(run, "remove a tracker"):
            raise UnknownTrackerError(f"tenant {tenant!r} has no tracker {tracker_id!r}")

    def trackers_by_id(self, tenant: str) -> dict[str, Tracker]:
        return {tracker.id: tracker for tracker in self.trackers_of(tenant)}

    def get_tracker(self, tenant: str, tracker_id: str) -> Tracker:
        """The tracker with its bot credentials opened, or :class:`UnknownTrackerError`."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM {{s}}.tokenproviders_trackers WHERE tenant = %s AND id = %s",  # noqa: S608
            (tenant, tracker_id),
        )
        if not rows:
            known = ", ".join(sorted(self.trackers_by_id(tenant))) or "none"
            raise UnknownTrackerError(f"tenant {tenant!r} has no tracker {tracker_id!r} (its trackers: {known})")
        return self._tracker(rows[0], open_now=True)

    def list_trackers(self, tenant: str | None = None) -> list[Tracker]:
        """Trackers of ``tenant`` (every tenant's if ``None``), by tenant and id; malformed rows
        are skipped with a logged error."""
        if tenant is not None:
            return list(self.trackers_of(tenant))
        rows = self._read(f"SELECT {_COLUMNS} FROM {{s}}.tokenproviders_trackers ORDER BY tenant, id")  # noqa: S608
        return self._listed(rows)
