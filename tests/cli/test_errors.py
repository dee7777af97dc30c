"""Bad input: one readable line on stderr, the documented exit code, and an unchanged database."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, ClassVar

import pytest

from tokenproviders.cli._app import cli as root
from tokenproviders.cli.exit_codes import ExitCode, exit_code_for
from tokenproviders.crypto import KeyRing
from tokenproviders.errors import (
    ConfigurationError,
    CredentialsRejectedError,
    InvalidURLError,
    KeyInUseError,
    MissingKeyError,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    PluginError,
    SecretUnreadableError,
    StoreError,
    TokenNotFoundError,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
    UnknownTrackerError,
    UnknownTrackerTypeError,
)
from tokenproviders.model import Identity, Tracker
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

from .conftest import CLI, OTHER_URL, TRACKER_URL, make_runner

NEEDS_USER_URL = "https://needs-user.example.com/acme"


def unchanged(cli: CLI, code: int, *args: str, input: str | None = None) -> str:
    """Run a failing command; the database must be byte-for-byte the same SQL afterwards."""
    before = cli.dump()
    line = cli.fails(code, *args, input=input)
    assert cli.dump() == before
    return line


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidURLError("x"), ExitCode.USAGE),
        (NotAuthorizedError("x"), ExitCode.NOT_AUTHORIZED),
        (NoCredentialsError("x"), ExitCode.NO_CREDENTIALS),
        (PersonalTokenUnusableError("x"), ExitCode.TOKEN_UNUSABLE),
        (PersonalTokenRejectedError("x"), ExitCode.REJECTED),
        (CredentialsRejectedError("x"), ExitCode.REJECTED),
        (TrackerUnavailableError("x"), ExitCode.UNAVAILABLE),
        (TrackerRequestError("x"), ExitCode.TRACKER_REFUSED),
        (TrackerURLError("x"), ExitCode.TRACKER_REFUSED),
        (UnknownTrackerError("x"), ExitCode.NOT_FOUND),
        (TokenNotFoundError("x"), ExitCode.NOT_FOUND),
        (UnknownTrackerTypeError("x"), ExitCode.PLUGIN_ERROR),
        (PluginError("x"), ExitCode.PLUGIN_ERROR),
        (SecretUnreadableError("x"), ExitCode.KEY_ERROR),
        (MissingKeyError("x"), ExitCode.KEY_ERROR),
        (ConfigurationError("x"), ExitCode.KEY_ERROR),
        (KeyInUseError("x"), ExitCode.CONFLICT),
        (StoreError("x"), ExitCode.STORE_ERROR),
        (RuntimeError("x"), ExitCode.ERROR),
    ],
)
def test_every_error_has_its_documented_exit_code(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) == code


def test_exit_codes_are_distinct() -> None:
    values = [code.value for code in ExitCode]
    assert len(values) == len(set(values))


@pytest.fixture
def needs_user(world: CLI) -> CLI:
    world.ok(
        "trackers", "add", "acme", "cloud", "--type", "needsuser", "--url", NEEDS_USER_URL,
        "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token",
    )
    return world


# -- unknown tenant or tracker ------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "grant", "nope", "alice"),
        ("tenants", "revoke", "nope", "alice"),
        ("tenants", "members", "nope"),
        ("tenants", "remove", "nope", "--yes"),
        ("trackers", "add", "nope", "x", "--type", "memory", "--url", "https://x.example.com", "--no-bot"),
        ("trackers", "list", "--tenant", "nope"),
        ("token", "set", "alice", TRACKER_URL, "--tenant", "nope", "--password-stdin"),
    ],
)
def test_unknown_tenant(world: CLI, args: tuple[str, ...]) -> None:
    line = unchanged(world, ExitCode.NOT_FOUND, *args, input="alice-secret-token")
    assert "'nope'" in line


@pytest.mark.parametrize(
    "args",
    [
        ("resolve", "alice", "acme", "nope"),
        ("verify", "alice", "acme", "nope"),
        ("report", "alice", "acme", "nope", "--title", "x"),
        ("trackers", "remove", "acme", "nope"),
        ("trackers", "set-bot", "acme", "nope", "--no-bot"),
        ("token", "set", "alice", "https://unknown.example.com/x", "--tenant", "acme", "--password-stdin"),
        ("token", "delete", "alice", TRACKER_URL, "--tenant", "acme"),
    ],
)
def test_unknown_tracker_or_token(world: CLI, args: tuple[str, ...]) -> None:
    line = unchanged(world, ExitCode.NOT_FOUND, *args, input="alice-secret-token")
    assert "nope" in line or "unknown.example.com" in line or "no personal token" in line


def test_unknown_tracker_type(world: CLI) -> None:
    line = unchanged(
        world, ExitCode.PLUGIN_ERROR,
        "trackers", "add", "acme", "x", "--type", "nosuchtype", "--url", "https://x.example.com", "--no-bot",
    )
    assert "pip install tokenproviders-nosuchtype" in line


# -- malformed input ----------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["not a url", "ftp://files.example.com/x", "https://", "https://x.example.com:99999"])
def test_malformed_tracker_url(world: CLI, url: str) -> None:
    unchanged(world, ExitCode.USAGE, "trackers", "add", "acme", "x", "--type", "memory", "--url", url, "--no-bot")


def test_a_url_with_a_password_is_refused_without_echoing_it(world: CLI) -> None:
    line = unchanged(
        world, ExitCode.USAGE,
        "trackers", "add", "acme", "x", "--type", "memory", "--url", "https://me:hunter22@x.example.com", "--no-bot",
    )
    assert "hunter22" not in line


@pytest.mark.parametrize("url", ["tracker.example.com/acme", "mailto:someone@example.com", "https://x y.example.com"])
def test_malformed_token_url(world: CLI, url: str) -> None:
    unchanged(world, ExitCode.USAGE, "token", "set", "alice", url, "--tenant", "acme", "--password-stdin",
              input="alice-secret-token")


@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "add", " spaced "),
        ("tenants", "add", "*"),
        ("tenants", "grant", "acme", ""),
        ("trackers", "add", "acme", "x", "--url", "https://x.example.com", "--no-bot"),  # no --type
        ("trackers", "add", "acme", "x", "--type", "memory", "--url", "https://x.example.com", "-o", "novalue",
         "--no-bot"),
        ("trackers", "add", "acme", "x", "--type", "memory", "--url", "https://x.example.com", "--no-bot",
         "--bot-username", "bot"),
        ("report", "alice", "acme", "main"),  # no --title
        ("token", "set", "alice", TRACKER_URL, "--password-stdin"),  # no scope
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--all-tenants", "--password-stdin"),
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--expires", "someday"),
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--expires", "2001-01-01"),
        ("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", "--label", "x" * 201),
        ("token", "list", "--soon", "-1"),
        ("audit", "--limit", "0"),
        ("keys", "rotate", "--batch-size", "0"),
        ("--timeout", "0", "tenants", "list"),
        ("no-such-command",),
        ("tenants", "list", "--no-such-option"),
    ],
)
def test_usage_errors(world: CLI, args: tuple[str, ...]) -> None:
    unchanged(world, ExitCode.USAGE, *args, input="alice-secret-token")


@pytest.mark.parametrize("secret", ["", "\n", "   \n", "two\nlines\n"])
def test_bad_secret_on_stdin(world: CLI, secret: str) -> None:
    unchanged(world, ExitCode.USAGE, "token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin",
              input=secret)


# -- missing required field -------------------------------------------------------------------
def test_missing_required_field_for_bot_credentials(world: CLI) -> None:
    line = unchanged(
        world, ExitCode.USAGE,
        "trackers", "add", "acme", "cloud", "--type", "needsuser", "--url", NEEDS_USER_URL, "--bot-password-stdin",
        input="bot-secret-token",
    )
    assert "needs a user name (e-mail) with the API token; give it with --bot-username" in line


def test_missing_required_field_for_a_personal_token(needs_user: CLI) -> None:
    needs_user.interactive = True  # the check comes before the prompt: nobody types a token in vain
    line = unchanged(needs_user, ExitCode.USAGE, "token", "set", "alice", NEEDS_USER_URL, "--tenant", "acme")
    assert "needs a user name (e-mail) with the API token; give it with --username" in line
    assert "API token" not in needs_user.history[-1].stderr.split("Error:")[0]  # no prompt was shown
    needs_user.ok("token", "set", "alice", NEEDS_USER_URL, "--tenant", "acme", "--username", "alice@example.com",
                  "--password-stdin", "--verify", input="alice-secret-with-name")


def test_a_user_name_for_a_type_that_takes_none(world: CLI) -> None:
    world.ok("trackers", "add", "acme", "gh", "--type", "tokenonly", "--url", "https://gh.example.com/o/r",
             "--bot-password-stdin", input="bot-secret-token")
    line = unchanged(world, ExitCode.USAGE, "token", "set", "alice", "https://gh.example.com", "--all-tenants",
                     "--username", "alice", "--password-stdin", input="alice-secret-token")
    assert line == (
        "Error: tracker type 'tokenonly' takes no user name, only a personal access token; leave out --username;"
        " the token is prompted for, or read with --password-stdin"
    )
    line = unchanged(world, ExitCode.USAGE, "trackers", "add", "acme", "gh2", "--type", "tokenonly",
                     "--url", "https://gh.example.com/o/s", "--bot-username", "bot", "--bot-password-stdin",
                     input="bot-secret-token")
    assert line.startswith(
        "Error: bot credentials: tracker type 'tokenonly' takes no user name, only a personal access token;"
        " leave out --bot-username;"
    )


@pytest.mark.parametrize(("tracker_type", "words"), [("tokenonly", "personal access token"), ("memory", "API token")])
def test_an_empty_bot_secret_names_the_field_as_the_type_spells_it(world: CLI, tracker_type: str, words: str) -> None:
    line = unchanged(world, ExitCode.USAGE, "trackers", "add", "acme", "x", "--type", tracker_type,
                     "--url", "https://x.example.com", "--bot-password-stdin", input="\n")
    assert line == (
        f"Error: the {words} for the bot is empty; nothing was stored;"
        f" pipe the {words} for the bot itself into --bot-password-stdin"
    )
    world.interactive = False
    line = unchanged(world, ExitCode.USAGE, "trackers", "add", "acme", "x", "--type", tracker_type,
                     "--url", "https://x.example.com")
    assert f"no hidden prompt for the {words} for the bot; pipe it in with --bot-password-stdin" in line


def test_conflicting_bot_options(world: CLI) -> None:
    line = unchanged(world, ExitCode.USAGE, "trackers", "add", "acme", "x", "--type", "memory",
                     "--url", "https://x.example.com", "--no-bot", "--bot-password-stdin")
    assert "--no-bot" in line


# -- authorization ------------------------------------------------------------------------------
def test_token_for_a_url_of_a_tenant_the_user_is_not_in(world: CLI) -> None:
    line = unchanged(world, ExitCode.NOT_AUTHORIZED, "token", "set", "bob", OTHER_URL, "--tenant", "globex",
                     "--password-stdin", input="bob-secret-token")
    assert "'bob' is not authorized for tenant 'globex'" in line
    # all of bob's tenants: globex's tracker URL is simply not among them
    unchanged(world, ExitCode.NOT_FOUND, "token", "set", "bob", OTHER_URL, "--all-tenants",
              "--password-stdin", input="bob-secret-token")
    # his own tenant, but a URL that belongs to another tenant's tracker
    unchanged(world, ExitCode.NOT_FOUND, "token", "set", "bob", OTHER_URL, "--tenant", "acme",
              "--password-stdin", input="bob-secret-token")


def test_acting_in_a_tenant_the_user_is_not_in(world: CLI) -> None:
    for command in (("resolve",), ("verify",), ("report", "--title", "x")):
        line = unchanged(world, ExitCode.NOT_AUTHORIZED, command[0], "bob", "globex", "main", *command[1:])
        assert "'bob' is not authorized for tenant 'globex'" in line
    assert world.backend.issues == {}


def test_no_credentials(world: CLI) -> None:
    world.ok("trackers", "add", "acme", "bare", "--type", "memory", "--url", "https://bare.example.com", "--no-bot")
    line = unchanged(world, ExitCode.NO_CREDENTIALS, "resolve", "bob", "acme", "bare")
    assert "no personal token" in line


# -- the tracker's answers ----------------------------------------------------------------------
def test_rejected_credentials(world: CLI) -> None:
    before = world.dump()
    world.fails(ExitCode.REJECTED, "token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin",
                "--verify", input="wrong-token")
    assert world.dump() == before
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="wrong-token")
    line = world.fails(ExitCode.REJECTED, "report", "alice", "acme", "main", "--title", "x")
    assert "personal token" in line and "wrong-token" not in line
    assert world.backend.issues == {}  # never silently filed as the bot


@pytest.mark.parametrize(("status", "code"), [(503, ExitCode.UNAVAILABLE), (429, ExitCode.UNAVAILABLE),
                                              (404, ExitCode.TRACKER_REFUSED), (422, ExitCode.TRACKER_REFUSED)])
def test_tracker_failures(world: CLI, status: int, code: ExitCode) -> None:
    world.backend.fail_status = status
    for command in (("verify",), ("report", "--title", "x")):
        world.fails(code, command[0], "bob", "acme", "main", *command[1:])


# -- keys and files -----------------------------------------------------------------------------
def test_wrong_key_under_the_same_id(world: CLI) -> None:
    ring = KeyRing.from_key_file(world.key_file)
    os.unlink(world.key_file)
    KeyRing.generate_key_file(world.key_file, key_id=ring.primary_id)
    for args in (("tenants", "list"), ("resolve", "bob", "acme", "main"), ("tenants", "add", "new")):
        line = unchanged(world, ExitCode.KEY_ERROR, *args)
        assert ring.primary_id in line


def test_wrong_key_file_with_other_key_ids(world: CLI) -> None:
    os.unlink(world.key_file)
    KeyRing.generate_key_file(world.key_file, key_id="someone-elses-key")
    for args in (("tenants", "list"), ("trackers", "list"), ("resolve", "bob", "acme", "main")):
        line = unchanged(world, ExitCode.KEY_ERROR, *args)
        assert "wrong key file" in line


def test_missing_key_file(world: CLI) -> None:
    os.unlink(world.key_file)
    line = unchanged(world, ExitCode.KEY_ERROR, "tenants", "list")
    assert "does not exist" in line


def test_key_file_readable_by_others(world: CLI) -> None:
    os.chmod(world.key_file, 0o644)
    line = unchanged(world, ExitCode.KEY_ERROR, "tenants", "list")
    assert "chmod 600" in line


def test_corrupted_database_file(world: CLI) -> None:
    world.database.write_bytes(b"this is not a database, just garbage\n" * 200)
    for suffix in ("-wal", "-shm"):
        world.database.with_name(world.database.name + suffix).unlink(missing_ok=True)
    before = world.database.read_bytes()
    for args in (("tenants", "list"), ("tenants", "add", "x"), ("resolve", "bob", "acme", "main")):
        result = world(*args)
        assert result.exit_code == ExitCode.STORE_ERROR, (result.exit_code, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert world.database.read_bytes() == before


def test_truncated_database_file(world: CLI) -> None:
    data = world.database.read_bytes()
    world.database.write_bytes(data[: len(data) // 3])
    for suffix in ("-wal", "-shm"):
        world.database.with_name(world.database.name + suffix).unlink(missing_ok=True)
    line = world.fails(ExitCode.STORE_ERROR, "tenants", "list")
    assert "malformed" in line


# -- the audit entry of an acting command ------------------------------------------------------
AUDIT_FAILURE = "the token database failed to record audit entries and last-used times: disk I/O error"


@pytest.fixture
def unflushable(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The database passes the write check, then cannot take the audit entry after the tracker
    acted (a full disk, a lock held for longer than the store waits)."""
    from tokenproviders.stores.sqlite import SQLiteDatabase

    def failing_flush(self: SQLiteDatabase) -> None:
        raise StoreError(AUDIT_FAILURE)

    monkeypatch.setattr(SQLiteDatabase, "flush", failing_flush)
    return monkeypatch


def _warning(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Warning: ")]
    assert len(lines) == 1, stderr
    assert "Error:" not in stderr and "Traceback" not in stderr
    return lines[0]


def test_a_filed_issue_whose_audit_entry_fails_is_still_printed_with_exit_14(
    world: CLI, unflushable: pytest.MonkeyPatch
) -> None:
    result = world("report", "bob", "acme", "main", "--title", "Crash on save")
    assert result.exit_code == ExitCode.NOT_AUDITED, (result.exit_code, result.stderr)
    assert int(ExitCode.NOT_AUDITED) == 14  # documented: scripts rely on the number
    (issue,) = world.backend.issues.values()
    assert result.stdout.strip() == f"{TRACKER_URL}/issues/{issue.id}"  # the issue exists: say where
    warning = _warning(result.stderr)
    assert f"issue {issue.id} was filed" in warning and AUDIT_FAILURE in warning
    assert "do not run the command again for this, that would file a second issue" in warning

    result = world("report", "alice", "acme", "main", "--title", "Typo", "--json")
    assert result.exit_code == ExitCode.NOT_AUDITED
    assert json.loads(result.stdout)["url"].startswith(TRACKER_URL)
    assert len(world.backend.issues) == 2
    _warning(result.stderr)

    # Only flush() was broken here: closing the database wrote the entries after all.
    unflushable.undo()
    trail = json.loads(world.ok("audit", "--json").stdout)
    assert [entry["user"] for entry in trail][:2] == ["alice", "bob"]


def test_resolve_and_verify_whose_audit_entry_fails_print_their_result_with_exit_14(
    world: CLI, unflushable: pytest.MonkeyPatch
) -> None:
    for command, printed in (("resolve", "Resolution for bob"), ("verify", "knows bob's credentials as bot-login")):
        result = world(command, "bob", "acme", "main")
        assert result.exit_code == ExitCode.NOT_AUDITED, (command, result.stderr)
        assert printed in result.stdout
        assert "do not run the command again for this, that would only add another entry" in _warning(result.stderr)
        result = world(command, "bob", "acme", "main", "--json")
        assert result.exit_code == ExitCode.NOT_AUDITED
        json.loads(result.stdout)


def test_when_closing_fails_too_the_warning_is_the_only_message(world: CLI, unflushable: pytest.MonkeyPatch) -> None:
    from tokenproviders.stores.sqlite import SQLiteDatabase

    close = SQLiteDatabase.close

    def failing_close(self: SQLiteDatabase) -> None:
        close(self)
        raise StoreError(AUDIT_FAILURE)

    unflushable.setattr(SQLiteDatabase, "close", failing_close)
    result = world("report", "bob", "acme", "main", "--title", "Crash on save")
    assert result.exit_code == ExitCode.NOT_AUDITED
    assert len(world.backend.issues) == 1 and result.stdout.strip().startswith(TRACKER_URL)
    _warning(result.stderr)
    # A failure to close after a command that did not act is still an error.
    world.fails(ExitCode.STORE_ERROR, "tenants", "list")


# -- --debug never shows a secret ---------------------------------------------------------------
def test_a_library_exception_is_mapped_and_never_shows_a_secret(world: CLI) -> None:
    world.ok("trackers", "add", "acme", "leaky", "--type", "leaky", "--url", "https://leaky.example.com",
             "--bot-username", "bot", "--bot-password-stdin", input="bot-secret-token")
    line = world.fails(ExitCode.TRACKER_REFUSED, "verify", "bob", "acme", "leaky")
    assert "bot-secret-token" not in line and "ValueError" in line
    result = world("--debug", "verify", "bob", "acme", "leaky")
    assert result.exit_code == ExitCode.TRACKER_REFUSED
    assert "Traceback" in result.stderr and "bot-secret-token" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_unexpected_errors_are_one_line_and_never_show_a_secret(world: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    from tokenproviders.cli import _acting

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("cannot show bot-secret-token")

    monkeypatch.setattr(_acting, "resolution_table", broken)
    line = world.fails(ExitCode.ERROR, "resolve", "bob", "acme", "main")
    assert "bot-secret-token" not in line and "**********" in line and "this is a bug" in line
    result = world("--debug", "resolve", "bob", "acme", "main")
    assert result.exit_code == ExitCode.ERROR
    assert "Traceback" in result.stderr and "ValueError" in result.stderr
    assert "bot-secret-token" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_debug_on_ordinary_errors_shows_the_traceback_without_secrets(world: CLI) -> None:
    world.ok("token", "set", "alice", TRACKER_URL, "--tenant", "acme", "--password-stdin", input="wrong-token-1234")
    result = world("--debug", "report", "alice", "acme", "main", "--title", "x")
    assert result.exit_code == ExitCode.REJECTED
    assert "Traceback" in result.stderr and "PersonalTokenRejectedError" in result.stderr
    assert "wrong-token-1234" not in result.output


def test_json_of_failed_commands_is_not_printed(world: CLI) -> None:
    result = world("resolve", "bob", "globex", "main", "--json")
    assert result.exit_code == ExitCode.NOT_AUTHORIZED and result.stdout == ""
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


class ChattyType(MemoryTrackerType):
    """A tracker type whose client library logs request URLs, API key included (as urllib3 does)."""

    name: ClassVar[str] = "chatty"
    title: ClassVar[str] = "Logs secrets"

    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        secret = client.credentials.api_password.reveal()
        logging.getLogger("urllib3.connectionpool").warning("Retrying GET /rest/whoami?api_key=%s", secret)
        logging.getLogger("tokenproviders.fake").debug("debug detail %s", secret)
        logging.getLogger("tokenproviders.fake").warning("token %s looks odd", secret)
        return super().whoami(client, tracker)


def test_log_records_of_any_library_are_redacted(world: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bugzilla plugin filters urllib3's loggers process-wide once a client is built: this
    # test is about the CLI's own redaction, whatever ran before it in the process.
    monkeypatch.setattr(logging.getLogger("urllib3.connectionpool"), "filters", [])
    config = world.config()
    config.extra_plugins = [*config.extra_plugins, MemoryTrackerPlugin(ChattyType(world.backend))]
    runner = make_runner()
    result = runner.invoke(root, ["trackers", "add", "acme", "chatty", "--type", "chatty", "--url",
                                  "https://chatty.example.com", "--bot-username", "bot", "--bot-password-stdin"],
                           input="bot-secret-token", obj=config)
    assert result.exit_code == 0, result.stderr
    for debug in ([], ["--debug"]):
        config = world.config()
        config.extra_plugins = [*config.extra_plugins, MemoryTrackerPlugin(ChattyType(world.backend))]
        result = runner.invoke(root, [*debug, "verify", "bob", "acme", "chatty"], obj=config)
        assert result.exit_code == 0, result.stderr
        assert ("Retrying GET /rest/whoami?api_key=**********" in result.stderr) == bool(debug)
        assert ("debug detail **********" in result.stderr) == bool(debug)
        assert "token ********** looks odd" in result.stderr
        assert "bot-secret-token" not in result.output


def test_no_arguments_prints_help(cli: CLI) -> None:
    result = cli()
    assert result.exit_code in (0, ExitCode.USAGE)
    assert "Usage:" in result.output and "Exit codes:" in result.output
