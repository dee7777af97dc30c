"""Token stores: where personal tokens live.

A store keeps at most one token per ``(owner, normalized url, scope)``. The resolver's hot path
is :meth:`TokenStore.lookup`, which receives the candidate ``(url, scope)`` pairs in preference
order and returns the first that exists, so a store can answer with a single indexed query and
open only the winner's secret.

Stores do no authorization and no field validation: :class:`tokenproviders.tokens.TokenManager`
does that before calling :meth:`TokenStore.put`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..model import Credentials, PersonalToken, TokenInfo
from .memory import MemoryRows, MemoryTokenStore
from .rows import RowBackend, TokenRow
from .sealed import RotationProgress, RotationReport, SealedTokenStore

__all__ = [
    "TokenStore",
    "MemoryTokenStore",
    "MemoryRows",
    "SealedTokenStore",
    "RowBackend",
    "TokenRow",
    "RotationProgress",
    "RotationReport",
]


@runtime_checkable
class TokenStore(Protocol):
    """What the resolver needs from a token store. URLs given to it are already normalized."""

    def lookup(self, owner: str, candidates: Sequence[tuple[str, str]]) -> PersonalToken | None:
        """The first existing token among ``candidates`` (``(url, scope)`` pairs, best first),
        with its credentials opened; ``None`` if none exists.

        Raises :class:`~tokenproviders.errors.SecretUnreadableError` (with ``.token`` set to the
        token's :class:`TokenInfo`) if the winner's secret cannot be opened.
        """
        ...

    def get(self, owner: str, url: str, scope: str) -> PersonalToken | None:
        """The token at exactly ``(owner, url, scope)``, with credentials, or ``None``."""
        ...

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
        """Create or replace the token at ``(owner, url, scope)`` in one transaction.

        A replacement keeps the id, bumps ``version`` and ``updated_at``.
        """
        ...

    def delete(self, owner: str, url: str, scope: str) -> TokenInfo | None:
        """Remove the token; return what was removed, or ``None`` if there was none."""
        ...

    def list(self, owner: str | None = None) -> list[TokenInfo]:
        """Metadata of the tokens of ``owner`` (all owners if ``None``), never secrets."""
        ...

    def mark_used(self, token_id: int, when: datetime) -> None:
        """Record that the token was used at ``when`` (stores may coarsen this)."""
        ...
