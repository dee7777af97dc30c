"""The contract every tracker type keeps, as a test class a plugin's own tests subclass.

A plugin proves itself against its fake server by subclassing :class:`TrackerTypeContract` in a
test module and declaring what it is::

    from tokenproviders.testing import CredentialKind, Header, TrackerTypeContract
    from tokenproviders_youtrack.testing import FakeYouTrack

    class TestYouTrackContract(TrackerTypeContract):
        plugin = "tokenproviders_youtrack"          # the entry point's value
        type_name = "youtrack"
        fake_class = FakeYouTrack
        client_modules = ("requests",)
        credential_kinds = (
            CredentialKind("permanent token", password="perm:{secret}",
                           sends=Header("Authorization", "Bearer {api_password}")),
        )
        options = {"project": "0-0"}

pytest then runs every ``test_*`` method below against that plugin. What they check:

* the plugin registers the type, with a valid declaration: fields with labels and help text,
  ``api_password`` marked secret, each credential kind accepted, undeclared fields refused;
* importing the plugin module and discovering the plugin import none of ``client_modules``,
  and ``build_client`` does (checked in a fresh interpreter);
* each credential kind reaches the tracker exactly as declared by ``sends`` (the header or query
  parameter recorded by the fake) on every request;
* with every credential kind, whoami, a bug report and a comment are attributed to the token's
  owner when alice has a personal token, and to the bot when bob has none;
* only those credentials are sent: with a ``default`` entry in the host's ``~/.netrc`` (a
  temporary ``HOME`` and ``NETRC``), no request carries its login or password, nor an
  ``Authorization`` header a credential kind does not use;
* a ``base_url`` and ``api_url`` spelled another way (upper case, a trailing dot on the host, a
  ``.`` segment, an escaped letter, a trailing slash; the fake is reached as ``localhost``)
  send every request to the normalized host, and the reported issue's URL is the normalized one;
* 401 and 403 become :class:`~tokenproviders.CredentialsRejectedError` (401 with every
  credential kind); refused connections, timeouts and 5xx become
  :class:`~tokenproviders.TrackerUnavailableError`, on a fresh client and on a cached one that
  already talked to the tracker;
* a timeout is the client's own: a hung fake (``fake.hang()``) is released by a watchdog only
  after a few times what ``settings.timeout`` and ``settings.retries`` allow, and a call that
  ends only then fails, as does one that waited for it;
* a redirect to another server is not followed (that server receives nothing: neither the
  credentials nor the issue) and is an error; a server that answers ``{}`` to everything (a
  wrong URL serving other JSON) makes whoami and a report fail with a library error;
* secrets a person really pastes (a trailing line break, a CR/LF header injection, a character
  outside Latin-1) are refused with :class:`~tokenproviders.InvalidCredentialsError` before
  anything is sent; unusual secrets the type accepts (an inner space, a Latin-1 letter) work;
* no secret (nor its Basic or URL encoding) appears in a log record at DEBUG, on stdout or
  stderr, in an error (as a traceback prints it, with the local variables of every frame, as
  error reporters capture them) or in the ``repr`` of the client, the type or the resolution.

The secrets are random per test, so a leak cannot hide behind a coincidence.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import pytest

from ..directory import MemoryDirectory
from ..errors import (
    CredentialsRejectedError,
    InvalidCredentialsError,
    TokenProvidersError,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
)
from ..model import ClientSettings, Credentials, Identity, ReportedIssue, Secret, Tracker
from ..plugins import ENTRY_POINT_GROUP, Plugins
from ..resolver import Resolver
from ..stores import MemoryTokenStore
from ..trackertype import TrackerType
from ..urls import normalize_url
from .fakes import FakeIssue, FakeTracker, RecordedRequest
from .fakes._server import AuthResult, Response, json_response
from .world import register_on_fake

__all__ = [
    "TrackerTypeContract",
    "CredentialKind",
    "AuthExpectation",
    "Header",
    "BasicAuth",
    "QueryParam",
    "ContractScenario",
    "HostNetrc",
    "OtherJSONServer",
    "load_plugin",
    "other_spelling",
    "printed_with_locals",
    "secret_forms",
]

Operation = Literal["whoami", "report", "comment"]
OPERATIONS: tuple[Operation, ...] = ("whoami", "report", "comment")
TENANT = "acme"
ALICE = "alice"  # has a personal token
BOB = "bob"  # has none: the bot acts for him
BOT = "acme-bot"
_REQUIRED = ("plugin", "type_name", "fake_class", "client_modules", "credential_kinds")


# -- how credentials reach the tracker ---------------------------------------------------------
class AuthExpectation(Protocol):
    """Where a credential kind shows up in the request the fake records."""

    def describe(self) -> str:
        """Words for assertion messages (a template, never the secret)."""
        ...

    def found_in(self, request: RecordedRequest, credentials: Credentials) -> bool:
        """Whether ``request`` carries ``credentials`` this way."""
        ...


def _fill(template: str, credentials: Credentials) -> str:
    return template.format(api_username=credentials.api_username or "", api_password=credentials.api_password.reveal())


@dataclass(frozen=True)
class Header:
    """The header ``name`` (any case) is exactly ``template`` filled with ``{api_username}`` and
    ``{api_password}``: ``Header("PRIVATE-TOKEN")``, ``Header("Authorization", "Bearer {api_password}")``."""

    name: str
    template: str = "{api_password}"

    def describe(self) -> str:
        return f"header {self.name}: {self.template}"

    def found_in(self, request: RecordedRequest, credentials: Credentials) -> bool:
        return request.header(self.name) == _fill(self.template, credentials)


@dataclass(frozen=True)
class BasicAuth:
    """``Authorization: Basic base64(user:api_password)``; ``user`` is the credentials'
    ``api_username`` unless ``username`` is given (Azure DevOps sends ``""``)."""

    username: str | None = None

    def describe(self) -> str:
        who = "{api_username}" if self.username is None else repr(self.username)
        return f"header Authorization: Basic base64({who}:{{api_password}})"

    def found_in(self, request: RecordedRequest, credentials: Credentials) -> bool:
        value = request.header("Authorization") or ""
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:
            return False
        user = credentials.api_username or "" if self.username is None else self.username
        return decoded == f"{user}:{credentials.api_password.reveal()}"


@dataclass(frozen=True)
class QueryParam:
    """The query parameter ``name`` is ``template`` filled: ``QueryParam("Bugzilla_api_key")``."""

    name: str
    template: str = "{api_password}"

    def describe(self) -> str:
        return f"query parameter {self.name}={self.template}"

    def found_in(self, request: RecordedRequest, credentials: Credentials) -> bool:
        return request.query_param(self.name) == _fill(self.template, credentials)


@dataclass(frozen=True)
class CredentialKind:
    """One way to authenticate with the tracker type, for a fake user.

    ``password`` and ``username`` are templates: ``{secret}`` is a random string the contract
    chooses (and then looks for in logs and errors), ``{login}`` the fake user's login.
    ``username=None`` makes credentials without an ``api_username``. ``sends`` says what the
    fake must record. ``register(fake, login, credentials)`` tells the fake who the credentials
    are (default: :func:`~tokenproviders.testing.world.register_on_fake`).
    """

    name: str
    sends: AuthExpectation
    password: str = "{secret}"
    username: str | None = None
    register: Callable[[FakeTracker, str, Credentials], None] | None = None

    def credentials(self, login: str, secret: str) -> Credentials:
        username = self.username.format(login=login, secret=secret) if self.username is not None else None
        return Credentials(
            api_password=Secret(self.password.format(login=login, secret=secret)), api_username=username
        )

    def register_user(self, fake: FakeTracker, login: str, credentials: Credentials) -> None:
        (self.register or register_on_fake)(fake, login, credentials)


def secret_forms(credentials: Credentials) -> list[str]:
    """Every spelling of a password a leak could take: as is, URL-encoded, and Basic-encoded
    (from UTF-8 and, where it can be, Latin-1 bytes, which is what ``requests`` sends)."""
    password = credentials.api_password.reveal()
    forms = {password}
    for encoding in ("utf-8", "latin-1"):
        try:
            raw = password.encode(encoding)
            users = {(credentials.api_username or "").encode(encoding), b""}
        except UnicodeEncodeError:
            continue
        forms.add(urllib.parse.quote(raw, safe=""))
        forms.add(urllib.parse.quote_plus(raw))
        for user in users:
            forms.add(base64.b64encode(user + b":" + raw).decode())
        forms.add(base64.b64encode(raw).decode().rstrip("="))
    return sorted(form for form in forms if len(form) >= 6)


def load_plugin(reference: str) -> object:
    """Load ``"module"`` or ``"module:attribute"`` the way an entry point is loaded."""
    module_name, _, attribute = reference.partition(":")
    target: object = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        target = getattr(target, part)
    return target


def _may_use_authorization(sends: AuthExpectation) -> bool:
    """Whether credentials sent as ``sends`` travel in the ``Authorization`` header (an
    expectation the contract does not know may)."""
    if isinstance(sends, BasicAuth):
        return True
    if isinstance(sends, Header):
        return sends.name.lower() == "authorization"
    return not isinstance(sends, QueryParam)


@dataclass(frozen=True)
class HostNetrc:
    """The ``~/.netrc`` a contract test gives the host: one ``default`` entry (it matches every
    host) with a random login and password."""

    path: Path
    login: str
    password: str = field(repr=False)

    def forms(self) -> list[str]:
        """The login, the password and their Basic encoding: any of them in a request is a leak."""
        pair = f"{self.login}:{self.password}".encode()
        return [self.login, self.password, base64.b64encode(pair).decode()]


def other_spelling(url: str) -> str:
    """``url`` as a person may type it: upper-case scheme and host, a trailing dot on the host
    name, a ``.`` path segment, an escaped letter and a trailing slash. Each change is kept only
    if :func:`~tokenproviders.normalize_url` maps the result back to the same URL."""
    target = normalize_url(url)
    spelled = url

    def respell(scheme: str | None = None, host: str | None = None, path: str | None = None) -> None:
        nonlocal spelled
        parts = urllib.parse.urlsplit(spelled)  # (its scheme and hostname are lower-cased)
        netloc = parts.netloc
        if host is not None:
            netloc = host if parts.port is None else f"{host}:{parts.port}"
        scheme = spelled.partition(":")[0] if scheme is None else scheme
        path = parts.path if path is None else path
        candidate = f"{scheme}://{netloc}{path}"
        try:
            same = normalize_url(candidate) == target
        except TokenProvidersError:
            same = False
        if same:
            spelled = candidate

    parts = urllib.parse.urlsplit(url)
    respell(scheme=parts.scheme.upper())
    hostname = parts.hostname or ""
    if ":" not in hostname:
        respell(host=f"{hostname.upper()}.")
    respell(path=f"/.{parts.path.rstrip('/')}/")
    path = urllib.parse.urlsplit(spelled).path
    letter = re.search(r"[A-Za-z]", path)
    if letter is not None:
        respell(path=f"{path[: letter.start()]}%{ord(letter[0]):02X}{path[letter.end() :]}")
    return spelled


# -- one test's world --------------------------------------------------------------------------
@dataclass
class ContractScenario:
    """alice (personal token) and bob (no token: the bot acts) in tenant acme, one tracker of
    the type under test at the fake's URL, and a resolver wired to them."""

    fake: FakeTracker
    tracker: Tracker
    resolver: Resolver
    tracker_type: TrackerType
    alice: Credentials
    bot: Credentials
    kind: CredentialKind
    #: every spelling of alice's and the bot's passwords (kept out of repr: pytest prints arguments)
    secrets: list[str] = field(default_factory=list, repr=False)
    #: the title of the last issue :meth:`TrackerTypeContract.run` reported
    last_title: str = ""
    #: whether the watchdog of the last ``"hang"`` fault had to release the hung fake
    hang_released: bool = False

    def login_of(self, user: str) -> str:
        return ALICE if user == ALICE else BOT

    def credentials_of(self, user: str) -> Credentials:
        return self.alice if user == ALICE else self.bot


class OtherJSONServer(FakeTracker):
    """Answers every request with 200 and ``{}``: what a wrong URL that serves some other JSON
    API looks like to a client."""

    type_name = "other-json"

    def _route(self, request: RecordedRequest, auth: AuthResult) -> Response:
        return json_response(200, {})


#: Secrets a person pastes that cannot travel in an HTTP header: the core refuses them.
#: ``{token}`` is a random ``tpsecret...`` string (searched for in every output, so a message
#: that quotes the secret escaped is caught too).
UNSENDABLE_SECRETS: dict[str, str] = {
    "trailing newline": "{token}\n",
    "trailing CRLF": "{token}\r\n",
    "header injection": "{token}\r\nX-Injected: yes",
    "non-Latin-1": "{token}\u20ac",
}
#: Unusual secrets that can travel in a header: a type may refuse them (a format check), but
#: if it accepts them they must work and stay secret.
SENDABLE_SECRETS: dict[str, str] = {
    "inner space": "{token} {token2}",
    "Latin-1 letter": "{token}\u00e9{token2}",
}


def _random_token() -> str:
    return f"tpsecret{secrets.token_hex(10)}"


def printed_with_locals(error: BaseException) -> str:
    """``error`` as a traceback prints it, with the ``repr`` of every frame's local variables
    (as ``pytest --showlocals`` and error reporters such as Sentry capture them), chained
    exceptions included."""
    exception = traceback.TracebackException.from_exception(error, capture_locals=True)
    return "".join(exception.format())


# -- fresh-interpreter import check ----------------------------------------------------------
_IMPORT_PROBE = r"""
import importlib, json, sys
args = json.load(sys.stdin)
module_name, _, attribute = args["plugin"].partition(":")
plugin = importlib.import_module(module_name)
for part in filter(None, attribute.split(".")):
    plugin = getattr(plugin, part)
loaded = lambda: sorted(m for m in args["client_modules"] if m in sys.modules)
result = {"after_import": loaded()}
from tokenproviders import ClientSettings, Credentials, Plugins, Secret, Tracker
plugins = Plugins(load_entry_points=False, extra=[plugin])
tracker_type = plugins.tracker_type(args["type_name"])
result["after_discovery"] = loaded()
tracker = Tracker(tenant="acme", id="probe", type=args["type_name"], base_url=args["base_url"],
                  api_url=args["api_url"], options=args["options"])
credentials = Credentials(api_password=Secret(args["password"]), api_username=args["username"])
tracker_type.build_client(tracker, credentials, ClientSettings(timeout=1.0, retries=0))
result["after_build_client"] = loaded()
print(json.dumps(result))
"""


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.exists(p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


# -- the contract ----------------------------------------------------------------------------
class TrackerTypeContract:
    """Subclass as ``Test<Name>Contract`` and declare, as class attributes:

    ``plugin``
        the entry point's value: ``"package.module"`` or ``"package.module:attribute"``.
    ``type_name``
        the tracker type's ``name``.
    ``fake_class``
        the :class:`~tokenproviders.testing.fakes.FakeTracker` subclass that serves the type.
    ``client_modules``
        the top-level modules of the client library that ``build_client`` imports.
    ``credential_kinds``
        one :class:`CredentialKind` per way to authenticate (at least one).

    and optionally ``distribution`` (the distribution declaring the entry point, checked when
    installed), ``options`` (the tracker's options, e.g. a project key), ``settings``
    (:class:`~tokenproviders.ClientSettings` for the tests; default: 1 s timeout, 1 retry),
    ``anonymous_paths`` (a regex of paths a client may request without credentials),
    ``hang_release_after`` (seconds after which the watchdog releases a hung fake; default:
    :meth:`hang_watchdog_seconds`, three times what ``settings`` allow; a call that ends only
    when it is released fails the timeout tests) and ``redirect_statuses`` (the redirects that
    must not be followed; default 301, 302 and 307).

    Override :meth:`start_fake`, :meth:`base_url`, :meth:`api_url`, :meth:`expected_login` or
    :meth:`expected_issue_url` when the defaults do not fit the tracker.
    """

    plugin: ClassVar[str]
    type_name: ClassVar[str]
    fake_class: ClassVar[type[FakeTracker]]
    client_modules: ClassVar[tuple[str, ...]]
    credential_kinds: ClassVar[Sequence[CredentialKind]]

    distribution: ClassVar[str | None] = None
    options: ClassVar[Mapping[str, Any]] = {}
    settings: ClassVar[ClientSettings] = ClientSettings(timeout=1.0, retries=1)
    anonymous_paths: ClassVar[str | None] = None
    hang_release_after: ClassVar[float | None] = None
    server_error_statuses: ClassVar[tuple[int, ...]] = (500, 502, 503)
    redirect_statuses: ClassVar[tuple[int, ...]] = (301, 302, 307)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Test"):
            return  # an intermediate base class; pytest collects only Test* classes
        missing = [name for name in _REQUIRED if not hasattr(cls, name)]
        if missing:
            raise TypeError(
                f"{cls.__qualname__} must declare {', '.join(missing)} (see TrackerTypeContract's docstring)"
            )
        if not isinstance(cls.plugin, str):
            raise TypeError(
                f"{cls.__qualname__}.plugin must be the entry point's value as a string, e.g."
                f" 'package.module', not {type(cls.plugin).__name__}"
            )
        if not cls.credential_kinds or not all(isinstance(k, CredentialKind) for k in cls.credential_kinds):
            raise TypeError(f"{cls.__qualname__}.credential_kinds must hold at least one CredentialKind")

    # -- what a subclass may override ------------------------------------------------------
    def start_fake(self) -> FakeTracker:
        """A new, not yet started fake server (default: ``fake_class()``)."""
        return self.fake_class()

    def base_url(self, fake: FakeTracker) -> str:
        """The tracker's ``base_url`` on the running fake (default: the fake's root URL)."""
        return fake.url

    def api_url(self, fake: FakeTracker) -> str | None:
        """The tracker's ``api_url`` on the running fake (default: none)."""
        return None

    def expected_login(self, login: str) -> str:
        """What ``whoami`` returns as ``Identity.login`` for the fake user ``login``."""
        return login

    def expected_issue_url(self, fake: FakeTracker, issue: FakeIssue) -> str | None:
        """The URL ``report_issue`` should return for ``issue`` (default: the fake's web URL
        of the issue); ``None`` skips the check."""
        return issue.url

    def hang_watchdog_seconds(self) -> float:
        """After how long the watchdog releases a hung fake: ``hang_release_after`` if declared,
        else ``max(3 * timeout * (retries + 1), timeout + 2)`` for the contract's ``settings``:
        three times what a client that applies them can wait, and at least 2 s more than one
        timeout. No assertion is timed; a call that needed the watchdog fails."""
        if self.hang_release_after is not None:
            return self.hang_release_after
        timeout, attempts = self.settings.timeout, self.settings.retries + 1
        return max(3 * timeout * attempts, timeout + 2)

    # -- plumbing --------------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        kinds = list(self.credential_kinds)
        if "rejection_status" in metafunc.fixturenames:
            # 401 and 403 with the first kind, 401 with the others: a kind is rejected its own way.
            pairs = [(kinds[0], 401), (kinds[0], 403), *((kind, 401) for kind in kinds[1:])]
            metafunc.parametrize(
                ("credential_kind", "rejection_status"),
                pairs,
                ids=[f"{kind.name}-{status}" for kind, status in pairs],
            )
        elif "credential_kind" in metafunc.fixturenames:
            metafunc.parametrize("credential_kind", kinds, ids=[kind.name for kind in kinds])

    @pytest.fixture
    def fake(self) -> Iterator[FakeTracker]:
        """The fake server of this tracker type, started for one test."""
        fake = self.start_fake()
        fake.start()
        try:
            yield fake
        finally:
            fake.stop()

    @pytest.fixture
    def contract_plugins(self) -> Plugins:
        """Plugins with only the built-in sources and the plugin under test."""
        return Plugins(load_entry_points=False, extra=[load_plugin(self.plugin)])

    @pytest.fixture
    def tracker_type(self, contract_plugins: Plugins) -> TrackerType:
        return contract_plugins.tracker_type(self.type_name)

    @pytest.fixture
    def scenario(self, fake: FakeTracker, contract_plugins: Plugins) -> ContractScenario:
        """The world of one test, with the first credential kind."""
        return self.make_scenario(fake, contract_plugins, self.credential_kinds[0])

    @pytest.fixture
    def kind_scenario(
        self, fake: FakeTracker, contract_plugins: Plugins, credential_kind: CredentialKind
    ) -> ContractScenario:
        """The world of one test, once per credential kind (the test is parametrized)."""
        return self.make_scenario(fake, contract_plugins, credential_kind)

    @pytest.fixture
    def other_fake(self) -> Iterator[FakeTracker]:
        """A second fake server of the type: where a redirect points."""
        other = self.start_fake()
        other.start()
        try:
            yield other
        finally:
            other.stop()

    @pytest.fixture
    def leak_watch(self, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
        """Capture every log record at DEBUG, including the client library's."""
        caplog.set_level(logging.DEBUG)
        for name in {*self.client_modules, self.plugin.partition(":")[0].split(".")[0], "urllib3", "requests"}:
            caplog.set_level(logging.DEBUG, logger=name)
        return caplog

    def make_scenario(
        self,
        fake: FakeTracker,
        plugins: Plugins,
        kind: CredentialKind,
        *,
        register: bool = True,
        spell: Callable[[str], str] | None = None,
    ) -> ContractScenario:
        """alice with a personal token of ``kind``, the bot with the same kind of credentials;
        both are registered with ``fake`` unless ``register`` is false. ``spell`` rewrites the
        tracker's ``base_url`` and ``api_url`` (another spelling of the same URLs)."""
        base_url, api_url = self.base_url(fake), self.api_url(fake)
        if spell is not None:
            base_url, api_url = spell(base_url), None if api_url is None else spell(api_url)
        alice_secret = _random_token()
        bot_secret = _random_token()
        alice = kind.credentials(ALICE, alice_secret)
        bot = kind.credentials(BOT, bot_secret)
        if register:
            kind.register_user(fake, ALICE, alice)
            kind.register_user(fake, BOT, bot)
        tracker = Tracker(
            tenant=TENANT,
            id=self.type_name,
            type=self.type_name,
            base_url=base_url,
            api_url=api_url,
            options=self.options,
            bot_credentials=bot,
        )
        directory = MemoryDirectory(memberships=[(ALICE, TENANT), (BOB, TENANT)], trackers=[tracker])
        resolver = Resolver(directory, MemoryTokenStore(), plugins=plugins, settings=self.settings)
        resolver.tokens.set(owner=ALICE, url=tracker.base_url, scope=TENANT, credentials=alice)
        found = [*secret_forms(alice), *secret_forms(bot), alice_secret, bot_secret]
        return ContractScenario(
            fake=fake,
            tracker=tracker,
            resolver=resolver,
            tracker_type=plugins.tracker_type(self.type_name),
            alice=alice,
            bot=bot,
            kind=kind,
            secrets=sorted(set(found)),
        )

    def run(self, scenario: ContractScenario, operation: Operation, user: str, issue_id: str | None = None) -> Any:
        """Do ``operation`` as ``user`` through the resolver, as a host would."""
        resolver, tracker = scenario.resolver, scenario.tracker
        if operation == "whoami":
            return resolver.verify(user, tracker)
        if operation == "report":
            title = scenario.last_title = f"Contract report by {user} {secrets.token_hex(4)}"
            return resolver.report_issue(user, tracker, title=title, body="Steps: run the contract suite.")
        if issue_id is None:
            issue_id = self.bot_issue(scenario).id
        return resolver.add_comment(user, tracker, issue_id, f"Contract comment by {user} {secrets.token_hex(4)}")

    def bot_issue(self, scenario: ContractScenario) -> ReportedIssue:
        """An issue reported by bob (so by the bot), to comment on."""
        issue: ReportedIssue = scenario.resolver.report_issue(BOB, scenario.tracker, title="Issue to comment on")
        return issue

    def fake_issue(self, fake: FakeTracker, title: str) -> FakeIssue:
        matches = [issue for issue in list(fake.issues.values()) if issue.title == title]
        assert len(matches) == 1, f"the fake holds {len(matches)} issues titled {title!r}"
        return matches[0]

    def assert_no_leak(self, scenario: ContractScenario, where: str, text: str) -> None:
        for secret in scenario.secrets:
            if secret in text:
                raise AssertionError(f"a secret (or its encoding) appears in {where}")

    def assert_logs_and_output_clean(
        self, scenario: ContractScenario, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
    ) -> None:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in caplog.records:
            self.assert_no_leak(scenario, f"a log record of logger {record.name!r}", formatter.format(record))
        out, err = capsys.readouterr()
        self.assert_no_leak(scenario, "stdout", out)
        self.assert_no_leak(scenario, "stderr", err)

    def assert_error_clean(self, scenario: ContractScenario, error: BaseException) -> None:
        printed = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.assert_no_leak(scenario, f"the {type(error).__name__} raised (as a traceback prints it)", printed)
        self.assert_no_leak(
            scenario,
            f"the local variables of a frame in the traceback of the {type(error).__name__} raised (as"
            " error reporters capture them; do not keep a revealed secret in a local variable of a"
            " function that raises)",
            printed_with_locals(error),
        )
        self.assert_no_leak(scenario, f"repr() of the {type(error).__name__} raised", repr(error))
        if isinstance(error, TokenProvidersError):
            self.assert_no_leak(scenario, "the error's hint", error.hint)

    def with_fault(
        self,
        scenario: ContractScenario,
        fault: str,
        operation: Operation,
        user: str = ALICE,
        headers: dict[str, str] | None = None,
    ) -> BaseException | None:
        """Run ``operation`` while ``fault`` is injected; return what it raised (``None`` if
        nothing). Faults: an HTTP status (``"401"``, answered with ``headers``), ``"refused"`` or
        ``"hang"``. A hung fake is released by a watchdog after :meth:`hang_watchdog_seconds`;
        ``scenario.hang_released`` then says whether it had to (the call waited for it)."""
        fake = scenario.fake
        issue_id = self.bot_issue(scenario).id if operation == "comment" else None
        release: threading.Timer | None = None
        fired = threading.Event()
        scenario.hang_released = False

        def watchdog() -> None:
            fired.set()  # before the release, so a call that the release ends sees it
            fake.reset_faults()

        if fault == "refused":
            fake.stop()
        elif fault == "hang":
            fake.hang()
            release = threading.Timer(self.hang_watchdog_seconds(), watchdog)
            release.daemon = True
            release.start()
        else:
            fake.fail_with(int(fault), headers=headers)
        try:
            self.run(scenario, operation, user, issue_id)
        except Exception as error:  # noqa: BLE001 - the caller judges what was raised
            return error
        finally:
            scenario.hang_released = fired.is_set()
            if release is not None:
                release.cancel()
            fake.reset_faults()
        return None

    # -- declaration -----------------------------------------------------------------------
    def test_plugin_registers_the_type(self, contract_plugins: Plugins) -> None:
        assert contract_plugins.broken() == {}, contract_plugins.broken()
        tracker_type = contract_plugins.tracker_type(self.type_name)
        assert isinstance(tracker_type, TrackerType)
        assert tracker_type.name == self.type_name, f"the type is named {tracker_type.name!r}"

    def test_entry_point_names_the_plugin(self) -> None:
        if self.distribution is None:
            pytest.skip("declare `distribution` to check the installed entry point")
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{self.distribution} is not installed (pip install -e it to check its entry point)")
        values = [ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        assert self.plugin in values, (
            f"{self.distribution} declares {values} in the {ENTRY_POINT_GROUP!r} entry-point group,"
            f" not {self.plugin!r}"
        )

    def test_fields_are_declared_and_valid(self, tracker_type: TrackerType) -> None:
        tracker_type.check_declaration()
        assert tracker_type.title.strip(), "a tracker type needs a title a person can read"
        password = tracker_type.field("api_password")
        assert password is not None, "declare an api_password Field"
        assert password.secret, "api_password must be declared secret=True, so forms mask it"
        for declared in tracker_type.fields:
            assert declared.label.strip(), f"{declared.name} needs a label"
            assert declared.help.strip(), f"{declared.name} needs help text a form can show"

    def test_credential_kinds_are_valid_for_the_type(self, tracker_type: TrackerType) -> None:
        assert self.credential_kinds, "declare at least one CredentialKind"
        for kind in self.credential_kinds:
            tracker_type.validate_credentials(kind.credentials(ALICE, "tpsecret0"))

    def test_undeclared_and_missing_fields_are_refused(self, tracker_type: TrackerType) -> None:
        username = tracker_type.field("api_username")
        if username is None:
            with pytest.raises(InvalidCredentialsError):
                tracker_type.validate_credentials(
                    Credentials(api_password=Secret("tpsecret0"), api_username="someone")
                )
        elif username.required:
            with pytest.raises(InvalidCredentialsError):
                tracker_type.validate_credentials(Credentials(api_password=Secret("tpsecret0")))
        with pytest.raises(InvalidCredentialsError):
            tracker_type.validate_credentials(Credentials(api_password=Secret("")))

    def test_client_library_is_imported_only_by_build_client(self, fake: FakeTracker) -> None:
        assert self.client_modules, "declare the client library's top-level modules in client_modules"
        credentials = self.credential_kinds[0].credentials(ALICE, f"tpsecret{secrets.token_hex(10)}")
        probe = {
            "plugin": self.plugin,
            "type_name": self.type_name,
            "client_modules": list(self.client_modules),
            "base_url": self.base_url(fake),
            "api_url": self.api_url(fake),
            "options": dict(self.options),
            "username": credentials.api_username,
            "password": credentials.api_password.reveal(),  # on stdin, never on the command line
        }
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE],
            input=json.dumps(probe),
            capture_output=True,
            text=True,
            env=_child_environment(),
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"the import probe failed:\n{done.stderr[-3000:]}"
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["after_import"] == [], (
            f"importing {self.plugin} imports {result['after_import']}: import the client library"
            " inside build_client (it costs 0.25-0.45 s in every host that merely lists plugins)"
        )
        assert result["after_discovery"] == [], (
            f"registering the plugin imports {result['after_discovery']}: import it inside build_client"
        )
        assert sorted(self.client_modules) == result["after_build_client"], (
            f"build_client imported only {result['after_build_client']} of client_modules"
            f" {sorted(self.client_modules)}: declare the modules build_client really imports"
        )

    # -- authentication and attribution ----------------------------------------------------
    def test_credentials_reach_the_tracker_as_declared(
        self, fake: FakeTracker, contract_plugins: Plugins, credential_kind: CredentialKind
    ) -> None:
        scenario = self.make_scenario(fake, contract_plugins, credential_kind)
        fake.clear()
        identity = self.run(scenario, "whoami", ALICE)
        assert isinstance(identity, Identity), f"whoami returned {type(identity).__name__}, not an Identity"
        expected = self.expected_login(ALICE)
        assert identity.login == expected, f"whoami returned {identity.login!r}, expected {expected!r}"
        self.assert_every_request_authenticated(scenario, credential_kind, scenario.alice, ALICE)

    def assert_every_request_authenticated(
        self, scenario: ContractScenario, kind: CredentialKind, credentials: Credentials, login: str
    ) -> None:
        requests = [
            r
            for r in scenario.fake.requests
            if self.anonymous_paths is None or not re.search(self.anonymous_paths, r.path)
        ]
        assert requests, "the plugin sent no request to the fake tracker"
        for request in requests:
            assert kind.sends.found_in(request, credentials), (
                f"{request.method} {request.path} did not carry the {kind.name!r} credentials as"
                f" {kind.sends.describe()}"
            )
            assert request.identity == login, (
                f"{request.method} {request.path} authenticated as {request.identity!r}, not {login!r}"
            )

    @pytest.mark.parametrize("user", [ALICE, BOB])
    def test_whoami_names_whose_credentials_were_used(self, kind_scenario: ContractScenario, user: str) -> None:
        scenario = kind_scenario
        identity = self.run(scenario, "whoami", user)
        assert isinstance(identity, Identity), f"whoami returned {type(identity).__name__}, not an Identity"
        expected = self.expected_login(scenario.login_of(user))
        assert identity.login == expected, (
            f"whoami as {user} with {scenario.kind.name!r} credentials returned {identity.login!r},"
            f" expected {expected!r}"
        )

    @pytest.mark.parametrize("user", [ALICE, BOB])
    def test_report_is_attributed_to_whose_credentials_were_used(
        self, kind_scenario: ContractScenario, user: str
    ) -> None:
        scenario = kind_scenario
        scenario.fake.clear()
        reported = self.run(scenario, "report", user)
        assert isinstance(reported, ReportedIssue), f"report_issue returned {type(reported).__name__}"
        assert reported.id, "a reported issue needs the id the tracker gave it"
        assert reported.resolution is not None, "the resolver attaches the resolution to a report"
        issue = self.fake_issue(scenario.fake, scenario.last_title)
        assert issue.reporter == scenario.login_of(user), (
            f"with {scenario.kind.name!r} credentials the tracker recorded {issue.reporter!r} as the"
            f" reporter, not {scenario.login_of(user)!r}"
        )
        expected_url = self.expected_issue_url(scenario.fake, issue)
        if expected_url is not None:
            assert reported.url == expected_url, "report_issue must return the issue's web page"
        self.assert_every_request_authenticated(
            scenario, scenario.kind, scenario.credentials_of(user), scenario.login_of(user)
        )

    @pytest.mark.parametrize("user", [ALICE, BOB])
    def test_comment_is_attributed_to_whose_credentials_were_used(
        self, kind_scenario: ContractScenario, user: str
    ) -> None:
        scenario = kind_scenario
        reported = self.bot_issue(scenario)
        self.run(scenario, "comment", user, reported.id)
        issue = self.fake_issue(scenario.fake, "Issue to comment on")
        assert [c.author for c in issue.comments] == [scenario.login_of(user)], (
            f"comments on the issue (with {scenario.kind.name!r} credentials):"
            f" {[(c.author, c.text) for c in issue.comments]}"
        )
        assert issue.comments[0].text.startswith(f"Contract comment by {user}"), "the comment's text was changed"

    # -- only the resolved credentials, only to the normalized host ---------------------------
    @pytest.fixture
    def host_netrc(self, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> HostNetrc:
        """A home directory whose ``~/.netrc`` (also named by ``NETRC``) has a ``default`` entry,
        as a host's service account may have for some other tool."""
        home = tmp_path_factory.mktemp("home")
        netrc = HostNetrc(home / ".netrc", f"tpnetrcuser{secrets.token_hex(6)}", f"tpnetrcpass{secrets.token_hex(10)}")
        netrc.path.write_text(f"default login {netrc.login} password {netrc.password}\n")
        netrc.path.chmod(0o600)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("NETRC", str(netrc.path))
        return netrc

    @pytest.mark.parametrize("user", [ALICE, BOB])
    def test_only_the_resolved_credentials_are_sent(
        self, kind_scenario: ContractScenario, user: str, host_netrc: HostNetrc
    ) -> None:
        """The host's ``~/.netrc`` adds nothing to any request, the unauthenticated ones
        included: ``requests`` sends its credentials (a ``default`` entry matches every host)
        with every request made without ``auth=`` by a session that trusts the environment."""
        scenario = kind_scenario
        credentials, login = scenario.credentials_of(user), scenario.login_of(user)
        for operation in OPERATIONS:
            issue_id = self.bot_issue(scenario).id if operation == "comment" else None
            scenario.fake.clear()
            try:
                self.run(scenario, operation, user, issue_id)
            except TokenProvidersError as error:
                self.assert_only_the_resolved_credentials(scenario, host_netrc, operation)
                raise AssertionError(
                    f"with a ~/.netrc holding a default entry, {operation} as {user} raised"
                    f" {type(error).__name__}: {error}"
                ) from None
            self.assert_only_the_resolved_credentials(scenario, host_netrc, operation)
            self.assert_every_request_authenticated(scenario, scenario.kind, credentials, login)

    def assert_only_the_resolved_credentials(
        self, scenario: ContractScenario, netrc: HostNetrc, operation: str
    ) -> None:
        """No request the fake recorded carries the host's netrc credentials, nor an
        ``Authorization`` header the credential kind does not use (or more than one)."""
        kind = scenario.kind
        recorded = list(scenario.fake.requests)
        assert recorded, f"{operation} sent no request to the fake tracker"
        for request in recorded:
            where = f"{request.method} {request.path} (during {operation})"
            text = self.request_text(request)
            if any(form in text for form in netrc.forms()):
                raise AssertionError(
                    f"{where} carried the credentials of the host's ~/.netrc: requests adds them to"
                    " every request made without auth= while the session trusts the environment."
                    " Build the session with tokenproviders.trackertype.isolate_session (trust_env off)"
                )
            authorizations = [value for name, value in request.headers if name.lower() == "authorization"]
            assert len(authorizations) <= 1, f"{where} carried {len(authorizations)} Authorization headers"
            assert not authorizations or _may_use_authorization(kind.sends), (
                f"{where} carried an Authorization header, but {kind.name!r} credentials travel as"
                f" {kind.sends.describe()}: nothing but the resolved credentials may be sent"
            )

    @pytest.fixture
    def named_fake(self) -> Iterator[FakeTracker]:
        """The fake server of this tracker type, known by the host name ``localhost`` (a host
        name, unlike an IP address, has other spellings)."""
        fake = self.start_fake()
        fake.host = "localhost"
        try:
            fake.start()
        except OSError as error:
            pytest.skip(f"cannot listen on localhost ({type(error).__name__}): the name does not resolve here")
        try:
            yield fake
        finally:
            fake.stop()

    def test_a_non_normalized_url_reaches_the_normalized_host(
        self, named_fake: FakeTracker, contract_plugins: Plugins
    ) -> None:
        """``base_url`` and ``api_url`` spelled as a person may type them (see
        :func:`other_spelling`) name the same tracker, and tokens are matched on the normalized
        form, so the client must connect to the normalized host: build it from
        ``Tracker.url``, ``normalize_url`` or ``origin_of``, never from the raw strings. (Here a
        client built from the raw strings asks for ``LOCALHOST.``, which resolves nowhere or
        reaches the fake under another ``Host``.)"""
        fake = named_fake
        scenario = self.make_scenario(fake, contract_plugins, self.credential_kinds[0], spell=other_spelling)
        tracker = scenario.tracker
        urls = [url for url in (tracker.base_url, tracker.api_url) if url is not None]
        hosts = {urllib.parse.urlsplit(normalize_url(url)).netloc for url in urls}
        spelled = " and ".join(f"{name} {url!r}" for name, url in zip(("base_url", "api_url"), urls, strict=False))
        normalized = " and ".join(normalize_url(url) for url in urls)
        fake.clear()
        outcomes: dict[str, Any] = {}
        for operation in OPERATIONS:
            try:
                outcomes[operation] = self.run(scenario, operation, ALICE)
            except TokenProvidersError as error:
                raise AssertionError(
                    f"with {spelled} (normalized: {normalized}), {operation} raised {type(error).__name__}:"
                    f" {error}. Build the client from tracker.url or normalize_url(tracker.api_url): a"
                    " client built from the raw strings connects to a host the token was not matched for"
                ) from None
        assert fake.requests, "the plugin sent no request to the fake tracker"
        for request in fake.requests:
            host = request.header("Host")
            assert host in hosts, (
                f"{request.method} {request.path} asked for host {host!r}, not {' or '.join(sorted(hosts))}:"
                f" with {spelled}, the client must connect to the normalized URL"
            )
        issue = self.fake_issue(fake, scenario.last_title)
        expected_url = self.expected_issue_url(fake, issue)
        reported = outcomes["report"]
        if expected_url is not None:
            assert reported.url == expected_url, (
                f"with {spelled}, report_issue returned {reported.url!r}, not {expected_url!r}: build"
                " issue URLs from the normalized URL"
            )

    # -- error mapping ---------------------------------------------------------------------
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_rejection_is_credentials_rejected(
        self, kind_scenario: ContractScenario, rejection_status: int, operation: Operation
    ) -> None:
        error = self.with_fault(kind_scenario, str(rejection_status), operation)
        assert isinstance(error, CredentialsRejectedError), (
            f"HTTP {rejection_status} during {operation} with {kind_scenario.kind.name!r} credentials raised"
            f" {type(error).__name__ if error else 'nothing'}, not CredentialsRejectedError: classify_error"
            " must map it to 'rejected'"
        )

    def test_unknown_token_is_credentials_rejected(self, kind_scenario: ContractScenario) -> None:
        kind = kind_scenario.kind
        stranger = kind.credentials(ALICE, _random_token())
        with pytest.raises(CredentialsRejectedError):
            kind_scenario.resolver.tokens.verify_credentials(kind_scenario.tracker, stranger)

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_refused_connection_is_unavailable(self, scenario: ContractScenario, operation: Operation) -> None:
        error = self.with_fault(scenario, "refused", operation)
        assert isinstance(error, TrackerUnavailableError), (
            f"a refused connection during {operation} raised"
            f" {type(error).__name__ if error else 'nothing'}, not TrackerUnavailableError"
        )

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_timeout_is_unavailable(self, scenario: ContractScenario, operation: Operation) -> None:
        fake = scenario.fake
        fake.clear()
        error = self.with_fault(scenario, "hang", operation)
        settings, watchdog = self.settings, self.hang_watchdog_seconds()
        assert not scenario.hang_released, (
            f"{operation} was still waiting for the hung tracker when the watchdog released it after"
            f" {watchdog:g} s ({'it then raised ' + type(error).__name__ if error else 'and then succeeded'}):"
            f" the client ignored the configured timeout (settings.timeout={settings.timeout:g} s,"
            f" retries={settings.retries}); build_client must apply settings.timeout to every request"
        )
        assert error is not None, f"{operation} succeeded although the tracker never answered"
        assert isinstance(error, TrackerUnavailableError), (
            f"a timeout during {operation} raised {type(error).__name__}, not TrackerUnavailableError"
        )
        assert fake.requests, f"{operation} sent no request, so it did not time out on the hung tracker"

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_server_errors_are_unavailable(self, scenario: ContractScenario, operation: Operation) -> None:
        for status in self.server_error_statuses:
            error = self.with_fault(scenario, str(status), operation)
            assert isinstance(error, TrackerUnavailableError), (
                f"HTTP {status} during {operation} raised {type(error).__name__ if error else 'nothing'},"
                " not TrackerUnavailableError: classify_error must map 5xx to 'unavailable'"
            )

    @pytest.mark.parametrize("operation", OPERATIONS)
    @pytest.mark.parametrize("status", [401, 403, 500, 503])
    def test_faults_on_a_warm_client_are_mapped(
        self, scenario: ContractScenario, status: int, operation: Operation
    ) -> None:
        """The same mapping when the client is the resolver's cached one, which has already
        talked to the tracker (sessions, cached metadata, kept-alive connections)."""
        self.run(scenario, "whoami", ALICE)
        self.run(scenario, operation, ALICE)  # the client is built, cached and has done this call
        error = self.with_fault(scenario, str(status), operation)
        expected = CredentialsRejectedError if status in (401, 403) else TrackerUnavailableError
        assert isinstance(error, expected), (
            f"HTTP {status} during {operation} on a client that had already talked to the tracker raised"
            f" {type(error).__name__ if error else 'nothing'}, not {expected.__name__}"
        )
        self.assert_error_clean(scenario, error)
        if expected is TrackerUnavailableError:
            try:
                self.run(scenario, operation, ALICE)
            except TokenProvidersError as again:
                raise AssertionError(
                    f"after HTTP {status} the cached client kept failing once the tracker was back:"
                    f" {operation} raised {type(again).__name__}"
                ) from None

    @pytest.mark.parametrize("operation", OPERATIONS)
    @pytest.mark.parametrize("status", [301, 302, 307])
    def test_redirect_to_another_server_is_not_followed(
        self, scenario: ContractScenario, other_fake: FakeTracker, status: int, operation: Operation
    ) -> None:
        """A redirect to another host would take the credentials (or, without them, the issue's
        text) to a server the tenant did not name: the client must not follow it."""
        if status not in self.redirect_statuses:
            pytest.skip(f"HTTP {status} is not in redirect_statuses")
        # The other server knows alice and the bot: a client that follows with credentials
        # would even succeed there.
        scenario.kind.register_user(other_fake, ALICE, scenario.alice)
        scenario.kind.register_user(other_fake, BOT, scenario.bot)
        location = f"{self.base_url(other_fake)}/moved"
        error = self.with_fault(scenario, str(status), operation, headers={"Location": location})
        reached = other_fake.requests
        with_credentials = [r for r in reached if r.identity is not None]
        assert not reached, (
            f"the client followed HTTP {status} during {operation} to another server:"
            f" {len(reached)} request(s) reached it, {len(with_credentials)} with credentials"
            f" ({', '.join(sorted({f'{r.method} {r.path}' for r in reached}))}); refuse redirects"
            " (e.g. allow_redirects=False) and report them as an error"
        )
        assert isinstance(error, (TrackerURLError, TrackerRequestError)), (
            f"HTTP {status} (a redirect) during {operation} raised {type(error).__name__ if error else 'nothing'},"
            " not TrackerURLError (classify it as 'not_found': the URL is wrong or moved) or TrackerRequestError"
        )
        self.assert_error_clean(scenario, error)

    @pytest.mark.parametrize("operation", ["whoami", "report"])
    def test_other_json_at_the_url_is_an_error(self, contract_plugins: Plugins, operation: Operation) -> None:
        """A wrong base_url or api_url that serves some other JSON API must not pass for the
        tracker: whoami and a report fail with a library error, not with a made-up answer."""
        server = OtherJSONServer().start()
        try:
            scenario = self.make_scenario(server, contract_plugins, self.credential_kinds[0], register=False)
            error = self.run_expecting_error(scenario, operation)
        finally:
            server.stop()
        assert error is not None, (
            f"{operation} succeeded against a server that answers {{}} to every request: check that"
            " the answer has the fields the tracker always sends (a wrong base_url or api_url"
            " looks like this) and raise if not"
        )
        assert isinstance(error, TokenProvidersError), f"{operation} raised {type(error).__name__}"
        self.assert_error_clean(scenario, error)

    # -- secrets ---------------------------------------------------------------------------
    def test_no_secret_in_logs_output_or_reprs(
        self,
        kind_scenario: ContractScenario,
        leak_watch: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        scenario = kind_scenario
        for user in (ALICE, BOB):
            for operation in OPERATIONS:
                self.run(scenario, operation, user)
            resolution = scenario.resolver.resolve(user, scenario.tracker)
            client = scenario.resolver.client_for(resolution)
            self.assert_no_leak(scenario, "repr() of the client build_client returned", repr(client))
            self.assert_no_leak(scenario, "repr() of the resolution", repr(resolution))
        self.assert_no_leak(scenario, "repr() of the tracker type", repr(scenario.tracker_type))
        self.assert_no_leak(scenario, "repr() of the tracker", repr(scenario.tracker))
        self.assert_logs_and_output_clean(scenario, leak_watch, capsys)

    @pytest.mark.parametrize("fault", ["401", "403", "500", "refused"])
    def test_no_secret_in_errors_logs_or_output(
        self,
        kind_scenario: ContractScenario,
        fault: str,
        leak_watch: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        scenario = kind_scenario
        # "comment" first: with_fault reports the issue to comment on before it injects the
        # fault, and a refused connection (a stopped fake) cannot be undone.
        for operation in ("comment", "whoami", "report"):
            if fault == "refused" and operation != "comment":
                error = self.run_expecting_error(scenario, operation)
            else:
                error = self.with_fault(scenario, fault, operation)
            assert error is not None, f"{operation} succeeded although the tracker answered {fault}"
            self.assert_error_clean(scenario, error)
        direct = self.direct_library_error(scenario, fault)
        if direct is not None:
            failure = scenario.tracker_type.classify_error(direct)
            if failure is not None:
                self.assert_no_leak(scenario, "the TrackerFailure detail classify_error returned", failure.detail)
        self.assert_logs_and_output_clean(scenario, leak_watch, capsys)

    @pytest.mark.parametrize("variant", list(UNSENDABLE_SECRETS))
    def test_unsendable_secret_is_refused_without_a_trace(
        self,
        kind_scenario: ContractScenario,
        variant: str,
        leak_watch: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A token pasted with a line break, a CR/LF header injection or a character outside
        Latin-1 cannot travel in a header: storing it, verifying it and a bot holding it fail
        with an error that does not quote it, and nothing reaches the tracker."""
        scenario = kind_scenario
        pasted = self.odd_credentials(scenario, UNSENDABLE_SECRETS[variant])
        scenario.fake.clear()
        resolver, tracker = scenario.resolver, scenario.tracker
        attempts: dict[str, Callable[[], object]] = {
            "storing it as a personal token": lambda: resolver.tokens.set(
                owner=ALICE, url=tracker.base_url, scope=TENANT, credentials=pasted
            ),
            "verifying it": lambda: resolver.tokens.verify_credentials(tracker, pasted),
        }
        for what, attempt in attempts.items():
            error = self.raised_by(attempt)
            assert isinstance(error, InvalidCredentialsError), (
                f"{what} with a {variant} in the {scenario.kind.name!r} password raised"
                f" {type(error).__name__ if error else 'nothing'}, not InvalidCredentialsError"
            )
            self.assert_error_clean(scenario, error)
        bot_tracker = dataclasses.replace(tracker, bot_credentials=pasted)
        error = self.raised_by(lambda: resolver.verify(BOB, bot_tracker))
        assert isinstance(error, TokenProvidersError), (
            f"bot credentials with a {variant} in the password: whoami raised"
            f" {type(error).__name__ if error else 'nothing'}, not a TokenProvidersError"
        )
        self.assert_error_clean(scenario, error)
        for request in scenario.fake.requests:
            self.assert_no_leak(scenario, f"the request {request.method} {request.path}", self.request_text(request))
        self.assert_logs_and_output_clean(scenario, leak_watch, capsys)

    @pytest.mark.parametrize("variant", list(SENDABLE_SECRETS))
    def test_unusual_but_sendable_secret_works_without_a_trace(
        self,
        kind_scenario: ContractScenario,
        variant: str,
        leak_watch: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A password with an inner space or a Latin-1 letter can travel in a header. A type
        may refuse it (then without quoting it); if it accepts it, the calls keep it secret,
        and one with an inner space (plain ASCII) reaches the tracker unchanged."""
        scenario = kind_scenario
        pasted = self.odd_credentials(scenario, SENDABLE_SECRETS[variant])
        resolver, tracker = scenario.resolver, scenario.tracker
        refused = self.raised_by(
            lambda: resolver.tokens.set(owner=ALICE, url=tracker.base_url, scope=TENANT, credentials=pasted)
        )
        if refused is not None:
            assert isinstance(refused, InvalidCredentialsError), (
                f"storing a password with a {variant} raised {type(refused).__name__}, not InvalidCredentialsError"
            )
            self.assert_error_clean(scenario, refused)
            self.assert_logs_and_output_clean(scenario, leak_watch, capsys)
            return
        scenario.kind.register_user(scenario.fake, ALICE, pasted)
        scenario.alice = pasted
        outcomes: dict[str, object] = {}
        for operation in OPERATIONS:
            try:
                outcomes[operation] = self.run(scenario, operation, ALICE)
            except TokenProvidersError as error:
                self.assert_error_clean(scenario, error)
                outcomes[operation] = error
        resolution = resolver.resolve(ALICE, tracker)
        self.assert_no_leak(scenario, "repr() of the resolution", repr(resolution))
        if not isinstance(outcomes["whoami"], Exception):
            client = resolver.client_for(resolution)
            self.assert_no_leak(scenario, "repr() of the client build_client returned", repr(client))
        self.assert_logs_and_output_clean(scenario, leak_watch, capsys)
        if variant == "inner space":
            identity = outcomes["whoami"]
            expected = self.expected_login(ALICE)
            got = f"raised {type(identity).__name__}" if isinstance(identity, Exception) else f"returned {identity!r}"
            assert isinstance(identity, Identity) and identity.login == expected, (
                f"the type accepts a {scenario.kind.name!r} password with an inner space, but whoami with it"
                f" {got}: send the password as given (not stripped or split), or refuse it in"
                " validate_credentials"
            )
            for operation in ("report", "comment"):
                assert not isinstance(outcomes[operation], Exception), (
                    f"{operation} with a password with an inner space raised {type(outcomes[operation]).__name__}"
                )

    def odd_credentials(self, scenario: ContractScenario, template: str) -> Credentials:
        """alice's credentials of the scenario's kind with a password made from ``template``;
        every spelling of it (and the random parts alone) are added to the secrets to look for."""
        tokens = {"token": _random_token(), "token2": _random_token()}
        credentials = scenario.kind.credentials(ALICE, template.format(**tokens))
        scenario.secrets = sorted({*scenario.secrets, *secret_forms(credentials), *tokens.values()})
        return credentials

    @staticmethod
    def raised_by(call: Callable[[], object]) -> Exception | None:
        """What ``call`` raised, or ``None`` (its frame holds no secret, only ``call``)."""
        try:
            call()
        except Exception as error:  # noqa: BLE001 - the caller judges what was raised
            return error
        return None

    @staticmethod
    def request_text(request: RecordedRequest) -> str:
        """Everything a recorded request carried, as text (to look for secrets in)."""
        headers = "\n".join(f"{name}: {value}" for name, value in request.headers)
        query = urllib.parse.urlencode(request.query, doseq=True)
        return f"{request.raw_path}?{query}\n{headers}\n{request.body.decode('latin-1')}"

    def run_expecting_error(self, scenario: ContractScenario, operation: Operation) -> BaseException | None:
        try:
            self.run(scenario, operation, ALICE, issue_id="1")
        except Exception as error:  # noqa: BLE001 - the caller judges what was raised
            return error
        return None

    def direct_library_error(self, scenario: ContractScenario, fault: str) -> BaseException | None:
        """What the client library itself raises for whoami under ``fault`` (no resolver).

        Once a fault of ``refused`` stopped the fake, every call is refused.
        """
        tracker_type, tracker = scenario.tracker_type, scenario.tracker
        if fault != "refused":
            scenario.fake.fail_with(int(fault))
        try:
            client = tracker_type.build_client(tracker, scenario.alice, self.settings)
            tracker_type.whoami(client, tracker)
        except Exception as error:  # noqa: BLE001 - any exception is what we inspect
            return error
        finally:
            if fault != "refused":
                scenario.fake.reset_faults()
        return None
