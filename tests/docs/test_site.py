"""The built documentation site: API coverage, internal links, tracker pages, CLI reference and
the resolution diagram as a browser renders it."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from .conftest import DOCS, chromium_args

sys.path.insert(0, str(DOCS / "_tools"))
from check_links import broken_links


def _inventory(site: Path) -> set[str]:
    """The object names of the site's ``objects.inv``."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    names = set()
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        match = re.match(r"(.+?)\s+(\S+):(\S+)\s+-?\d+\s+\S+\s+.*", line)
        if match:
            names.add(match.group(1))
    return names


def test_every_public_name_is_in_the_api_reference(site: Path) -> None:
    import tokenproviders

    documented = _inventory(site)
    missing = [name for name in tokenproviders.__all__ if f"tokenproviders.{name}" not in documented]
    assert not missing, f"not in the API reference (docs/reference/api.md): {missing}"
    api_page = (site / "reference" / "api.html").read_text(encoding="utf-8")
    for name in tokenproviders.__all__:
        assert f'id="tokenproviders.{name}"' in api_page, name


@pytest.mark.parametrize(
    "module",
    [
        "tokenproviders.crypto",
        "tokenproviders.stores.sqlite",
        "tokenproviders.testing",
        "tokenproviders.testing.fakes",
        "tokenproviders.testing.pytest_plugin",
    ],
)
def test_every_name_of_the_modules_imported_directly_is_in_the_reference(site: Path, module: str) -> None:
    """Names a reader imports from a module rather than from ``tokenproviders`` itself: the
    key ring and SQLite store, and the testing kit (contract, fakes, fixtures)."""
    import tokenproviders.testing

    documented = _inventory(site)
    imported = importlib.import_module(module)

    def documented_as(name: str) -> bool:
        if f"{module}.{name}" in documented:
            return True
        # tokenproviders.testing.fakes re-exports part of the kit documented under testing.
        return (
            module == "tokenproviders.testing.fakes"
            and f"tokenproviders.testing.{name}" in documented
            and getattr(imported, name) is getattr(tokenproviders.testing, name)
        )

    missing = [name for name in imported.__all__ if not documented_as(name)]
    assert not missing, f"not in the API reference (docs/reference/): {missing}"


def test_every_hook_spec_is_documented(site: Path) -> None:
    from tokenproviders import hookspecs

    documented = _inventory(site)
    for name in hookspecs.__all__:
        if name.startswith("tokenproviders_"):
            assert f"tokenproviders.hookspecs.{name}" in documented, name


def test_internal_links_resolve(site: Path) -> None:
    assert broken_links(site) == []


def test_the_link_check_finds_a_broken_link(site: Path, tmp_path: Path) -> None:
    copy = tmp_path / "html"
    shutil.copytree(site, copy)
    index = copy / "index.html"
    index.write_text(
        index.read_text(encoding="utf-8").replace("</body>", '<a href="guide/nowhere.html#x">x</a>'
                                                   '<a href="#no-such-anchor">y</a></body>'),
        encoding="utf-8",
    )
    problems = broken_links(copy)
    assert len(problems) == 2, problems


def test_every_installed_tracker_type_has_a_page_with_its_fields(site: Path) -> None:
    from tokenproviders import create_plugins

    types = create_plugins().tracker_types
    assert types, "no tracker type is installed where the docs were built"
    for name, tracker_type in types.items():
        page = site / "trackers" / f"{name}.html"
        assert page.is_file(), f"no documentation page for tracker type {name!r} (docs/trackers/{name}.md)"
        html = page.read_text(encoding="utf-8")
        assert "tracker-fields" in html, f"the {name} page does not show its declared fields"
        for field in tracker_type.fields:
            assert field.name in html


def test_cli_reference_lists_every_command(site: Path) -> None:
    pytest.importorskip("click")
    from tokenproviders.cli._commands import cli

    html = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"tokenproviders {name}" in html, f"`tokenproviders {name}` is missing from the CLI reference"


_PROBE = """
<script>
window.addEventListener("load", function () {
  var out = {found: false};
  var el = document.querySelector("#resolution-order-diagram object, #resolution-order-diagram img,"
                                  + " .graphviz object, .graphviz img");
  if (el) {
    var box = el.getBoundingClientRect();
    out = {found: true, tag: el.tagName, width: box.width, height: box.height};
    try {
      var doc = el.contentDocument;
      var svg = doc ? doc.documentElement : null;
      if (svg && svg.getBBox) {
        var inner = svg.getBBox();
        out.svgWidth = inner.width;
        out.svgHeight = inner.height;
        out.text = Array.prototype.map.call(svg.querySelectorAll("text"), function (t) {
          return t.textContent; }).join(" ");
      } else if (el.naturalWidth !== undefined) {
        out.svgWidth = el.naturalWidth;
        out.svgHeight = el.naturalHeight;
      }
    } catch (e) { out.error = String(e); }
  }
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def test_resolution_diagram_renders_with_nonzero_size(site: Path, chromium: str, tmp_path: Path) -> None:
    copy = tmp_path / "html"
    shutil.copytree(site, copy)
    probe = copy / "probe-index.html"
    probe.write_text(
        (copy / "index.html").read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            *chromium_args(chromium, tmp_path / "profile"),
            "--allow-file-access-from-files",  # lets the probe read the SVG inside <object>
            "--window-size=1280,2400",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', result.stdout, re.DOTALL)
    assert match, f"chromium printed no probe result (exit {result.returncode}):\n{result.stderr[-2000:]}"
    found = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert found["found"], "no graphviz diagram element on the landing page"
    assert found["width"] > 100 and found["height"] > 100, found
    assert found.get("svgWidth", 0) > 100 and found.get("svgHeight", 0) > 100, found
    for words in ("NotAuthorizedError", "personal tokens", "bot credentials", "NoCredentialsError"):
        assert words in found.get("text", ""), (words, found)


def test_landing_page_screenshot_is_not_blank(site: Path, chromium: str, tmp_path: Path) -> None:
    shot = tmp_path / "landing.png"
    subprocess.run(
        [*chromium_args(chromium, tmp_path / "profile"), "--window-size=1280,900",
         f"--screenshot={shot}", (site / "index.html").as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000, "chromium wrote no (or an empty) screenshot"
