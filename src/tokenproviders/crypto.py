"""Sealing secrets at rest: the key ring and the AES-256-GCM blob format (DESIGN section 7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["KeyMaterial"]


@dataclass(frozen=True)
class KeyMaterial:
    """Keys a key provider supplies: ``keys`` maps key ids to 32 raw bytes; ``primary`` names
    the key new blobs are sealed with."""

    keys: Mapping[str, bytes] = field(repr=False)
    primary: str
