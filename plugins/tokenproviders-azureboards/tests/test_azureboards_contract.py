"""The azureboards tracker type keeps the tokenproviders contract (against FakeAzureBoards)."""

from __future__ import annotations

from tokenproviders.testing import BasicAuth, CredentialKind, TrackerTypeContract
from tokenproviders.testing.fakes import FakeAzureBoards, FakeIssue, FakeTracker


class TestAzureBoardsContract(TrackerTypeContract):
    plugin = "tokenproviders_azureboards"
    distribution = "tokenproviders-azureboards"
    type_name = "azureboards"
    fake_class = FakeAzureBoards
    client_modules = ("requests",)
    credential_kinds = (CredentialKind("personal access token", sends=BasicAuth(username="")),)

    def base_url(self, fake: FakeTracker) -> str:
        return f"{fake.url}/contoso/WebShop"

    def expected_login(self, login: str) -> str:
        return f"{login}@example.com"  # connectionData names the account (the fake's made-up e-mail)

    def expected_issue_url(self, fake: FakeTracker, issue: FakeIssue) -> str | None:
        return issue.url


class TestAzureBoardsSignInPageContract(TestAzureBoardsContract):
    """The same contract when Azure DevOps answers unaccepted tokens with 203 and a sign-in page."""

    def start_fake(self) -> FakeTracker:
        return FakeAzureBoards(signin_page_for_unauthenticated=True)
