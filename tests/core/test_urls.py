"""URL rules that decide which server a URL means: IDNA (F09), control characters and
idempotence (F14), bracketed and numeric hosts (F18), and a test for every refusal in urls.py.

Host names must normalize to the host the HTTP stack puts on the wire (requests/urllib3, and UTS 46
as browsers use it); where those disagree, or where a host only looks like a name, the URL is
refused rather than matched to a server its author did not mean.
"""

from __future__ import annotations

import ipaddress
import sys
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tokenproviders import InvalidURLError, normalize_url, origin_of
from tokenproviders.urls import is_normalized

from .core_world import assert_actionable, assert_no_secret


def refusal(url: str) -> InvalidURLError:
    with pytest.raises(InvalidURLError) as excinfo:
        normalize_url(url)
    assert_actionable(excinfo.value)
    assert is_normalized(url) is False
    return excinfo.value


# -- F09: host names as the HTTP stack resolves them ----------------------------------------------

ZWJ, ZWNJ = "\u200d", "\u200c"
# (host as written, the host our normalization gives, or None where the URL must be refused)
HOSTS = [
    ("fass.de", "fass.de"),
    ("faß.de", "xn--fa-hia.de"),  # IDNA 2003 folds ß to ss: another domain
    ("FAß.DE", "xn--fa-hia.de"),
    ("xn--fa-hia.de", "xn--fa-hia.de"),
    ("XN--FA-HIA.DE", "xn--fa-hia.de"),
    ("βόλος.com", "xn--nxasmm1c.com"),  # final sigma stays final (IDNA 2003 makes it medial)
    ("ς.gr", "xn--3xa.gr"),
    ("\u03c3.gr", "xn--4xa.gr"),  # the medial sigma is another name
    ("ΟΔΟΣ.gr", None),  # str.lower() gives a final sigma, UTS 46 a medial one: refused
    ("ΒΌΛΟΣ.com", None),
    ("\u0915\u094d" + ZWJ + "\u0937.in", "xn--11b2ezcw70k.in"),  # ZWJ after a virama is valid
    ("\u0646" + ZWNJ + "\u0645.ir", "xn--hhbb809q.ir"),  # ZWNJ between joining letters is valid
    ("a" + ZWJ + "b.com", None),  # IDNA 2003 drops them: ab.com
    ("a" + ZWNJ + "b.com", None),
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.example", "xn--bcher-kva.example"),
    ("İstanbul.tr", "xn--istanbul-o0e.tr"),
    ("日本.jp", "xn--wgv71a.jp"),
    ("exämple.com.", "xn--exmple-cua.com"),  # the root's dot, as for ASCII names
    ("bücher\u3002example", None),  # full-width and ideographic dots: requests refuses them
    ("bücher\uff0eexample", None),
    ("bücher\uff61example", None),
    ("faß.de\u3002", None),
    ("\uff45xample.com", None),  # a full-width letter that UTS 46 would map to example.com
    ("\u2460.com", None),  # circled 1: UTS 46 maps it to 1.com
    ("\u00adfaß.de", None),  # a soft hyphen: invisible
    ("ü-.de", None),
    ("-ü.de", None),
    ("ü_x.de", None),
    ("ü..de", None),
]


@pytest.mark.parametrize(("host", "expected"), HOSTS, ids=[ascii(h) for h, _ in HOSTS])
def test_hosts_normalize_to_what_requests_puts_on_the_wire(host: str, expected: str | None) -> None:
    requests = pytest.importorskip("requests")
    url = f"http://{host}/x"
    if expected is None:
        refusal(url)
        return
    assert normalize_url(url) == f"http://{expected}/x"
    wire = urlsplit(requests.Request("GET", url).prepare().url).hostname
    assert wire is not None
    assert wire.removesuffix(".") == expected
    # and so does a client built from the normalized URL
    assert urlsplit(requests.Request("GET", normalize_url(url)).prepare().url).hostname == expected


@pytest.mark.parametrize("host", ["faß.de", "βόλος.com", "ς.gr", "\u0915\u094d" + ZWJ + "\u0937.in",
                                  "\u0646" + ZWNJ + "\u0645.ir"])
def test_deviation_characters_never_match_their_idna_2003_form(host: str) -> None:
    idna_2003 = host.encode("idna").decode("ascii")
    assert normalize_url(f"https://{host}") != normalize_url(f"https://{idna_2003}")
    assert normalize_url(f"https://{host}") != f"https://{idna_2003}"


def test_a_deviation_host_never_matches_the_ascii_domain_token() -> None:
    # The attack: a tracker http://faß.de in the attacker's tenant, a victim's token for http://fass.de.
    assert normalize_url("http://faß.de") != normalize_url("http://fass.de")
    assert origin_of("http://faß.de/x") == "http://xn--fa-hia.de"


def test_without_the_idna_package_a_non_ascii_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "idna", None)  # import idna now raises ImportError
    error = refusal("https://faß.de/x")
    assert "xn--" in f"{error.message} {error.hint}"
    assert normalize_url("https://xn--fa-hia.de/x") == "https://xn--fa-hia.de/x"  # ASCII needs nothing
    assert normalize_url("https://FASS.de/") == "https://fass.de"


def test_hosts_the_stacks_disagree_on_say_to_use_the_xn_form() -> None:
    error = refusal("https://ΟΔΟΣ.gr/")
    assert "xn--" in f"{error.message} {error.hint}"


# -- F14: control characters, whitespace and idempotence -----------------------------------------

INVISIBLE = [
    "\u2028",  # line separator (str.strip() strips it)
    "\u2029",  # paragraph separator
    "\x85",  # NEL, a C1 control that str.strip() strips too
    "\x9b",  # CSI, a C1 control
    "\xa0",  # no-break space
    "\u3000",  # ideographic space
    "\u200b",  # zero-width space (a format character)
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\ufeff",  # byte-order mark
    "\u00ad",  # soft hyphen
    "\x1c",  # file separator: ASCII, and str.isspace() says True
    "\udc80",  # a lone surrogate
    ZWJ,  # allowed only where IDNA rules check it: in a host name
    ZWNJ,
]


@pytest.mark.parametrize("char", INVISIBLE, ids=ascii)
@pytest.mark.parametrize(
    "template",
    ["https://tracker.test/a/{}/", "https://tracker.test/a{}", "{}https://tracker.test/a",
     "https://tracker.test/{}", "https://tracker{}.test/", "https://tracker.test:{}443/"],
)
def test_invisible_and_control_characters_are_refused(template: str, char: str) -> None:
    url = template.format(char)
    message = refusal(url).message
    if char in (ZWJ, ZWNJ) and "tracker{}" in template:
        assert "not a valid name" in message  # IDNA's joiner rules refuse it here
    elif char in (ZWJ, ZWNJ) and ":{}" in template:
        assert "malformed" in message  # not a digit
    else:
        assert "control" in message


@pytest.mark.parametrize("url", ["https://bücher.example/a b", "https://bücher.example/a\x00", "https://bücher.example/\x7f",
                                 "\x1fhttps://bücher.example/"])
def test_ascii_controls_are_refused_in_a_url_with_other_characters_too(url: str) -> None:
    assert "control" in refusal(url).message


def test_a_url_offered_by_trackers_for_stores_a_token_for_itself() -> None:
    # Was: 'https://tracker.test/a/\u2028/' became 'https://tracker.test/a/\u2028', whose
    # normalization is 'https://tracker.test/a'.
    for url in ("https://tracker.test/a/\u2028/", "https://tracker.test/a/\x85/"):
        refusal(url)


def test_ascii_whitespace_around_a_url_is_trimmed() -> None:
    assert normalize_url(" \t https://tracker.test/a/ \r\n") == "https://tracker.test/a"


# -- F14/F18: the authority is one host and an optional port -------------------------------------

BRACKETS = [
    ("https://host[::1]/", "bracket"),
    ("https://[::1]x/", "bracket"),
    ("https://[::1].example/", "bracket"),
    ("https://[::1]:443]/", "malformed"),
    ("https://ex]ample.com/", "malformed"),
    ("https://[v1.x]/", "IPv6"),  # IPvFuture: it was taken as the host name v1.x
    ("https://[v7.fe80::1]/", "IPv6"),
    ("https://[fe80::1%25eth0]/", "zone"),  # a zone names an interface of this machine
    ("https://[fe80::1%eth0]/", "zone"),
    ("https://[fe80::1%2525eth0]/", "zone"),
    ("https://[127.0.0.1]/", "malformed"),
    ("https://[]/", "malformed"),
]


@pytest.mark.parametrize(("given", "why"), BRACKETS)
def test_bracketed_hosts_must_be_whole_ipv6_addresses(given: str, why: str) -> None:
    assert why in refusal(given).message


def test_an_ipvfuture_literal_never_equals_a_host_name() -> None:
    refusal("https://[v1.x]/")
    assert normalize_url("https://v1.x/") == "https://v1.x"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://[::1]", "https://[::1]"),
        ("https://[::1]:8443/x/", "https://[::1]:8443/x"),
        ("https://[0:0::1]:443", "https://[::1]"),
        ("https://[::FFFF:127.0.0.1]/", "https://[::ffff:7f00:1]"),
        ("https://[2001:DB8:0:0:0:0:0:1]/", "https://[2001:db8::1]"),
        ("https://[::1]:/", "https://[::1]"),  # an empty port is the default one
        ("https://tracker.test:/", "https://tracker.test"),
        ("https://tracker.test:0443/", "https://tracker.test"),
        ("http://tracker.test:443/", "http://tracker.test:443"),
        ("http://tracker.test:65535", "http://tracker.test:65535"),
    ],
)
def test_ipv6_literals_and_ports(given: str, expected: str) -> None:
    assert normalize_url(given) == expected
    assert normalize_url(expected) == expected


@pytest.mark.parametrize(
    "given",
    ["https://tracker.test:65536/", "https://tracker.test:1:2/", "https://tracker.test:\uff18\uff10/",
     "https://tracker.test:+80/", "https://tracker.test:-1/", "https://tracker.test:8o/",
     "https://[::1]:99999/", "https://[::1]:x/"],
)
def test_ports_are_ascii_digits_up_to_65535(given: str) -> None:
    assert "malformed" in refusal(given).message


def test_port_zero_is_refused() -> None:
    assert "port 0" in refusal("https://tracker.test:0/").message
    assert "port 0" in refusal("https://[::1]:000/").message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://t.test/a/./b/../c/", "https://t.test/a/c"),
        ("https://t.test/../a", "https://t.test/a"),
        ("https://t.test/..//a", "https://t.test//a"),  # RFC 3986 5.2.4 keeps the empty segment
        ("https://t.test/a/b/..", "https://t.test/a"),
        ("https://t.test/a/..", "https://t.test"),
        ("https://t.test/%2e%2E/a/%2E", "https://t.test/a"),
        ("https://t.test/%7euser/%41%2f%2F%25", "https://t.test/~user/A%2F%2F%25"),
        ("https://t.test/a/...", "https://t.test/a/..."),
        ("https://t.test//", "https://t.test"),
    ],
)
def test_paths_have_one_spelling(given: str, expected: str) -> None:
    assert normalize_url(given) == expected
    assert normalize_url(expected) == expected


# -- F18: numeric hosts have one spelling --------------------------------------------------------

NUMERIC = [
    "http://0x7f.1/",  # glibc, like browsers, reads these as 127.0.0.1
    "http://0X7F.0.0.1/",
    "http://2130706433/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://010.0.0.1/",  # octal: 8.0.0.1, not 10.0.0.1
    "http://1.2.3.4.5/",
    "http://256.0.0.1/",
    "http://example.123/",
    "http://example.0x/",
    "http://example.0xff/",
    "http://127.0.0.1./",  # not an address for getaddrinfo; a name in the root zone "1"
    "http://1234/",
]


@pytest.mark.parametrize("given", NUMERIC)
def test_numeric_hosts_must_be_dotted_quads(given: str) -> None:
    assert "IPv4" in refusal(given).message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ("http://10.0.0.1:8080/x", "http://10.0.0.1:8080/x"),
        ("http://123.example.com/", "http://123.example.com"),
        ("http://0x7f.example/", "http://0x7f.example"),
        ("http://example.0xg/", "http://example.0xg"),
        ("http://example.com./", "http://example.com"),
        ("http://1a/", "http://1a"),
    ],
)
def test_names_and_addresses_that_are_fine(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


# -- every refusal in urls.py, pinned -----------------------------------------------------------

@pytest.mark.parametrize(
    "given",
    ["https://-bad.test/", "https://bad-.test/", "https://a..b.test/", "https://bad!.test/",
     "https://ex%61mple.com/", "https://./", "https://..test/", "https://ex*ample.com/",
     "https://" + "a" * 64 + ".test/", "https://" + ".".join(["a" * 63] * 4) + "/"],
)
def test_invalid_host_names_are_refused(given: str) -> None:
    assert "not a valid name" in refusal(given).message


def test_the_length_limits() -> None:
    assert normalize_url("https://t.test/" + "a" * 2033) == "https://t.test/" + "a" * 2033  # 2048 characters
    assert "2049 characters long" in refusal("https://t.test/" + "a" * 2034).message
    name = ".".join(["a" * 63] * 3 + ["b" * 62])  # 254 characters
    assert "not a valid name" in refusal(f"https://{name}/").message


def test_long_labels_and_names_within_the_dns_limits_are_fine() -> None:
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    assert normalize_url(f"https://{name}/") == f"https://{name}"
    assert normalize_url("https://under_score.test") == "https://under_score.test"


def test_the_password_guard_holds_when_the_netloc_fails_nfkc() -> None:
    # urlsplit's own error quotes the whole netloc, password included.
    error = refusal("https://alice:hunter2@ex\uff0fample.com/")
    assert "malformed" in error.message
    assert "not shown" in error.message
    assert_no_secret(error, "hunter2", "alice")


def test_a_malformed_url_without_user_info_is_named() -> None:
    error = refusal("https://ex\uff0fample.com/")
    assert "ex\uff0fample.com" in error.message
    assert "NFKC" in error.message  # urlsplit's reason, when no user-info can be in it


def test_refused_urls_are_shown_without_query_or_fragment_and_bounded() -> None:
    error = refusal("ftp://tracker.test/x?private_token=SECRET1#SECRET2")
    assert_no_secret(error, "SECRET1", "SECRET2", "private_token")
    eighty = "ftp://tracker.test/" + "a" * (80 - len("ftp://tracker.test/"))
    assert repr(eighty) in refusal(eighty).message
    eighty_one = eighty + "b"
    message = refusal(eighty_one).message
    assert repr(eighty_one[:77] + "...") in message
    assert "b'" not in message


def test_non_http_urls_with_user_info_are_not_echoed() -> None:
    error = refusal("ftp://alice:hunter2@files.test/")
    assert "user-info" in error.message
    assert_no_secret(error, "hunter2")


# -- idempotence and totality, over generated URLs ----------------------------------------------

def mostly(common: str | list[str], rare: list[str]) -> st.SearchStrategy[str]:
    """Characters of ``common``, and one of ``rare`` about one time in ten."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(rare if n == 5 else list(common)))


_UNICODE = ["ß", "ẞ", "ς", "Σ", "ü", "Ü", "İ", "日", "\u094d", "\u0915", "\u0646", "\u0645", ZWJ, ZWNJ, "\uff45",
            "\uff0f", "\u2100", "\u2460"]
_RARE = ["%", "[", "]", ":", "@", "\u00ad", "\u2028", "\x85", "\x00", " ", "\t", "\udc80", "\u202e"]
_LABEL_CHARS = mostly("abcxyz019-_ABZ", [*_UNICODE, *_UNICODE, *_RARE])
_DOTS = mostly(".", ["\u3002", "\uff0e", ".."])
_PATH_CHARS = mostly(
    [*"abcAZ09/.-_~", "%2e", "%2E", "%7e", "%2f", "%25", "%41", "..", "/./", "/../", "//"],
    [*"%:@!$&'()*+,;=?#", "%zz", "ü", *_RARE],
)


@st.composite
def hosts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["name", "name", "name", "number", "bracket"]))
    if kind == "bracket":
        inside = draw(st.sampled_from(["::1", "0:0::1", "::FFFF:1.2.3.4", "2001:DB8::1", "v1.x", "fe80::1%25e",
                                       "fe80::1%e", "1.2.3.4", "", "::1::2", "::g"]))
        return "[" + inside + draw(st.sampled_from(["]", "]", "]", "", "]x", "].a"]))
    if kind == "number":
        return draw(st.sampled_from(["127.0.0.1", "127.1", "0x7f.1", "2130706433", "010.0.0.1", "1.2.3.4.5",
                                     "256.1.1.1", "a.123", "a.0x", "127.0.0.1."]))
    labels = draw(st.lists(st.text(_LABEL_CHARS, max_size=8), min_size=1, max_size=4))
    name = labels[0]
    for label in labels[1:]:
        name += draw(_DOTS) + label
    return name + draw(st.sampled_from(["", "", "", "."]))


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(mostly(["http", "https", "HTTPS"], ["ftp", "", "http:"]))
    port = draw(mostly(["", ":", ":80", ":443", ":8080", ":0080"], [":0", ":65536", ":\uff18", ":1:2", ":+1"]))
    path = draw(st.sampled_from(["", "/", "/", "?", "#"])) + "".join(draw(st.lists(_PATH_CHARS, max_size=10)))
    space = draw(mostly([""], [" ", "\n", "\u2028", "\x85"]))
    return f"{space}{scheme}://{draw(hosts())}{port}{path}{space}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls())
@example("https://tracker.test/a/\u2028/")
@example("https://tracker.test/a/\x85")
@example("https://host[::1]/")
@example("https://[v1.x]/")
@example("https://alice:hunter2@ex\uff0fample.com/")
def test_normalize_is_idempotent_and_raises_only_invalid_url_error(url: str) -> None:
    try:
        normalized = normalize_url(url)
    except InvalidURLError as error:
        assert_actionable(error)
        return
    assert normalize_url(normalized) == normalized
    assert is_normalized(normalized)
    assert urlsplit(normalized).netloc.isascii()
    assert normalize_url(origin_of(normalized)) == origin_of(normalized)


def same_host(wire: str, ours: str) -> bool:
    if ":" in wire:  # one address, two spellings: ::ffff:1.2.3.4 and ::ffff:102:304
        return ipaddress.IPv6Address(wire) == ipaddress.IPv6Address(ours)
    return wire == ours


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls())
def test_an_accepted_url_means_the_host_requests_connects_to(url: str) -> None:
    requests = pytest.importorskip("requests")
    try:
        normalized = normalize_url(url)
    except InvalidURLError:
        return
    # Trimming ASCII white space around the URL is ours; the rest must be the stack's reading.
    wire = urlsplit(requests.Request("GET", url.strip(" \t\n\r\x0b\x0c")).prepare().url)
    ours = urlsplit(normalized)
    assert same_host((wire.hostname or "").removesuffix("."), ours.hostname or "")
    assert (wire.port or {"http": 80, "https": 443}[wire.scheme]) == (
        ours.port or {"http": 80, "https": 443}[ours.scheme]
    )
