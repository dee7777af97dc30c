"""An in-memory token store: fast, thread-safe, gone when the process ends.

Given a key ring (``MemoryTokenStore(keyring=...)``) it seals every secret exactly as the SQLite
store does (same blob format, same associated data) and opens only the winner of a lookup. Without
one it keeps the :class:`~tokenproviders.model.Secret` objects as they are: that mode exists for
unit tests and throw-away processes, where a key would add nothing; nothing is ever written
anywhere in either mode.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import SecretUnreadableError
from ..model import Credentials, PersonalToken, Secret, TokenInfo

if TYPE_CHECKING:
    from ..crypto import AssociatedData, KeyRing

__all__ = ["MemoryTokenStore"]

_Key = tuple[str, str, str]


def _token_aad(owner: str, scope: str, url: str) -> AssociatedData:
    # Imported here: the key ring (and cryptography) load only when sealing is used.
    from ..crypto import AssociatedData

    return AssociatedData.for_token(owner=owner, scope=scope, url=url, field="api_password")


@dataclass(frozen=True)
class _Entry:
    info: TokenInfo
    sealed: bytes | None = None
    secret: Secret | None = None


class MemoryTokenStore:
    """A :class:`~tokenproviders.stores.TokenStore` held in a dict keyed by (owner, url, scope).

    :param keyring: seal secrets with it (recommended outside tests); ``None`` keeps them as
        unsealed :class:`Secret` objects in memory.
    """

    def __init__(self, *, keyring: KeyRing | None = None) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[_Key, _Entry] = {}
        self._ids = itertools.count(1)
        self._key_of: dict[int, _Key] = {}
        self.keyring = keyring

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        sealing = f"sealed with key {self.keyring.primary_id!r}" if self.keyring else "unsealed"
        return f"MemoryTokenStore({len(self._tokens)} tokens, {sealing})"

    def _opened(self, entry: _Entry) -> PersonalToken:
        info = entry.info
        if entry.sealed is not None:
            assert self.keyring is not None  # only a store with a key ring seals
            try:
                from ..crypto import encode_token_aad  # loaded already: this store has a key ring

                secret = self.keyring.open_secret(
                    entry.sealed, encode_token_aad(info.owner, info.scope, info.url, "api_password")
                )
            except SecretUnreadableError as exc:
                raise SecretUnreadableError(exc.message, hint=exc.hint, key_id=exc.key_id, token=info) from None
        else:
            assert entry.secret is not None
            secret = entry.secret
        # Positional, in PersonalToken's field order: this is the resolve path.
        return PersonalToken(
            info.owner,
            info.url,
            info.scope,
            info.id,
            info.label,
            info.expires_at,
            info.created_at,
            info.updated_at,
            info.last_used_at,
            info.version,
            info.key_id,
            info.api_username,
            Credentials(secret, info.api_username),
        )

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
        tokens = self._tokens
        for url, scope in candidates:
            entry = tokens.get((owner, url, scope))
            if entry is not None:
                return self._opened(entry)
        return None

    def get(self, owner: str, url: str, scope: str) -> PersonalToken | None:
        entry = self._tokens.get((owner, url, scope))
        return self._opened(entry) if entry is not None else None

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
        sealed: bytes | None = None
        if self.keyring is not None:
            sealed = self.keyring.seal(credentials.api_password, _token_aad(owner, scope, url))
        with self._lock:
            old = self._tokens.get(key)
            previous = old.info if old else None
            info = TokenInfo(
                owner=owner,
                url=url,
                scope=scope,
                id=previous.id if previous else next(self._ids),
                label=label,
                expires_at=expires_at,
                created_at=previous.created_at if previous else now,
                updated_at=now,
                last_used_at=previous.last_used_at if previous else None,
                version=previous.version + 1 if previous else 1,
                key_id=self.keyring.primary_id if self.keyring is not None else None,
                api_username=credentials.api_username,
            )
            if sealed is not None:
                self._tokens[key] = _Entry(info, sealed=sealed)
            else:
                self._tokens[key] = _Entry(info, secret=credentials.api_password)
            assert info.id is not None
            self._key_of[info.id] = key
        return info

    def delete(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        with self._lock:
            entry = self._tokens.pop((owner, url, scope), None)
            if entry is not None and entry.info.id is not None:
                self._key_of.pop(entry.info.id, None)
        return entry.info if entry else None

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        with self._lock:
            entries = list(self._tokens.values())
        return sorted(
            (e.info for e in entries if owner is None or e.info.owner == owner),
            key=lambda t: (t.owner, t.url, t.scope),
        )

    def mark_used(self, token_id: int, when: datetime) -> None:
        with self._lock:
            key = self._key_of.get(token_id)
            entry = self._tokens.get(key) if key else None
            if key is not None and entry is not None:
                self._tokens[key] = replace(entry, info=replace(entry.info, last_used_at=when))
