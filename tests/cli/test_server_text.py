"""What tracker servers say reaches the terminal harmless (the real plugins against fake servers).

A tracker's answer is not ours: a login name, an error text or an issue URL can carry terminal
escape sequences (``ESC [2J`` clears the screen, OSC 8 forges a link) or bidi overrides. They are
shown escaped, never raw, and only an http(s) issue URL on the tracker's own origin is printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tokenproviders.cli._app import cli as root
from tokenproviders.cli._state import CLIConfig
from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.plugins import Plugins
from tokenproviders.testing.fakes import FakeAzureBoards, FakeGitHub, FakeRedmine
from tokenproviders.testing.fakes._server import FakeIssue, Response

from .conftest import make_runner, one_error_line

INSTALLED = Plugins().tracker_types
CLEAR_SCREEN = "\x1b[2J"
#: OSC 8: a terminal shows "click me" as a link to the attacker's page.
FORGED_LINK = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
RIGHT_TO_LEFT = "\u202e"
RAW = ("\x1b", "\x9b", RIGHT_TO_LEFT, "\x07")


def needs(type_name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(type_name not in INSTALLED, reason=f"the {type_name} plugin is not installed")


class HostileGitHub(FakeGitHub):
    """A GitHub that answers a new issue with ``issue_url`` as its ``html_url``."""

    issue_url = "https://example.invalid/"

    def _issue_json(self, issue: FakeIssue, base: str) -> dict[str, Any]:
        data = super()._issue_json(issue, base)
        data["html_url"] = self.issue_url
        return data


class HostileAzureBoards(FakeAzureBoards):
    """An Azure DevOps whose error answers carry escape sequences in their ``typeKey``."""

    def _error_response(self, status: int, message: str) -> Response:
        return self._vss_error(status, message, f"Vss{FORGED_LINK}{RIGHT_TO_LEFT}Exception")


def no_raw_control(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text)


class Run:
    def __init__(self, data: Path) -> None:
        self.data = data

    def __call__(self, *args: str, input: str | None = None) -> Result:
        # COLUMNS unset: printed 200 wide, so no value wraps (pytest-xdist workers have COLUMNS=80).
        return make_runner().invoke(
            root, ["--data-dir", str(self.data), *args], input=input, obj=CLIConfig(), env={"COLUMNS": None}
        )

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
        no_raw_control(result.stdout + result.stderr)
        return result


@pytest.fixture
def run(tmp_path: Path) -> Run:
    run = Run(tmp_path / "data")
    run.ok("init")
    run.ok("tenants", "add", "acme")
    run.ok("tenants", "grant", "acme", "alice")
    return run


@pytest.fixture
def github(run: Run) -> Iterator[HostileGitHub]:
    if "github" not in INSTALLED:
        pytest.skip("the github plugin is not installed")
    with HostileGitHub() as fake:
        fake.add_user(f"alice{CLEAR_SCREEN}{RIGHT_TO_LEFT}", token="ghp_hostile_alice_0123456789")
        run.ok("trackers", "add", "acme", "gh", "--type", "github", "--url", f"{fake.url}/octo/widgets", "--no-bot")
        run.ok("token", "set", "alice", f"{fake.url}/octo/widgets", "--tenant", "acme", "--password-stdin",
               input="ghp_hostile_alice_0123456789\n")
        yield fake


def test_a_login_name_with_escape_sequences_is_shown_escaped(run: Run, github: HostileGitHub) -> None:
    verified = run.ok("verify", "alice", "acme", "gh")
    assert "alice\\x1b[2J\\u202e" in verified.stdout
    saved = run.ok("token", "set", "alice", f"{github.url}/octo/widgets", "--tenant", "acme", "--password-stdin",
                   "--verify", input="ghp_hostile_alice_0123456789\n")
    assert "belongs to alice\\x1b[2J\\u202e" in saved.stdout
    # JSON keeps the value exactly, with what a terminal would act on written as \u escapes.
    as_json = run.ok("verify", "alice", "acme", "gh", "--json").stdout
    assert json.loads(as_json)["identity"]["login"] == f"alice{CLEAR_SCREEN}{RIGHT_TO_LEFT}"


@pytest.mark.parametrize(
    "issue_url",
    [
        "javascript:alert(document.cookie)//",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        f"https://evil.example/phish{CLEAR_SCREEN}",
    ],
)
def test_an_issue_url_that_is_not_http_is_refused(run: Run, github: HostileGitHub, issue_url: str) -> None:
    github.issue_url = issue_url
    result = run("report", "alice", "acme", "gh", "--title", "a bug")
    assert result.exit_code == ExitCode.TRACKER_REFUSED, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "issue URL" in line and "look the issue up" in line
    assert issue_url not in line
    assert len(github.issues) == 1  # filed once: the error says so, a retry would file another


def test_an_issue_url_on_another_host_is_refused(run: Run, github: HostileGitHub) -> None:
    github.issue_url = "https://evil.example/phish"
    result = run("report", "alice", "acme", "gh", "--title", "a bug", "--json")
    assert result.exit_code == ExitCode.TRACKER_REFUSED, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "issue 1" in line and "another origin (https://evil.example)" in line and "phish" not in line
    no_raw_control(line)


def test_an_issue_url_on_the_trackers_origin_is_printed(run: Run, github: HostileGitHub) -> None:
    github.issue_url = f"{github.url}/octo/widgets/issues/1"
    assert run.ok("report", "alice", "acme", "gh", "--title", "a bug").stdout == f"{github.url}/octo/widgets/issues/1\n"


@needs("redmine")
def test_a_redmine_error_text_is_shown_escaped(run: Run) -> None:
    with FakeRedmine() as fake:
        fake.add_user("alice", token="key-alice-0123456789")
        fake.add_project("webshop")
        run.ok("trackers", "add", "acme", "rm", "--type", "redmine", "--url", fake.url, "-o", "project=webshop",
               "--no-bot")
        run.ok("token", "set", "alice", fake.url, "--tenant", "acme", "--password-stdin",
               input="key-alice-0123456789\n")
        fake.fail_with(422, message=f"Subject {FORGED_LINK}{CLEAR_SCREEN}{RIGHT_TO_LEFT} is invalid")
        result = run("report", "alice", "acme", "rm", "--title", "a bug")
    assert result.exit_code == ExitCode.TRACKER_REFUSED, (result.exit_code, result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    no_raw_control(line)
    assert "Subject \\x1b]8;;https://evil.example/\\x1b\\click me" in line and "\\u202e is invalid" in line


@needs("azureboards")
def test_an_azure_error_text_is_shown_escaped(run: Run) -> None:
    with HostileAzureBoards() as fake:
        fake.add_user("alice", token="alice-pat-0123456789abcdef")
        url = f"{fake.url}/contoso/Web%20Shop"
        run.ok("trackers", "add", "acme", "ab", "--type", "azureboards", "--url", url, "--no-bot")
        run.ok("token", "set", "alice", url, "--tenant", "acme", "--password-stdin",
               input="alice-pat-0123456789abcdef\n")
        fake.fail_with(400, message="TF51535: Cannot find field System.Nope.")
        result = run("report", "alice", "acme", "ab", "--title", "a bug")
    assert result.exit_code == ExitCode.TRACKER_REFUSED, (result.exit_code, result.stdout, result.stderr)
    line = one_error_line(result.stderr)
    no_raw_control(line)
    assert "Vss\\x1b]8;;https://evil.example/" in line
