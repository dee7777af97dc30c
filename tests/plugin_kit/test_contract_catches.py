"""TrackerTypeContract catches broken plugins: each mistake fails exactly the tests that guard it.

Every broken plugin (``broken_plugins/``) is the example YouTrack plugin with one mistake (one
also takes a second credential kind, to show that every kind is checked). The contract runs
against it in a subprocess; the good example runs through the same harness, so a harness that
fails everything would be noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .contract_runner import EXAMPLE, EXAMPLE_FAKE, TOKEN_KIND, Outcome, run_contract, run_pytest


@dataclass(frozen=True)
class Case:
    plugin: str
    keyword: str
    fails: frozenset[str]
    passes: frozenset[str]
    message: str
    fake: str = EXAMPLE_FAKE
    credential_kinds: tuple[str, ...] = (TOKEN_KIND,)


LOGIN_KIND = 'CredentialKind("login and password", username="{login}", sends=BasicAuth())'

CASES = {
    "eager import of the client library": Case(
        plugin="broken_eager_import",
        keyword="imported_only or whoami_names",
        fails=frozenset({"test_client_library_is_imported_only_by_build_client"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="importing broken_eager_import imports ['requests']",
    ),
    "secret in an exception message": Case(
        plugin="broken_secret_in_error",
        keyword="no_secret_in_errors or rejection",
        fails=frozenset(
            {
                "test_no_secret_in_errors_logs_or_output[token-401]",
                "test_no_secret_in_errors_logs_or_output[token-403]",
                "test_no_secret_in_errors_logs_or_output[token-500]",
                "test_no_secret_in_errors_logs_or_output[token-refused]",
            }
        ),
        # The mapping itself is right: only the leak is wrong.
        passes=frozenset({"test_rejection_is_credentials_rejected[token-401-whoami]"}),
        message="a secret (or its encoding) appears in the PersonalTokenRejectedError raised",
    ),
    "401 mapped to unavailable": Case(
        plugin="broken_401_unavailable",
        keyword="rejection or unknown_token",
        fails=frozenset(
            {
                "test_rejection_is_credentials_rejected[token-401-whoami]",
                "test_rejection_is_credentials_rejected[token-401-report]",
                "test_rejection_is_credentials_rejected[token-401-comment]",
                "test_unknown_token_is_credentials_rejected[token]",
            }
        ),
        passes=frozenset({"test_rejection_is_credentials_rejected[token-403-whoami]"}),
        message="HTTP 401 during whoami with 'token' credentials raised TrackerUnavailableError",
    ),
    "secret in a DEBUG log record": Case(
        plugin="broken_logs_secret",
        keyword="no_secret_in_logs or whoami_names",
        fails=frozenset({"test_no_secret_in_logs_output_or_reprs[token]"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="appears in a log record of logger 'broken_logs_secret'",
    ),
    "secret in the client's repr": Case(
        plugin="broken_leaky_repr",
        keyword="no_secret_in_logs or whoami_names",
        fails=frozenset({"test_no_secret_in_logs_output_or_reprs[token]"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="appears in repr() of the client build_client returned",
    ),
    "timeout ignored": Case(
        plugin="broken_no_timeout",
        keyword="timeout_is_unavailable and whoami or refused_connection and whoami",
        fails=frozenset({"test_timeout_is_unavailable[whoami]"}),
        passes=frozenset({"test_refused_connection_is_unavailable[whoami]"}),
        message="the client ignored the configured timeout",
    ),
    # -- the checks added after review --------------------------------------------------------
    "timeout hard-coded to 20 s": Case(
        plugin="broken_slow_timeout",
        keyword="timeout_is_unavailable and (report or comment) or refused_connection and whoami",
        fails=frozenset({"test_timeout_is_unavailable[report]", "test_timeout_is_unavailable[comment]"}),
        passes=frozenset({"test_refused_connection_is_unavailable[whoami]"}),
        message="the client ignored the configured timeout (settings.timeout=1 s, retries=1)",
    ),
    "pasted token quoted in a validation message": Case(
        plugin="broken_echoes_pasted_token",
        keyword="unsendable and (newline or CRLF or injection)",
        fails=frozenset(
            {
                "test_unsendable_secret_is_refused_without_a_trace[token-trailing newline]",
                "test_unsendable_secret_is_refused_without_a_trace[token-trailing CRLF]",
            }
        ),
        # strip() does not see an injected header line, so the core refuses that one cleanly.
        passes=frozenset({"test_unsendable_secret_is_refused_without_a_trace[token-header injection]"}),
        message="a secret (or its encoding) appears in the InvalidCredentialsError raised",
    ),
    "the core's credential check skipped": Case(
        plugin="broken_accepts_line_breaks",
        keyword="unsendable or whoami_names",
        fails=frozenset(
            {
                "test_unsendable_secret_is_refused_without_a_trace[token-trailing newline]",
                "test_unsendable_secret_is_refused_without_a_trace[token-trailing CRLF]",
                "test_unsendable_secret_is_refused_without_a_trace[token-header injection]",
                "test_unsendable_secret_is_refused_without_a_trace[token-non-Latin-1]",
            }
        ),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="storing it as a personal token with a header injection in the 'token' password raised nothing",
    ),
    "token cut at a space": Case(
        plugin="broken_splits_token",
        keyword="unusual or whoami_names",
        fails=frozenset({"test_unusual_but_sendable_secret_works_without_a_trace[token-inner space]"}),
        passes=frozenset(
            {
                "test_unusual_but_sendable_secret_works_without_a_trace[token-Latin-1 letter]",
                "test_whoami_names_whose_credentials_were_used[token-alice]",
            }
        ),
        message="with it raised PersonalTokenRejectedError: send the password as given",
    ),
    "token with a space quoted in a warning": Case(
        plugin="broken_warns_with_token",
        keyword="unusual",
        fails=frozenset({"test_unusual_but_sendable_secret_works_without_a_trace[token-inner space]"}),
        passes=frozenset({"test_unusual_but_sendable_secret_works_without_a_trace[token-Latin-1 letter]"}),
        message="appears in a log record of logger 'broken_warns_with_token'",
    ),
    "second credential kind's password logged": Case(
        plugin="broken_second_kind_logs",
        keyword="no_secret_in_logs or whoami_names",
        fails=frozenset({"test_no_secret_in_logs_output_or_reprs[login and password]"}),
        passes=frozenset(
            {
                "test_no_secret_in_logs_output_or_reprs[token]",
                "test_whoami_names_whose_credentials_were_used[login and password-alice]",
                "test_whoami_names_whose_credentials_were_used[login and password-bob]",
            }
        ),
        message="appears in a log record of logger 'broken_second_kind_logs'",
        fake="broken_second_kind_logs:FakeYouTrackWithLogin",
        credential_kinds=(TOKEN_KIND, LOGIN_KIND),
    ),
    "whoami answer cached on the client": Case(
        plugin="broken_cached_whoami",
        keyword="warm or whoami_names",
        fails=frozenset(
            {
                "test_faults_on_a_warm_client_are_mapped[401-whoami]",
                "test_faults_on_a_warm_client_are_mapped[403-whoami]",
                "test_faults_on_a_warm_client_are_mapped[500-whoami]",
                "test_faults_on_a_warm_client_are_mapped[503-whoami]",
            }
        ),
        # A fresh client asks the tracker; so does a warm one for a report or a comment.
        passes=frozenset(
            {
                "test_whoami_names_whose_credentials_were_used[token-alice]",
                "test_faults_on_a_warm_client_are_mapped[401-report]",
                "test_faults_on_a_warm_client_are_mapped[503-comment]",
            }
        ),
        message="HTTP 401 during whoami on a client that had already talked to the tracker raised nothing",
    ),
    "redirect followed": Case(
        plugin="broken_follows_redirects",
        keyword="redirect or whoami_names",
        fails=frozenset(
            f"test_redirect_to_another_server_is_not_followed[{status}-{operation}]"
            for status in (301, 302, 307)
            for operation in ("whoami", "report", "comment")
        ),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="the client followed HTTP 307 during report to another server: 1 request(s) reached it",
    ),
    "other JSON taken for the tracker's answer": Case(
        plugin="broken_lenient_json",
        keyword="other_json or whoami_names",
        fails=frozenset(
            {"test_other_json_at_the_url_is_an_error[whoami]", "test_other_json_at_the_url_is_an_error[report]"}
        ),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="succeeded against a server that answers {} to every request",
    ),
    "the host's ~/.netrc credentials sent": Case(
        plugin="broken_trusts_netrc",
        keyword="only_the_resolved or whoami_names",
        fails=frozenset(
            {
                "test_only_the_resolved_credentials_are_sent[token-alice]",
                "test_only_the_resolved_credentials_are_sent[token-bob]",
            }
        ),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="(during whoami) carried the credentials of the host's ~/.netrc",
    ),
    "client built from the raw base_url": Case(
        plugin="broken_raw_base_url",
        keyword="non_normalized or whoami_names",
        fails=frozenset({"test_a_non_normalized_url_reaches_the_normalized_host"}),
        passes=frozenset({"test_whoami_names_whose_credentials_were_used[token-alice]"}),
        message="Build the client from tracker.url or normalize_url(tracker.api_url)",
    ),
}


def describe(outcomes: dict[str, Outcome]) -> str:
    return "\n".join(f"{name}: {o.outcome}" for name, o in sorted(outcomes.items()))


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_contract_fails_a_broken_plugin_where_it_is_broken(tmp_path: Path, case: Case) -> None:
    outcomes = run_contract(
        tmp_path, case.plugin, case.keyword, fake=case.fake, credential_kinds=case.credential_kinds
    )
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
    assert len([o for o in outcomes.values() if o.outcome == "passed"]) >= 55, describe(outcomes)


def test_the_example_plugins_own_tests_pass_its_contract(tmp_path: Path) -> None:
    """The example's tests/ as a plugin author runs them (the entry point is checked by the
    fresh-venv test, where the example is installed)."""
    outcomes = run_pytest(
        [str(EXAMPLE / "tests")], cwd=EXAMPLE, pythonpath=[EXAMPLE / "src"], report=tmp_path / "report.xml"
    )
    bad = {name: o for name, o in outcomes.items() if o.outcome in ("failed", "error")}
    assert bad == {}, describe(outcomes)
    assert "test_client_library_is_imported_only_by_build_client" in outcomes
