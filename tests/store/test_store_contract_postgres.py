"""The PostgreSQL backend passes the StoreContract, against a real server.

The server comes from libpq's environment (``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``,
``PGPASSFILE``; ``.ci/postgres.sh`` starts one). Without one these tests skip, except under
``CI=true``, where a missing server fails them. Each test gets its own schema, dropped after.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from tokenproviders.errors import ConfigurationError
from tokenproviders.stores.rows import RowBackend
from tokenproviders.testing import StoreContract

pytestmark = pytest.mark.postgresql


def _server_or_skip() -> None:
    reason = None
    if not os.environ.get("PGHOST"):
        reason = "no PostgreSQL server configured (set PGHOST etc.; .ci/postgres.sh starts one)"
    else:
        try:
            import psycopg

            psycopg.connect("", connect_timeout=5).close()
        except ImportError:
            reason = "psycopg is not installed (pip install 'tokenproviders[postgresql]')"
        except Exception as exc:
            reason = f"the PostgreSQL server cannot be reached ({type(exc).__name__})"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}: .ci/run must start the real PostgreSQL server")
        pytest.skip(reason)


@pytest.fixture
def schema() -> Iterator[str]:
    _server_or_skip()
    import psycopg
    from psycopg import sql

    name = f"tp_test_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect("", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def backend_opener(self, schema: str) -> Iterator[Callable[[], RowBackend]]:
        from tokenproviders.stores.postgres import PostgresRows

        yield functools.partial(PostgresRows, "", schema=schema, max_size=2)

    def raw_dump(self, backend: RowBackend) -> bytes:
        import psycopg
        from psycopg import sql

        from tokenproviders.stores.postgres import PostgresRows

        assert isinstance(backend, PostgresRows)
        dumped = []
        with psycopg.connect("") as conn:
            for table in (
                "tokenproviders_tokens",
                "tokenproviders_used",
                "tokenproviders_keys",
                "tokenproviders_audit",
            ):
                query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(backend.schema, table))
                dumped.append(repr(conn.execute(query).fetchall()))
        return "\n".join(dumped).encode()


def test_migration_is_idempotent_and_concurrent_migrators_agree(schema: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tokenproviders.stores.postgres import SCHEMA_VERSION, PostgresRows

    def open_and_migrate() -> int:
        rows = PostgresRows("", schema=schema, max_size=1)
        try:
            return rows.migrate()
        finally:
            rows.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: open_and_migrate(), range(4))) == [SCHEMA_VERSION] * 4


def test_a_password_in_the_connection_string_is_refused() -> None:
    from tokenproviders.stores.postgres import PostgresRows

    pytest.importorskip("psycopg_pool")
    with pytest.raises(ConfigurationError, match="holds a password") as caught:
        PostgresRows("postgresql://app:hunter2@127.0.0.1/db")
    assert "hunter2" not in str(caught.value)


def test_import_tokenproviders_does_not_import_psycopg() -> None:
    import subprocess
    import sys

    code = "import sys, tokenproviders, tokenproviders.stores; print('psycopg' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
