"""The small Azure Boards REST client: one ``requests.Session`` per credentials, bounded.

Imported only from :meth:`AzureBoardsTrackerType.build_client`. Every call passes the tracker's
timeout, follows no redirect (``allow_redirects=False``: requests would send the token and the
work item to whatever server a redirect names), and checks that the answer is JSON with what the
call needs: Azure DevOps answers some unaccepted tokens with 203 and an HTML sign-in page, which a
client that only checks ``response.ok`` would take for success, and a wrong URL may serve some
other JSON.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tokenproviders import ClientSettings, Credentials, Identity, TrackerFailure, classify_http_status
from tokenproviders.trackertype import isolate_session

from . import API_VERSION, COMMENTS_API_VERSION, NOT_AZURE_DETAIL, REDIRECT_DETAIL, AzureBoardsError

__all__ = ["AzureBoardsClient", "bounded_retry"]

_PATCH = "application/json-patch+json"
_SIGN_IN_HINTS = ("signin", "sign-in", "login.microsoftonline", "_signedin", "/login")


def bounded_retry(retries: int) -> Retry:
    """At most ``retries`` retries, without sleeping, of what is safe to repeat.

    Refused connections are retried for any method (nothing reached the server); read timeouts and
    502/503/504 only for reads, so a lost answer never creates a work item or a comment twice.
    ``Retry-After`` is not honoured: no client-side sleeps.
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


def _failure(response: requests.Response) -> TrackerFailure | None:
    """What an answer means, or ``None`` when it is a JSON success."""
    status = response.status_code
    content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if 300 <= status < 400:
        location = response.headers.get("Location", "").lower()
        if any(hint in location for hint in _SIGN_IN_HINTS):
            return TrackerFailure("rejected", f"HTTP {status}: a redirect to the sign-in page", status)
        return TrackerFailure("not_found", REDIRECT_DETAIL, status)
    if status == 203:
        # Azure DevOps' answer to a token it does not accept: a sign-in page instead of 401.
        return TrackerFailure("rejected", "HTTP 203 with a sign-in page instead of JSON", 203)
    if status >= 400:
        type_key = ""
        if content_type == "application/json":
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("typeKey"), str):
                type_key = f" ({body['typeKey']})"
        return classify_http_status(status, f"HTTP {status}{type_key}")
    if 200 <= status < 300 and content_type not in ("application/json", ""):
        return TrackerFailure("not_found", f"{NOT_AZURE_DETAIL} (HTTP {status} with {content_type} content)", status)
    return None


def _not_azure() -> AzureBoardsError:
    return AzureBoardsError(TrackerFailure("not_found", NOT_AZURE_DETAIL))


def _has_int(data: Any, key: str) -> bool:
    return isinstance(data, dict) and isinstance(data.get(key), int) and not isinstance(data.get(key), bool)


class AzureBoardsClient:
    """Azure Boards calls for one organization (or collection) URL and one personal access token."""

    def __init__(self, organization_url: str, credentials: Credentials, settings: ClientSettings, verify: bool | str):
        self.organization_url = organization_url.rstrip("/")
        self.timeout = settings.timeout
        self.session = isolate_session(requests.Session(), self.organization_url)  # no ~/.netrc
        # Azure DevOps ignores the user name of a PAT's Basic credentials; send none.
        self.session.auth = ("", credentials.api_password.reveal())
        self.session.verify = verify
        self.session.headers.update({"User-Agent": settings.user_agent, "Accept": "application/json"})
        adapter = HTTPAdapter(max_retries=bounded_retry(settings.retries))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"<AzureBoardsClient {self.organization_url}>"

    # -- plumbing --------------------------------------------------------------------------
    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """One request; the decoded JSON answer, or :class:`AzureBoardsError`."""
        response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        failure = _failure(response)
        if failure is not None:
            raise AzureBoardsError(failure)
        try:
            return response.json()
        except ValueError:
            raise _not_azure() from None

    def project_url(self, project: str) -> str:
        return f"{self.organization_url}/{quote(project, safe='')}"

    # -- the calls -------------------------------------------------------------------------
    def whoami(self) -> Identity:
        """``GET {organization}/_apis/connectionData``: whom the token authenticates."""
        data = self.call("GET", f"{self.organization_url}/_apis/connectionData")
        user = data.get("authenticatedUser") if isinstance(data, dict) else None
        if not isinstance(user, dict):
            raise _not_azure()  # connectionData always names the authenticated user
        descriptor = str(user.get("descriptor") or "")
        if "anonymous" in descriptor.lower():
            # Some deployments answer an unauthenticated connectionData with the anonymous identity.
            raise AzureBoardsError(TrackerFailure("rejected", "the token authenticated nobody (anonymous)", 401))
        properties = user.get("properties")
        account_property = properties.get("Account") if isinstance(properties, dict) else None
        account = account_property.get("$value") if isinstance(account_property, dict) else None
        display = user.get("providerDisplayName") or user.get("customDisplayName")
        user_id = user.get("id")
        login = next((v for v in (account, display, user_id) if isinstance(v, str) and v), None)
        if login is None:
            raise _not_azure()
        return Identity(
            login=login,
            name=display if isinstance(display, str) and display else None,
            email=login if "@" in login else None,
            id=user_id if isinstance(user_id, str) and user_id else None,
        )

    def create_work_item(self, project: str, work_item_type: str, fields: dict[str, str]) -> tuple[int, str]:
        """``POST .../_apis/wit/workitems/${type}`` with a JSON Patch document: one request."""
        patch = [{"op": "add", "path": f"/fields/{name}", "value": value} for name, value in fields.items()]
        url = f"{self.project_url(project)}/_apis/wit/workitems/${quote(work_item_type, safe='')}"
        data = self.call(
            "POST",
            url,
            params={"api-version": API_VERSION},
            data=json.dumps(patch),
            headers={"Content-Type": _PATCH},
        )
        if not _has_int(data, "id"):
            raise _not_azure()  # Azure answers with the new work item, id included
        item_id: int = data["id"]
        links = data.get("_links")
        html_link = links.get("html") if isinstance(links, dict) else None
        html = html_link.get("href") if isinstance(html_link, dict) else None
        web = html if isinstance(html, str) and html else f"{self.project_url(project)}/_workitems/edit/{item_id}"
        return item_id, web

    def add_comment(self, project: str, work_item_id: int, html: str) -> None:
        """``POST .../_apis/wit/workItems/{id}/comments`` (a preview API): one request."""
        data = self.call(
            "POST",
            f"{self.project_url(project)}/_apis/wit/workItems/{work_item_id}/comments",
            params={"api-version": COMMENTS_API_VERSION},
            json={"text": html},
        )
        if not _has_int(data, "id"):
            raise _not_azure()  # Azure answers with the new comment, id included
