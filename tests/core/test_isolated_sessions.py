"""isolate_session and tls_verify: what a tracker client takes from the host's environment.

Only the proxies and the CA bundle; never the credentials of ``~/.netrc``, which ``requests``
adds to every request without ``auth=`` (a ``default`` entry matches every host). Every plugin
is held to this by ``TrackerTypeContract.test_only_the_resolved_credentials_are_sent``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tokenproviders import Tracker
from tokenproviders.testing.fakes import FakeTracker
from tokenproviders.trackertype import isolate_session, tls_verify

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def netrc_basic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A home whose ~/.netrc has a ``default`` entry; the Authorization header it makes."""
    (tmp_path / ".netrc").write_text("default login netrc-user password netrc-secret-0451\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    return "Basic " + base64.b64encode(b"netrc-user:netrc-secret-0451").decode()


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def fake() -> Iterator[FakeTracker]:
    with FakeTracker() as server:
        yield server


@pytest.mark.usefixtures("no_proxies")
def test_a_session_sends_the_hosts_netrc_unless_isolated(fake: FakeTracker, netrc_basic: str) -> None:
    requests.Session().get(f"{fake.url}/plain", timeout=5)
    assert fake.requests[-1].header("Authorization") == netrc_basic  # what every plugin risked

    session = isolate_session(requests.Session(), fake.url)
    session.get(f"{fake.url}/isolated", timeout=5)
    assert fake.requests[-1].header("Authorization") is None


@pytest.mark.usefixtures("no_proxies")
def test_an_isolated_session_adds_no_netrc_after_a_redirect(fake: FakeTracker, netrc_basic: str) -> None:
    session = isolate_session(requests.Session(), fake.url)
    fake.fail_with(307, times=1, headers={"Location": f"{fake.url}/moved"})
    session.get(f"{fake.url}/first", timeout=5)  # requests follows it by default
    assert [r.path for r in fake.requests] == ["/first", "/moved"]
    assert [r.header("Authorization") for r in fake.requests] == [None, None]


@pytest.mark.usefixtures("no_proxies")
def test_an_isolated_session_keeps_the_hosts_proxy(fake: FakeTracker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", fake.url)  # the fake plays the proxy
    session = isolate_session(requests.Session(), "http://tracker.invalid:8080/api")
    session.get("http://tracker.invalid:8080/api/me", timeout=5)
    assert fake.requests[-1].header("Host") == "tracker.invalid:8080"
    assert fake.requests[-1].path == "/api/me"


@pytest.mark.usefixtures("no_proxies")
def test_an_isolated_session_keeps_the_hosts_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "tracker.invalid")
    assert "http" not in isolate_session(requests.Session(), "http://tracker.invalid:8080").proxies
    assert isolate_session(requests.Session(), "http://other.invalid").proxies["http"] == "http://proxy.invalid:3128"


def test_tls_verify_takes_the_hosts_ca_bundle_only_where_the_tracker_names_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def tracker(verify_tls: bool = True, ca_bundle: str | None = None) -> Tracker:
        return Tracker("acme", "t", "memory", "https://x.test", verify_tls=verify_tls, ca_bundle=ca_bundle)

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("CURL_CA_BUNDLE", "/host/curl.pem")
    assert tls_verify(tracker()) == "/host/curl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/host/requests.pem")
    assert tls_verify(tracker()) == "/host/requests.pem"  # requests' own order
    assert tls_verify(tracker(ca_bundle="/tracker.pem")) == "/tracker.pem"  # the tracker's wins
    assert tls_verify(tracker(verify_tls=False)) is False  # and so does turning it off
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE")
    assert tls_verify(tracker()) is True
