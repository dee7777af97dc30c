"""The YouTrack tracker type keeps the tokenproviders contract (against FakeYouTrack)."""

from __future__ import annotations

# [start contract]
from typing import ClassVar

from tokenproviders.testing import CredentialKind, Header, TrackerTypeContract

from tokenproviders_youtrack.testing import FakeYouTrack


class TestYouTrackContract(TrackerTypeContract):
    plugin = "tokenproviders_youtrack"  # the value of the entry point in pyproject.toml
    distribution = "tokenproviders-youtrack"
    type_name = "youtrack"
    fake_class = FakeYouTrack
    client_modules = ("requests",)  # build_client imports it; importing the plugin must not
    credential_kinds = (
        CredentialKind(
            "permanent token",
            password="perm:{secret}",
            sends=Header("Authorization", "Bearer {api_password}"),
        ),
    )
    options: ClassVar[dict[str, str]] = {"project": "0-0"}


# [end contract]
