"""URL normalization: the only way two tracker or token URLs are compared.

A token is matched to a tracker by *equality* of normalized URLs, never by prefix. Normalizing
lower-cases the scheme and host, drops the default port, the trailing slash, the query and the
fragment, and refuses what cannot safely be a tracker URL: non-http(s) schemes, user-info
(``https://user:pass@host`` would put a secret into a URL), control characters and over-long input.

Two URLs normalize equal only if an HTTP client contacts the same server for both, so host names are
encoded as ``requests`` (urllib3) puts them on the wire, and refused where that stack and UTS 46 (the
browsers' rule) disagree; brackets hold only IPv6 addresses; numeric hosts have one spelling.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidURLError

__all__ = ["MAX_URL_LENGTH", "normalize_url", "origin_of", "is_normalized"]

#: Longest URL accepted, before normalization. Browsers and servers commonly cap near 2 KiB.
MAX_URL_LENGTH = 2048

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host names: letters, digits, '-' and '_' in dot-separated labels that neither start nor end with '-'.
_HOST = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9_-]{1,63}(?<!-))*")
_MAX_HOST_LENGTH = 253  # DNS, without the root's dot
# The last label of a host that URL parsers and getaddrinfo read as a number (WHATWG "ends in a number").
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[0-9]*")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_ASCII_SPACE = " \t\n\r\x0b\x0c"
_ASCII_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# Controls (C0, C1), format characters (bidi overrides, zero-width, soft hyphen), surrogates, and
# every Unicode space and line or paragraph separator: invisible or rewritten by str.strip().
_INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")
# ZWJ and ZWNJ: format characters that IDNA allows in a host name where its joiner rules say so.
_JOINERS = "\u200c\u200d"
_XN_HINT = "give the host in its xn-- form (as the tracker's own address bar shows it)"


def _bounded(text: str) -> str:
    # Refused URLs may be long or odd; show a bounded prefix.
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(url: str) -> str:
    # A URL with an '@' may carry a password in its user-info, and a malformed one cannot be
    # split safely: never echo it.
    if "@" in url:
        return "(not shown: it may contain a user name or password)"
    # The query and fragment are dropped: they can carry an API key (?key=..., ?private_token=...).
    return repr(_bounded(url.partition("#")[0].partition("?")[0]))


def _has_invisible(text: str) -> bool:
    if text.isascii():
        return _ASCII_CONTROL.search(text) is not None
    return any(
        (char.isascii() and _ASCII_CONTROL.match(char) is not None)
        or (unicodedata.category(char) in _INVISIBLE and char not in _JOINERS)
        for char in text
    )


def _count_joiners(text: str) -> int:
    return sum(char in _JOINERS for char in text)


def normalize_url(url: str) -> str:
    """Return the canonical form of ``url`` or raise :class:`InvalidURLError`.

    >>> normalize_url("HTTPS://GitHub.com:443/Org/Repo/")
    'https://github.com/Org/Repo'
    >>> normalize_url("http://jira.example.com:8080/jira?x=1#top")
    'http://jira.example.com:8080/jira'
    >>> normalize_url("https://faß.de/")
    'https://xn--fa-hia.de'

    The rules, each there so that two URLs are equal only when they reach the same server:

    - ASCII white space around the URL is trimmed; any other white space, control character (C0,
      C1, DEL), format character (bidi overrides, zero-width characters, soft hyphen), Unicode line
      or paragraph separator, or lone surrogate anywhere is refused. ZWJ and ZWNJ are allowed only
      in a host name, where IDNA's joiner rules decide.
    - The scheme is ``http`` or ``https``; user-info is refused.
    - The authority is one host and an optional port of ASCII digits (1 to 65535; an empty port is
      the default one, which is dropped).
    - Brackets hold only a whole IPv6 address, written in its compressed form. IPvFuture literals
      (``[v1.x]``) and zone ids (``[fe80::1%25eth0]``) are refused.
    - A host whose last label is a number (``127.1``, ``0x7f.1``, ``2130706433``, ``010.0.0.1``) is
      read as an IPv4 address by getaddrinfo and browsers, in forms that differ between them; it
      must be four decimal numbers (``127.0.0.1``).
    - A host name in ASCII is lower-cased. A host name with other characters is encoded as
      ``requests``/urllib3 put it on the wire (IDNA 2008 per label), which needs the ``idna``
      package: ``faß.de`` is ``xn--fa-hia.de``, never ``fass.de`` (the IDNA 2003 reading). Where
      that encoding and UTS 46 (what browsers do) disagree (an upper-case final sigma, full-width
      dots or letters), or without ``idna``, the URL is refused: give the host in its xn-- form.
    - One trailing dot of a host name is dropped; labels are at most 63 characters of letters,
      digits, ``-`` and ``_``, not starting or ending with ``-``; names at most 253.
    - In the path, escapes of unreserved characters are decoded and other escapes upper-cased, dot
      segments are removed, and trailing slashes are dropped. Query and fragment are dropped.

    Normalizing a normalized URL returns it unchanged.
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"a URL must be a string, not {type(url).__name__}")
    candidate = url.strip(_ASCII_SPACE)
    if not candidate:
        raise InvalidURLError("the URL is empty")
    if len(candidate) > MAX_URL_LENGTH:
        raise InvalidURLError(
            f"the URL is {len(candidate)} characters long, more than the {MAX_URL_LENGTH} allowed"
        )
    if _has_invisible(candidate):
        raise InvalidURLError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(candidate)
    except ValueError as exc:
        why = "" if "@" in candidate else f" ({_bounded(str(exc))})"
        raise InvalidURLError(f"the URL {_describe(candidate)} is malformed{why}") from None
    if _count_joiners(candidate) != _count_joiners(parts.netloc):
        raise InvalidURLError("the URL contains spaces or control characters outside its host name")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        if "@" in candidate:
            # Do not echo something that may hold a password.
            raise InvalidURLError("the URL is not http(s) and looks like it contains user-info")
        raise InvalidURLError(
            f"the URL {_describe(candidate)} must start with http:// or https://"
        )
    if "@" in parts.netloc:
        raise InvalidURLError(
            "the URL contains a user name or password (user-info); remove it and store the"
            " credentials as a token instead",
        )
    host, port = _split_authority(parts.netloc, candidate)
    if port == 0:
        raise InvalidURLError(f"the URL {_describe(candidate)} has port 0, which no server listens on")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{port}"
    else:
        netloc = host
    return urlunsplit((scheme, netloc, _normalize_path(parts.path), "", ""))


def _split_authority(netloc: str, candidate: str) -> tuple[str, int | None]:
    """The normalized host and the port (``None`` if none is given) of an authority without user-info."""
    if netloc.startswith("["):
        literal, _, rest = netloc[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise InvalidURLError(
                f"the host of {_describe(candidate)} has text next to its bracketed address;"
                " brackets hold only a whole IPv6 address"
            )
        host = _ipv6_host(literal, candidate)
    elif "[" in netloc:  # urlsplit refuses an unpaired bracket
        raise InvalidURLError(
            f"the host of {_describe(candidate)} has a bracket in it; brackets hold only a whole IPv6 address"
        )
    else:
        name, colon, port_text = netloc.partition(":")
        rest = colon + port_text
        host = _name_host(name, candidate)
    port_text = rest[1:]
    if not _PORT.fullmatch(port_text):
        raise InvalidURLError(f"the URL {_describe(candidate)} is malformed (its port is not a number)")
    if not port_text:
        return host, None
    port = int(port_text)
    if port > 65535:
        raise InvalidURLError(f"the URL {_describe(candidate)} is malformed (its port is above 65535)")
    return host, port


def _ipv6_host(literal: str, candidate: str) -> str:
    if "%" in literal:
        raise InvalidURLError(
            f"the host of {_describe(candidate)} has an IPv6 zone id, which names an interface of one"
            " machine; give the address without it"
        )
    try:
        # One spelling per address: [0:0::1] and [::1] are the same tracker.
        return f"[{ipaddress.IPv6Address(literal).compressed}]"
    except ValueError:
        raise InvalidURLError(
            f"the host of {_describe(candidate)} is not a valid IPv6 address (brackets hold only IPv6)"
        ) from None


def _name_host(host: str, candidate: str) -> str:
    if not host:
        raise InvalidURLError(f"the URL {_describe(candidate)} has no host")
    # A fully qualified name may end in a dot; "example.com." and "example.com" are one host.
    name = host[:-1] if host.endswith(".") else host
    name = name.lower() if name.isascii() else _idna_host(name, candidate)
    if len(name) > _MAX_HOST_LENGTH or not _HOST.fullmatch(name):
        raise InvalidURLError(f"the host of {_describe(candidate)} is not a valid name")
    if _NUMBER.fullmatch(name.rpartition(".")[2]):
        try:
            canonical = str(ipaddress.IPv4Address(name)) == name == host
        except ValueError:
            canonical = False
        if not canonical:
            raise InvalidURLError(
                f"the host of {_describe(candidate)} ends in a number but is not an IPv4 address written"
                " as four decimal numbers (like 127.0.0.1); HTTP clients read such hosts differently",
            )
    return name


def _idna_host(name: str, candidate: str) -> str:
    """``name`` as urllib3 (so requests) sends it, if UTS 46 (so browsers) agrees; otherwise refused."""
    try:
        import idna  # requests depends on it; the core does not
    except ImportError:
        raise InvalidURLError(
            f"the host of {_describe(candidate)} has non-ASCII characters, and the idna package that"
            " encodes them as HTTP clients do is not installed",
            hint=_XN_HINT,
        ) from None
    try:
        # urllib3.util.url._idna_encode, label by label: what requests puts on the wire (urllib3 also
        # passes std3_rules=True, which only applies with uts46=True).
        wire = ".".join(
            label.lower() if label.isascii() else idna.encode(label.lower(), strict=True).decode()
            for label in name.split(".")
        )
        browsers = idna.encode(name, uts46=True).decode()  # non-transitional: idna's default and UTS 46's
    except UnicodeError:  # idna.IDNAError is one
        raise InvalidURLError(f"the host of {_describe(candidate)} is not a valid name", hint=_XN_HINT) from None
    if wire != browsers:
        raise InvalidURLError(
            f"the host of {_describe(candidate)} is read as {wire} by requests but as {browsers} by"
            " browsers (UTS 46)",
            hint=_XN_HINT,
        )
    return wire


def _normalize_path(path: str) -> str:
    """One spelling per path: escapes of unreserved characters decoded and other escapes in
    upper case (RFC 3986 6.2.2), dot segments removed, no trailing slash."""
    segments: list[str] = []
    for segment in _ESCAPE.sub(_normalize_escape, path).split("/"):
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    return "/".join(segments).rstrip("/")


def _normalize_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def is_normalized(url: str) -> bool:
    """True if ``url`` is already in canonical form."""
    try:
        return normalize_url(url) == url
    except InvalidURLError:
        return False


def origin_of(url: str) -> str:
    """The normalized scheme, host and port of ``url``: the usual *service URL* of a tracker.

    >>> origin_of("https://github.com/org/repo")
    'https://github.com'
    """
    normalized = normalize_url(url)
    parts = urlsplit(normalized)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))
