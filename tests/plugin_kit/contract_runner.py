"""Run a pytest session in a subprocess and read each test's outcome from its JUnit XML report.

The contract suite's own tests use it to run ``TrackerTypeContract`` against deliberately broken
plugins without importing them into the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "tokenproviders-youtrack"
BROKEN_PLUGINS = Path(__file__).resolve().parent / "broken_plugins"

CONTRACT_MODULE = """
from tokenproviders.testing import BasicAuth, CredentialKind, Header, TrackerTypeContract
from {fake_module} import {fake_name}


class TestContract(TrackerTypeContract):
    plugin = {plugin!r}
    type_name = "youtrack"
    fake_class = {fake_name}
    client_modules = ("requests",)
    credential_kinds = ({credential_kinds})
    options = {{"project": "0-0"}}
    hang_release_after = {hang_release_after!r}
"""
#: The example's one credential kind, as the contract module declares it.
TOKEN_KIND = 'CredentialKind("token", password="perm:{secret}", sends=Header("Authorization", "Bearer {api_password}"))'
EXAMPLE_FAKE = "tokenproviders_youtrack.testing:FakeYouTrack"


@dataclass(frozen=True)
class Outcome:
    outcome: str  # passed, failed, error or skipped
    message: str


def run_pytest(args: list[str], *, cwd: Path, pythonpath: list[Path], report: Path) -> dict[str, Outcome]:
    """Run pytest with ``args``; return ``{test name with parameters: Outcome}``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for name in ("TOKENPROVIDERS_BLOCK_PLUGINS", "TOKENPROVIDERS_LOAD_PLUGINS", "TOKENPROVIDERS_TRACE_HOOKS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if not report.exists():
        raise AssertionError(f"pytest wrote no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = f"{child.get('message', '')}\n{child.text or ''}"
        outcomes[case.get("name", "")] = Outcome(outcome, message)
    if not outcomes:
        raise AssertionError(f"pytest ran no test (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return outcomes


def run_contract(
    tmp_path: Path,
    plugin: str,
    keyword: str | None = None,
    *,
    fake: str = EXAMPLE_FAKE,
    credential_kinds: tuple[str, ...] = (TOKEN_KIND,),
    hang_release_after: float | None = None,
) -> dict[str, Outcome]:
    """Run ``TrackerTypeContract`` against the plugin module ``plugin`` (a broken plugin or the
    example), optionally only the tests matching ``-k keyword``. ``fake`` is ``"module:Class"``;
    ``credential_kinds`` are ``CredentialKind(...)`` expressions."""
    fake_module, _, fake_name = fake.partition(":")
    test_file = tmp_path / "test_contract_run.py"
    test_file.write_text(
        CONTRACT_MODULE.format(
            plugin=plugin,
            fake_module=fake_module,
            fake_name=fake_name,
            credential_kinds="".join(f"{kind}, " for kind in credential_kinds),
            hang_release_after=hang_release_after,
        )
    )
    args = [str(test_file), *(["-k", keyword] if keyword else [])]
    return run_pytest(args, cwd=tmp_path, pythonpath=[BROKEN_PLUGINS, EXAMPLE / "src"], report=tmp_path / "report.xml")
