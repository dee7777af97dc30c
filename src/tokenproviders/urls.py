"""URL normalization: the only way two tracker or token URLs are compared.

A token is matched to a tracker by *equality* of normalized URLs, never by prefix. Normalizing
lower-cases the scheme and host, drops the default port, the trailing slash, the query and the
fragment, and refuses what cannot safely be a tracker URL: non-http(s) schemes, user-info
(``https://user:pass@host`` would put a secret into a URL), control characters and over-long input.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidURLError

__all__ = ["MAX_URL_LENGTH", "normalize_url", "origin_of", "is_normalized"]

#: Longest URL accepted, before normalization. Browsers and servers commonly cap near 2 KiB.
MAX_URL_LENGTH = 2048

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host names: letters, digits, '-' and '_' in dot-separated labels that do not start with '-'.
_HOST = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?:\.(?!-)[a-z0-9_-]{1,63})*$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _describe(url: str) -> str:
    # Refused URLs may be long or odd; show a bounded prefix. A URL with an '@' may carry a
    # password in its user-info, and a malformed one cannot be split safely: never echo it.
    if "@" in url:
        return "(not shown: it may contain a user name or password)"
    # The query and fragment are dropped: they can carry an API key (?key=..., ?private_token=...).
    shown = url.split("#", 1)[0].split("?", 1)[0]
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return repr(shown)


def normalize_url(url: str) -> str:
    """Return the canonical form of ``url`` or raise :class:`InvalidURLError`.

    >>> normalize_url("HTTPS://GitHub.com:443/Org/Repo/")
    'https://github.com/Org/Repo'
    >>> normalize_url("http://jira.example.com:8080/jira?x=1#top")
    'http://jira.example.com:8080/jira'
    """
    if not isinstance(url, str):
        raise InvalidURLError(f"a URL must be a string, not {type(url).__name__}")
    candidate = url.strip()
    if not candidate:
        raise InvalidURLError("the URL is empty")
    if len(candidate) > MAX_URL_LENGTH:
        raise InvalidURLError(
            f"the URL is {len(candidate)} characters long, more than the {MAX_URL_LENGTH} allowed"
        )
    if _CONTROL.search(candidate):
        raise InvalidURLError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        why = "" if "@" in candidate else f" ({exc})"
        raise InvalidURLError(f"the URL {_describe(candidate)} is malformed{why}") from None
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
    host = parts.hostname
    if not host:
        raise InvalidURLError(f"the URL {_describe(candidate)} has no host")
    if not host.startswith("[") and ":" not in host:
        # A fully qualified name may end in a dot; "example.com." and "example.com" are one host.
        host = host[:-1] if host.endswith(".") and len(host) > 1 else host
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidURLError(f"the host of {_describe(candidate)} is not a valid name") from None
        if not _HOST.match(host):
            raise InvalidURLError(f"the host of {_describe(candidate)} is not a valid name")
    if ":" in host:  # IPv6 literal; urlsplit strips the brackets
        try:
            # One spelling per address: [0:0::1] and [::1] are the same tracker.
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise InvalidURLError(f"the host of {_describe(candidate)} is not a valid IPv6 address") from None
    if port == 0:
        raise InvalidURLError(f"the URL {_describe(candidate)} has port 0, which no server listens on")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{port}"
    else:
        netloc = host
    return urlunsplit((scheme, netloc, _normalize_path(parts.path), "", ""))


def _normalize_path(path: str) -> str:
    """One spelling per path: escapes of unreserved characters decoded and other escapes in
    upper case (RFC 3986 6.2.2), dot segments removed, no trailing slash."""
    path = _ESCAPE.sub(_normalize_escape, path)
    if "." in path:
        segments: list[str] = []
        for segment in path.split("/"):
            if segment == "..":
                if len(segments) > 1:
                    segments.pop()
            elif segment != ".":
                segments.append(segment)
        path = "/".join(segments)
    return path.rstrip("/")


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
