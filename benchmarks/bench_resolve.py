"""How long ``Resolver.resolve()`` takes, with many tokens in the memory store.

Two cases: a personal-token hit (the user's tenant-scoped token for the tracker's own URL, the
first candidate) and a bot fallback (the user has no token for the tracker: all four candidates
miss, then the bot source answers). Each is compared with a baseline measured in the same run:
the floor of any pluggy-based design, a ``firstresult`` hook call with a ``tryfirst``
implementation doing one dict lookup of the token and a ``trylast`` one returning a constant.
The bare dict lookup is printed too. Per-call times come from ``time.perf_counter_ns`` (its own
overhead, some tens of nanoseconds, is in every figure alike), after a warm-up, with the
garbage collector paused while measuring.

    python benchmarks/bench_resolve.py [--tokens 100000] [--iterations 20000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pluggy

from tokenproviders import (
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    Plugins,
    Resolver,
    Secret,
    Tracker,
)
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
TENANTS = 10
TRACKERS_PER_TENANT = 100
USERS = 5_000


def build(tokens: int) -> tuple[Resolver, MemoryTokenStore, Tracker, Tracker]:
    """A directory of 10 tenants x 100 trackers, 5,000 users in 2 tenants each, and ``tokens``
    personal tokens spread over users, trackers and scopes."""
    directory = MemoryDirectory()
    trackers: list[Tracker] = []
    for t in range(TENANTS):
        for k in range(TRACKERS_PER_TENANT):
            tracker = Tracker(
                tenant=f"tenant{t}", id=f"repo{k}", type="memory",
                base_url=f"https://git{k % 7}.example.com/tenant{t}/repo{k}",
                bot_credentials=Credentials(api_password=Secret(f"bot-{t}-{k}")),
            )
            directory.add_tracker(tracker)
            trackers.append(tracker)
    for u in range(USERS):
        directory.add_member(f"user{u}", f"tenant{u % TENANTS}")
        directory.add_member(f"user{u}", f"tenant{(u + 1) % TENANTS}")
    store = MemoryTokenStore()
    put = 0
    u = 0
    while put < tokens:
        user = f"user{u % USERS}"
        tenant_index = u % TENANTS
        tracker = trackers[tenant_index * TRACKERS_PER_TENANT + (u // USERS) % TRACKERS_PER_TENANT]
        scope = tracker.tenant if (u // USERS) % 2 == 0 else "*"
        if store.get(user, tracker.url, scope) is None:
            store.put(user, tracker.url, scope, Credentials(api_password=Secret(f"tok-{u}")), now=NOW)
            put += 1
        u += 1
    plugins = Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(MemoryTrackerType())])
    resolver = Resolver(directory, store, plugins=plugins, clock=lambda: NOW)
    hit_tracker = trackers[0]  # user0 is in tenant0 and has a tenant-scoped token for tenant0/repo0
    assert store.get("user0", hit_tracker.url, hit_tracker.tenant) is not None
    miss_tracker = trackers[TRACKERS_PER_TENANT - 1]  # tenant0/repo99: user0 has no token for it
    return resolver, store, hit_tracker, miss_tracker


def baseline(store: MemoryTokenStore, owner: str, url: str, scope: str) -> Callable[[], object]:
    """A firstresult pluggy call: tryfirst does one dict lookup, trylast returns a constant."""
    hookspec = pluggy.HookspecMarker("baseline")
    hookimpl = pluggy.HookimplMarker("baseline")
    tokens = store._tokens  # the same dict resolve() reads

    class Spec:
        @hookspec(firstresult=True)
        def lookup(self, request: object) -> object: ...

    class First:
        @hookimpl(tryfirst=True)
        def lookup(self, request: object) -> object:
            return tokens.get((owner, url, scope))

    class Last:
        @hookimpl(trylast=True)
        def lookup(self, request: object) -> object:
            return "bot"

    manager = pluggy.PluginManager("baseline")
    manager.add_hookspecs(Spec)
    manager.register(First())
    manager.register(Last())
    hook = manager.hook.lookup
    return lambda: hook(request=None)


def measure(call: Callable[[], object], iterations: int, warmup: int) -> list[int]:
    for _ in range(warmup):
        call()
    clock = time.perf_counter_ns
    samples = [0] * iterations
    gc.collect()
    gc.disable()
    try:
        for i in range(iterations):
            start = clock()
            call()
            samples[i] = clock() - start
    finally:
        gc.enable()
    return samples


def summary(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) / 1000, p99 / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000, help="personal tokens in the store")
    parser.add_argument("--iterations", type=int, default=20_000, help="measured calls per case")
    parser.add_argument("--warmup", type=int, default=2_000, help="unmeasured calls first")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    resolver, store, hit, miss = build(args.tokens)
    print(
        f"setup: {len(store):,} tokens, {TENANTS * TRACKERS_PER_TENANT} trackers, {USERS:,} users"
        f" in {time.perf_counter() - started:.1f} s; Python {sys.version.split()[0]}, pluggy {pluggy.__version__}"
    )
    assert resolver.resolve("user0", hit).source == "personal"
    assert resolver.resolve("user0", miss).source == "bot"

    dict_lookup = store._tokens.get
    hit_key = ("user0", hit.url, hit.tenant)
    cases = [
        ("bare dict lookup", lambda: dict_lookup(hit_key), None),
        ("baseline: pluggy firstresult + dict lookup", baseline(store, *hit_key), None),
        ("resolve(): personal-token hit", lambda: resolver.resolve("user0", hit), "baseline"),
        ("resolve(): bot fallback (4 misses)", lambda: resolver.resolve("user0", miss), "baseline"),
    ]
    print(f"{'case':<45} {'median µs':>10} {'p99 µs':>10} {'vs baseline':>12}")
    base_median = 0.0
    for name, call, compare in cases:
        median, p99 = summary(measure(call, args.iterations, args.warmup))
        if name.startswith("baseline"):
            base_median = median
        ratio = f"{median / base_median:.1f}x" if compare and base_median else ""
        print(f"{name:<45} {median:>10.2f} {p99:>10.2f} {ratio:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
