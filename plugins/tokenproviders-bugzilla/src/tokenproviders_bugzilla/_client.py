"""Building a python-bugzilla client with a per-client timeout, bounded retries and a private key.

Imported only from :class:`BugzillaTrackerType` methods, so that discovering the plugin does not
import python-bugzilla (or requests).

python-bugzilla's only timeout knob is the process-wide ``PYTHONBUGZILLA_REQUESTS_TIMEOUT``
environment variable (default 300 s), read on every request and passed as ``timeout=``. Changing
process environment from a library would affect every other client in the host, so instead the
client gets its own ``requests.Session`` (python-bugzilla's public ``requests_session=``
argument): :class:`BoundedSession` replaces whatever timeout python-bugzilla passes with the
tracker's own, mounts a retry policy that never sleeps, and keeps the API key out of URLs where the
server allows it.
"""

from __future__ import annotations

from typing import Any

import bugzilla
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tokenproviders import ClientSettings, Credentials, Identity, TrackerFailure

from . import BugzillaAnswerError, failure_from_answer

__all__ = ["BoundedSession", "build_bugzilla", "bounded_retry", "whoami"]

KEY_PARAM = "Bugzilla_api_key"
KEY_HEADER = "X-BUGZILLA-API-KEY"


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

    * every request gets this client's ``timeout`` (python-bugzilla's own, from the environment
      or 300 s, is replaced), and follows no redirect;
    * ``connecting`` (while python-bugzilla asks ``GET /rest/version``, which Bugzilla serves
      without login): the API key is not sent at all;
    * ``key_in_header`` (Bugzilla 5.1+): the ``Bugzilla_api_key`` query parameter python-bugzilla
      adds is moved into the ``X-BUGZILLA-API-KEY`` header, so the key is in no URL, server log or
      exception message.
    """

    def __init__(self, timeout: float, retries: int, verify: bool | str) -> None:
        super().__init__()
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
        # header would follow it. Bugzilla's REST API does not redirect: a redirect's empty or HTML
        # body then fails as "not Bugzilla's REST API", a URL error.
        kwargs["allow_redirects"] = False
        params = kwargs.get("params")
        if isinstance(params, dict) and KEY_PARAM in params and (self.connecting or self.key_in_header):
            params = dict(params)
            key = params.pop(KEY_PARAM)
            kwargs["params"] = params
            if self.key_in_header:
                kwargs["headers"] = {**(kwargs.get("headers") or {}), KEY_HEADER: key}
        return super().request(method, url, *args, **kwargs)


def build_bugzilla(rest_url: str, credentials: Credentials, settings: ClientSettings, verify: bool | str) -> Any:
    """A ``bugzilla.Bugzilla`` on ``rest_url`` with exactly ``credentials``: no ``~/.bugzillarc``,
    no token file. Costs one request (``GET /rest/version``, without the key)."""
    session = BoundedSession(settings.timeout, settings.retries, verify)
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
    session.connecting = False
    session.key_in_header = (client.bz_ver_major, client.bz_ver_minor) >= (5, 1)
    session.headers["User-Agent"] = f"{settings.user_agent} {client.user_agent}"
    return client


def whoami(client: Any) -> Identity:
    """``GET /rest/whoami`` (Bugzilla 5.1+), the cheapest authenticated call.

    python-bugzilla has no public whoami, so this goes through its public requests session.
    Bugzilla 5.0 has no whoami: the key is then checked with python-bugzilla's ``logged_in``
    (``GET /rest/user?ids=1``), and the identity's login cannot be told.
    """
    session = client.get_requests_session()
    if not getattr(session, "key_in_header", False):
        if not client.logged_in:
            raise BugzillaAnswerError(TrackerFailure("rejected", "Bugzilla says the API key is not logged in", 401))
        return Identity(login="(Bugzilla before 5.1 cannot say who)")
    response = session.get(f"{client.url.rstrip('/')}/whoami", params={KEY_PARAM: client.api_key})
    try:
        body = response.json()
    except ValueError:
        body = None
    failure = failure_from_answer(response.status_code, body)
    if failure is not None:
        raise BugzillaAnswerError(failure)
    if not isinstance(body, dict) or "name" not in body:
        raise BugzillaAnswerError(TrackerFailure("not_found", "the URL did not answer like Bugzilla's REST API"))
    return Identity(
        login=str(body["name"]),
        name=str(body.get("real_name") or "") or None,
        email=str(body["name"]) if "@" in str(body["name"]) else None,
        id=str(body["id"]) if body.get("id") is not None else None,
    )
