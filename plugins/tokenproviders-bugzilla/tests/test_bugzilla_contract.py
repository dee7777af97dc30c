"""The bugzilla tracker type keeps the tokenproviders contract (against FakeBugzilla 5.2)."""

from __future__ import annotations

from typing import ClassVar

from tokenproviders.testing import CredentialKind, Header, TrackerTypeContract
from tokenproviders.testing.fakes import FakeBugzilla


class TestBugzillaContract(TrackerTypeContract):
    plugin = "tokenproviders_bugzilla"
    distribution = "tokenproviders-bugzilla"
    type_name = "bugzilla"
    fake_class = FakeBugzilla
    client_modules = ("bugzilla", "requests")
    # Bugzilla 5.1+: the key goes in the header, never in a URL (5.0 gets the query parameter).
    credential_kinds = (CredentialKind("API key", sends=Header("X-BUGZILLA-API-KEY")),)
    # python-bugzilla asks for the version when a client is built; Bugzilla serves it without login.
    anonymous_paths = r"^/rest/version$"
    options: ClassVar[dict[str, str]] = {"product": "Widgets", "component": "UI"}
