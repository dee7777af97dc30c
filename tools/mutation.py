"""Mutation testing of the security logic: do the tests fail when the code is subtly wrong?

Run it through nox: ``nox -s mutation`` (every target) or ``nox -s mutation -- policy crypto``.
Each target names one module, the part of it that is mutated, and the few test files that cover
it. Every mutant changes one thing:

- a comparison (``==``/``!=``, ``<``/``>=``, ``<``/``<=``, ``is``/``is not``, ``in``/``not in``),
- ``and``/``or``, a dropped ``not``, a negated ``if``/``while`` condition,
- a constant (``True``/``False``, an integer +1 and -1, an identifier-like string or any bytes
  made empty),
- a returned value (``return None``),
- a deleted ``raise`` or a deleted call statement (``pass`` in its place),
- a call ``f(x)`` replaced by its argument ``x`` (a dropped copy or conversion),
- ``+``/``-``, and a slice bound shifted by one either way.

Strings with whitespace in them are prose (messages, hints) and are not mutated, nor are
docstrings, annotations or f-strings.

Each mutant runs in a forked child of this process, which imports pytest and hypothesis once;
an import hook hands the child the mutated source of the target module, so nothing is written
to disk and other work in the same tree is never disturbed. A mutant is *killed* when the
target's tests fail (or time out), and *survives* when they pass. Survivors listed in
``docs/mutation.md`` (by the key this tool prints) are equivalent mutants, kept in the score
but reported apart; the run fails when a target kills less than ``--fail-under`` percent or
leaves a survivor that the page does not explain.

Plain ``python tools/mutation.py`` works in any environment with the project and its test
dependencies installed (editable or not).
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import json
import os
import re
import select
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS_PAGE = ROOT / "docs" / "mutation.md"


@dataclass(frozen=True)
class Target:
    """One module under mutation: ``scope`` names the functions, classes (every method) or
    module-level constants mutated (empty: the whole module); ``tests`` cover them."""

    name: str
    module: str
    scope: tuple[str, ...]
    tests: tuple[str, ...]
    #: Slow tests left out of the mutation runs (node ids), each with what covers it instead.
    deselect: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return ROOT / "src" / Path(*self.module.split(".")).with_suffix(".py")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target(
            "urls",
            "tokenproviders.urls",
            (),
            ("tests/core/test_urls.py", "tests/core/test_urls_and_model.py"),
        ),
        Target(
            "sources",
            "tokenproviders.sources",
            (),
            (
                "tests/core/test_resolve_order.py",
                "tests/core/test_policies.py",
                "tests/core/test_resolve_path.py",
                "tests/core/test_sources.py",
                "tests/core/test_endpoint_rule.py",
                "tests/core/test_hardening.py",
                "tests/core/test_fast_paths.py",
            ),
        ),
        Target(
            "policy",
            "tokenproviders.policy",
            (),
            ("tests/core/test_policies.py", "tests/core/test_policy_rules.py"),
        ),
        Target(
            # The resolve path: what decides the credentials and which cached clients survive it.
            "resolver",
            "tokenproviders.resolver",
            (
                "ClientCache",
                "Resolver.resolve",
                "Resolver._resolve",
                "Resolver._no_credentials",
                "Resolver._with_fallback",
                "Resolver._personal_candidates",
                "MAX_PERSONAL_CANDIDATES",
            ),
            (
                "tests/core/test_resolve_order.py",
                "tests/core/test_policies.py",
                "tests/core/test_clients.py",
                "tests/core/test_resolve_path.py",
                "tests/store/test_audit_trail.py",
                "tests/core/test_hardening.py",
                "tests/core/test_fast_paths.py",
            ),
        ),
        Target(
            # The credentials dispatch: resolve_credentials and the hook calls it makes.
            "plugins",
            "tokenproviders.plugins",
            ("Plugins.resolve_credentials",),
            (
                "tests/core/test_resolve_order.py",
                "tests/core/test_resolve_path.py",
                "tests/core/test_hardening.py",
                "tests/core/test_policies.py",
            ),
        ),
        Target(
            # Sealing, opening, blob headers, associated data and the key ring's keys.
            "crypto",
            "tokenproviders.crypto",
            (
                "_AAD_LABEL",
                "_CHECK_LABEL",
                "_TOKEN_AAD_PREFIX",
                "_KEY_ID",
                "AssociatedData",
                "_encoded_part",
                "encode_token_aad",
                "_header",
                "blob_key_id",
                "_parse",
                "KeyRing.check_value",
                "KeyRing._install",
                "KeyRing.seal",
                "KeyRing.open_secret",
                "KeyRing.open",
                "KeyRing._missing",
                "KeyRing.set_primary",
                "KeyRing.retire",
                "KeyRing.add_key",
                "KeyRing.__contains__",
            ),
            ("tests/store/test_crypto.py", "tests/store/test_key_lifecycle.py", "tests/core/test_fast_paths.py"),
            # Seconds each; the round trips and nonce sizes are also checked by fast tests.
            (
                "tests/store/test_crypto.py::test_100k_nonces_never_repeat",
                "tests/store/test_crypto.py::test_round_trip_property",
            ),
        ),
    ]
}

# -- mutants ---------------------------------------------------------------------------------

_NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}


@dataclass(frozen=True)
class Mutant:
    """One change: ``source`` is the whole mutated module."""

    scope: str
    operator: str
    line: int
    before: str
    after: str
    source: str
    #: Source lines of the change and of the statement holding it (tests that run any of them).
    lines: frozenset[int] = frozenset()
    #: Runs when the module is imported (a constant, a class body, a decorator, a default).
    import_time: bool = False
    #: 1, 2, ... when the same change can be made at several places of one scope.
    occurrence: int = 0

    @property
    def key(self) -> str:
        """How docs/mutation.md names it: stable while the code around it does not change."""
        suffix = f" #{self.occurrence}" if self.occurrence else ""
        return f"{self.scope}: {self.before} -> {self.after}{suffix}"


def _one_line(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Spans:
    """Byte offsets of an ast node's source (``col_offset`` counts UTF-8 bytes)."""

    def __init__(self, source: str) -> None:
        self.data = source.encode("utf-8")
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.data[start:end].decode("utf-8")

    def replace(self, node: ast.AST, text: str) -> str:
        start, end = self.span(node)
        return (self.data[:start] + text.encode("utf-8") + self.data[end:]).decode("utf-8")


def _is_prose(value: str) -> bool:
    return any(ch.isspace() for ch in value)


def _scoped_nodes(tree: ast.Module, scope: Sequence[str]) -> Iterator[tuple[str, ast.AST]]:
    """(qualified name, node) for every definition or module-level assignment in scope."""

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.AST]]:
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + stmt.name
                if not scope or name in scope or any(name.startswith(s + ".") for s in scope):
                    yield name, stmt
                elif isinstance(stmt, ast.ClassDef):
                    yield from walk(stmt.body, name + ".")
            elif prefix == "" and isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names and names[0] != "__all__" and (not scope or names[0] in scope):
                    yield names[0], stmt

    yield from walk(tree.body, "")


def _skipped_nodes(root: ast.AST) -> set[int]:
    """Ids of nodes never mutated: docstrings, annotations, f-strings and what they hold."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(root):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip(body[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip(node.returns)
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                skip(arg.annotation)
            skip(node.args.vararg.annotation if node.args.vararg else None)
            skip(node.args.kwarg.annotation if node.args.kwarg else None)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        elif isinstance(node, ast.JoinedStr):
            skip(node)
    return skipped


def _runtime_nodes(root: ast.AST) -> tuple[set[int], dict[int, int]]:
    """Ids of the nodes that run only when a function is called (not at import), and the first
    line of the statement that holds each node."""
    runtime: set[int] = set()
    statement_of: dict[int, int] = {}

    def visit(node: ast.AST, in_call: bool, statement: int) -> None:
        if isinstance(node, ast.stmt):
            statement = node.lineno
        statement_of[id(node)] = statement
        if in_call:
            runtime.add(id(node))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            body = node.body if isinstance(node.body, list) else [node.body]
            for child in ast.iter_child_nodes(node):
                visit(child, in_call or any(child is b for b in body), statement)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, in_call, statement)

    visit(root, False, getattr(root, "lineno", 0))
    return runtime, statement_of


def _changes(node: ast.AST, spans: _Spans) -> Iterator[tuple[str, ast.AST, str]]:
    """(operator, node replaced, replacement text) for one node."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for table, name in ((_NEGATED, "negate comparison"), (_BOUNDARY, "comparison boundary")):
                new_op = table.get(type(op))
                if new_op is not None:
                    ops = [*node.ops[:i], new_op(), *node.ops[i + 1 :]]
                    yield name, node, ast.unparse(ast.Compare(node.left, ops, node.comparators))
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "and/or", node, ast.unparse(ast.BoolOp(other, node.values))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop not", node, ast.unparse(node.operand)
    elif isinstance(node, ast.If | ast.While) and not isinstance(node.test, ast.Compare | ast.BoolOp | ast.UnaryOp):
        yield "negate condition", node.test, f"not ({spans.text(node.test)})"
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "constant", node, repr(not value)
        elif isinstance(value, int):
            yield "constant", node, repr(value + 1)
            yield "constant", node, repr(value - 1)
        elif isinstance(value, bytes) and value:
            yield "constant", node, 'b""'
        elif isinstance(value, str) and value and not _is_prose(value):
            yield "constant", node, '""'
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return None", node, "return None"
    elif isinstance(node, ast.Raise):
        yield "delete raise", node, "pass"
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "delete call", node, "pass"
    elif isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        if not isinstance(node.args[0], ast.Starred):
            yield "unwrap call", node, spans.text(node.args[0])
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        arith: ast.operator = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        yield "+/-", node, ast.unparse(ast.BinOp(node.left, arith, node.right))
    elif isinstance(node, ast.Slice):
        for bound in (node.lower, node.upper):
            if bound is not None:
                yield "slice bound", bound, f"{spans.text(bound)} + 1"
                yield "slice bound", bound, f"{spans.text(bound)} - 1"


def mutants(target: Target, source: str | None = None) -> list[Mutant]:
    """Every distinct, compilable mutant of the target's scope."""
    source = target.path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(source)
    spans = _Spans(source)
    original = ast.dump(tree)
    seen: set[str] = set()
    found: list[Mutant] = []
    for qualname, root in _scoped_nodes(tree, target.scope):
        skipped = _skipped_nodes(root)
        runtime, statement_of = _runtime_nodes(root)
        for node in ast.walk(root):
            if id(node) in skipped:
                continue
            for operator, replaced, text in _changes(node, spans):
                is_statement = isinstance(replaced, ast.stmt)
                mutated = spans.replace(replaced, text if is_statement else f"({text})")
                try:
                    dumped = ast.dump(ast.parse(mutated))
                except SyntaxError:
                    continue
                if dumped == original or dumped in seen:
                    continue
                seen.add(dumped)
                before = spans.text(replaced)
                start, end = replaced.lineno, replaced.end_lineno or replaced.lineno  # type: ignore[attr-defined]
                holder = statement_of.get(id(replaced), start)
                found.append(
                    Mutant(
                        scope=qualname,
                        operator=operator,
                        line=start,
                        before=_one_line(before),
                        after=_one_line(text),
                        source=mutated,
                        lines=frozenset({holder, *range(start, end + 1)}),
                        import_time=id(replaced) not in runtime,
                    )
                )
    found.sort(key=lambda m: m.line)
    same = Counter(m.key for m in found)
    seen_keys: Counter[str] = Counter()
    numbered = []
    for m in found:
        if same[m.key] > 1:
            seen_keys[m.key] += 1
            m = replace(m, occurrence=seen_keys[m.key])
        numbered.append(m)
    return numbered


# -- running ---------------------------------------------------------------------------------


class _MutatedSource(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module's (mutated) source instead of the file, under the file's name."""

    def __init__(self, module: str, path: Path, source: str) -> None:
        self.module, self.path, self.source = module, path, source

    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.path))

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = str(self.path)
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)  # noqa: S102


COLLECTING = "<collection>"


class _Coverage:
    """A pytest plugin recording which tests run which lines of one file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.current: str | None = None
        self.lines: dict[int, list[str]] = {}
        self.order: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> None:
        self.current = item.nodeid
        self.order.append(item.nodeid)

    def _trace(self, frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code.co_filename != self.path:
            return None
        self._line(frame, event, arg)
        return self._line

    def _line(self, frame: FrameType, event: str, arg: object) -> Any:
        # Lines run while the test modules are imported count for every test (COLLECTING).
        current = self.current if self.current is not None else COLLECTING
        tests = self.lines.setdefault(frame.f_lineno, [])
        if not tests or tests[-1] != current:
            tests.append(current)
        return self._line

    def start(self) -> None:
        sys.settrace(self._trace)
        threading.settrace(self._trace)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"order": self.order, "lines": self.lines}), encoding="utf-8")


def _start(
    target: Target, source: str, tests: Sequence[str], log: Path | None = None, coverage: Path | None = None
) -> tuple[int, int]:
    """Fork a child that runs the tests against ``source``; return (pid, read end of its output).
    With ``coverage``, record there which tests run which lines of the target."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end
    code = 3
    try:
        os.close(read_end)
        os.setpgid(0, 0)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if log else os.open(os.devnull, os.O_WRONLY)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        sys.meta_path.insert(0, _MutatedSource(target.module, target.path, source))
        args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "--assert=plain", *tests]
        args += [f"--deselect={node}" for node in target.deselect]
        if coverage is None:
            code = int(pytest.main(args))
        else:
            recorder = _Coverage(target.path)
            recorder.start()
            code = int(pytest.main(args, plugins=[recorder]))
            sys.settrace(None)
            recorder.save(coverage)
    except BaseException:  # noqa: BLE001 - whatever happens, the child must end here
        code = 3
    finally:
        os.write(write_end, b"done")
        os._exit(code)


def _wait(pid: int, read_end: int, timeout: float) -> int | None:
    """The child's exit code, or None when it ran past ``timeout`` (it is killed)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([read_end], [], [], max(remaining, 0))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            os.close(read_end)
            return os.waitstatus_to_exitcode(status)
        if not ready and remaining <= 0:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            return None
        if ready:
            os.read(read_end, 16)
            time.sleep(0.01)


@dataclass
class Result:
    target: Target
    killed: list[Mutant] = field(default_factory=list)
    timed_out: list[Mutant] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.killed) + len(self.timed_out) + len(self.survived)

    @property
    def score(self) -> float:
        return 100.0 * (len(self.killed) + len(self.timed_out)) / self.total if self.total else 100.0


def documented_equivalents(page: Path = DOCS_PAGE) -> set[str]:
    """Keys of the mutants docs/mutation.md explains as equivalent (one per ``<code>`` cell)."""
    if not page.exists():
        return set()
    _, _, section = page.read_text(encoding="utf-8").partition("## Equivalent mutants")
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))


def run(target: Target, jobs: int, only_lines: set[int] | None = None, verbose: bool = False) -> Result:
    source = target.path.read_text(encoding="utf-8")
    tests = [t for t in target.tests if (ROOT / t).exists()]
    started = time.monotonic()
    log_dir = ROOT / ".mutation"
    log_dir.mkdir(exist_ok=True)
    coverage_file = log_dir / f"{target.name}-coverage.json"
    coverage_file.unlink(missing_ok=True)
    pid, out = _start(target, source, tests, log_dir / f"{target.name}-baseline.log", coverage_file)
    if _wait(pid, out, 1200) != 0:
        log = f".mutation/{target.name}-baseline.log"
        raise SystemExit(f"{target.name}: the tests fail without any mutation; see {log}")
    baseline = time.monotonic() - started
    # The hook must be what the tests import: a module that cannot import must fail them.
    pid, out = _start(target, source + "\nraise ImportError('mutation canary')\n", tests)
    if _wait(pid, out, 600) == 0:
        raise SystemExit(f"{target.name}: the tests do not import {target.module} through the mutation hook")
    timeout = max(60.0, 4 * baseline)
    covered = json.loads(coverage_file.read_text(encoding="utf-8"))
    order = {node: i for i, node in enumerate(covered["order"])}
    by_line = {int(line): nodes for line, nodes in covered["lines"].items()}
    todo = [m for m in mutants(target, source) if only_lines is None or m.line in only_lines]
    print(f"{target.name}: {len(todo)} mutants, {len(tests)} test files, baseline {baseline:.1f}s", flush=True)
    result = Result(target)

    def tests_of(mutant: Mutant) -> list[str]:
        """The tests that run the mutated lines, in suite order; all of them for code that runs
        at import or while the tests are collected."""
        nodes = {node for line in mutant.lines for node in by_line.get(line, ())}
        if mutant.import_time or COLLECTING in nodes:
            return tests
        return sorted(nodes, key=order.__getitem__)

    running: list[tuple[int, int, Mutant]] = []
    queue = list(todo)
    done = 0
    try:
        while queue or running:
            while queue and len(running) < jobs:
                mutant = queue.pop(0)
                selected = tests_of(mutant)
                if not selected:
                    # No test runs this line: it survives without a run.
                    result.survived.append(mutant)
                    done += 1
                    if verbose:
                        print(f"  [{done}/{len(todo)}] line {mutant.line}: {mutant.key}: SURVIVED (no test runs it)")
                    continue
                pid, out = _start(target, mutant.source, selected)
                running.append((pid, out, mutant))
            if not running:
                continue
            pid, out, mutant = running[0]
            code = _wait(pid, out, timeout)
            running.pop(0)
            done += 1
            _record(result, mutant, code)
            if verbose:
                state = "timeout" if code is None else ("SURVIVED" if code == 0 else "killed")
                print(f"  [{done}/{len(todo)}] line {mutant.line}: {mutant.key}: {state}", flush=True)
    finally:
        for pid, _, _ in running:  # interrupted: no child may outlive the run
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return result


def _record(result: Result, mutant: Mutant, code: int | None) -> None:
    # pytest exits 1 when a test fails, 2 when interrupted or collection fails (a mutant that
    # breaks an import), 3 on an internal error: each is a failing run, so the mutant is killed.
    if code is None:
        result.timed_out.append(mutant)
    elif code == 0:
        result.survived.append(mutant)
    else:
        result.killed.append(mutant)


def report(results: Sequence[Result], fail_under: float) -> int:
    documented = documented_equivalents()
    failed = False
    print()
    print(f"{'target':<10} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'explained':>9} {'score':>7}")
    for result in results:
        explained = sum(1 for m in result.survived if m.key in documented)
        print(
            f"{result.target.name:<10} {result.total:>7} {len(result.killed):>7} {len(result.timed_out):>7}"
            f" {len(result.survived):>8} {explained:>9} {result.score:>6.1f}%"
        )
    for result in results:
        killed_but_listed = [m for m in (*result.killed, *result.timed_out) if m.key in documented]
        if killed_but_listed:
            print(f"\n{result.target.name}: killed now, so no longer to be listed in docs/mutation.md:")
            for m in killed_but_listed:
                print(f"  line {m.line} `{m.key}`")
        unexplained = [m for m in result.survived if m.key not in documented]
        if result.score < fail_under:
            failed = True
            print(f"\n{result.target.name}: {result.score:.1f}% killed, under {fail_under:.0f}%")
        if unexplained:
            failed = True
            print(f"\n{result.target.name}: survivors not explained in docs/mutation.md:")
            for m in unexplained:
                print(f"  line {m.line} [{m.operator}] `{m.key}`")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"targets to run (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--fail-under", type=float, default=90.0, help="lowest kill percentage accepted")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests; run nothing")
    parser.add_argument("--lines", help="only mutants on these lines (comma-separated), for one target")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each mutant's outcome")
    parser.add_argument(
        "--deselect", action="append", default=[], metavar="NODE", help="leave this test out too (repeatable)"
    )
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    chosen = [TARGETS[t] for t in args.targets] or list(TARGETS.values())
    chosen = [replace(t, deselect=(*t.deselect, *args.deselect)) for t in chosen]
    only_lines = {int(n) for n in args.lines.split(",")} if args.lines else None
    os.chdir(ROOT)
    if args.list:
        for target in chosen:
            found = mutants(target)
            counts = Counter(m.operator for m in found)
            print(f"{target.name}: {len(found)} mutants ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
            print(f"  tests: {' '.join(target.tests)}")
            if args.verbose:
                for m in found:
                    print(f"  line {m.line} [{m.operator}] {m.key}")
        return 0
    # Loaded once here, so that each forked child starts with it (pytest is already: ~1.5 s a run).
    import hypothesis  # noqa: F401

    if any(name == "tokenproviders" or name.startswith("tokenproviders.") for name in sys.modules):
        raise SystemExit("tokenproviders must not be imported before the mutants run")
    # A terminated run ends through its finally clauses, which stop the children it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results = [run(target, args.jobs, only_lines, args.verbose) for target in chosen]
    return report(results, args.fail_under)


if __name__ == "__main__":
    sys.exit(main())
