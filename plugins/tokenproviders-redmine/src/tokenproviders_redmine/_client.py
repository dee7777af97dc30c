"""Building a python-redmine client with bounded timeouts and retries.

Imported only from :meth:`RedmineTrackerType.build_client`, so that discovering the plugin does
not import python-redmine (or requests).

python-redmine silently ignores ``requests={"timeout": ...}``: its sync engine copies every entry
of that dict onto the ``requests.Session`` as an attribute, and a session has no timeout
attribute. :class:`BoundedEngine` therefore passes the timeout on every request, and mounts an
adapter whose retries are bounded and never sleep.
"""

from __future__ import annotations

from typing import Any

from redminelib import Redmine
from redminelib.engines.sync import SyncEngine
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tokenproviders import ClientSettings, Credentials
from tokenproviders.trackertype import isolate_session

__all__ = ["BoundedEngine", "build_redmine", "bounded_retry"]


def bounded_retry(retries: int) -> Retry:
    """At most ``retries`` retries, without sleeping, of what is safe to repeat.

    A connection that was refused never reached Redmine, so it may be retried for any method.
    A read timeout or a 502/503/504 is retried only for reads: repeating a POST or a PUT whose
    answer was lost could file the bug or the comment twice. 429's Retry-After is not honoured
    (no client-side sleeps); the caller gets the error at once.
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


class BoundedEngine(SyncEngine):  # type: ignore[misc]  # python-redmine ships no type hints
    """python-redmine's blocking engine with a per-request timeout, bounded retries, no redirects,
    and a session that sends no credentials from the host's environment (``~/.netrc``).

    ``Redmine(url, engine=BoundedEngine, timeout=..., retries=..., api_root=url)``: python-redmine
    hands every keyword it does not know to the engine, so they arrive here.
    """

    def __init__(self, **options: Any) -> None:
        self.timeout: float = float(options.pop("timeout"))
        retries = int(options.pop("retries"))
        api_root = str(options.pop("api_root"))
        super().__init__(**options)
        # With an API key python-redmine passes no auth=, so requests would add ~/.netrc's.
        isolate_session(self.session, api_root)
        adapter = HTTPAdapter(max_retries=bounded_retry(retries))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def construct_request_kwargs(self, method: str, headers: Any, params: Any, data: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = SyncEngine.construct_request_kwargs(method, headers, params, data)
        kwargs["timeout"] = self.timeout
        # requests drops only the Authorization header on a redirect to another host; the
        # X-Redmine-API-Key header (and the issue) would follow it. Redmine's API does not
        # redirect: a 3xx means a wrong URL, and is reported as such (UnknownError with it).
        kwargs["allow_redirects"] = False
        return kwargs


def build_redmine(instance: str, credentials: Credentials, settings: ClientSettings, verify: bool | str) -> Any:
    """A ``redminelib.Redmine`` for ``instance``: API key alone, or user name and password."""
    session_options: dict[str, Any] = {
        "verify": verify,
        # The engine replaces the session's headers with this dict, so the User-Agent goes here.
        "headers": {"User-Agent": settings.user_agent, "Accept": "application/json"},
    }
    auth: dict[str, str]
    if credentials.api_username:
        auth = {"username": credentials.api_username, "password": credentials.api_password.reveal()}
    else:
        auth = {"key": credentials.api_password.reveal()}
    return Redmine(
        instance,
        engine=BoundedEngine,
        requests=session_options,
        timeout=settings.timeout,
        retries=settings.retries,
        api_root=instance,
        **auth,
    )
