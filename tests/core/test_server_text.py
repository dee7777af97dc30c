"""What a tracker answers is not trusted as text: errors escape it, issue URLs must be the tracker's.

The real plugins against the fake servers: a hostile server's error text reaches the host's
exception (and from there its logs and pages) with control characters escaped, and an issue
URL that is not http(s) on the tracker's own origin is refused, while the issue itself was filed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tokenproviders import Credentials, MemoryDirectory, MemoryTokenStore, Plugins, Resolver, Secret, Tracker
from tokenproviders.errors import TrackerRequestError
from tokenproviders.model import ReportedIssue
from tokenproviders.testing.fakes import FakeGitHub, FakeRedmine
from tokenproviders.testing.fakes._server import FakeIssue
from tokenproviders.trackertype import TrackerFailure, classify_http_status

INSTALLED = Plugins().tracker_types
RAW = ("\x1b", "\x9b", "\x85", "\u202e", "\u2066", "\r", "\n")
HOSTILE = "Subject\x1b[2J\x1b]8;;https://evil.example/\x07 is\r\ninvalid\u202e\u2066\x9b\x85"


class HostileGitHub(FakeGitHub):
    """A GitHub that answers a new issue with ``issue_url`` as its ``html_url``."""

    issue_url = "https://example.invalid/"

    def _issue_json(self, issue: FakeIssue, base: str) -> dict[str, Any]:
        data = super()._issue_json(issue, base)
        data["html_url"] = self.issue_url
        return data


def no_raw_control(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text)


def test_a_failure_detail_is_escaped_once_for_every_plugin() -> None:
    failure = TrackerFailure("request", HOSTILE, 422)
    no_raw_control(failure.detail)
    assert failure.detail.startswith("Subject\\x1b[2J\\x1b]8;;https://evil.example/\\x07 is\\x0d\\x0ainvalid\\u202e")
    by_status = classify_http_status(400, HOSTILE)
    assert by_status is not None
    no_raw_control(by_status.detail)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://tracker.example.com/1",
        "//tracker.example.com/issues/1",
        "/issues/1",
        "",
        "https://tracker.example.com/issues/1\x1b[2J",
        "https://tracker.example.com/issues/1\u202e",
        "https://tracker.example.com/issues/1\x85",
        "https://user:pw@tracker.example.com/issues/1",
        "https:///issues/1",
    ],
)
def test_a_reported_issue_takes_only_a_plain_http_url(url: str) -> None:
    with pytest.raises(TrackerRequestError) as info:
        ReportedIssue(id="1", url=url)
    assert "issue URL" in info.value.message and "look the issue up" in info.value.hint
    assert "pw" not in str(info.value) and "alert" not in str(info.value)


def test_a_reported_issue_takes_a_url_that_is_not_a_str_as_a_bad_answer() -> None:
    with pytest.raises(TrackerRequestError):
        ReportedIssue(id="1", url=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    ["https://tracker.example.com/browse/PROJ-1", "http://127.0.0.1:8080/show_bug.cgi?id=1#c0", "https://[::1]/1"],
)
def test_a_reported_issue_keeps_a_plain_http_url_as_it_is(url: str) -> None:
    assert ReportedIssue(id="1", url=url).url == url


def resolver_for(type_name: str, base_url: str, token: str) -> tuple[Resolver, Tracker]:
    """alice in acme, with her token for the one tracker there."""
    directory = MemoryDirectory()
    directory.add_member("alice", "acme")
    tracker = Tracker(tenant="acme", id="t", type=type_name, base_url=base_url, options={"project": "webshop"})
    directory.add_tracker(tracker)
    resolver = Resolver(directory, MemoryTokenStore(), plugins=Plugins())
    resolver.tokens.set("alice", base_url, Credentials(api_password=Secret(token)), scope="acme")
    return resolver, tracker


@pytest.fixture
def github() -> Iterator[HostileGitHub]:
    if "github" not in INSTALLED:
        pytest.skip("the github plugin is not installed")
    with HostileGitHub() as fake:
        fake.add_user("alice", token="ghp_alice_0123456789")
        yield fake


@pytest.mark.parametrize("elsewhere", ["https://evil.example/o/r/issues/1", "http://127.0.0.2:1/o/r/issues/1"])
def test_report_issue_refuses_an_issue_url_on_another_origin(github: HostileGitHub, elsewhere: str) -> None:
    resolver, tracker = resolver_for("github", f"{github.url}/octo/widgets", "ghp_alice_0123456789")
    github.issue_url = elsewhere
    with pytest.raises(TrackerRequestError) as info:
        resolver.report_issue("alice", tracker, "a bug")
    message = info.value.message
    assert "issue 1" in message and "look the issue up" in info.value.hint and "/o/r/issues" not in str(info.value)
    assert len(github.issues) == 1


def test_report_issue_refuses_an_issue_url_that_is_not_http(github: HostileGitHub) -> None:
    resolver, tracker = resolver_for("github", f"{github.url}/octo/widgets", "ghp_alice_0123456789")
    github.issue_url = "javascript:alert(1)"
    with pytest.raises(TrackerRequestError):
        resolver.report_issue("alice", tracker, "a bug")


def test_report_issue_keeps_an_issue_url_on_the_trackers_origin(github: HostileGitHub) -> None:
    resolver, tracker = resolver_for("github", f"{github.url}/octo/widgets", "ghp_alice_0123456789")
    github.issue_url = f"{github.url}/octo/widgets/issues/1"
    assert resolver.report_issue("alice", tracker, "a bug").url == github.issue_url


def test_a_redmine_error_text_reaches_the_host_escaped() -> None:
    if "redmine" not in INSTALLED:
        pytest.skip("the redmine plugin is not installed")
    with FakeRedmine() as fake:
        fake.add_user("alice", token="key-alice-0123456789")
        fake.add_project("webshop")
        resolver, tracker = resolver_for("redmine", fake.url, "key-alice-0123456789")
        fake.fail_with(422, message=HOSTILE)
        with pytest.raises(TrackerRequestError) as info:
            resolver.report_issue("alice", tracker, "a bug")
    no_raw_control(str(info.value))
    assert "Subject\\x1b[2J" in str(info.value)
