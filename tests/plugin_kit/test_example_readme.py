"""The example plugin's README: its files are the example's files, and its steps, run from an
empty folder in a fresh virtual environment, end in a green contract suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .contract_runner import EXAMPLE, ROOT

README = EXAMPLE / "README.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```[\w-]*\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
CONSOLE_BLOCK = re.compile(r"^```console\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
#: The one README line a test must change: the core is installed from this checkout.
INSTALL_CORE = "python -m pip install tokenproviders"
HEREDOC = "TOKENPROVIDERS_README_EOF"


def readme_files(text: str) -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(text)}


def readme_script(text: str, core: Path) -> str:
    """The README as one bash script: its ``$`` commands and its files, in reading order."""
    steps: list[tuple[int, str]] = []
    for match in FILE_BLOCK.finditer(text):
        assert HEREDOC not in match["body"]
        steps.append((match.start(), f"cat > {match['path']} <<'{HEREDOC}'\n{match['body']}{HEREDOC}"))
    for match in CONSOLE_BLOCK.finditer(text):
        for line in match["body"].splitlines():
            if line.startswith("$ "):
                command = line[2:]
                if command == INSTALL_CORE:
                    command = f"python -m pip install {core}"
                steps.append((match.start(), command))
    steps.sort(key=lambda step: step[0])  # stable: commands of one block keep their order
    return "set -euo pipefail\n" + "\n".join(command for _, command in steps) + "\n"


def example_files() -> set[str]:
    skip = {"README.md", "py.typed"}
    return {
        path.relative_to(EXAMPLE).as_posix()
        for path in EXAMPLE.rglob("*")
        if path.is_file()
        and path.name not in skip
        and not any(part.startswith(".") or part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)
    }


def test_the_readme_shows_every_file_of_the_example_exactly() -> None:
    shown = readme_files(README.read_text())
    assert set(shown) == example_files()
    for path, body in shown.items():
        assert body == (EXAMPLE / path).read_text(), f"README's {path} differs from the example's file"


def test_the_readme_installs_the_core_with_the_line_the_test_replaces() -> None:
    script = readme_script(README.read_text(), ROOT)
    assert INSTALL_CORE not in script
    assert f"python -m pip install {ROOT}" in script
    assert script.index("mkdir tokenproviders-youtrack") < script.index("cat > pyproject.toml")
    assert script.index("cat > tests/test_youtrack_contract.py") < script.index("python -m pytest")


@pytest.mark.slow
def test_the_readme_steps_from_an_empty_folder_end_in_a_green_contract_suite(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)  # the README says "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for name in ("TOKENPROVIDERS_BLOCK_PLUGINS", "TOKENPROVIDERS_LOAD_PLUGINS", "TOKENPROVIDERS_TRACE_HOOKS"):
        env.pop(name, None)
    workspace = tmp_path / "empty"
    workspace.mkdir()
    script = readme_script(README.read_text(), ROOT)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    tail = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, tail
    summary = re.search(r"^=+ (?P<counts>.*) in [\d.]+s", done.stdout, re.MULTILINE)
    assert summary is not None, tail
    counts = summary["counts"]
    assert re.fullmatch(r"\d+ passed", counts), f"expected every contract test to pass, got {counts!r}:\n{tail}"
    assert int(counts.split()[0]) >= 30
    assert "('youtrack', '0.1.0', ['youtrack'])" in done.stdout  # list_plugins() in the new venv
