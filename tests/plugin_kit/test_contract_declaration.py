"""How TrackerTypeContract is declared: mistakes fail at import with a clear message, and every
tracker plugin under plugins/ subclasses it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tokenproviders.testing import BasicAuth, CredentialKind, Header, QueryParam, RecordedRequest, TrackerTypeContract
from tokenproviders.testing.fakes import FakeJira

from .contract_runner import ROOT


def test_a_test_class_missing_a_declaration_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match=r"TestIncomplete must declare fake_class, client_modules"):

        class TestIncomplete(TrackerTypeContract):
            plugin = "tokenproviders_jira"
            type_name = "jira"
            credential_kinds = (CredentialKind("pat", sends=Header("Authorization", "Bearer {api_password}")),)


def test_the_plugin_must_be_named_by_its_entry_point_value() -> None:
    with pytest.raises(TypeError, match="must be the entry point's value as a string"):

        class TestModuleObject(TrackerTypeContract):
            plugin = pytest  # type: ignore[assignment]
            type_name = "jira"
            fake_class = FakeJira
            client_modules = ("jira",)
            credential_kinds = (CredentialKind("pat", sends=Header("Authorization")),)


def test_an_intermediate_base_class_may_leave_declarations_to_its_subclasses() -> None:
    class JiraBase(TrackerTypeContract):
        plugin = "tokenproviders_jira"

    assert JiraBase.plugin == "tokenproviders_jira"


def request_with(headers: dict[str, str], query: dict[str, list[str]] | None = None) -> RecordedRequest:
    return RecordedRequest("GET", "/x", "/x", query or {}, tuple(headers.items()), b"", None)


def test_auth_expectations_match_exactly() -> None:
    kind = CredentialKind("cloud", username="{login}@example.com", password="tok-{secret}", sends=BasicAuth())
    credentials = kind.credentials("alice", "s3")
    assert (credentials.api_username, credentials.api_password.reveal()) == ("alice@example.com", "tok-s3")
    good = request_with({"authorization": "Basic YWxpY2VAZXhhbXBsZS5jb206dG9rLXMz"})
    assert BasicAuth().found_in(good, credentials)
    assert not BasicAuth(username="").found_in(good, credentials)
    assert Header("Authorization", "Bearer {api_password}").found_in(
        request_with({"AUTHORIZATION": "Bearer tok-s3"}), credentials
    )
    assert not Header("Authorization", "Bearer {api_password}").found_in(
        request_with({"Authorization": "Bearer tok-s3x"}), credentials
    )
    assert QueryParam("api_key").found_in(request_with({}, {"api_key": ["tok-s3"]}), credentials)
    assert "{api_password}" in Header("X-Key").describe()  # messages name the template, never the secret


TRACKER_PLUGINS = sorted(p for p in (ROOT / "plugins").glob("tokenproviders-*") if (p / "pyproject.toml").exists())


def contract_subclasses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and node.name.startswith("Test")
        and any(isinstance(base, ast.Name) and base.id == "TrackerTypeContract" for base in node.bases)
    ]


def test_there_are_tracker_plugins() -> None:
    assert len(TRACKER_PLUGINS) >= 6, TRACKER_PLUGINS


@pytest.mark.parametrize("plugin", TRACKER_PLUGINS, ids=[p.name for p in TRACKER_PLUGINS])
def test_every_plugin_runs_the_contract(plugin: Path) -> None:
    name = plugin.name.removeprefix("tokenproviders-")
    contract = plugin / "tests" / f"test_{name}_contract.py"
    assert contract.is_file(), f"{plugin.name} has no {contract.relative_to(ROOT)}"
    assert contract_subclasses(contract), f"{contract.relative_to(ROOT)} has no Test* subclass of TrackerTypeContract"
