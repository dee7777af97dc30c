"""TrackerTypeContract catches broken plugins: each mistake fails exactly the tests that guard it.

Every broken plugin (``broken_plugins/``) is the example YouTrack plugin with one mistake. The
contract runs against it in a subprocess; the good example runs through the same harness, so a
harness that fails everything would be noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .contract_runner import EXAMPLE, Outcome, run_contract, run_pytest


@dataclass(frozen=True)
class Case:
    plugin: str
    keyword: str
    fails: frozenset[str]
    passes: frozenset[str]
    message: str
    hang_release_after: float = 30.0


CASES = {
    "eager import of the client library": Case(
        plugin="broken_eager_import",
        keyword="imported_only or whoami",
        fails=frozenset({"test_client_library_is_imported_only_by_build_client"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[alice]"}),
        message="importing broken_eager_import imports ['requests']",
    ),
    "secret in an exception message": Case(
        plugin="broken_secret_in_error",
        keyword="no_secret_in_errors or rejection",
        fails=frozenset(
            {
                "test_no_secret_in_errors_logs_or_output[401]",
                "test_no_secret_in_errors_logs_or_output[403]",
                "test_no_secret_in_errors_logs_or_output[500]",
                "test_no_secret_in_errors_logs_or_output[refused]",
            }
        ),
        # The mapping itself is right: only the leak is wrong.
        passes=frozenset({"test_rejection_is_credentials_rejected[401-whoami]"}),
        message="a secret (or its encoding) appears in the PersonalTokenRejectedError raised",
    ),
    "401 mapped to unavailable": Case(
        plugin="broken_401_unavailable",
        keyword="rejection or unknown_token",
        fails=frozenset(
            {
                "test_rejection_is_credentials_rejected[401-whoami]",
                "test_rejection_is_credentials_rejected[401-report]",
                "test_rejection_is_credentials_rejected[401-comment]",
                "test_unknown_token_is_credentials_rejected",
            }
        ),
        passes=frozenset({"test_rejection_is_credentials_rejected[403-whoami]"}),
        message="HTTP 401 during whoami raised TrackerUnavailableError, not CredentialsRejectedError",
    ),
    "secret in a DEBUG log record": Case(
        plugin="broken_logs_secret",
        keyword="no_secret_in_logs or whoami",
        fails=frozenset({"test_no_secret_in_logs_output_or_reprs"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[alice]"}),
        message="appears in a log record of logger 'broken_logs_secret'",
    ),
    "secret in the client's repr": Case(
        plugin="broken_leaky_repr",
        keyword="no_secret_in_logs or whoami",
        fails=frozenset({"test_no_secret_in_logs_output_or_reprs"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[alice]"}),
        message="appears in repr() of the client build_client returned",
    ),
    "timeout ignored": Case(
        plugin="broken_no_timeout",
        keyword="timeout_is_unavailable and whoami or refused and whoami",
        fails=frozenset({"test_timeout_is_unavailable[whoami]"}),
        passes=frozenset({"test_refused_connection_is_unavailable[whoami]"}),
        message="build_client must apply settings.timeout",
        hang_release_after=3.0,
    ),
}


def describe(outcomes: dict[str, Outcome]) -> str:
    return "\n".join(f"{name}: {o.outcome}" for name, o in sorted(outcomes.items()))


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_contract_fails_a_broken_plugin_where_it_is_broken(tmp_path: Path, case: Case) -> None:
    outcomes = run_contract(tmp_path, case.plugin, case.keyword, hang_release_after=case.hang_release_after)
    failed = {name for name, o in outcomes.items() if o.outcome in ("failed", "error")}
    passed = {name for name, o in outcomes.items() if o.outcome == "passed"}
    assert failed == case.fails, describe(outcomes)
    assert case.passes <= passed, describe(outcomes)
    messages = "\n".join(outcomes[name].message for name in case.fails)
    assert case.message in messages, messages


def test_the_same_harness_passes_the_unbroken_example(tmp_path: Path) -> None:
    outcomes = run_contract(tmp_path, "tokenproviders_youtrack")
    bad = {name: o for name, o in outcomes.items() if o.outcome in ("failed", "error")}
    assert bad == {}, describe(outcomes)
    assert len([o for o in outcomes.values() if o.outcome == "passed"]) >= 30, describe(outcomes)


def test_the_example_plugins_own_tests_pass_its_contract(tmp_path: Path) -> None:
    """The example's tests/ as a plugin author runs them (the entry point is checked by the
    fresh-venv test, where the example is installed)."""
    outcomes = run_pytest(
        [str(EXAMPLE / "tests")], cwd=EXAMPLE, pythonpath=[EXAMPLE / "src"], report=tmp_path / "report.xml"
    )
    bad = {name: o for name, o in outcomes.items() if o.outcome in ("failed", "error")}
    assert bad == {}, describe(outcomes)
    assert "test_client_library_is_imported_only_by_build_client" in outcomes
