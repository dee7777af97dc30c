"""What the pages tell a reader to type, checked against the code it has to work with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _text_blocks(page: Path) -> list[str]:
    return re.findall(r"^```(?:text|console|shell|bash)?\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)


def test_the_cli_reference_installs_what_the_demo_needs_before_running_it() -> None:
    pytest.importorskip("click")
    from tokenproviders.cli._demo import REQUIRED_TYPES

    blocks = [block for block in _text_blocks(DOCS / "reference" / "cli.md") if "tokenproviders demo" in block]
    assert blocks, "docs/reference/cli.md no longer shows 'tokenproviders demo'"
    for block in blocks:
        before_demo = block[: block.index("tokenproviders demo")]
        installed = {
            word
            for line in before_demo.splitlines()
            if line.strip().startswith("pip install")
            for word in line.split("#")[0].split()
        }
        missing = sorted(set(REQUIRED_TYPES.values()) - installed)
        assert not missing, f"docs/reference/cli.md runs the demo without installing {missing}"
