"""Developer tasks. ``nox`` runs tests, lint and typecheck; ``nox -s demo`` runs the demo."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
PLUGINS = sorted(p for p in (ROOT / "plugins").glob("tokenproviders-*") if (p / "pyproject.toml").exists())
TEST_FIXTURE_DISTS = sorted(
    p for p in (ROOT / "tests" / "distributions").glob("*") if (p / "pyproject.toml").exists()
)
TEST_DEPS = ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3", "pytest-xdist>=3.5"]
CLI_EXTRA = ".[cli,postgresql]"


def _install_project(session: nox.Session, *, with_fixtures: bool = False) -> None:
    session.install("-e", CLI_EXTRA)
    for plugin in PLUGINS:
        session.install("-e", str(plugin))
    if with_fixtures:
        for dist in TEST_FIXTURE_DISTS:
            session.install(str(dist))


@nox.session
def tests(session: nox.Session) -> None:
    """Every test: the core, the test fixtures, and each plugin's own tests."""
    session.install(*TEST_DEPS)
    _install_project(session, with_fixtures=True)
    paths = ["tests", *[str(p / "tests") for p in PLUGINS if (p / "tests").is_dir()]]
    # One worker per core; a module's tests stay on one worker (module-scoped fake servers).
    session.run("pytest", *(session.posargs or ["-n", "auto", "--dist", "loadfile", *paths]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy: strict on the core (pyproject), and over each plugin's source."""
    session.install("mypy>=1.10", *TEST_DEPS)
    _install_project(session)
    session.run("mypy")
    for plugin in [*PLUGINS, ROOT / "docs" / "examples" / "tokenproviders-youtrack"]:
        src = plugin / "src"
        if src.is_dir():
            session.run("mypy", "--strict", "--ignore-missing-imports", str(src))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios against baselines measured in the same run.

    ``nox -s bench`` runs every ``benchmarks/bench_*.py`` with its defaults;
    ``nox -s bench -- store --tokens 100000`` runs one of them (resolve, report, store) with
    those arguments.
    """
    _install_project(session)
    scripts = {p.stem.removeprefix("bench_"): p for p in sorted((ROOT / "benchmarks").glob("bench_*.py"))}
    if session.posargs:
        name, *args = session.posargs
        if name not in scripts:
            session.error(f"unknown benchmark {name!r}; choose one of: {', '.join(scripts)}")
        session.run("python", str(scripts[name]), *args)
        return
    for script in scripts.values():
        session.run("python", str(script))


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a demo of personal tokens overriding the bot, explained."""
    _install_project(session)
    session.run("tokenproviders", "demo", *session.posargs)


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing of the security logic, on demand (not in the default sessions or CI).

    ``nox -s mutation`` runs every target; ``nox -s mutation -- policy crypto`` runs those
    (urls, sources, policy, resolver, plugins, crypto), each against the few test files that
    cover it, and prints killed and surviving mutants per module. ``-- --list -v policy`` lists
    the mutants without running them. See docs/mutation.md.
    """
    session.install(*TEST_DEPS)
    _install_project(session)
    session.run("python", "tools/mutation.py", *session.posargs)


DOCS_DEPS = ["sphinx>=7.2", "furo>=2024.1.29", "myst-parser>=3", "sphinx-click>=6"]


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: build with -W, check internal links, run doctests and site tests."""
    session.install(*DOCS_DEPS, *TEST_DEPS)
    _install_project(session)
    build = ROOT / "docs" / "_build"
    html = build / "html"
    session.run("sphinx-build", "-E", "-W", "--keep-going", "-b", "html", "docs", str(html))
    session.run("python", "docs/_tools/check_links.py", str(html))
    session.run("sphinx-build", "-E", "-W", "--keep-going", "-q", "-b", "doctest", "docs", str(build / "doctest"))
    # The snippets the guides include, API coverage, tracker pages, and the diagram in Chromium.
    session.run("pytest", "tests/docs", *session.posargs, env={"TOKENPROVIDERS_DOCS_HTML": str(html)})


if os.environ.get("CI"):
    nox.options.reuse_existing_virtualenvs = False
