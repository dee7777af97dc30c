"""The memory backend passes the StoreContract."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tokenproviders.stores.memory import MemoryRows
from tokenproviders.stores.rows import RowBackend
from tokenproviders.testing import StoreContract


class TestMemoryStore(StoreContract):
    multi_process = False

    @pytest.fixture
    def backend_opener(self) -> Iterator[Callable[[], RowBackend]]:
        rows = MemoryRows()
        yield lambda: rows

    def raw_dump(self, backend: RowBackend) -> bytes:
        assert isinstance(backend, MemoryRows)
        return repr(vars(backend)).encode()
