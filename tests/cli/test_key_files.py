"""Changing the key file: with several ``keys generate`` and ``keys retire`` at once, in separate
processes, every key each one added stays in the key file and every retired key stays out of it
(issue 11, F04); a symlinked key file is changed where it points."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tokenproviders.crypto import KeyRing

from .conftest import CLI, subprocess_env

PROCESSES = 8
GENERATES = 5

# Each worker runs the real command in-process, GENERATES times plus one retire, and reports the
# exit codes. The workers start together once the parent creates the "go" file.
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from tokenproviders.cli import main

    index, go, retire = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    while not go.exists():
        time.sleep(0.005)
    codes = []
    commands = [["keys", "generate", "--id", f"w{index}-{i}"] for i in range(GENERATES)]
    if retire:
        commands.insert(2, ["keys", "retire", retire])
    for args in commands:
        try:
            main(args)
        except SystemExit as exc:
            codes.append(exc.code)
    print(json.dumps(codes))
    """
).replace("GENERATES", str(GENERATES))


def test_concurrent_generate_and_retire_lose_no_key(cli: CLI, tmp_path: Path) -> None:
    cli.ok("init")
    # Keys to retire concurrently: in the key file, sealing nothing.
    spare = [f"spare-{n}" for n in range(PROCESSES // 2)]
    for key_id in spare:
        cli.ok("keys", "generate", "--no-primary", "--id", key_id)
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index), str(go), spare[index] if index < len(spare) else ""],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(cli.data_dir),
        )
        for index in range(PROCESSES)
    ]
    go.touch()
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err
            assert all(code in (0, None) for code in json.loads(out.splitlines()[-1])), (out, err)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    ring = KeyRing.from_key_file(cli.key_file)
    added = {f"w{index}-{i}" for index in range(PROCESSES) for i in range(GENERATES)}
    assert added - set(ring.key_ids) == set(), "keys added by 'keys generate' went missing from the key file"
    assert set(spare) & set(ring.key_ids) == set(), "a retired key came back"
    assert set(spare) <= ring.retired_ids
    assert ring.primary_id in added
    # The database recorded every key too, and the command still opens it with the key file.
    status = json.loads(cli.ok("keys", "status", "--json").stdout)
    assert added <= {row["key_id"] for row in status if row["in_key_ring"]}


def test_generate_and_retire_through_a_symlinked_key_file_keep_the_link(cli: CLI, tmp_path: Path) -> None:
    """The key file is changed where the link points; the link stays a link (mounted secrets and
    keys kept on another volume are links)."""
    cli.ok("init")
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    target = vault / "keys.json"
    cli.key_file.rename(target)
    cli.key_file.symlink_to(target)
    cli.ok("keys", "generate", "--id", "second")
    cli.ok("keys", "generate", "--no-primary", "--id", "spare")
    cli.ok("keys", "retire", "spare")
    assert cli.key_file.is_symlink() and cli.key_file.resolve() == target
    ring = KeyRing.from_key_file(target)
    assert ring.primary_id == "second" and "spare" in ring.retired_ids
    assert [p.name for p in vault.iterdir()] == ["keys.json"]
