"""An in-memory token store: fast, thread-safe, gone when the process ends."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Sequence
from datetime import datetime

from ..model import Credentials, PersonalToken, TokenInfo

__all__ = ["MemoryTokenStore"]

_Key = tuple[str, str, str]


class MemoryTokenStore:
    """A :class:`~tokenproviders.stores.TokenStore` held in a dict keyed by (owner, url, scope)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[_Key, PersonalToken] = {}
        self._ids = itertools.count(1)
        self._key_of: dict[int, _Key] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
        tokens = self._tokens
        for url, scope in candidates:
            token = tokens.get((owner, url, scope))
            if token is not None:
                return token
        return None

    def get(self, owner: str, url: str, scope: str) -> PersonalToken | None:
        return self._tokens.get((owner, url, scope))

    def put(
        self,
        owner: str,
        url: str,
        scope: str,
        credentials: Credentials,
        *,
        label: str = "",
        expires_at: datetime | None = None,
        now: datetime,
    ) -> TokenInfo:
        key = (owner, url, scope)
        with self._lock:
            old = self._tokens.get(key)
            token = PersonalToken(
                owner=owner,
                url=url,
                scope=scope,
                id=old.id if old else next(self._ids),
                label=label,
                expires_at=expires_at,
                created_at=old.created_at if old else now,
                updated_at=now,
                last_used_at=old.last_used_at if old else None,
                version=old.version + 1 if old else 1,
                api_username=credentials.api_username,
                credentials=credentials,
            )
            self._tokens[key] = token
            assert token.id is not None
            self._key_of[token.id] = key
        return token.info()

    def delete(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        with self._lock:
            token = self._tokens.pop((owner, url, scope), None)
            if token is not None and token.id is not None:
                self._key_of.pop(token.id, None)
        return token.info() if token else None

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        with self._lock:
            tokens = list(self._tokens.values())
        return sorted(
            (t.info() for t in tokens if owner is None or t.owner == owner),
            key=lambda t: (t.owner, t.url, t.scope),
        )

    def mark_used(self, token_id: int, when: datetime) -> None:
        with self._lock:
            key = self._key_of.get(token_id)
            token = self._tokens.get(key) if key else None
            if key is not None and token is not None:
                self._tokens[key] = dataclasses.replace(token, last_used_at=when)
