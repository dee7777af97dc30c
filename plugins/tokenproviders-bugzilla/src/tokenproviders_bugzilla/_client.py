"""Building a python-bugzilla client with a per-client timeout, bounded retries and a private key.

Imported only from :class:`BugzillaTrackerType` methods, so that discovering the plugin does not
import python-bugzilla (or requests).

python-bugzilla's only timeout knob is the process-wide ``PYTHONBUGZILLA_REQUESTS_TIMEOUT``
environment variable (default 300 s), read on every request and passed as ``timeout=``. Changing
process environment from a library would affect every other client in the host, so instead the
client gets its own ``requests.Session`` (python-bugzilla's public ``requests_session=``
argument): :class:`BoundedSession` replaces whatever timeout python-bugzilla passes with the
tracker's own, mounts a retry policy that never sleeps, refuses redirects, and keeps the API key
out of URLs where the server allows it.

Where it cannot (Bugzilla 5.0), urllib3 writes the URL, key included, into its log records (a
WARNING for each retry, DEBUG lines for every request): :class:`KeyRedactingFilter` blanks the
key out of the records of urllib3's loggers.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import bugzilla
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tokenproviders import ClientSettings, Credentials, Identity
from tokenproviders.trackertype import isolate_session

from . import BugzillaAnswerError, BugzillaRedirectError, failure_from_answer, not_bugzilla

__all__ = [
    "BoundedSession",
    "KeyRedactingFilter",
    "bounded_retry",
    "build_bugzilla",
    "install_log_redaction",
    "whoami",
]

KEY_PARAM = "Bugzilla_api_key"
KEY_HEADER = "X-BUGZILLA-API-KEY"

#: The loggers that write request URLs: urllib3's connection pool (``Retrying (...) ...: /rest/bug?
#: Bugzilla_api_key=...`` at WARNING, each request line at DEBUG), its retry bookkeeping, and the
#: modules that name a URL in a warning.
URL_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "urllib3.connection",
    "urllib3.response",
    "urllib3.poolmanager",
)
#: Bugzilla's credential parameters (``api_key`` and ``token`` are its short spellings).
_CREDENTIAL_PARAM = re.compile(
    r"(?<![A-Za-z0-9_])((?:Bugzilla_)?(?:api_key|token|password)=)[^&#\s'\"]+", re.IGNORECASE
)


class KeyRedactingFilter(logging.Filter):
    """Replaces the value of Bugzilla's credential query parameters in a log record's message.

    It changes only records whose formatted message holds ``Bugzilla_api_key=``, ``api_key=``,
    ``Bugzilla_token=`` or ``Bugzilla_password=`` (``token=``, ``password=``) with a value, and
    never drops a record. The message is formatted first, so a URL inside an argument's ``repr``
    (an exception, a ``Retry``) is caught too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left alone
            return True
        redacted = _CREDENTIAL_PARAM.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = KeyRedactingFilter()


def install_log_redaction() -> None:
    """Put :class:`KeyRedactingFilter` on urllib3's URL-writing loggers, once per process.

    A filter on a logger sees the records that logger creates, before any handler (the host's
    or pytest's) does. Idempotent: a logger that has one keeps only that one.
    """
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, KeyRedactingFilter) for f in logger.filters):
            logger.addFilter(_FILTER)


def bounded_retry(retries: int) -> Retry:
    """At most ``retries`` retries, without sleeping, of what is safe to repeat.

    Refused connections never reached Bugzilla and are retried for any method; read timeouts and
    502/503/504 only for reads, so a lost answer to a POST or PUT never files a bug or a comment
    twice. ``Retry-After`` is not honoured (no client-side sleeps).
    """
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        redirect=0,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        backoff_factor=0,
        respect_retry_after_header=False,
        raise_on_status=False,
        raise_on_redirect=False,
    )


class BoundedSession(requests.Session):
    """The ``requests.Session`` one Bugzilla client uses.

    * no credentials from the host's environment (``~/.netrc``): see
      :func:`~tokenproviders.trackertype.isolate_session`;
    * every request gets this client's ``timeout`` (python-bugzilla's own, from the environment
      or 300 s, is replaced), and follows no redirect: a 3xx raises :class:`BugzillaRedirectError`;
    * ``connecting`` (while python-bugzilla asks ``GET /rest/version``, which Bugzilla serves
      without login): the API key is not sent at all;
    * ``key_in_header`` (Bugzilla 5.1+): the ``Bugzilla_api_key`` query parameter python-bugzilla
      adds is moved into the ``X-BUGZILLA-API-KEY`` header, so the key is in no URL, server log or
      exception message.
    """

    def __init__(self, rest_url: str, timeout: float, retries: int, verify: bool | str) -> None:
        super().__init__()
        # python-bugzilla passes no auth=, so requests would add ~/.netrc's credentials, even
        # to GET /rest/version.
        isolate_session(self, rest_url)
        self.timeout = timeout
        self.verify = verify
        self.connecting = True
        self.key_in_header = False
        adapter = HTTPAdapter(max_retries=bounded_retry(retries))
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self.timeout
        # requests drops only the Authorization header on a redirect to another host; the key
        # (header or query parameter) and the bug would follow it. Bugzilla's REST API does not
        # redirect: a redirect means the URL is wrong or moved.
        kwargs["allow_redirects"] = False
        params = kwargs.get("params")
        if isinstance(params, dict) and KEY_PARAM in params and (self.connecting or self.key_in_header):
            params = dict(params)
            if self.key_in_header:
                kwargs["headers"] = {**(kwargs.get("headers") or {}), KEY_HEADER: params.pop(KEY_PARAM)}
            else:
                del params[KEY_PARAM]
            kwargs["params"] = params
        response = super().request(method, url, *args, **kwargs)
        if 300 <= response.status_code < 400:
            response.close()
            raise BugzillaRedirectError(f"HTTP {response.status_code}")
        return response


def build_bugzilla(rest_url: str, credentials: Credentials, settings: ClientSettings, verify: bool | str) -> Any:
    """A ``bugzilla.Bugzilla`` on ``rest_url`` with exactly ``credentials``: no ``~/.bugzillarc``,
    no token file. Costs one request (``GET /rest/version``, without the key)."""
    install_log_redaction()  # on 5.0 the key is in every URL urllib3 logs
    session = BoundedSession(rest_url, settings.timeout, settings.retries, verify)
    try:
        client = bugzilla.Bugzilla(
            rest_url,
            api_key=credentials.api_password.reveal(),
            use_creds=False,  # never read ~/.bugzillarc or /etc/bugzillarc
            tokenfile=None,  # never read or write a login-token file shared between identities
            configpaths=[],
            force_rest=True,  # with a URL ending in /rest: no probing requests
            sslverify=verify is not False,
            requests_session=session,
        )
    except (KeyError, TypeError):
        raise not_bugzilla() from None  # GET /rest/version answered without a "version"
    session.connecting = False
    session.key_in_header = (client.bz_ver_major, client.bz_ver_minor) >= (5, 1)
    session.headers["User-Agent"] = f"{settings.user_agent} {client.user_agent}"
    return client


def whoami(client: Any) -> Identity:
    """``GET /rest/whoami`` (Bugzilla 5.1+), the cheapest authenticated call.

    python-bugzilla has no public whoami, so this goes through its public requests session.
    Bugzilla 5.0 has no whoami: the key is then checked with ``GET /rest/user?ids=1`` (what
    python-bugzilla's ``logged_in`` asks, which logged-out requests may not), and the identity's
    login cannot be told.
    """
    session = client.get_requests_session()
    base = client.url.rstrip("/")
    if not getattr(session, "key_in_header", False):
        body = _answer(session.get(f"{base}/user", params={"ids": "1", KEY_PARAM: client.api_key}))
        if not isinstance(body.get("users"), list):
            raise not_bugzilla()
        return Identity(login="(Bugzilla before 5.1 cannot say who)")
    body = _answer(session.get(f"{base}/whoami", params={KEY_PARAM: client.api_key}))
    login, user_id = body.get("name"), body.get("id")
    if not isinstance(login, str) or not login:
        raise not_bugzilla()
    real_name = body.get("real_name")
    return Identity(
        login=login,
        name=real_name if isinstance(real_name, str) and real_name else None,
        email=login if "@" in login else None,
        id=str(user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None,
    )


def _answer(response: requests.Response) -> dict[str, Any]:
    """The JSON object of a successful answer, or the error its status and body describe."""
    try:
        body = response.json()
    except ValueError:
        body = None
    failure = failure_from_answer(response.status_code, body)
    if failure is not None:
        raise BugzillaAnswerError(failure)
    if not isinstance(body, dict):
        raise not_bugzilla()
    return body
