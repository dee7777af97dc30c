"""The GitHub tracker type keeps the tokenproviders contract, against FakeGitHub and PyGithub."""

from __future__ import annotations

from tokenproviders.testing import CredentialKind, Header, TrackerTypeContract
from tokenproviders.testing.fakes import FakeGitHub, FakeTracker


class TestGitHubContract(TrackerTypeContract):
    """GitHub Enterprise Server style: the API under ``/api/v3`` of the repository's host."""

    plugin = "tokenproviders_github"
    distribution = "tokenproviders-github"
    type_name = "github"
    fake_class = FakeGitHub
    client_modules = ("github",)
    credential_kinds = (
        CredentialKind(
            "personal access token", password="ghp_{secret}", sends=Header("Authorization", "token {api_password}")
        ),
    )

    def base_url(self, fake: FakeTracker) -> str:
        return f"{fake.url}/acme/widgets"

    def api_url(self, fake: FakeTracker) -> str | None:
        return f"{fake.url}/api/v3"


class TestGitHubComStyleContract(TestGitHubContract):
    """github.com style: the API at the root of its own host."""

    def api_url(self, fake: FakeTracker) -> str | None:
        return fake.url
