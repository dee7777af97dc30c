"""The GitLab tracker type keeps the tokenproviders contract, against FakeGitLab and python-gitlab."""

from __future__ import annotations

from tokenproviders.testing import CredentialKind, Header, TrackerTypeContract
from tokenproviders.testing.fakes import FakeGitLab, FakeTracker


class TestGitLabContract(TrackerTypeContract):
    plugin = "tokenproviders_gitlab"
    distribution = "tokenproviders-gitlab"
    type_name = "gitlab"
    fake_class = FakeGitLab
    client_modules = ("gitlab",)
    credential_kinds = (
        CredentialKind("personal access token", password="glpat-{secret}", sends=Header("PRIVATE-TOKEN")),
    )

    def base_url(self, fake: FakeTracker) -> str:
        return f"{fake.url}/grp/sub/proj"


class TestGitLabSubPathContract(TestGitLabContract):
    """The instance named by ``api_url`` (given with its ``/api/v4``) rather than derived from ``base_url``."""

    def api_url(self, fake: FakeTracker) -> str | None:
        return f"{fake.url}/api/v4"
