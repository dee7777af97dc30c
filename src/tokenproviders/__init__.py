"""tokenproviders: which credentials a user files bugs with, and why.

Personal API tokens override a tracker's shared bot account, so the tracker records the real
person as the reporter. A :class:`Resolver` decides, for one user acting on one tracker, whether
their personal token (scoped to one tenant or to all of theirs), a third-party source, or the
tracker's bot credentials apply; explains the decision; and returns an authenticated client.

Quickstart::

    from tokenproviders import ALL_TENANTS, Credentials, MemoryDirectory, Resolver, Secret, Tracker

    directory = MemoryDirectory()
    directory.add_member("alice", "acme")
    jira = Tracker(tenant="acme", id="jira", type="jira", base_url="https://acme.atlassian.net",
                   bot_credentials=Credentials(api_username="bot@acme.com", api_password=Secret("...")))
    directory.add_tracker(jira)
    resolver = Resolver(directory)
    resolver.tokens.set(owner="alice", url=jira.base_url, scope=ALL_TENANTS,
                        credentials=Credentials(api_username="alice@acme.com", api_password=Secret("...")))
    print(resolver.resolve("alice", jira).reason)
"""

from __future__ import annotations

from .audit import AuditEvent, acting
from .directory import Directory, MemoryDirectory, find_tracker
from .errors import (
    ConfigurationError,
    CredentialsRejectedError,
    InvalidCredentialsError,
    InvalidInputError,
    InvalidURLError,
    NoCredentialsError,
    NotAuthorizedError,
    PersonalTokenRejectedError,
    PersonalTokenUnusableError,
    PluginError,
    SecretUnreadableError,
    StoreError,
    TokenNotFoundError,
    TokenProvidersError,
    TrackerRequestError,
    TrackerUnavailableError,
    TrackerURLError,
    UnknownTrackerError,
    UnknownTrackerTypeError,
)
from .model import (
    ALL_TENANTS,
    ClientSettings,
    Credentials,
    Field,
    Identity,
    IssueDraft,
    PersonalToken,
    ReportedIssue,
    Resolution,
    Secret,
    TokenInfo,
    Tracker,
    TrackerChoice,
)
from .plugins import PluginInfo, Plugins, create_plugins, hookimpl, list_plugins
from .policy import Policies, Policy
from .resolver import Resolver
from .sources import CredentialRequest
from .stores import MemoryTokenStore, TokenStore
from .trackertype import TrackerFailure, TrackerType, classify_http_status
from .urls import normalize_url, origin_of

__version__ = "0.1.0"

__all__ = [
    "ALL_TENANTS",
    "AuditEvent",
    "ClientSettings",
    "ConfigurationError",
    "CredentialRequest",
    "Credentials",
    "CredentialsRejectedError",
    "Directory",
    "Field",
    "Identity",
    "InvalidCredentialsError",
    "InvalidInputError",
    "InvalidURLError",
    "IssueDraft",
    "MemoryDirectory",
    "MemoryTokenStore",
    "NoCredentialsError",
    "NotAuthorizedError",
    "PersonalToken",
    "PersonalTokenRejectedError",
    "PersonalTokenUnusableError",
    "PluginError",
    "PluginInfo",
    "Plugins",
    "Policies",
    "Policy",
    "ReportedIssue",
    "Resolution",
    "Resolver",
    "Secret",
    "SecretUnreadableError",
    "StoreError",
    "TokenInfo",
    "TokenNotFoundError",
    "TokenProvidersError",
    "TokenStore",
    "Tracker",
    "TrackerChoice",
    "TrackerFailure",
    "TrackerRequestError",
    "TrackerType",
    "TrackerURLError",
    "TrackerUnavailableError",
    "UnknownTrackerError",
    "UnknownTrackerTypeError",
    "acting",
    "classify_http_status",
    "create_plugins",
    "find_tracker",
    "hookimpl",
    "list_plugins",
    "normalize_url",
    "origin_of",
    "__version__",
]
