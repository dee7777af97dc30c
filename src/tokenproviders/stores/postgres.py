"""PostgreSQL rows for hosts on many machines (extra ``tokenproviders[postgresql]``).

:class:`PostgresRows` is a row backend (:mod:`tokenproviders.stores.rows`): the sealing layer
(:class:`~tokenproviders.stores.sealed.SealedTokenStore`) seals, the server keeps rows::

    store = SealedTokenStore(PostgresRows("postgresql://app@db.internal/kiwi", schema="public"), keyring)

Connection information is a libpq conninfo string or URL *without* a password: the password
comes from libpq's own sources (``PGPASSFILE``/``~/.pgpass``, a service file, ``PGPASSWORD``),
never from a command line. Tables (``tokenproviders_*``) live in ``schema`` (created if
missing; a django-tenants host passes ``public``). The schema is migrated on open, idempotently,
with concurrent migrators serialized by an advisory lock. Writes are compare-and-swap; a
serialization failure or deadlock is retried (bounded) and never reaches the caller.

psycopg is imported here only: ``import tokenproviders`` never imports it.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..errors import ConfigurationError, StoreError
from .rows import AuditRow, KeyCheckRow, KeyRetired, SecretUpdate, TokenRow, VersionConflict

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresRows", "SCHEMA_VERSION"]

SCHEMA_VERSION: Final = 2
_T = TypeVar("_T")
_ATTEMPTS: Final = 8

_TOKEN_COLUMNS: Final = (
    "t.id, t.owner, t.url, t.scope, t.label, t.expires_at, t.created_at, t.updated_at, t.version,"
    " t.key_id, t.api_username, t.secret, u.at"
)
_AUDIT_COLUMNS: Final = (
    'at, action, outcome, "user", tenant, tracker, source, token_id, scope, matched_url, fallback_from,'
    " principal, correlation_id, error, detail"
)

# {s} is the quoted schema. Each entry upgrades from the previous version.
_MIGRATIONS: Final = (
    """
    CREATE TABLE {s}.tokenproviders_tokens (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner text NOT NULL, url text NOT NULL, scope text NOT NULL, label text NOT NULL DEFAULT '',
        expires_at timestamptz, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        version integer NOT NULL, key_id text NOT NULL, api_username text, secret bytea NOT NULL,
        UNIQUE (owner, url, scope)
    );
    CREATE INDEX ON {s}.tokenproviders_tokens (key_id);
    CREATE TABLE {s}.tokenproviders_used (
        token_id bigint PRIMARY KEY REFERENCES {s}.tokenproviders_tokens (id) ON DELETE CASCADE,
        at timestamptz NOT NULL
    );
    CREATE TABLE {s}.tokenproviders_keys (
        key_id text PRIMARY KEY, check_value bytea NOT NULL, added_at timestamptz NOT NULL, retired_at timestamptz
    );
    CREATE TABLE {s}.tokenproviders_audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL, action text NOT NULL,
        outcome text NOT NULL, "user" text, tenant text, tracker text, source text, token_id bigint,
        scope text, matched_url text, fallback_from text, principal text, correlation_id text, error text,
        detail text
    );
    CREATE INDEX ON {s}.tokenproviders_audit (at);
    """,
    # 2: the directory (PostgresDirectory): tenants, memberships, trackers with sealed bot secrets.
    """
    CREATE TABLE {s}.tokenproviders_tenants (
        id text PRIMARY KEY, name text NOT NULL DEFAULT '', created_at timestamptz NOT NULL
    );
    CREATE TABLE {s}.tokenproviders_members (
        "user" text NOT NULL,
        tenant text NOT NULL REFERENCES {s}.tokenproviders_tenants (id) ON DELETE CASCADE,
        added_at timestamptz NOT NULL,
        PRIMARY KEY ("user", tenant)
    );
    CREATE INDEX ON {s}.tokenproviders_members (tenant);
    CREATE TABLE {s}.tokenproviders_trackers (
        row_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant text NOT NULL REFERENCES {s}.tokenproviders_tenants (id) ON DELETE CASCADE,
        id text NOT NULL, type text NOT NULL, base_url text NOT NULL, api_url text,
        name text NOT NULL DEFAULT '', options text NOT NULL DEFAULT '{{}}', verify_tls boolean NOT NULL DEFAULT true,
        ca_bundle text, bot_username text, bot_secret bytea, key_id text,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        UNIQUE (tenant, id),
        CHECK ((bot_secret IS NULL) = (key_id IS NULL))
    );
    CREATE INDEX ON {s}.tokenproviders_trackers (key_id, row_id);
    """,
)


def _token(row: Sequence[Any]) -> TokenRow:
    return TokenRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], bytes(row[11]), row[12]
    )


class PostgresRows:
    """A :class:`~tokenproviders.stores.rows.RowBackend` on PostgreSQL, with a connection pool.

    :param conninfo: libpq conninfo or URL, without a password (``""``: libpq's environment).
    :param schema: where the tables live (created if missing).
    :param min_size: connections the pool keeps open.
    :param max_size: connections the pool opens at most.
    :param migrate: create or upgrade the tables on open.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        schema: str = "tokenproviders",
        min_size: int = 1,
        max_size: int = 8,
        migrate: bool = True,
    ) -> None:
        from psycopg import conninfo as libpq
        from psycopg import sql
        from psycopg_pool import ConnectionPool

        try:
            params = libpq.conninfo_to_dict(conninfo)
        except Exception:  # noqa: BLE001 - the text may hold a password: never echo it
            raise ConfigurationError("the PostgreSQL connection string cannot be parsed") from None
        if "password" in params:
            raise ConfigurationError(
                "the PostgreSQL connection string holds a password",
                hint="remove it and use a password file (PGPASSFILE, ~/.pgpass), a service file or PGPASSWORD",
            )
        self.schema = schema
        self._sql = sql
        self._s = sql.Identifier(schema)
        self._statements: dict[str, Any] = {}
        self._lookup_sql: dict[int, Any] = {}
        self._pool = ConnectionPool(
            conninfo, min_size=min_size, max_size=max_size, open=False, configure=self._configure, name="tokenproviders"
        )
        try:
            self._pool.open(wait=True, timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported as ours, without the conninfo
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL ({type(exc).__name__})") from None
        if migrate:
            self.migrate()

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.commit()
        # One round trip per read: a single SELECT needs no BEGIN/COMMIT; writes open their own.
        conn.autocommit = True

    def __repr__(self) -> str:
        return f"PostgresRows(schema={self.schema!r})"

    # -- plumbing ------------------------------------------------------------------------------
    def _q(self, text: str) -> Any:
        """A statement with ``{s}`` as the quoted schema (composed once)."""
        composed = self._statements.get(text)
        if composed is None:
            composed = self._statements[text] = self._sql.SQL(text).format(s=self._s)
        return composed

    def _run(self, action: Callable[[psycopg.Connection[Any]], _T], what: str, *, read: bool = False) -> _T:
        """``action`` in one transaction; serialization failures and deadlocks are retried.
        ``read=True``: ``action`` is one SELECT, run without BEGIN/COMMIT (atomic by itself)."""
        import psycopg
        from psycopg import errors

        for attempt in range(_ATTEMPTS):
            try:
                if read:
                    with self._pool.connection() as conn:
                        return action(conn)
                with self._pool.connection() as conn, conn.transaction():
                    return action(conn)
            except (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable):
                if attempt == _ATTEMPTS - 1:
                    raise StoreError(
                        f"could not {what}: the database kept reporting conflicts", hint="try again"
                    ) from None
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
            except psycopg.Error as exc:
                raise StoreError(f"could not {what} ({type(exc).__name__}: {exc.sqlstate or 'no sqlstate'})") from None
        raise AssertionError("unreachable")

    def migrate(self) -> int:
        """Create or upgrade the tables; return the schema version. Idempotent."""

        def run(conn: psycopg.Connection[Any]) -> int:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(f"tokenproviders:{self.schema}".encode()),))
            conn.execute(self._q("CREATE SCHEMA IF NOT EXISTS {s}"))
            conn.execute(self._q("CREATE TABLE IF NOT EXISTS {s}.tokenproviders_schema (version integer NOT NULL)"))
            row = conn.execute(self._q("SELECT version FROM {s}.tokenproviders_schema")).fetchone()
            version = row[0] if row is not None else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the PostgreSQL schema {self.schema!r} has version {version}; this tokenproviders knows"
                    f" {SCHEMA_VERSION}",
                    hint="upgrade tokenproviders",
                )
            for upgrade in _MIGRATIONS[version:]:
                conn.execute(self._q(upgrade))
            if row is None:
                conn.execute(self._q("INSERT INTO {s}.tokenproviders_schema (version) VALUES (%s)"), (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                conn.execute(self._q("UPDATE {s}.tokenproviders_schema SET version = %s"), (SCHEMA_VERSION,))
            return SCHEMA_VERSION

        return self._run(run, "migrate the PostgreSQL schema")

    def close(self) -> None:
        self._pool.close()

    def _refuse_retired(self, conn: psycopg.Connection[Any], key_id: str) -> None:
        # FOR SHARE: retire_key (FOR UPDATE on the same row) waits for this write, or this for it.
        row = conn.execute(
            self._q("SELECT retired_at FROM {s}.tokenproviders_keys WHERE key_id = %s FOR SHARE"), (key_id,)
        ).fetchone()
        if row is not None and row[0] is not None:
            raise KeyRetired(key_id)

    def _select(self, where: str) -> str:
        return (
            f"SELECT {_TOKEN_COLUMNS} FROM {{s}}.tokenproviders_tokens t"  # noqa: S608 - constant SQL
            f" LEFT JOIN {{s}}.tokenproviders_used u ON u.token_id = t.id WHERE {where}"
        )

    # -- tokens --------------------------------------------------------------------------------
    def get(self, owner: str, url: str, scope: str) -> TokenRow | None:
        statement = self._q(self._select("t.owner = %s AND t.url = %s AND t.scope = %s"))
        row = self._run(lambda conn: conn.execute(statement, (owner, url, scope)).fetchone(), "read a token", read=True)
        return _token(row) if row is not None else None

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> TokenRow | None:
        if not candidates:
            return None
        statement = self._lookup_sql.get(len(candidates))
        if statement is None:
            terms = " OR ".join("(t.url = %s AND t.scope = %s)" for _ in candidates)
            rank = " ".join(f"WHEN t.url = %s AND t.scope = %s THEN {i}" for i in range(len(candidates)))
            statement = self._lookup_sql[len(candidates)] = self._q(
                self._select(f"t.owner = %s AND ({terms})") + f" ORDER BY CASE {rank} END LIMIT 1"
            )
        flat = [value for pair in candidates for value in pair]
        params = [owner, *flat, *flat]
        row = self._run(lambda conn: conn.execute(statement, params).fetchone(), "look up a token", read=True)
        return _token(row) if row is not None else None

    def put(self, row: TokenRow, *, expected_version: int | None) -> TokenRow:
        def run(conn: psycopg.Connection[Any]) -> TokenRow:
            self._refuse_retired(conn, row.key_id)
            if expected_version is None:
                stored = conn.execute(
                    self._q(
                        "INSERT INTO {s}.tokenproviders_tokens (owner, url, scope, label, expires_at, created_at,"
                        " updated_at, version, key_id, api_username, secret)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s)"
                        " ON CONFLICT (owner, url, scope) DO NOTHING RETURNING id"
                    ),
                    (
                        row.owner,
                        row.url,
                        row.scope,
                        row.label,
                        row.expires_at,
                        row.created_at,
                        row.updated_at,
                        row.key_id,
                        row.api_username,
                        row.secret,
                    ),
                ).fetchone()
            else:
                stored = conn.execute(
                    self._q(
                        "UPDATE {s}.tokenproviders_tokens SET label = %s, expires_at = %s, updated_at = %s,"
                        " version = version + 1, key_id = %s, api_username = %s, secret = %s"
                        " WHERE owner = %s AND url = %s AND scope = %s AND version = %s RETURNING id"
                    ),
                    (
                        row.label,
                        row.expires_at,
                        row.updated_at,
                        row.key_id,
                        row.api_username,
                        row.secret,
                        row.owner,
                        row.url,
                        row.scope,
                        expected_version,
                    ),
                ).fetchone()
            if stored is None:
                raise VersionConflict()
            found = conn.execute(self._q(self._select("t.id = %s")), (stored[0],)).fetchone()
            assert found is not None  # written in this transaction
            return _token(found)

        return self._run(run, "store a personal token")

    def delete(self, owner: str, url: str, scope: str, *, expected_version: int | None = None) -> TokenRow | None:
        def run(conn: psycopg.Connection[Any]) -> TokenRow | None:
            found = conn.execute(
                self._q(self._select("t.owner = %s AND t.url = %s AND t.scope = %s") + " FOR UPDATE OF t"),
                (owner, url, scope),
            ).fetchone()
            if found is None:
                return None
            current = _token(found)
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(current=current)
            conn.execute(self._q("DELETE FROM {s}.tokenproviders_tokens WHERE id = %s"), (current.id,))
            return current

        return self._run(run, "delete a personal token")

    def scan(
        self, *, after_id: int = 0, limit: int = 1000, owner: str | None = None, key_id_not: str | None = None
    ) -> list[TokenRow]:
        where, params = ["t.id > %s"], [after_id]
        if owner is not None:
            where.append("t.owner = %s")
            params.append(owner)  # type: ignore[arg-type]
        if key_id_not is not None:
            where.append("t.key_id <> %s")
            params.append(key_id_not)  # type: ignore[arg-type]
        statement = self._q(self._select(" AND ".join(where)) + " ORDER BY t.id LIMIT %s")
        rows = self._run(lambda conn: conn.execute(statement, [*params, limit]).fetchall(), "scan tokens", read=True)
        return [_token(row) for row in rows]

    def replace_secrets(self, updates: Sequence[SecretUpdate]) -> int:
        def run(conn: psycopg.Connection[Any]) -> int:
            for key_id in {update.key_id for update in updates}:
                self._refuse_retired(conn, key_id)
            changed = conn.execute(
                self._q(
                    "UPDATE {s}.tokenproviders_tokens t SET secret = v.new, key_id = v.key_id"
                    " FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[], %s::text[]) AS v(id, old, new, key_id)"
                    " WHERE t.id = v.id AND t.secret = v.old"
                ),
                (
                    [u.id for u in updates],
                    [u.old_secret for u in updates],
                    [u.new_secret for u in updates],
                    [u.key_id for u in updates],
                ),
            ).rowcount
            return int(changed)

        return self._run(run, "re-seal personal tokens")

    def count_by_key(self) -> dict[str, int]:
        statement = self._q(
            "SELECT key_id, count(*) FROM (SELECT key_id FROM {s}.tokenproviders_tokens UNION ALL"
            " SELECT key_id FROM {s}.tokenproviders_trackers WHERE key_id IS NOT NULL) AS sealed GROUP BY key_id"
        )
        rows = self._run(lambda conn: conn.execute(statement).fetchall(), "count tokens per key", read=True)
        return {key_id: int(count) for key_id, count in rows}

    # -- key checks ----------------------------------------------------------------------------
    def key_checks(self) -> list[KeyCheckRow]:
        statement = self._q("SELECT key_id, check_value, added_at, retired_at FROM {s}.tokenproviders_keys")
        rows = self._run(lambda conn: conn.execute(statement).fetchall(), "read key checks", read=True)
        return [KeyCheckRow(row[0], bytes(row[1]), row[2], row[3]) for row in rows]

    def add_key_check(self, row: KeyCheckRow) -> KeyCheckRow:
        def run(conn: psycopg.Connection[Any]) -> KeyCheckRow:
            conn.execute(
                self._q(
                    "INSERT INTO {s}.tokenproviders_keys (key_id, check_value, added_at, retired_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (key_id) DO NOTHING"
                ),
                (row.key_id, row.check_value, row.added_at, row.retired_at),
            )
            found = conn.execute(
                self._q(
                    "SELECT key_id, check_value, added_at, retired_at FROM {s}.tokenproviders_keys WHERE key_id = %s"
                ),
                (row.key_id,),
            ).fetchone()
            assert found is not None  # inserted or already there
            return KeyCheckRow(found[0], bytes(found[1]), found[2], found[3])

        return self._run(run, "record a key check")

    def retire_key(self, key_id: str, check_value: bytes, when: datetime) -> int:
        def run(conn: psycopg.Connection[Any]) -> int:
            conn.execute(
                self._q(
                    "INSERT INTO {s}.tokenproviders_keys (key_id, check_value, added_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (key_id) DO NOTHING"
                ),
                (key_id, check_value, when),
            )
            conn.execute(self._q("SELECT 1 FROM {s}.tokenproviders_keys WHERE key_id = %s FOR UPDATE"), (key_id,))
            counted = conn.execute(
                self._q(
                    "SELECT (SELECT count(*) FROM {s}.tokenproviders_tokens WHERE key_id = %s)"
                    " + (SELECT count(*) FROM {s}.tokenproviders_trackers WHERE key_id = %s)"
                ),
                (key_id, key_id),
            ).fetchone()
            used = counted[0] if counted is not None else 0
            if used:
                return int(used)
            conn.execute(
                self._q("UPDATE {s}.tokenproviders_keys SET retired_at = coalesce(retired_at, %s) WHERE key_id = %s"),
                (when, key_id),
            )
            return 0

        return self._run(run, "retire a key")

    # -- stamps and audit ----------------------------------------------------------------------
    def write_stamps(self, stamps: Mapping[int, datetime]) -> None:
        ids = sorted(stamps)  # one lock order for every writer: no deadlock between flushes
        statement = self._q(
            "INSERT INTO {s}.tokenproviders_used (token_id, at)"
            " SELECT v.id, v.at FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at)"
            " JOIN {s}.tokenproviders_tokens t ON t.id = v.id"
            " ON CONFLICT (token_id) DO UPDATE SET at = greatest({s}.tokenproviders_used.at, excluded.at)"
        )
        self._run(lambda conn: conn.execute(statement, (ids, [stamps[i] for i in ids])), "write last-used times")

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        self._run(lambda conn: self._insert_audit(conn, rows), "append audit rows")

    def _insert_audit(self, conn: psycopg.Connection[Any], rows: Sequence[AuditRow]) -> None:
        """Audit rows written inside the caller's transaction (an admin change and its entry
        commit together)."""
        statement = self._q(
            f"INSERT INTO {{s}}.tokenproviders_audit ({_AUDIT_COLUMNS})"  # noqa: S608 - constant SQL
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        values = [
            (
                r.at,
                r.action,
                r.outcome,
                r.user,
                r.tenant,
                r.tracker,
                r.source,
                r.token_id,
                r.scope,
                r.matched_url,
                r.fallback_from,
                r.principal,
                r.correlation_id,
                r.error,
                r.detail,
            )
            for r in rows
        ]

        with conn.cursor() as cursor:
            cursor.executemany(statement, values)

    def scan_audit(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditRow]:
        statement = self._q(
            f"SELECT id, {_AUDIT_COLUMNS} FROM {{s}}.tokenproviders_audit"  # noqa: S608 - constant SQL
            " WHERE id > %s ORDER BY id LIMIT %s"
        )
        rows = self._run(
            lambda conn: conn.execute(statement, (after_id, limit)).fetchall(), "read audit rows", read=True
        )
        return [AuditRow(*row) for row in rows]

    def prune_audit(self, *, max_rows: int | None, before: datetime | None) -> int:
        def run(conn: psycopg.Connection[Any]) -> int:
            deleted = 0
            if before is not None:
                deleted += conn.execute(
                    self._q("DELETE FROM {s}.tokenproviders_audit WHERE at < %s"), (before,)
                ).rowcount
            if max_rows is not None:
                deleted += conn.execute(
                    self._q(
                        "DELETE FROM {s}.tokenproviders_audit WHERE id <= (SELECT id FROM {s}.tokenproviders_audit"
                        " ORDER BY id DESC OFFSET %s LIMIT 1)"
                    ),
                    (max_rows,),
                ).rowcount
            return deleted

        return self._run(run, "apply audit retention")
