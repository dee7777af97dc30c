"""The Jira tracker type keeps the tokenproviders contract, against FakeJira and the real ``jira`` library."""

from __future__ import annotations

from typing import ClassVar

from tokenproviders.testing import BasicAuth, CredentialKind, Header, TrackerTypeContract
from tokenproviders.testing.fakes import FakeJira


class TestJiraContract(TrackerTypeContract):
    plugin = "tokenproviders_jira"
    distribution = "tokenproviders-jira"
    type_name = "jira"
    fake_class = FakeJira
    client_modules = ("jira",)
    credential_kinds = (
        CredentialKind("cloud e-mail and API token", username="{login}@example.com", sends=BasicAuth()),
        CredentialKind("server personal access token", sends=Header("Authorization", "Bearer {api_password}")),
    )
    options: ClassVar[dict[str, str]] = {"project": "PROJ"}
