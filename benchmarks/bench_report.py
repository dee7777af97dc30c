"""Benchmark of the warm 1-click bug report for each tracker type, against its fake (DESIGN section 8).

For every known tracker type whose plugin is installed (the others are skipped and listed), this
builds a resolver with alice's personal token for a tracker on the type's fake server, and measures:

* HTTP requests: whoami, the cold report (the client is built first), the warm report (cached
  client) and a comment, counted by the fake. The warm report must cost the tracker's minimum, one
  request, with no per-call server-info probe.
* wall time of ``--reports`` warm reports through ``Resolver.report_issue`` (median and p99), and
  a baseline measured in the same run: the very same HTTP request (method, path, auth header and
  body, as the fake recorded it) replayed with one raw ``requests.Session``. The ratio is what to
  compare across machines; it shows what resolution, the client library and the plugin add.

Run: ``python benchmarks/bench_report.py`` (``--reports 50`` for a quicker run,
``--types redmine bugzilla`` for some types only). The fakes run on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tokenproviders import (
    ClientSettings,
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Resolver,
    Secret,
    Tracker,
    UnknownTrackerTypeError,
)
from tokenproviders.testing.fakes import (
    FakeAzureBoards,
    FakeBugzilla,
    FakeGitHub,
    FakeGitLab,
    FakeJira,
    FakeRedmine,
    FakeTracker,
    RecordedRequest,
)
from tokenproviders.testing.world import register_on_fake

#: The fewest HTTP requests a report can cost on each tracker: one create call.
MINIMUM_REQUESTS = 1


@dataclass(frozen=True)
class Scenario:
    """How to point one tracker type at its fake."""

    fake: type[FakeTracker]
    base_url: Callable[[str], str]
    api_url: Callable[[str], str | None] = lambda url: None
    options: dict[str, Any] = field(default_factory=dict)
    username: str | None = None  # alice's api_username, if the kind of credentials needs one


SCENARIOS: dict[str, Scenario] = {
    "jira": Scenario(FakeJira, lambda url: url, options={"project": "PROJ"}),
    "github": Scenario(FakeGitHub, lambda url: f"{url}/octo/widgets"),
    "gitlab": Scenario(FakeGitLab, lambda url: f"{url}/group/widgets", api_url=lambda url: url),
    "redmine": Scenario(FakeRedmine, lambda url: url, options={"project": "webshop"}),
    "bugzilla": Scenario(FakeBugzilla, lambda url: url, options={"product": "Widgets", "component": "UI"}),
    "azureboards": Scenario(FakeAzureBoards, lambda url: f"{url}/contoso/WebShop"),
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def replay(session: requests.Session, fake: FakeTracker, recorded: RecordedRequest) -> None:
    """Send ``recorded`` again, byte for byte where it matters, with a plain requests session."""
    skip = {"host", "content-length", "connection", "accept-encoding", "user-agent"}
    headers = {k: v for k, v in recorded.headers if k.lower() not in skip}
    params = [(k, v) for k, values in recorded.query.items() for v in values]
    response = session.request(
        recorded.method, fake.url + recorded.raw_path, params=params, headers=headers, data=recorded.body, timeout=10
    )
    response.raise_for_status()


@dataclass
class Result:
    type_name: str
    whoami: int
    cold: int
    warm: int
    comment: int
    median_ms: float
    p99_ms: float
    baseline_median_ms: float
    baseline_p99_ms: float


def bench(type_name: str, scenario: Scenario, plugins: Plugins, reports: int) -> Result:
    with scenario.fake() as fake:
        alice = Credentials(api_password=Secret(f"bench-{type_name}-alice-token"), api_username=scenario.username)
        register_on_fake(fake, "alice", alice)
        tracker = Tracker(
            tenant="acme",
            id=type_name,
            type=type_name,
            base_url=scenario.base_url(fake.url),
            api_url=scenario.api_url(fake.url),
            options=scenario.options,
        )
        directory = MemoryDirectory(memberships=[("alice", "acme")], trackers=[tracker])
        resolver = Resolver(
            directory, MemoryTokenStore(), plugins=plugins, settings=ClientSettings(timeout=10, retries=0)
        )
        resolver.tokens.set(owner="alice", url=tracker.base_url, scope="acme", credentials=alice)

        def count(action: Callable[[], object]) -> int:
            fake.clear()
            action()
            return len(fake.requests)

        cold = count(lambda: resolver.report_issue("alice", tracker, title="cold report"))
        whoami = count(lambda: resolver.verify("alice", tracker))
        issue = resolver.report_issue("alice", tracker, title="to comment on")
        comment = count(lambda: resolver.add_comment("alice", tracker, issue.id, "a comment"))
        warm = count(lambda: resolver.report_issue("alice", tracker, title="warm report"))
        create = fake.requests[-1]

        timings: list[float] = []
        for n in range(reports):
            start = time.perf_counter()
            resolver.report_issue("alice", tracker, title=f"bench {n}", body="Steps to reproduce: run the benchmark.")
            timings.append(time.perf_counter() - start)

        session = requests.Session()
        replay(session, fake, create)  # open the connection, as the warm client has one
        baseline: list[float] = []
        for _ in range(reports):
            start = time.perf_counter()
            replay(session, fake, create)
            baseline.append(time.perf_counter() - start)
        session.close()

    return Result(
        type_name,
        whoami,
        cold,
        warm,
        comment,
        statistics.median(timings) * 1000,
        percentile(timings, 0.99) * 1000,
        statistics.median(baseline) * 1000,
        percentile(baseline, 0.99) * 1000,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=200, help="warm reports per type (default 200)")
    parser.add_argument("--types", nargs="*", default=sorted(SCENARIOS), help="tracker types to measure")
    args = parser.parse_args(argv)

    plugins = Plugins()
    results: list[Result] = []
    skipped: list[str] = []
    failed: list[str] = []
    for type_name in args.types:
        scenario = SCENARIOS.get(type_name)
        if scenario is None:
            skipped.append(f"{type_name} (no scenario in this benchmark)")
            continue
        try:
            plugins.tracker_type(type_name)
        except UnknownTrackerTypeError:
            skipped.append(f"{type_name} (plugin not installed)")
            continue
        try:
            results.append(bench(type_name, scenario, plugins, args.reports))
        except Exception as exc:  # noqa: BLE001 - one broken type must not hide the others' numbers
            failed.append(f"{type_name}: {type(exc).__name__}: {str(exc)[:200]}")

    print(f"warm 1-click report, {args.reports} reports per type, fakes on 127.0.0.1")
    print(
        f"{'type':<12} {'whoami':>6} {'cold':>5} {'warm':>5} {'comment':>7}"
        f" {'median ms':>10} {'p99 ms':>8} {'baseline ms':>12} {'base p99':>9} {'ratio':>6}"
    )
    for r in results:
        ratio = r.median_ms / r.baseline_median_ms if r.baseline_median_ms else float("nan")
        print(
            f"{r.type_name:<12} {r.whoami:>6} {r.cold:>5} {r.warm:>5} {r.comment:>7}"
            f" {r.median_ms:>10.2f} {r.p99_ms:>8.2f} {r.baseline_median_ms:>12.2f} {r.baseline_p99_ms:>9.2f}"
            f" {ratio:>6.2f}"
        )
    print("(whoami/cold/warm/comment: HTTP requests each; baseline: the same create request replayed with requests)")
    over = [r.type_name for r in results if r.warm > MINIMUM_REQUESTS]
    if over:
        print(f"ABOVE THE MINIMUM of {MINIMUM_REQUESTS} request per warm report: {', '.join(over)}")
    for line in skipped:
        print(f"skipped: {line}")
    for line in failed:
        print(f"FAILED: {line}")
    return 1 if over or failed else 0


if __name__ == "__main__":
    sys.exit(main())
