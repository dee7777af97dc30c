"""The redmine tracker type keeps the tokenproviders contract (against FakeRedmine)."""

from __future__ import annotations

from typing import ClassVar

from tokenproviders.testing import BasicAuth, CredentialKind, Header, TrackerTypeContract
from tokenproviders.testing.fakes import FakeRedmine


class TestRedmineContract(TrackerTypeContract):
    plugin = "tokenproviders_redmine"
    distribution = "tokenproviders-redmine"
    type_name = "redmine"
    fake_class = FakeRedmine
    client_modules = ("redminelib", "requests")
    credential_kinds = (
        CredentialKind("API key", sends=Header("X-Redmine-API-Key")),
        CredentialKind("login and password", username="{login}", sends=BasicAuth()),
    )
    options: ClassVar[dict[str, str]] = {"project": "webshop"}
