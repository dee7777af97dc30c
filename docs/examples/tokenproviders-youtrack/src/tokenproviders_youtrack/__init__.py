"""YouTrack tracker type for tokenproviders: a permanent token, sent as a Bearer token.

An example third-party plugin: the whole tracker type is this module. It talks to YouTrack's
REST API (``{base_url}/api``) with ``requests``, which it imports inside ``build_client`` only,
so listing plugins never pays for it.

Tracker options: ``project`` (required to report): the project's database id, e.g. ``"0-0"``
(``GET /api/admin/projects?fields=id,shortName`` lists them).
"""

from __future__ import annotations

from typing import Any, ClassVar

from tokenproviders import (
    ClientSettings,
    ConfigurationError,
    Credentials,
    Field,
    Identity,
    IssueDraft,
    ReportedIssue,
    Tracker,
    TrackerFailure,
    TrackerType,
    hookimpl,
    normalize_url,
)
from tokenproviders.trackertype import isolate_session, tls_verify

__all__ = ["RedirectRefused", "YouTrackClient", "YouTrackType", "tokenproviders_register_tracker_types"]


# [start client]
class RedirectRefused(Exception):
    """YouTrack answered with a redirect, which the client does not follow."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class YouTrackClient:
    """What ``build_client`` returns: a ``requests`` session bound to one YouTrack's API.

    The session carries the token in its ``Authorization`` header; this object's ``repr``
    shows the API URL only.
    """

    def __init__(self, session: Any, api_url: str, timeout: float) -> None:
        self.session = session
        self.api_url = api_url
        self.timeout = timeout

    def call(self, method: str, path: str, payload: Any = None, fields: str = "id") -> Any:
        response = self.session.request(
            method,
            f"{self.api_url}{path}",
            params={"fields": fields},
            json=payload,
            timeout=self.timeout,
            allow_redirects=False,  # following would send the request, body included, elsewhere
        )
        if 300 <= response.status_code < 400:
            raise RedirectRefused(response.status_code)  # a wrong or moved URL: see classify_error
        response.raise_for_status()  # the core maps requests' HTTPError by its status code
        return response.json()

    def __repr__(self) -> str:
        return f"<YouTrackClient {self.api_url}>"


# [end client]


# [start declaration]
class YouTrackType(TrackerType):
    """YouTrack Cloud or Server, authenticated with a permanent token."""

    name: ClassVar[str] = "youtrack"
    title: ClassVar[str] = "YouTrack (Cloud or Server)"
    fields: ClassVar[tuple[Field, ...]] = (
        Field(
            "api_password",
            "Permanent token",
            help="In YouTrack: Profile > Account Security > New token. It starts with perm:",
            secret=True,
        ),
    )

    def service_url(self, tracker: Tracker) -> str | None:
        # A token belongs to one YouTrack instance, and the tracker's URL is that instance.
        return None

    # [end declaration]

    # [start build_client]
    def build_client(self, tracker: Tracker, credentials: Credentials, settings: ClientSettings) -> Any:
        import requests  # here, not at module top: importing a client library costs every host
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        # The normalized URLs: the token was matched on them, so they name the server to talk to.
        api_url = normalize_url(tracker.api_url) if tracker.api_url else f"{tracker.url}/api"
        # No credentials but the token: requests would add the host's ~/.netrc ones otherwise.
        session = isolate_session(requests.Session(), api_url)
        session.headers["Authorization"] = f"Bearer {credentials.api_password.reveal()}"
        session.headers["Accept"] = "application/json"
        session.headers["User-Agent"] = settings.user_agent
        session.verify = tls_verify(tracker)  # False, the tracker's or the host's CA bundle, or True
        # Bounded retries: refused connections and GETs only, no sleeping between attempts.
        retry = Retry(total=settings.retries, backoff_factor=0, allowed_methods={"GET"}, status_forcelist=())
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        return YouTrackClient(session, api_url, settings.timeout)

    # [end build_client]

    # [start calls]
    def whoami(self, client: Any, tracker: Tracker) -> Identity:
        me = client.call("GET", "/users/me", fields="id,login,fullName,email")
        return Identity(login=me["login"], name=me.get("fullName"), email=me.get("email"), id=me.get("id"))

    def report_issue(self, client: Any, tracker: Tracker, draft: IssueDraft) -> ReportedIssue:
        project = tracker.options.get("project")
        if not project:
            raise ConfigurationError(
                f"tracker {tracker.label} has no 'project' option",
                hint="set options={'project': '<database id>'}, e.g. '0-0'",
            )
        payload = {"project": {"id": project}, "summary": draft.title, "description": draft.body}
        created = client.call("POST", "/issues", payload, fields="id,idReadable")
        readable = created["idReadable"]
        return ReportedIssue(id=readable, url=f"{tracker.url}/issue/{readable}")

    def add_comment(self, client: Any, tracker: Tracker, issue_id: str, text: str) -> None:
        client.call("POST", f"/issues/{issue_id}/comments", {"text": text})

    # [end calls]

    # [start classify]
    def classify_error(self, exc: BaseException) -> TrackerFailure | None:
        if isinstance(exc, RedirectRefused):
            return TrackerFailure(
                "not_found",
                "the tracker answered with a redirect to another address; set base_url/api_url to the final address",
                exc.status,
            )
        return super().classify_error(exc)  # requests' errors, by status code

    # [end classify]


# [start hook]
@hookimpl
def tokenproviders_register_tracker_types(register: Any) -> None:
    register(YouTrackType())


# [end hook]
