"""docs/plugin-authors.md documents every hook with its full signature, and quotes only code that
tests run (the example plugin, and tests/plugin_kit)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from tokenproviders import hookspecs
from tokenproviders.testing import pytest_plugin
from tokenproviders.testing.contract import TrackerTypeContract

from .contract_runner import EXAMPLE, ROOT

DOCS = ROOT / "docs"
GUIDE = DOCS / "plugin-authors.md"
#: Quoted code must live where tests run it: the example plugin (its contract suite runs in
#: test_contract_catches.py and, installed, in test_example_readme.py) or tests/plugin_kit.
TESTED_ROOTS = (EXAMPLE, ROOT / "tests" / "plugin_kit")
LITERALINCLUDE = re.compile(
    r"^```\{literalinclude\}[ \t]+(?P<path>\S+)\n(?P<options>(?::[^\n]*\n)*)```$", re.MULTILINE
)
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
#: Every hook specification in the module, found by pluggy's marker (not by a hand-kept list).
HOOK_NAMES = [
    name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT_NAME}_spec")
]


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    match = re.search(rf"^(?P<level>#+) {re.escape(heading)}\n", text, re.MULTILINE)
    assert match is not None, f"no heading {heading!r}"
    level = len(match["level"])
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def full_signature(name: str) -> str:
    """``def name(arg: Type) -> Return`` exactly as hookspecs.py spells it."""
    signature = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"def {name}({params}) -> {signature.return_annotation}"


def test_every_hookspec_is_found() -> None:
    assert set(HOOK_NAMES) == {name for name in hookspecs.__all__ if name.startswith("tokenproviders_")}
    assert len(HOOK_NAMES) >= 4


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_is_documented_with_its_full_signature(name: str) -> None:
    reference = section(guide(), name)
    assert full_signature(name) in reference, f"docs/plugin-authors.md lacks: {full_signature(name)}"
    spec = getattr(getattr(hookspecs, name), f"{hookspecs.PROJECT_NAME}_spec")
    if spec.get("firstresult"):
        assert "`firstresult`" in reference, f"{name} is firstresult; its section must say so"


def test_the_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = set(re.findall(r"^def (tokenproviders_\w+)\(", section(guide(), "Hook reference"), re.MULTILINE))
    assert documented == set(HOOK_NAMES)


def test_python_code_appears_only_as_quoted_files_or_hook_signatures() -> None:
    """Every other sample is a literalinclude of a tested file, so none can go stale."""
    text = guide()
    reference = section(text, "Hook reference")
    for match in FENCE.finditer(text):
        info, body = match["info"].strip(), match["body"]
        if info.startswith("{literalinclude}") or info in ("console", "toml"):
            continue
        assert info == "python", f"unexpected code block {info!r}"
        assert body in reference and re.fullmatch(r"def tokenproviders_\w+\(.*\) -> .+\n", body), body


def quoted() -> list[tuple[str, dict[str, str]]]:
    found = []
    for match in LITERALINCLUDE.finditer(guide()):
        options = dict(re.findall(r'^:([\w-]+):[ \t]*"?(.*?)"?[ \t]*$', match["options"], re.MULTILINE))
        found.append((match["path"], options))
    return found


def test_the_guide_quotes_code() -> None:
    assert len(quoted()) >= 10
    assert len(quoted()) == guide().count("{literalinclude}")


@pytest.mark.parametrize(("path", "options"), quoted(), ids=[f"{p}#{o.get('start-after')}" for p, o in quoted()])
def test_every_quote_comes_from_a_tested_file_and_its_markers_exist(path: str, options: dict[str, str]) -> None:
    # As in Sphinx: a path starting with "/" is relative to the documentation's source folder,
    # which keeps it right when another page includes this guide.
    assert path.startswith("/"), f"{path}: use a source-relative path (starting with /)"
    file = (DOCS / path.lstrip("/")).resolve()
    assert file.is_file(), path
    assert any(file.is_relative_to(root) for root in TESTED_ROOTS), f"{path} is not a file tests run"
    text = file.read_text(encoding="utf-8")
    start, end = options.get("start-after"), options.get("end-before")
    assert start and end, f"{path}: quote a marked region, not the whole file"
    assert text.count(start) == 1, f"{path}: {start!r} must occur exactly once"
    assert text.count(end) == 1, f"{path}: {end!r} must occur exactly once"
    region = text[text.index(start) + len(start) : text.index(end)]
    assert region.strip(), f"{path}: the region between {start!r} and {end!r} is empty"
    assert options.get("language") in ("python", "toml")


def test_every_fixture_is_documented() -> None:
    fixtures = section(guide(), "Fixtures")
    for name in pytest_plugin.__all__:
        assert f"`{name}`" in fixtures, f"fixture {name} is not in the guide's fixture table"


def test_every_contract_declaration_is_documented() -> None:
    contract = section(guide(), "The contract suite")
    declared = [name for name in vars(TrackerTypeContract).get("__annotations__", {}) if not name.startswith("_")]
    assert declared, "TrackerTypeContract declares its attributes with annotations"
    for name in declared:
        assert f"`{name}`" in contract, f"TrackerTypeContract.{name} is not in the guide"


def test_the_guide_says_where_the_example_lives() -> None:
    assert Path("docs/examples/tokenproviders-youtrack").as_posix() in guide()
