"""Every runnable code sample the documentation includes is run here.

The guides ``literalinclude`` their code from ``docs/snippets/*.py``; each of those files checks
itself when run as a script (its ``check()``), so a sample that stops working fails this test,
not a reader.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SNIPPETS = Path(__file__).resolve().parents[2] / "docs" / "snippets"
SCRIPTS = sorted(p for p in SNIPPETS.glob("*.py") if not p.name.startswith("_"))


def test_there_are_snippets() -> None:
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_snippet_runs(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script)], cwd=SNIPPETS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip().endswith(": ok"), result.stdout


def test_every_snippet_is_included_by_a_page() -> None:
    pages = "\n".join(p.read_text(encoding="utf-8") for p in SNIPPETS.parent.rglob("*.md") if "_build" not in p.parts)
    for script in SCRIPTS:
        assert f"snippets/{script.name}" in pages or script.stem in pages, f"no page uses {script.name}"
