"""Which keys the command uses: --key-file beats TOKENPROVIDERS_KEYS; TOKENPROVIDERS_KEY_FILE does not."""

from __future__ import annotations

import json

from tokenproviders.cli.exit_codes import ExitCode
from tokenproviders.crypto import KeyRing

from .conftest import CLI


def _stranger_keys() -> str:
    return json.dumps(KeyRing.generate("someone-elses-key").to_document())


def test_an_explicit_key_file_wins_over_the_keys_variable(world: CLI) -> None:
    env = {"TOKENPROVIDERS_KEYS": _stranger_keys()}
    assert world("trackers", "list", env=env).exit_code == ExitCode.KEY_ERROR  # the variable's keys
    result = world("--key-file", str(world.key_file), "trackers", "list", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert {t["id"] for t in json.loads(result.stdout)} == {"main"}


def test_the_key_file_variable_comes_after_the_keys_variable(world: CLI) -> None:
    env = {"TOKENPROVIDERS_KEYS": _stranger_keys(), "TOKENPROVIDERS_KEY_FILE": str(world.key_file)}
    assert world("trackers", "list", env=env).exit_code == ExitCode.KEY_ERROR
    env = {"TOKENPROVIDERS_KEY_FILE": str(world.key_file)}
    assert world("trackers", "list", env=env).exit_code == 0


def test_init_notes_the_variable_only_when_it_takes_precedence(cli: CLI) -> None:
    env = {"TOKENPROVIDERS_KEYS": _stranger_keys()}
    key_file = cli.data_dir.parent / "explicit.key"
    result = cli("--key-file", str(key_file), "init", env=env)
    assert result.exit_code == 0, result.stderr
    assert "TOKENPROVIDERS_KEYS is set" not in result.stderr
