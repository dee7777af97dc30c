"""The README's first set-up command, run as written in a fresh clone and a fresh virtual
environment, ends in the demo's result.

The second command (``python3 -m nox``) is what ``.ci/run`` itself runs on a fresh clone, so CI
proves it on every submission; running it from inside the test session would recurse.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def setup_commands() -> list[str]:
    """The commands of the README's "Set up on a fresh machine" block, comments stripped."""
    text = README.read_text()
    section = text.split("## Set up on a fresh machine", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README has no bash block under 'Set up on a fresh machine'"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_gives_exactly_two_setup_commands() -> None:
    commands = setup_commands()
    assert len(commands) == 2
    assert commands[0].endswith("-m nox -s demo")
    assert commands[1].endswith("-m nox")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m nox\n" in ci, ".ci/run must run the README's second command"


@pytest.mark.slow
def test_first_readme_command_runs_the_demo_in_a_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    # "python3" in the README is whichever Python the reader has: here, the fresh venv's.
    (bin_dir / "python3").unlink(missing_ok=True)
    (bin_dir / "python3").symlink_to(bin_dir / "python")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NOX", "VIRTUAL_ENV", "PYTHON"))},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),
    }
    (tmp_path / "home").mkdir()
    result = subprocess.run(
        ["bash", "-c", setup_commands()[0]],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "carry the real person as reporter" in output, output[-3000:]
