"""Fixtures for the documentation tests: the built site, and headless Chromium.

``nox -s docs`` builds the site and then runs these tests with ``TOKENPROVIDERS_DOCS_HTML``
pointing at it. Without that variable the site is built here into a temporary directory when
Sphinx is installed; the tests that need the site are skipped when it is not (the ``tests``
session installs no documentation tools, and ``nox -s docs`` runs them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HTML_ENV = "TOKENPROVIDERS_DOCS_HTML"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built HTML site."""
    given = os.environ.get(HTML_ENV)
    if given:
        path = Path(given)
        assert (path / "index.html").is_file(), f"{HTML_ENV}={given} holds no built site"
        return path
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("Sphinx is not installed here; `nox -s docs` builds the site and runs these tests")
    out = tmp_path_factory.mktemp("site") / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"the docs build failed:\n{result.stdout}\n{result.stderr}"
    return out


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser; missing is a failure in CI (`.ci/run` installs it), else a skip."""
    found = _chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must render the docs: apt-get install -y chromium")
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return found


def chromium_args(binary: str, profile: Path) -> list[str]:
    """A headless Chromium that talks to nothing but the files it is given."""
    args = [
        binary,
        "--headless",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return args
