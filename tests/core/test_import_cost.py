"""``import tokenproviders``, plugin discovery and building a Resolver import no tracker client
library (DESIGN section 8: each costs 0.25-0.45 s). Checked in a fresh interpreter, so that what
other tests imported cannot hide or fake an import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CLIENT_LIBRARIES = ("requests", "jira", "github", "gitlab", "redminelib", "bugzilla")

PROBE = """
import json, sys
import tokenproviders
from tokenproviders import MemoryDirectory, Resolver, list_plugins
resolver = Resolver(MemoryDirectory())       # discovers every installed plugin
listing = list_plugins()
roots = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"roots": roots, "types": sorted(resolver.plugins.tracker_types),
                  "plugins": [p.name for p in listing]}))
"""


def test_import_and_resolver_import_no_client_library() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENPROVIDERS_")}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "tokenproviders" in report["roots"]
    assert {"personal", "bot"} <= set(report["plugins"])  # discovery did run
    imported = sorted(set(CLIENT_LIBRARIES) & set(report["roots"]))
    assert imported == [], (
        f"importing tokenproviders and building a Resolver imported {imported}; installed tracker types"
        f" {report['types']} must import their client library inside build_client, not at module top"
    )
