"""The root ``tokenproviders`` command: global options, error handling and shared helpers.

Every failure ends as one line on stderr (``Error: what happened; what to do``) and one of the
exit codes in :mod:`tokenproviders.cli.exit_codes`. ``--debug`` adds the traceback and DEBUG
logging; both pass through the :class:`~tokenproviders.cli._redaction.Redactor`, so a secret
this process handled never reaches the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import os
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from .. import __version__
from .._printable import LONE_SURROGATE, printable
from ..audit import acting
from ..errors import InvalidCredentialsError, InvalidInputError, TokenProvidersError
from ..model import ALL_TENANTS, Secret, check_scope
from ..trackertype import TrackerType
from ._redaction import Redactor
from ._state import HOME_ENV, KEY_FILE_ENV, CLIConfig, Session, open_session
from .exit_codes import EXIT_CODES_HELP, ExitCode, exit_code_for

__all__ = [
    "AliasedGroup",
    "RootGroup",
    "cli",
    "credential_fields_error",
    "pass_session",
    "read_secret",
    "scope_from_options",
]

P = ParamSpec("P")
R = TypeVar("R")

PLUGINS_LOGGER = "tokenproviders.plugins"

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def refuse_undecodable(ctx: click.Context) -> None:
    """Refuse an argument that is not text: bytes that are not UTF-8 reach ``sys.argv`` as lone
    surrogates, which can neither be stored nor sent. Paths may hold any bytes and are kept."""
    for param in ctx.command.get_params(ctx):
        if param.name is None or isinstance(param.type, (click.Path, click.File)):
            continue
        value = ctx.params.get(param.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, str) and LONE_SURROGATE.search(item):
                raise click.BadParameter(
                    f"{printable(item)} is not UTF-8 text (bytes in another encoding cannot be stored"
                    " or sent); give ids, names, URLs and text in UTF-8",
                    ctx=ctx,
                    param=param,
                )


class TextCommand(click.Command):
    """A command whose arguments are checked by :func:`refuse_undecodable`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        refuse_undecodable(ctx)
        return rest


class AliasedGroup(click.Group):
    """A group that also accepts the singular/plural spelling of its subcommands.

    Its arguments, and those of every command it makes, are checked by :func:`refuse_undecodable`.
    """

    command_class = TextCommand

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = dict(aliases or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        refuse_undecodable(ctx)
        return rest


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never fail the command
            self.handleError(record)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _StdoutClosed(Exception):
    """The reader of stdout went away (``| head``, ``| true``): stop quietly."""


@contextlib.contextmanager
def _stdout_closed_on_epipe() -> Iterator[None]:
    # click's own ``main`` turns EPIPE into exit 1 even with standalone_mode=False, before our
    # handler sees it; an exception click does not know passes through to ours.
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise _StdoutClosed() from None
        raise


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not complain either."""
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class RootGroup(AliasedGroup):
    """Runs the command and turns every failure into one redacted line and an exit code.

    A closed stdout (the reader of a pipe exited) ends the command quietly with exit code 0.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _stdout_closed_on_epipe():  # --help and --version print while parsing
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _stdout_closed_on_epipe():
            return super().invoke(ctx)

    def main(  # type: ignore[override,unused-ignore]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        config = extra.pop("obj", None)
        if not isinstance(config, CLIConfig):
            config = CLIConfig()
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, obj=config, **extra)
        # Every record, from us or from a tracker client library (urllib3 logs URLs, which may
        # carry an API key), goes through the redacting handler on the root logger.
        handler = _StderrHandler()
        handler.setFormatter(config.redactor.formatter("%(levelname)s %(name)s: %(message)s"))
        # Client libraries' own chatter (urllib3's "Retrying ...") only with --debug: the
        # command's one error line already says what failed.
        handler.addFilter(lambda record: config.debug or record.name.split(".")[0] == "tokenproviders")
        root_logger = logging.getLogger()
        old_level = root_logger.level
        root_logger.addHandler(handler)
        root_logger.setLevel(logging.WARNING)
        # A broken plugin is listed by 'tokenproviders plugins' and named in the error of a
        # command that needs its tracker type; it does not add lines to every other command.
        plugins_logger = logging.getLogger(PLUGINS_LOGGER)
        old_plugins_level = plugins_logger.level
        plugins_logger.setLevel(logging.ERROR)
        code: int = ExitCode.OK
        try:
            result = super().main(
                args, prog_name or "tokenproviders", complete_var, standalone_mode=False, obj=config, **extra
            )
            if isinstance(result, int) and not isinstance(result, bool):
                code = result  # click.exceptions.Exit (e.g. --help, --version)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.Abort:
            click.echo("Error: aborted", err=True)
            code = ExitCode.INTERRUPTED
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # click >= 8.2
                click.echo(exc.ctx.get_help(), err=True)
                sys.exit(ExitCode.USAGE)
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            self._report(config, exc, f"{exc.format_message()}{where}")
            code = ExitCode.USAGE
        except click.ClickException as exc:
            self._report(config, exc, exc.format_message())
            code = exc.exit_code
        except TokenProvidersError as exc:
            self._report(config, exc, str(exc))
            code = exit_code_for(exc)
        except sqlite3.Error as exc:
            self._report(config, exc, f"the database failed: {exc}; check the data directory and its permissions")
            code = ExitCode.STORE_ERROR
        except _StdoutClosed:
            _silence_stdout()  # the reader went away (| head): not an error of ours
            code = ExitCode.OK
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                _silence_stdout()
                code = ExitCode.OK
            else:
                where = f" {exc.filename}" if exc.filename else ""
                self._report(config, exc, f"cannot access{where}: {exc.strerror or exc}")
                code = ExitCode.STORE_ERROR
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no secret
            self._report(
                config,
                exc,
                f"unexpected {type(exc).__name__}: {exc}; this is a bug, rerun with --debug and report it",
            )
            code = ExitCode.ERROR
        finally:
            root_logger.removeHandler(handler)
            root_logger.setLevel(old_level)
            plugins_logger.setLevel(old_plugins_level)
        sys.exit(code)

    @staticmethod
    def _report(config: CLIConfig, exc: BaseException, message: str) -> None:
        redact = config.redactor.redact
        # Messages quote input and trackers' answers: escape what a terminal would act on.
        if config.debug:
            rendered = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            click.echo(printable(redact(rendered), keep_newlines=True), err=True, nl=False)
        click.echo(f"Error: {printable(redact(_one_line(message)))}", err=True)


def _debug_logging(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(CLIConfig).debug = True
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger(PLUGINS_LOGGER).setLevel(logging.NOTSET)
    return value


@click.group(
    cls=RootGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog=EXIT_CODES_HELP,
    aliases={"tenant": "tenants", "tracker": "trackers", "tokens": "token", "key": "keys", "plugin": "plugins"},
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=HOME_ENV,
    show_envvar=True,
    help="Directory holding the database and key file [default: the platform's per-user data directory].",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=KEY_FILE_ENV,
    show_envvar=True,
    help=(
        "The 0600 key file [default: tokenproviders.key in the data directory]. Given as an option it"
        " wins over a key provider plugin and TOKENPROVIDERS_KEYS; named by the variable, it comes after them."
    ),
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, 300, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds before a tracker request gives up.",
)
@click.option(
    "--debug",
    is_flag=True,
    callback=_debug_logging,
    expose_value=True,
    help="Show tracebacks and DEBUG logs on errors (secrets stay masked).",
)
@click.version_option(__version__, "--version", prog_name="tokenproviders")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, key_file: Path | None, timeout: float, debug: bool) -> None:
    """Personal API tokens for issue trackers: file bugs as the person, not the bot.

    Manage tenants, trackers (with bot credentials) and personal tokens in an embedded,
    encrypted database; see which credentials a user would act with and why; file a bug as
    them. Start with 'tokenproviders init', or watch 'tokenproviders demo'.

    Secrets are never taken from the command line: commands prompt for them with hidden input,
    or read them from stdin with --password-stdin.
    """
    config = ctx.ensure_object(CLIConfig)
    if data_dir is not None:
        config.data_dir = data_dir
    if key_file is not None:
        config.key_file = key_file
        config.key_file_from_env = ctx.get_parameter_source("key_file") is click.core.ParameterSource.ENVIRONMENT
    config.timeout = timeout
    config.debug = config.debug or debug


def get_config(ctx: click.Context | None = None) -> CLIConfig:
    context = ctx if ctx is not None else click.get_current_context()
    config = context.find_object(CLIConfig)
    if config is None:  # a subcommand invoked on its own (tests)
        config = context.ensure_object(CLIConfig)
    return config


def os_account() -> str | None:
    """The operating-system account running the command: the principal of its audit entries.

    Read from the effective uid where there is one (not from ``$USER``, which anyone can set);
    ``None`` if the system names no account.
    """
    try:
        import pwd

        name = pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError):
        import getpass

        try:
            name = getpass.getuser()
        except (ImportError, KeyError, OSError):
            return None
    return name if 0 < len(name) <= 200 and name.isprintable() and name.strip() == name else None


def pass_session(function: Callable[Concatenate[Session, P], R]) -> Callable[P, R]:
    """Open the data directory for the command (first argument) and close it when it ends.

    The command is one audited action: its audit entries name the operating-system account as
    principal and share one correlation id.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context()
        session = open_session(get_config(ctx))
        ctx.call_on_close(session.close)
        with acting(principal=os_account()):
            return function(session, *args, **kwargs)

    return wrapper


def as_noun(label: str) -> str:
    """A field label inside a sentence: ``Personal access token`` -> ``personal access token``,
    while ``API key`` stays as it is."""
    if label[:2].isalpha() and label[:2].isupper():
        return label
    return label[:1].lower() + label[1:]


def with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeio' else 'a'} {noun}"


def read_secret(
    config: CLIConfig,
    *,
    label: str,
    from_stdin: bool,
    stdin_flag: str = "--password-stdin",
    username: str | None = None,
    for_whom: str = "",
) -> Secret:
    """Read a secret from stdin (one line) or a hidden prompt; never from argv.

    ``label`` is the tracker type's field label (``Personal access token``); ``for_whom`` is
    added to the prompt and to messages (``for the bot``).
    """
    suffix = f" {for_whom}" if for_whom else ""
    noun = f"{as_noun(label)}{suffix}"
    if from_stdin:
        data = sys.stdin.read()
        value = data.rstrip("\r\n")
        if "\n" in value:
            raise InvalidInputError(
                f"{stdin_flag} expects a single line on stdin, got several",
                hint="pipe exactly the secret, e.g. printf '%s' \"$TOKEN\" | tokenproviders ...",
            )
    else:
        if not config.stdin_is_interactive():
            raise click.UsageError(
                f"stdin is not a terminal, so there is no hidden prompt for the {noun}; pipe it in with {stdin_flag}"
            )
        value = click.prompt(f"{label}{suffix}", hide_input=True, err=True)
    if not value or not value.strip():
        how = f"pipe the {noun} itself into {stdin_flag}" if from_stdin else f"type or paste the {noun} at the prompt"
        raise InvalidInputError(f"the {noun} is empty; nothing was stored", hint=how)
    secret = Secret(value)
    config.redactor.add(secret, username)
    return secret


def credential_fields_error(
    tracker_type: TrackerType,
    username: str | None,
    error: InvalidCredentialsError,
    *,
    username_flag: str,
    secret_how: str,
) -> InvalidCredentialsError:
    """The tracker type's refusal of the credential fields, said with the command's options.

    The type's own message names fields (``does not take api_username``); on the command line
    what matters is which option to leave out or add.
    """
    user_field = tracker_type.field("api_username")
    secret_field = tracker_type.field("api_password")
    secret = as_noun(secret_field.label) if secret_field is not None else "token"
    if username and user_field is None:
        return InvalidCredentialsError(
            f"tracker type {tracker_type.name!r} takes no user name, only {with_article(secret)}",
            hint=f"leave out {username_flag}; {secret_how}",
        )
    if not username and user_field is not None and user_field.required:
        return InvalidCredentialsError(
            f"tracker type {tracker_type.name!r} needs a user name ({as_noun(user_field.label)}) with the {secret}",
            hint=f"give it with {username_flag}; {secret_how}",
        )
    return InvalidCredentialsError(
        error.message,
        hint=f"{tracker_type.name} takes {tracker_type.describe_fields()}; the user name goes in {username_flag},"
        f" and {secret_how}",
    )


def out_of_range(text: str, param_hint: str) -> click.BadParameter:
    """The usage error for a time that falls outside the years 1 to 9999 (``datetime``'s range)."""
    return click.BadParameter(f"{text!r} falls outside the years 1 to 9999 in UTC", param_hint=param_hint)


def in_utc(when: datetime, text: str, param_hint: str) -> datetime:
    """``when`` (aware) in UTC; ``text`` (what was given) is named if it does not fit."""
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise out_of_range(text, param_hint) from None


def scope_from_options(tenant: str | None, all_tenants: bool) -> str:
    """The token scope from ``--tenant T`` / ``--all-tenants`` (exactly one of them)."""
    if all_tenants and tenant is not None:
        raise click.UsageError("give either --tenant or --all-tenants, not both")
    if all_tenants:
        return ALL_TENANTS
    if tenant is None:
        raise click.UsageError("give the token's scope: --tenant TENANT or --all-tenants")
    return check_scope(tenant)


def redactor_of(ctx: click.Context | None = None) -> Redactor:
    return get_config(ctx).redactor
