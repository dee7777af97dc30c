"""The SQLite backend passes the StoreContract: one file in WAL mode, 8 processes at once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tokenproviders.stores.rows import RowBackend
from tokenproviders.stores.sqlite import SQLiteRows
from tokenproviders.testing import StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def backend_opener(self, tmp_path: Path) -> Iterator[Callable[[], RowBackend]]:
        path = tmp_path / "tokens.db"
        SQLiteRows(path).close()  # created once, before the processes race to open it
        yield functools.partial(SQLiteRows, str(path))

    def raw_dump(self, backend: RowBackend) -> bytes:
        assert isinstance(backend, SQLiteRows)
        files = [Path(backend.path), Path(backend.path + "-wal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
