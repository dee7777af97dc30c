"""Benchmark of the encrypted SQLite store (DESIGN section 8), as ratios to in-run baselines.

1. ``resolve()`` on a personal-token hit with ``--tokens`` tokens (default 1,000,000) in SQLite:
   median and p99 per call, against a baseline measured in the same run on the same file: one
   raw indexed ``sqlite3`` SELECT of the sealed blob plus one AES-GCM open. Target ratio <= 3.
   Measured with the host's directory (in memory here: a host's own database, as DESIGN section
   8 budgets it) and with the embedded SQLite directory, whose membership check is one more
   indexed read; that setup is also compared with a baseline that makes the same membership
   SELECT, and measured with the audit observer too.
2. Key rotation throughput in rows per second (target >= 25,000) and its peak traced memory at
   two table sizes (``--rotation-sizes``): the peak must stay flat as the row count grows.

Run: ``python benchmarks/bench_store.py`` (``--tokens 100000`` for a quicker run). Figures vary
with the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenproviders import (
    ALL_TENANTS,
    Credentials,
    MemoryDirectory,
    MemoryTokenStore,
    PersonalToken,
    Plugins,
    Resolver,
    Secret,
    Tracker,
)
from tokenproviders.crypto import NONCE_SIZE, AssociatedData, KeyRing
from tokenproviders.sources import personal_candidates
from tokenproviders.stores.sqlite import SQLiteDatabase
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

TENANTS = 10
TOKENS_PER_USER = 4
SERVICE = "https://trackers.example.com"
NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


class ServiceTrackerType(MemoryTrackerType):
    """The in-memory tracker type with a service URL, so lookups have four candidates."""

    def service_url(self, tracker: Tracker) -> str | None:
        return SERVICE


def tracker_url(tenant: int) -> str:
    return f"{SERVICE}/t{tenant}"


def tracker_of(tenant: int) -> Tracker:
    return Tracker(tenant=f"t{tenant}", id="main", type="memory", base_url=tracker_url(tenant))


def tokens_of_user(user: int) -> list[PersonalToken]:
    """Four tokens: their tenant's tracker (tenant scope), the service (all tenants), and two
    other trackers (all tenants)."""
    tenant = user % TENANTS
    rows = [
        (tracker_url(tenant), f"t{tenant}"),
        (SERVICE, ALL_TENANTS),
        (tracker_url((tenant + 1) % TENANTS), ALL_TENANTS),
        (tracker_url((tenant + 2) % TENANTS), ALL_TENANTS),
    ]
    return [
        PersonalToken(
            owner=f"user{user}",
            url=url,
            scope=scope,
            credentials=Credentials(Secret(f"ghp_{user:08d}{scope}{url[-3:]}")),
        )
        for url, scope in rows
    ]


def tokens_for(users: int) -> Iterator[PersonalToken]:
    for user in range(users):
        yield from tokens_of_user(user)


def build(path: Path, keyring: KeyRing, tokens: int, *, members: bool) -> SQLiteDatabase:
    db = SQLiteDatabase(path, keyring)
    users = max(tokens // TOKENS_PER_USER, 1)
    if members:
        for tenant in range(TENANTS):
            db.directory.add_tracker(tracker_of(tenant))
        db.directory.add_members((f"user{user}", f"t{user % TENANTS}") for user in range(users))
    db.tokens.put_many(tokens_for(users), now=NOW, batch_size=20_000)
    db._core.read("ANALYZE")
    return db


def percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] / 1000


def timed(call: Callable[[int], object], picks: list[int]) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for pick in picks:
        start = clock()
        call(pick)
        samples.append(clock() - start)
    return samples


def bench_resolve(tokens: int, samples: int, workdir: Path) -> None:
    keyring = KeyRing.generate("bench")
    path = workdir / "resolve.db"
    print(f"building {tokens:,} tokens ...", flush=True)
    started = time.perf_counter()
    db = build(path, keyring, tokens, members=True)
    users = max(tokens // TOKENS_PER_USER, 1)
    print(f"  built in {time.perf_counter() - started:.1f} s ({os.path.getsize(path) / 1e6:.0f} MB)")

    def plugins() -> Plugins:
        return Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(ServiceTrackerType())])

    trackers = [tracker_of(t) for t in range(TENANTS)]
    memberships = [(f"user{u}", f"t{u % TENANTS}") for u in range(users)]
    # The host's directory (its own database, here a dict) with the tokens in SQLite: what
    # DESIGN section 8 budgets, one indexed read plus one AES-GCM open.
    hosted = Resolver(MemoryDirectory(memberships=memberships, trackers=trackers), db.tokens, plugins=plugins())
    # The embedded setup: memberships in the same SQLite file, one more indexed read.
    embedded = Resolver(db.directory, db.tokens, plugins=plugins())

    def resolving(resolver: Resolver) -> Callable[[int], object]:
        def resolve(user: int) -> object:
            resolution = resolver.resolve(f"user{user}", trackers[user % TENANTS])
            assert resolution.source == "personal"
            return resolution

        return resolve

    # The baselines, on the same file: one raw indexed SELECT plus one AES-GCM open; and, for
    # the embedded setup, the raw membership SELECT before them.
    raw = sqlite3.connect(path, isolation_level=None)
    cipher = AESGCM(keyring._keys["bench"])
    prefix = AssociatedData("token", ()).encode()

    def aad_tail(owner: str, scope: str, url: str) -> bytes:
        return AssociatedData("token", (owner, scope, url, "api_password")).encode()[len(prefix) :]

    baseline_aad = {u: prefix + aad_tail(f"user{u}", f"t{u % TENANTS}", tracker_url(u % TENANTS)) for u in range(users)}

    def baseline(user: int) -> bytes:
        blob = raw.execute(
            "SELECT secret FROM tokens WHERE owner = ? AND url = ? AND scope = ?",
            (f"user{user}", tracker_url(user % TENANTS), f"t{user % TENANTS}"),
        ).fetchone()[0]
        header = 2 + blob[1]
        return cipher.decrypt(
            blob[header : header + NONCE_SIZE], blob[header + NONCE_SIZE :], blob[:header] + baseline_aad[user]
        )

    def baseline_with_membership(user: int) -> bytes:
        raw.execute("SELECT tenant FROM members WHERE user = ?", (f"user{user}",)).fetchall()
        return baseline(user)

    rng = random.Random(7)
    picks = [rng.randrange(users) for _ in range(samples)]
    for user in picks[:2000]:  # warm caches and the statement cache
        baseline_with_membership(user)
        resolving(hosted)(user)
        resolving(embedded)(user)

    def run(label: str, call: Callable[[int], object], *, also: Callable[[int], object] | None = None) -> None:
        base: list[int] = []
        other: list[int] = []
        measured: list[int] = []
        gc.collect()
        for block in range(0, len(picks), 1000):  # interleaved blocks: all see the same conditions
            chunk = picks[block : block + 1000]
            base += timed(baseline, chunk)
            if also is not None:
                other += timed(also, chunk)
            measured += timed(call, chunk)
        b50, b99 = statistics.median(base) / 1000, percentile(base, 0.99)
        r50, r99 = statistics.median(measured) / 1000, percentile(measured, 0.99)
        mean = statistics.fmean(measured) / 1000
        print(f"  {label}")
        print(f"    baseline: median {b50:6.1f} us   p99 {b99:6.1f} us   (one SELECT + one open)")
        if also is not None:
            o50, o99 = statistics.median(other) / 1000, percentile(other, 0.99)
            print(f"    baseline: median {o50:6.1f} us   p99 {o99:6.1f} us   (membership SELECT + the same)")
        print(f"    measured: median {r50:6.1f} us   p99 {r99:6.1f} us   mean {mean:6.1f} us")
        print(f"    ratio:    median {r50 / b50:6.2f}      p99 {r99 / b99:6.2f}")
        if also is not None:
            print(f"    ratio to the membership baseline: median {r50 / o50:6.2f}      p99 {r99 / o99:6.2f}")

    print(
        f"{len(picks):,} calls on random users, {tokens:,} tokens; baseline = one raw indexed SELECT + one AES-GCM open"
    )
    candidates = [personal_candidates(tracker, SERVICE) for tracker in trackers]
    run(
        "SQLiteTokenStore.lookup() alone (4 candidates, the winner opened)",
        lambda user: db.tokens.lookup(f"user{user}", candidates[user % TENANTS]),
    )
    floor = Resolver(
        MemoryDirectory(memberships=memberships, trackers=trackers),
        MemoryTokenStore(keyring=keyring),
        plugins=plugins(),
    )
    for user in set(picks):
        for token in tokens_of_user(user):
            floor.store.put(token.owner, token.url, token.scope, token.credentials or Credentials(Secret("")), now=NOW)
    run(
        "for context: resolve() over an in-memory directory and sealed store (the resolver's own cost)",
        lambda user: floor.resolve(f"user{user}", trackers[user % TENANTS]),
    )
    run("resolve(): host directory, tokens in SQLite (target ratio <= 3)", resolving(hosted))
    run(
        "resolve(): embedded, SQLite directory + SQLite tokens (a membership SELECT more)",
        resolving(embedded),
        also=baseline_with_membership,
    )
    embedded.plugins.register(db.audit.observer(), name="audit")
    run(
        "resolve(): embedded + audit observer (buffered writes included)",
        resolving(embedded),
        also=baseline_with_membership,
    )
    raw.close()
    db.close()
    path.unlink()


def bench_rotation(rows: int, workdir: Path) -> tuple[float, float]:
    keyring = KeyRing.generate("old")
    path = workdir / f"rotate-{rows}.db"
    db = build(path, keyring, rows, members=False)
    keyring.add_key("new")
    gc.collect()
    started = time.perf_counter()
    # A throwaway database: the new key need not outlive the benchmark (no key file written).
    report = db.rotate(batch_size=1000, allow_unsaved_primary=True)
    seconds = time.perf_counter() - started
    assert report.complete and report.processed == rows, report
    keyring.add_key("newer")
    gc.collect()
    tracemalloc.start()
    report = db.rotate(batch_size=1000, allow_unsaved_primary=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.complete and report.processed == rows
    db.close()
    path.unlink()
    return rows / seconds, peak / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="tokens in the resolve benchmark")
    parser.add_argument("--samples", type=int, default=20_000, help="resolve() calls measured")
    parser.add_argument(
        "--rotation-sizes",
        type=int,
        nargs=2,
        default=None,
        metavar=("SMALL", "LARGE"),
        help="rows in the two rotation runs (default: tokens/10 and tokens/2)",
    )
    parser.add_argument("--skip-resolve", action="store_true")
    parser.add_argument("--skip-rotation", action="store_true")
    args = parser.parse_args(argv)
    small, large = args.rotation_sizes or (max(args.tokens // 10, 1000), max(args.tokens // 2, 5000))
    print(f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        workdir = Path(tmp)
        if not args.skip_resolve:
            bench_resolve(args.tokens, args.samples, workdir)
        if not args.skip_rotation:
            print("key rotation (batches of 1000, one transaction each)")
            figures = [(rows, *bench_rotation(rows, workdir)) for rows in (small, large)]
            for rows, rate, peak in figures:
                print(f"  {rows:>9,} rows: {rate:>9,.0f} rows/s (target >= 25,000)   peak traced memory {peak:6.2f} MB")
            growth = figures[1][2] / figures[0][2] if figures[0][2] else float("inf")
            print(f"  peak memory grows x{growth:.2f} for x{large / small:.0f} rows (flat means ~1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
