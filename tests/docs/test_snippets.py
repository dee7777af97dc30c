"""Every runnable code sample the documentation includes is run here.

The guides ``literalinclude`` their code from ``docs/snippets/*.py``; each of those files checks
itself when run as a script (its ``check()``), so a sample that stops working fails this test,
not a reader.
"""

from __future__ import annotations

import re
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


# ```{literalinclude} ../snippets/x.py   (MyST, backticks or colons)   or   .. literalinclude:: (reST)
_LITERALINCLUDE = re.compile(
    r"^(?:(?P<fence>`{3,}|:{3,})\{literalinclude\}|\.\. literalinclude::)[ \t]+(?P<path>\S+)[ \t]*\n"
    r"(?P<options>(?:[ \t]*:[\w-]+:.*\n)*)",
    re.MULTILINE,
)
# a doctest world: ```{testsetup} ... from story_world import ...
_TESTSETUP = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{testsetup\}[^\n]*\n(?P<body>(?:.*\n)*?)(?P=fence)[ \t]*$", re.MULTILINE
)
_IMPORT = re.compile(r"^\s*(?:from\s+(?P<from>\w+)\s+import|import\s+(?P<import>\w+))", re.MULTILINE)


def _pages() -> list[Path]:
    docs = SNIPPETS.parent
    return [p for p in (*docs.rglob("*.md"), *docs.rglob("*.rst")) if "_build" not in p.parts]


def _resolve(page: Path, path: str) -> Path:
    docs = SNIPPETS.parent
    return ((docs / path.lstrip("/")) if path.startswith("/") else (page.parent / path)).resolve()


def includes(page: Path) -> list[tuple[Path, dict[str, str]]]:
    """The files a page pulls in: ``literalinclude`` targets (with their options) and the snippet
    modules its doctests' ``testsetup`` blocks import."""
    text = page.read_text(encoding="utf-8")
    found: list[tuple[Path, dict[str, str]]] = []
    for match in _LITERALINCLUDE.finditer(text):
        options = dict(re.findall(r"^[ \t]*:([\w-]+):[ \t]*(.*?)[ \t]*$", match["options"], re.MULTILINE))
        found.append((_resolve(page, match["path"]), options))
    for block in _TESTSETUP.finditer(text):
        for imported in _IMPORT.finditer(block["body"]):
            module = imported["from"] or imported["import"]
            if (SNIPPETS / f"{module}.py").is_file():
                found.append(((SNIPPETS / f"{module}.py").resolve(), {}))
    return found


def test_every_snippet_is_included_by_a_page() -> None:
    included = {path for page in _pages() for path, _ in includes(page)}
    for script in SCRIPTS:
        assert script.resolve() in included, f"no page includes {script.name} (literalinclude or a testsetup import)"


def test_every_literalinclude_names_a_file_and_markers_that_exist() -> None:
    for page in _pages():
        for path, options in includes(page):
            assert path.is_file(), f"{page.name} includes {path}, which does not exist"
            text = path.read_text(encoding="utf-8")
            for option in ("start-after", "end-before"):
                marker = options.get(option, "").strip('"')
                assert marker in text, f"{page.name}: {path.name} has no {option} marker {marker!r}"


def test_the_include_check_needs_a_directive_not_a_mention(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "See snippets/host_store.py and story_world.\n\n"
        "```python\nfrom story_world import resolver\n```\n\n"
        "```{literalinclude} ../snippets/host_tokens.py\n:language: python\n:start-after: \"# [start x]\"\n```\n",
        encoding="utf-8",
    )
    found = includes(page)
    assert [(path.name, options) for path, options in found] == [
        ("host_tokens.py", {"language": "python", "start-after": '"# [start x]"'})
    ]
