"""Sealing secrets at rest: the key ring and the AES-256-GCM blob format (DESIGN section 7).

Every stored secret (a personal token's ``api_password``, a tracker's bot ``api_password``) is
*sealed* by :meth:`KeyRing.seal` and *opened* by :meth:`KeyRing.open`. Nothing else touches key
material, and no caller can choose a nonce.

Blob format, version 1 (all integers big-endian)::

    offset      size  field
    0           1     format version, 0x01
    1           1     L, the length of the key id (1..64)
    2           L     key id, ASCII ([A-Za-z0-9][A-Za-z0-9._-]*)
    2+L         12    nonce: 96 fresh random bits from os.urandom for every seal
    14+L        n     AES-256-GCM ciphertext of the UTF-8 plaintext (n == len(plaintext bytes))
    14+L+n      16    GCM tag

The GCM associated data is the header (bytes ``0 .. 2+L``) followed by the encoding of an
:class:`AssociatedData`: the ASCII label ``tokenproviders/aad/v1``, a zero byte, the kind
(``token`` or ``bot``), a zero byte, then each part as a 2-byte length and its UTF-8 bytes. A
token's parts are ``(owner, scope, normalized url, field)``; a bot credential's are
``(tenant, tracker id, field)``. So a blob opens only under the key it names and only at the row
and field it was sealed for: copied to another row, user, tenant, URL or field, it fails.

Key rings come from (the first that supplies keys, see :meth:`KeyRing.load`): a key file passed
explicitly as ``key_file=``, the ``tokenproviders_keys`` hook (a KMS or Vault), the
``TOKENPROVIDERS_KEYS`` environment variable, the key file named by ``TOKENPROVIDERS_KEY_FILE``,
and last a caller's ``default_key_file=``. What the caller names explicitly wins over what the
environment says. A key file must be readable by its owner only (mode 0600). Key file format
(JSON)::

    {
      "format": "tokenproviders-keys",
      "version": 1,
      "primary": "20240501-3f9a2c",
      "keys": [
        {"id": "20240501-3f9a2c", "key": "<base64 of 32 random bytes>", "created": "2024-05-01T10:00:00+00:00"}
      ],
      "retired": ["20230101-00aa11"]
    }

``primary`` names the key new blobs are sealed with; ``retired`` (optional) lists ids whose keys
were destroyed, so a blob still naming one fails with a clear "retired" error. The environment
variable holds either that same JSON or the short form ``id:base64key[,id:base64key...]`` whose
first key is the primary. Keys are 32 random bytes, never derived from a password or from any
other application secret.

A key-check value (``HMAC-SHA256(key, "tokenproviders key check v1")``, first 16 bytes) lets a
store notice a *different* key under a reused id before anything is sealed with it. (The classic
"encrypt a zero block" check value is not used: for GCM that value is the authentication subkey.)

Key material never reaches a message or a traceback: errors about a malformed key source name
the entry by its position, never the text there (an id and a key swapped would otherwise echo
the key), and no frame that raises such an error holds key text in a local variable (traceback
renderers that show locals, such as ``TracebackException(capture_locals=True)`` or error
trackers, would print it): raw text and bytes are held in :class:`_Hidden` boxes whose ``repr``
is a mask, parsing happens in functions that return their error instead of raising it, and the
error is raised by a frame holding only boxes.

A :class:`KeyRing` remembers which keys were added since it was loaded or written
(:attr:`KeyRing.unsaved_ids`): a store refuses to re-seal everything under a primary key that
exists only in memory.

Create a key file from a shell with ``python -m tokenproviders.crypto generate PATH``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, NoReturn, TypeVar, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._private_files import exclusive_lock, refuse_loose_mode, write_whole
from .errors import (
    ConfigurationError,
    InvalidInputError,
    MissingKeyError,
    SecretUnreadableError,
    TokenProvidersError,
)
from .model import Secret, _trusted_secret

if TYPE_CHECKING:
    from .plugins import Plugins

__all__ = [
    "KeyMaterial",
    "KeyRing",
    "AssociatedData",
    "BLOB_VERSION",
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "KEYS_ENV",
    "KEY_FILE_ENV",
    "MAX_SECRET_LENGTH",
    "blob_key_id",
    "encode_token_aad",
    "check_key_id",
]

BLOB_VERSION: Final = 1
KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
#: Longest secret accepted, in characters. API tokens are far shorter; this bounds the blobs.
MAX_SECRET_LENGTH: Final = 64 * 1024
MAX_KEY_ID_LENGTH: Final = 64

#: Environment variable holding the keys themselves (JSON or ``id:base64,...``).
KEYS_ENV: Final = "TOKENPROVIDERS_KEYS"
#: Environment variable naming the key file when ``key_file`` is not given.
KEY_FILE_ENV: Final = "TOKENPROVIDERS_KEY_FILE"

KEY_FILE_FORMAT: Final = "tokenproviders-keys"
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_AAD_LABEL: Final = b"tokenproviders/aad/v1\x00"
_CHECK_LABEL: Final = b"tokenproviders key check v1"

CREATE_KEY_HINT: Final = (
    "create a key file with 'python -m tokenproviders.crypto generate /path/to/keys.json'"
    " (or KeyRing.generate_key_file(path) in Python), then pass key_file=... or set"
    f" {KEY_FILE_ENV}=/path/to/keys.json; or put the keys in {KEYS_ENV}, or register a"
    " tokenproviders_keys plugin that supplies them"
)


_T = TypeVar("_T")
_KEY_ID_HINT: Final = "use 1 to 64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit"
#: Valid ids this short are shown in messages: no text encoding of a 32-byte key is this short
#: (base64 takes 43 characters, hex 64), so such an id cannot be a key pasted in the wrong place.
_SHOWN_ID_LENGTH: Final = 32


class _Hidden(Generic[_T]):
    """A box for key text or key bytes (or anything that may hold them) whose ``repr`` is a
    mask, so a traceback renderer that shows local variables prints no key material."""

    __slots__ = ("value",)

    def __init__(self, value: _T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("key material cannot be pickled")


def _valid_id(key_id: object) -> bool:
    return isinstance(key_id, str) and _KEY_ID.match(key_id) is not None


def _shown(key_id: object, position: int | None = None) -> str:
    """How a message names a key id: quoted if it is valid and too short to be a key, else by
    its position (or as "a key id")."""
    if isinstance(key_id, str) and len(key_id) <= _SHOWN_ID_LENGTH and _valid_id(key_id):
        return repr(key_id)
    return f"at position {position}" if position is not None else "(not shown)"


def _quoted(key_id: object) -> str:
    """`` 'id'`` for a message when the id may be shown (see :func:`_shown`), else nothing."""
    shown = _shown(key_id)
    return f" {shown}" if shown.startswith("'") else ""


def check_key_id(key_id: object) -> str:
    """Validate a key id (1 to 64 characters of ``A-Z a-z 0-9 . _ -``, starting alphanumeric).

    The message never repeats an invalid id: it may be a key given where an id belongs."""
    if not _valid_id(key_id):
        what = f"{len(key_id)} characters" if isinstance(key_id, str) else f"a {type(key_id).__name__}"
        raise ConfigurationError(f"invalid key id ({what})", hint=_KEY_ID_HINT)
    assert isinstance(key_id, str)
    return key_id


def _key_size_problem(key: object) -> str | None:
    """Why ``key`` is not a usable key (no key material in the answer), or ``None``."""
    if not isinstance(key, (bytes, bytearray)):
        return f"must be {KEY_SIZE} bytes, not a {type(key).__name__}"
    if len(key) != KEY_SIZE:
        return f"must be exactly {KEY_SIZE} bytes (AES-256), got {len(key)}"
    return None


def _key_error(which: str, problem: str, source: str | None = None) -> ConfigurationError:
    where = f" in the {source}" if source is not None else ""
    return ConfigurationError(
        f"{which}{where} {problem}",
        hint="generate a new key with KeyRing.generate_key_file() or KeyRing.add_key()",
    )


def _new_key_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class KeyMaterial:
    """Keys a key provider supplies: ``keys`` maps key ids to 32 raw bytes; ``primary`` names
    the key new blobs are sealed with."""

    keys: Mapping[str, bytes] = field(repr=False)
    primary: str

    def __repr__(self) -> str:
        # No key, and no primary id that could be a key given in the wrong place.
        count = len(self.keys) if isinstance(self.keys, Mapping) else "?"
        return f"KeyMaterial(primary={_shown(self.primary)}, {count} key(s))"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("KeyMaterial cannot be pickled: it holds keys")


@dataclass(frozen=True)
class AssociatedData:
    """What a blob is bound to: its row identity and field, authenticated but not encrypted.

    Build it with :meth:`for_token` or :meth:`for_bot`; the same values must be given to open
    the blob as were given to seal it.
    """

    kind: Literal["token", "bot"]
    parts: tuple[str, ...]

    @classmethod
    def for_token(cls, *, owner: str, scope: str, url: str, field: str) -> AssociatedData:
        """A personal token's field: owner, scope (tenant or ``ALL_TENANTS``), normalized URL."""
        return cls("token", (owner, scope, url, field))

    @classmethod
    def for_bot(cls, *, tenant: str, tracker: str, field: str) -> AssociatedData:
        """A tracker's bot credential field: tenant, tracker id."""
        return cls("bot", (tenant, tracker, field))

    def encode(self) -> bytes:
        """The canonical, unambiguous byte encoding (length-prefixed parts)."""
        return b"".join([_AAD_LABEL, self.kind.encode("ascii"), b"\x00", *map(_encoded_part, self.parts)])


def _encoded_part(part: str) -> bytes:
    data = part.encode("utf-8", "surrogatepass")
    if len(data) > 0xFFFF:
        raise ConfigurationError("an associated-data part is longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + data


_TOKEN_AAD_PREFIX: Final = _AAD_LABEL + b"token\x00"
_token_aad_tails: dict[tuple[str, str, str], bytes] = {}


def encode_token_aad(owner: str, scope: str, url: str, field: str) -> bytes:
    """``AssociatedData.for_token(owner=..., scope=..., url=..., field=...).encode()``, for the
    resolve path: the same bytes, with the encoded scope, URL and field (few distinct values)
    remembered."""
    key = (scope, url, field)
    tail = _token_aad_tails.get(key)
    if tail is None:
        tail = _encoded_part(scope) + _encoded_part(url) + _encoded_part(field)
        if len(_token_aad_tails) >= 4096:
            _token_aad_tails.clear()
        _token_aad_tails[key] = tail
    data = owner.encode("utf-8", "surrogatepass")
    if len(data) > 0xFFFF:
        raise ConfigurationError("an associated-data part is longer than 65535 bytes")
    return b"".join((_TOKEN_AAD_PREFIX, len(data).to_bytes(2, "big"), data, tail))


def _header(key_id: str) -> bytes:
    raw = key_id.encode("ascii")
    return bytes((BLOB_VERSION, len(raw))) + raw


def _unreadable(message: str, key_id: str | None, hint: str | None = None) -> SecretUnreadableError:
    return SecretUnreadableError(message, key_id=key_id, hint=hint)


def blob_key_id(blob: bytes) -> str:
    """The key id a blob names, without opening it. Raises :class:`SecretUnreadableError` for a
    blob too malformed to name one."""
    return _parse(blob)[1]


def _parse(blob: bytes) -> tuple[int, str, int]:
    """Return ``(header length, key id, payload offset)`` of a blob or raise."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise _unreadable(f"a sealed blob must be bytes, not {type(blob).__name__}", None)
    view = memoryview(blob)
    if len(view) < 2:
        raise _unreadable("the sealed blob is truncated (no header)", None)
    version = view[0]
    if version != BLOB_VERSION:
        raise _unreadable(
            f"the sealed blob has format version {version}, this tokenproviders reads version {BLOB_VERSION}",
            None,
            hint="upgrade tokenproviders, or set the credentials again if the blob was damaged",
        )
    id_length = view[1]
    header_length = 2 + id_length
    if id_length == 0 or id_length > MAX_KEY_ID_LENGTH or len(view) < header_length:
        raise _unreadable("the sealed blob's header is malformed (bad key id length)", None)
    try:
        key_id = bytes(view[2:header_length]).decode("ascii")
    except UnicodeDecodeError:
        key_id = ""
    if not _KEY_ID.match(key_id):
        raise _unreadable("the sealed blob's header is malformed (the key id is not valid)", None)
    if len(view) < header_length + NONCE_SIZE + TAG_SIZE:
        raise _unreadable(f"the blob sealed under key {key_id!r} is truncated", key_id)
    return header_length, key_id, header_length + NONCE_SIZE


class KeyRing:
    """The keys that seal and open secrets: one primary key for sealing, older keys for opening.

    Build one with :meth:`load`, :meth:`from_key_file`, :meth:`from_env`,
    :meth:`generate_key_file` or ``KeyRing({"id": key_bytes}, primary="id")``. Its ``repr``
    names key ids only (also while it is being built); it cannot be pickled.
    """

    __slots__ = ("_by_header", "_ciphers", "_keys", "_primary", "_retired", "_unsaved", "source")

    def __init__(
        self,
        keys: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
        primary: str,
        *,
        retired: Iterable[str] = (),
        source: str = "memory",
    ) -> None:
        # Every attribute first, so that repr() works whatever happens below.
        self._keys: dict[str, bytes] = {}
        self._ciphers: dict[str, AESGCM] = {}
        # Blob header -> (key id, cipher): opening a well-formed blob is one dict lookup.
        self._by_header: dict[bytes, tuple[str, AESGCM]] = {}
        self._retired: set[str] = set()
        self._unsaved: set[str] = set()
        self._primary = ""
        #: Where the keys came from (``memory``, ``env``, ``key file PATH``, ``plugin``): for messages.
        self.source = source
        # The arguments may hold key material: boxed, and gone from this frame's locals, before
        # anything can raise. The checks return their error; it is raised here, where a
        # traceback shows only boxes.
        given = _Hidden((keys, primary, retired))
        del keys, primary, retired
        problem = self._fill(given)
        if problem is not None:
            raise problem

    def _fill(self, given: _Hidden[tuple[Any, Any, Any]]) -> TokenProvidersError | None:
        try:
            return self._fill_checked(given)
        except Exception:  # noqa: BLE001 - an input no check foresaw: its frames' locals must not travel
            return ConfigurationError(
                f"the keys given for the key ring ({self.source}) are malformed",
                hint="give a mapping of key ids to 32-byte keys, the primary key's id and a list of retired ids",
            )

    def _fill_checked(self, given: _Hidden[tuple[Any, Any, Any]]) -> TokenProvidersError | None:
        keys, primary, retired = given.value
        source = self.source
        items = keys.items() if isinstance(keys, Mapping) else keys
        entries: list[tuple[object, object]] = []
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                return ConfigurationError(
                    f"the key at position {len(entries) + 1} of the key ring ({source}) is not an (id, key) pair"
                )
            entries.append((item[0], item[1].value if isinstance(item[1], _Hidden) else item[1]))
        if not entries:
            return MissingKeyError(f"the key ring from {source} has no keys", hint=CREATE_KEY_HINT)
        positions: dict[str, int] = {}
        for position, (key_id, key) in enumerate(entries, 1):
            if not _valid_id(key_id):
                return ConfigurationError(
                    f"invalid key id at position {position} of the key ring ({source})", hint=_KEY_ID_HINT
                )
            assert isinstance(key_id, str)
            if key_id in positions:
                return ConfigurationError(
                    f"the keys at positions {positions[key_id]} and {position} of the key ring ({source})"
                    f" have the same id{_quoted(key_id)}",
                    hint="give every key its own id; remove or rename the duplicate",
                )
            positions[key_id] = position
            size_problem = _key_size_problem(key)
            if size_problem is not None:
                return _key_error(f"the key {_shown(key_id, position)}", size_problem, f"key ring ({source})")
        retired_ids = list(retired)
        for position, key_id in enumerate(retired_ids, 1):
            if not _valid_id(key_id):
                return ConfigurationError(
                    f"the retired key id at position {position} ({source}) is not a valid key id", hint=_KEY_ID_HINT
                )
            if key_id in positions:
                return ConfigurationError(
                    f"the key {_shown(key_id, positions[key_id])} is listed as retired but its key is still in"
                    f" the key ring ({source})",
                    hint="delete the retired key's entry, or remove it from the retired list",
                )
        if not _valid_id(primary):
            return ConfigurationError(f"the primary key id of the key ring ({source}) is not valid", hint=_KEY_ID_HINT)
        if primary not in positions:
            return ConfigurationError(
                f"the primary key{_quoted(primary)} is not among the {len(positions)} key(s) of the key ring"
                f" ({source})",
                hint="set 'primary' to the id of one of the keys",
            )
        for key_id, key in entries:
            assert isinstance(key_id, str) and isinstance(key, (bytes, bytearray))
            self._install(key_id, bytes(key))
        self._retired.update(retired_ids)
        self._primary = primary
        return None

    # -- inspection --------------------------------------------------------------------
    @property
    def primary_id(self) -> str:
        """The id of the key new blobs are sealed with."""
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the keys held (primary first, then sorted)."""
        return (self._primary, *sorted(k for k in self._keys if k != self._primary))

    @property
    def retired_ids(self) -> frozenset[str]:
        """Ids of keys known to be retired (destroyed): blobs naming them cannot be opened."""
        return frozenset(self._retired)

    @property
    def unsaved_ids(self) -> frozenset[str]:
        """Ids of keys added (:meth:`add_key`, :meth:`generate`) since the ring was loaded or
        last written with :meth:`write_key_file`: they exist only in this process's memory.

        Keys that came from a key file, the environment or a key provider count as saved; so
        do keys given to the constructor (the caller holds them). A store refuses to rotate to
        an unsaved primary key."""
        return frozenset(self._unsaved)

    def mark_saved(self) -> None:
        """Record that every key of the ring is now kept outside this process (for hosts that
        store :meth:`to_document` themselves instead of calling :meth:`write_key_file`)."""
        self._unsaved.clear()

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __repr__(self) -> str:
        # Safe at any stage of construction (renderers of tracebacks call it on half-built rings).
        keys = getattr(self, "_keys", None) or {}
        primary = getattr(self, "_primary", None) or None
        ids = ([primary] if primary in keys else []) + sorted(k for k in keys if k != primary)
        return f"KeyRing(primary={primary!r}, key_ids={ids!r}, source={getattr(self, 'source', None)!r})"

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a KeyRing cannot be pickled; load it where it is used")

    def check_value(self, key_id: str) -> bytes:
        """The key-check value of ``key_id``: 16 bytes that identify the key without revealing it."""
        if key_id not in self._keys:
            raise self._missing(key_id)
        return hmac.new(self._keys[key_id], _CHECK_LABEL, hashlib.sha256).digest()[:16]

    # -- changing the ring -------------------------------------------------------------
    def _install(self, key_id: str, key: bytes) -> None:
        cipher = AESGCM(key)
        self._keys[key_id] = key
        self._ciphers[key_id] = cipher
        self._by_header[_header(key_id)] = (key_id, cipher)

    def add_key(self, key_id: str | None = None, key: bytes | None = None, *, primary: bool = True) -> str:
        """Add a key (32 fresh random bytes unless ``key`` is given) and return its id.

        With ``primary=True`` (the default) it becomes the key new blobs are sealed with.
        Persist the ring with :meth:`write_key_file` *before* running the store's rotation:
        until then the key is in :attr:`unsaved_ids`, and rotation refuses to re-seal every row
        under a key that would vanish with this process.
        """
        material = _Hidden(key if key is not None else os.urandom(KEY_SIZE))
        del key
        key_id = check_key_id(key_id) if key_id is not None else _new_key_id()
        if key_id in self._keys or key_id in self._retired:
            raise ConfigurationError(
                f"key id {key_id!r} is already used in this key ring",
                hint="choose a new id; never reuse the id of another (even retired) key",
            )
        problem = _key_size_problem(material.value)
        if problem is not None:
            raise _key_error(f"the key {_shown(key_id)}", problem)
        self._install(key_id, bytes(material.value))
        self._unsaved.add(key_id)
        if primary:
            self._primary = key_id
        return key_id

    def set_primary(self, key_id: str) -> None:
        """Make an existing key the one new blobs are sealed with."""
        if key_id not in self._keys:
            raise self._missing(key_id)
        self._primary = key_id

    def retire(self, key_id: str) -> None:
        """Forget a key's material and remember its id as retired (the primary cannot be).

        Use a store's ``retire_key`` instead: it first checks that no row still uses the key.
        """
        if key_id == self._primary:
            raise ConfigurationError(
                f"key {key_id!r} is the primary key and cannot be retired",
                hint="add a new primary key and rotate first",
            )
        check_key_id(key_id)
        self._keys.pop(key_id, None)
        self._ciphers.pop(key_id, None)
        self._by_header.pop(_header(key_id), None)
        self._unsaved.discard(key_id)
        self._retired.add(key_id)

    # -- sealing -----------------------------------------------------------------------
    def seal(self, plaintext: str | Secret, aad: AssociatedData) -> bytes:
        """Seal ``plaintext`` under the primary key with a fresh random nonce, bound to ``aad``.

        Pass the :class:`Secret` itself where you have one: the value is revealed only inside
        the encryption call.
        """
        if isinstance(plaintext, str):
            # Rebind at once so no local of this frame holds the plain value if anything below raises.
            plaintext = Secret(plaintext)
        if not isinstance(plaintext, Secret):
            raise TypeError(f"seal() takes a str or Secret, not {type(plaintext).__name__}")
        if not isinstance(aad, AssociatedData):
            raise TypeError("seal() needs an AssociatedData binding the blob to its row")
        if len(plaintext.reveal()) > MAX_SECRET_LENGTH:
            raise InvalidInputError(
                f"a secret may be at most {MAX_SECRET_LENGTH} characters long",
                hint="check that the right value was given",
            )
        header = _header(self._primary)
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._ciphers[self._primary].encrypt(
            nonce, plaintext.reveal().encode("utf-8", "surrogatepass"), header + aad.encode()
        )
        return header + nonce + sealed

    def open_secret(self, blob: bytes, aad: AssociatedData | bytes) -> Secret:
        """Open a blob sealed for ``aad`` and return its value as a :class:`Secret`.

        ``aad`` is the :class:`AssociatedData` the blob was sealed for, or its ``encode()``
        (such as :func:`encode_token_aad` returns). Raises :class:`SecretUnreadableError`
        naming at most the key id when the key is unknown, retired or different, or the blob
        was altered, truncated, extended or moved.
        """
        entry = None
        if type(blob) is bytes and len(blob) > 1:
            header = blob[: 2 + blob[1]]
            entry = self._by_header.get(header)
        if entry is None or len(blob) < len(header) + NONCE_SIZE + TAG_SIZE:
            # Malformed, truncated, or naming a key this ring does not hold: say which.
            _, key_id, _ = _parse(blob)
            if key_id not in self._ciphers:
                raise self._missing(key_id)
            blob = bytes(blob)
            header = blob[: 2 + blob[1]]
            entry = self._by_header[header]
        key_id, cipher = entry
        payload = len(header) + NONCE_SIZE
        if type(aad) is not bytes:
            if not isinstance(aad, AssociatedData):
                raise TypeError("open_secret() needs the AssociatedData the blob was sealed for")
            aad = aad.encode()
        try:
            return _trusted_secret(
                cipher.decrypt(blob[len(header) : payload], blob[payload:], header + aad).decode(
                    "utf-8", "surrogatepass"
                )
            )
        except InvalidTag:
            raise _unreadable(
                f"the secret sealed under key {key_id!r} cannot be opened: the key under that id is"
                " a different key, or the blob was altered or copied from another row or field",
                key_id,
                hint=f"load the key ring that holds the original key {key_id!r}, or set the credentials again",
            ) from None

    def open(self, blob: bytes, aad: AssociatedData | bytes) -> str:
        """Open a blob and return the plain string (prefer :meth:`open_secret`)."""
        return self.open_secret(blob, aad).reveal()

    def _missing(self, key_id: str) -> SecretUnreadableError:
        if key_id in self._retired:
            return _unreadable(
                f"key {key_id!r} was retired; secrets sealed under it can no longer be opened",
                key_id,
                hint="set those credentials again (they are sealed under the primary key then)",
            )
        return _unreadable(
            f"key {key_id!r} is not in the key ring ({self.source})",
            key_id,
            hint=f"add the key with id {key_id!r} to the key ring, or set the credentials again",
        )

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        *,
        key_file: str | os.PathLike[str] | None = None,
        plugins: Plugins | None = None,
        env: Mapping[str, str] = os.environ,
        default_key_file: str | os.PathLike[str] | None = None,
    ) -> KeyRing:
        """The key ring from the first of these that supplies keys:

        1. ``key_file``, when given: an explicit argument wins over everything implicit;
        2. the ``tokenproviders_keys`` hook of ``plugins`` (a KMS or Vault; ``None`` defers);
        3. the ``TOKENPROVIDERS_KEYS`` variable of ``env`` (JSON or ``id:base64key,...``);
        4. the key file named by the ``TOKENPROVIDERS_KEY_FILE`` variable of ``env``;
        5. ``default_key_file``, when given (an application's own default location).

        Raises :class:`MissingKeyError` if none supplies keys; a source that is configured but
        broken (a malformed variable, a key file readable by others) is an error, not skipped.
        """
        # The environment holds the keys themselves: read what is needed into boxes and drop
        # the mapping from this frame before anything can raise.
        keys_text = _Hidden(env.get(KEYS_ENV, ""))
        env_key_file = env.get(KEY_FILE_ENV) or None
        del env
        if key_file is not None:
            return cls.from_key_file(key_file)
        if plugins is not None:
            material = plugins.hook.tokenproviders_keys()
            if material is not None:
                return cls.from_material(material, source="plugin")
        if keys_text.value.strip():
            return cls._from_text(keys_text, f"environment variable {KEYS_ENV}")
        path = env_key_file if env_key_file is not None else default_key_file
        if path is not None:
            return cls.from_key_file(path)
        raise MissingKeyError("no encryption key is configured, so no secret can be stored or read",
                              hint=CREATE_KEY_HINT)

    @classmethod
    def from_material(cls, material: KeyMaterial, *, source: str = "plugin") -> KeyRing:
        """A key ring from what a ``tokenproviders_keys`` provider returned."""
        if not isinstance(material, KeyMaterial):
            raise ConfigurationError(
                f"a tokenproviders_keys provider returned {type(material).__name__}, not KeyMaterial or None"
            )
        return cls(material.keys, material.primary, source=source)

    @classmethod
    def from_env(cls, var: str = KEYS_ENV, *, env: Mapping[str, str] = os.environ) -> KeyRing:
        """Keys from an environment variable: the key-file JSON, or ``id:base64[,id:base64...]``
        (the first key is the primary)."""
        text = _Hidden(env.get(var, ""))
        del env
        return cls._from_text(text, f"environment variable {var}")

    @classmethod
    def _from_text(cls, text: _Hidden[str], source: str) -> KeyRing:
        if not text.value.strip():
            raise MissingKeyError(f"{source} is not set or empty", hint=CREATE_KEY_HINT)
        return cls._build(_parsed(_parse_text, text, source), source)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Keys from a JSON key file that only its owner may read or write (mode 0600)."""
        file = Path(path)
        source = f"key file {str(file)!r}"
        try:
            # Symlinks are followed (mounted secrets are often links); the mode checked is the target's.
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            raise MissingKeyError(f"the {source} does not exist", hint=CREATE_KEY_HINT) from None
        except OSError as exc:
            raise ConfigurationError(f"the {source} cannot be opened ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            refuse_loose_mode(info, source, file, error=ConfigurationError)
            if not stat.S_ISREG(info.st_mode):
                raise ConfigurationError(f"the {source} is not a regular file")
            data = _Hidden(handle.read(1024 * 1024))
        return cls._build(_parsed(_parse_file, data, source), source)

    @classmethod
    def _build(cls, parsed: _Parsed | TokenProvidersError, source: str) -> KeyRing:
        """The ring from parsed keys, or raise the parser's error (from this frame, which holds
        no key material)."""
        if isinstance(parsed, TokenProvidersError):
            raise parsed
        # The constructor unboxes the keys itself (boxed pairs are accepted internally).
        return cls(cast(Any, parsed.keys), parsed.primary, retired=parsed.retired, source=source)

    def to_document(self) -> dict[str, Any]:
        """The key-file JSON document of this ring (holds key material: write it only with
        :meth:`write_key_file`)."""
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return {
            "format": KEY_FILE_FORMAT,
            "version": 1,
            "primary": self._primary,
            "keys": [
                {"id": key_id, "key": base64.b64encode(self._keys[key_id]).decode("ascii"), "created": created}
                for key_id in self.key_ids
            ],
            "retired": sorted(self._retired),
        }

    def _document_bytes(self) -> _Hidden[bytes]:
        return _Hidden((json.dumps(self.to_document(), indent=2) + "\n").encode("ascii"))

    def write_key_file(self, path: str | os.PathLike[str], *, replace: bool = False) -> None:
        """Write the ring as a 0600 key file, whole or not at all (a temporary file beside it,
        synced, then renamed into place; on failure nothing changes and the error says why).

        Refuses to overwrite unless ``replace=True``; then the new file atomically replaces the
        old one, under the key file's lock (see :meth:`edit_key_file`). A symbolic link is
        followed: the file it points to is replaced, and the link stays. Afterwards no key of
        the ring is in :attr:`unsaved_ids`."""
        file = Path(path)
        if replace:
            target = Path(os.path.realpath(file))
            with _key_file_lock(target, file, missing_ok=True):
                self._write_to(target, file, replace=True)
        else:
            self._write_to(file, file, replace=False)

    def _write_to(self, target: Path, shown: Path, *, replace: bool) -> None:
        data = self._document_bytes()
        try:
            write_whole(target, lambda fd: _write_all(fd, data), replace=replace)
        except FileExistsError:
            raise ConfigurationError(
                f"the key file {str(shown)!r} already exists and is not overwritten",
                hint="choose another path; overwriting a key file destroys the keys that open your data",
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the key file {str(shown)!r} ({exc.strerror or exc});"
                f" {'it was left as it was' if replace else 'no file was created'}",
                hint="free some space, or make the key file's directory writable for this user, and try again",
            ) from None
        self._unsaved.clear()

    @classmethod
    @contextmanager
    def edit_key_file(cls, path: str | os.PathLike[str]) -> Iterator[KeyRing]:
        """Change a key file: ``with KeyRing.edit_key_file(path) as ring: ring.add_key()``.

        Loads the file, hands its ring to the block and, if the block ends without an
        exception, writes the ring back (as :meth:`write_key_file` with ``replace=True``),
        all under an exclusive lock on the key file, so that another process's edit (another
        ``keys generate`` or ``keys retire``) waits and then starts from this one's result
        instead of overwriting it. A symbolic link is followed: its target is changed. The
        lock is an ``fcntl.flock`` on the key file (checked, once held, to be still the file at
        the path); it is advisory, so only writers that take it (this method and
        ``write_key_file``) are serialized."""
        file = Path(path)
        target = Path(os.path.realpath(file))
        with _key_file_lock(target, file):
            ring = cls.from_key_file(target)
            ring.source = f"key file {str(file)!r}"
            yield ring
            ring._write_to(target, file, replace=True)

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A new in-memory ring with one fresh random key (persist it with :meth:`write_key_file`;
        until then the key is in :attr:`unsaved_ids`)."""
        key_id = check_key_id(key_id) if key_id is not None else _new_key_id()
        ring = cls({key_id: os.urandom(KEY_SIZE)}, key_id, source="generated")
        ring._unsaved.add(key_id)
        return ring

    @classmethod
    def generate_key_file(cls, path: str | os.PathLike[str], *, key_id: str | None = None) -> KeyRing:
        """Create a key file (mode 0600) holding one fresh random key and return its ring.

        Refuses to overwrite an existing file.
        """
        ring = cls.generate(key_id)
        ring.write_key_file(path)
        ring.source = f"key file {str(Path(path))!r}"
        return ring


def _write_all(fd: int, data: _Hidden[bytes]) -> None:
    view = memoryview(data.value)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@contextmanager
def _key_file_lock(target: Path, shown: Path, *, missing_ok: bool = False) -> Iterator[None]:
    """Hold the lock for changing the key file ``target`` (``shown`` names it in messages).
    A missing file is a :class:`MissingKeyError`, or with ``missing_ok`` nothing to lock."""
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(target))
        except FileNotFoundError:
            if not missing_ok:
                raise MissingKeyError(f"the key file {str(shown)!r} does not exist", hint=CREATE_KEY_HINT) from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot lock the key file {str(shown)!r} for changing it ({exc.strerror or exc})",
                hint="make the key file writable for its owner, or wait for the other process",
            ) from None
        yield


# -- parsing key sources -------------------------------------------------------------------
# These functions hold key text in their locals, so they never raise for a malformed input:
# they return the error, and a frame holding only boxes raises it (see the module docstring).


@dataclass(frozen=True)
class _Parsed:
    """Keys read from a key source: ids with boxed key bytes, the primary, the retired ids."""

    keys: list[tuple[str, _Hidden[bytes]]]
    primary: str
    retired: list[str]

    def __repr__(self) -> str:
        # Ids are valid ids here, but a long one may still be a (hex) key in the wrong place.
        return f"_Parsed({len(self.keys)} key(s))"


def _parsed(
    parse: Callable[[_Hidden[Any], str], _Parsed | TokenProvidersError], raw: _Hidden[Any], source: str
) -> _Parsed | TokenProvidersError:
    """Run a parser; an exception it did not foresee becomes a plain error, without its frames."""
    try:
        return parse(raw, source)
    except Exception:  # noqa: BLE001 - its frames hold key text; only our own error may leave
        return ConfigurationError(f"the {source} cannot be read as tokenproviders keys")


def _parse_text(raw: _Hidden[str], source: str) -> _Parsed | TokenProvidersError:
    """The value of a variable: the key-file JSON, or ``id:base64key[,id:base64key...]``."""
    text = raw.value.strip()
    if text.startswith("{"):
        return _parse_json(text, source)
    pairs: list[tuple[str, _Hidden[bytes]]] = []
    for position, item in enumerate(text.split(","), 1):
        key_id, sep, encoded = item.strip().partition(":")
        key_id = key_id.strip()
        if not sep:
            return ConfigurationError(
                f"the entry at position {position} of the {source} is not 'id:base64key': the {source} must"
                " be JSON or 'id:base64key[,id:base64key...]'",
                hint="see the tokenproviders.crypto documentation for the format",
            )
        if not _valid_id(key_id):
            return ConfigurationError(
                f"the key id of the entry at position {position} of the {source} is not valid",
                hint=f"{_KEY_ID_HINT}; each entry is 'id:base64key', the id first",
            )
        key = _decode_key(encoded.strip())
        if isinstance(key, str):
            return _key_error(f"the key of the entry at position {position}", key, source)
        pairs.append((key_id, key))
    return _Parsed(pairs, pairs[0][0], [])


def _parse_file(raw: _Hidden[bytes], source: str) -> _Parsed | TokenProvidersError:
    return _parse_json(raw.value.decode("utf-8", "replace"), source)


def _parse_json(text: str, source: str) -> _Parsed | TokenProvidersError:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        # The parser's message can quote the text around the error, i.e. key material.
        return ConfigurationError(f"the {source} is not valid JSON")
    return _parse_document(document, source)


def _parse_document(document: Any, source: str) -> _Parsed | TokenProvidersError:
    if not isinstance(document, dict) or document.get("format", KEY_FILE_FORMAT) != KEY_FILE_FORMAT:
        return ConfigurationError(f"the {source} is not a tokenproviders key file")
    version = document.get("version", 1)
    if version != 1:
        shown = version if isinstance(version, int) and not isinstance(version, bool) else "(not a number)"
        return ConfigurationError(
            f"the {source} has format version {shown}; this tokenproviders reads version 1",
            hint="upgrade tokenproviders",
        )
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        return MissingKeyError(f"the {source} lists no keys", hint=CREATE_KEY_HINT)
    pairs: list[tuple[str, _Hidden[bytes]]] = []
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or "id" not in entry:
            return ConfigurationError(
                f"the entry at position {position} of 'keys' in the {source} needs an 'id' and a base64 'key'"
            )
        key_id = entry["id"]
        if not _valid_id(key_id):
            return ConfigurationError(
                f"the id of the entry at position {position} of 'keys' in the {source} is not a valid key id",
                hint=_KEY_ID_HINT,
            )
        key = _decode_key(entry["key"])
        if isinstance(key, str):
            return _key_error(f"the key of the entry at position {position} of 'keys'", key, source)
        pairs.append((key_id, key))
    primary = document.get("primary", pairs[0][0])
    if not _valid_id(primary):
        return ConfigurationError(f"'primary' in the {source} is not a valid key id", hint=_KEY_ID_HINT)
    retired = document.get("retired", [])
    if not isinstance(retired, list):
        return ConfigurationError(f"'retired' in the {source} must be a list of key ids")
    for position, key_id in enumerate(retired, 1):
        if not _valid_id(key_id):
            return ConfigurationError(
                f"the entry at position {position} of 'retired' in the {source} is not a valid key id",
                hint=_KEY_ID_HINT,
            )
    return _Parsed(pairs, primary, list(retired))


def _decode_key(encoded: str) -> _Hidden[bytes] | str:
    """The boxed key bytes of base64 text, or what is wrong with it (never the text)."""
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    problem = _key_size_problem(key)
    return problem if problem is not None else _Hidden(key)


def main(argv: list[str] | None = None) -> int:
    """``python -m tokenproviders.crypto generate PATH``: create a 0600 key file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "generate":
        print("usage: python -m tokenproviders.crypto generate PATH", file=sys.stderr)
        return 2
    try:
        ring = KeyRing.generate_key_file(args[1])
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"created {args[1]} (mode 0600) with key {ring.primary_id!r}; keep a backup of it somewhere safe")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
