"""Benchmark of the PostgreSQL token store (issue 12), as ratios to in-run baselines.

1. ``resolve()`` on a personal-token hit with ``--tokens`` tokens (default 1,000,000) in
   PostgreSQL (``SealedTokenStore(PostgresRows(...))``, the host's directory in memory): median,
   mean and p99 per call, against a baseline measured in the same run on the same table: one raw
   psycopg indexed SELECT of the same row plus one AES-GCM open. Target: median ratio <= 2.
2. Throughput with 1, 2, 4 and 8 processes, each resolving on its own connection: CPU
   microseconds per operation, the client process's and its server backend's (read from
   ``/proc``, so the server must run on this machine), and wall-clock operations per second.
3. Bytes per token on disk: ``pg_total_relation_size`` of the tokens table (heap, TOAST and
   indexes) and of the last-used table, divided by the token count.

The server comes from libpq's environment (``PGHOST`` etc.; ``.ci/postgres.sh`` starts one).
Tokens are sealed in Python and bulk-loaded with COPY into a fresh schema, dropped at the end.

Run: ``python benchmarks/bench_postgres.py`` (``--tokens 100000`` for a quicker run). Figures
vary with the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenproviders import ALL_TENANTS, MemoryDirectory, Plugins, Resolver, Tracker
from tokenproviders.crypto import NONCE_SIZE, KeyRing
from tokenproviders.stores.postgres import PostgresRows
from tokenproviders.stores.sealed import SealedTokenStore, token_aad
from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

TENANTS = 10
TOKENS_PER_USER = 4
SERVICE = "https://trackers.example.com"
NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)
KEY = bytes(range(32))


class ServiceTrackerType(MemoryTrackerType):
    """The in-memory tracker type with a service URL, so lookups have four candidates."""

    def service_url(self, tracker: Tracker) -> str | None:
        return SERVICE


def keyring() -> KeyRing:
    return KeyRing([("bench", KEY)], "bench")


def tracker_url(tenant: int) -> str:
    return f"{SERVICE}/t{tenant}"


def trackers() -> list[Tracker]:
    return [Tracker(tenant=f"t{t}", id="main", type="memory", base_url=tracker_url(t)) for t in range(TENANTS)]


def rows_of_user(user: int) -> list[tuple[str, str]]:
    """Four tokens: the user's tenant's tracker (tenant scope), the service and two other
    trackers (all tenants), as in bench_store."""
    tenant = user % TENANTS
    return [
        (tracker_url(tenant), f"t{tenant}"),
        (SERVICE, ALL_TENANTS),
        (tracker_url((tenant + 1) % TENANTS), ALL_TENANTS),
        (tracker_url((tenant + 2) % TENANTS), ALL_TENANTS),
    ]


def load(schema: str, tokens: int) -> int:
    """Seal ``tokens`` tokens and COPY them into ``schema``; returns the number of users."""
    import psycopg
    from psycopg import sql

    ring = keyring()
    users = max(tokens // TOKENS_PER_USER, 1)
    PostgresRows("", schema=schema, max_size=1).close()  # creates the tables
    with psycopg.connect("") as conn:
        with conn.cursor() as cursor:
            copy = sql.SQL(
                "COPY {}.tokenproviders_tokens (owner, url, scope, label, created_at, updated_at, version, key_id,"
                " secret) FROM STDIN (FORMAT BINARY)"
            ).format(sql.Identifier(schema))
            with cursor.copy(copy) as out:
                out.set_types(["text", "text", "text", "text", "timestamptz", "timestamptz", "int4", "text", "bytea"])
                for user in range(users):
                    owner = f"user{user}"
                    for url, scope in rows_of_user(user):
                        blob = ring.seal(f"ghp_{user:08d}{scope}{url[-3:]}", token_aad(owner, scope, url))
                        out.write_row((owner, url, scope, "", NOW, NOW, 1, "bench", blob))
        conn.commit()
    with psycopg.connect("", autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}.tokenproviders_tokens").format(sql.Identifier(schema)))
    return users


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


def make_resolver(schema: str, users: int) -> tuple[Resolver, PostgresRows]:
    rows = PostgresRows("", schema=schema, min_size=1, max_size=1, migrate=False)
    memberships = [(f"user{u}", f"t{u % TENANTS}") for u in range(users)]
    resolver = Resolver(
        MemoryDirectory(memberships=memberships, trackers=trackers()),
        SealedTokenStore(rows, keyring()),
        plugins=Plugins(load_entry_points=False, extra=[MemoryTrackerPlugin(ServiceTrackerType())]),
    )
    return resolver, rows


def bench_resolve(schema: str, users: int, tokens: int, samples: int) -> None:
    import psycopg
    from psycopg import sql

    resolver, rows = make_resolver(schema, users)
    tracker_list = trackers()

    def resolve(user: int) -> object:
        resolution = resolver.resolve(f"user{user}", tracker_list[user % TENANTS])
        assert resolution.source == "personal"
        return resolution

    raw = psycopg.connect("", autocommit=True)
    select = sql.SQL("SELECT secret FROM {}.tokenproviders_tokens WHERE owner = %s AND url = %s AND scope = %s").format(
        sql.Identifier(schema)
    )
    cipher = AESGCM(KEY)
    aad = {u: token_aad(f"user{u}", f"t{u % TENANTS}", tracker_url(u % TENANTS)).encode() for u in range(users)}

    def baseline(user: int) -> bytes:
        found = raw.execute(select, (f"user{user}", tracker_url(user % TENANTS), f"t{user % TENANTS}"), prepare=True)
        blob = found.fetchone()[0]  # type: ignore[index]
        header = 2 + blob[1]
        return cipher.decrypt(
            blob[header : header + NONCE_SIZE], blob[header + NONCE_SIZE :], blob[:header] + aad[user]
        )

    assert baseline(0).decode().startswith("ghp_00000000")
    rng = random.Random(7)
    picks = [rng.randrange(users) for _ in range(samples)]
    for user in picks[:2000]:  # warm caches and prepared statements
        baseline(user)
        resolve(user)
    base: list[int] = []
    measured: list[int] = []
    gc.collect()
    for block in range(0, len(picks), 1000):  # interleaved blocks: both see the same conditions
        chunk = picks[block : block + 1000]
        base += timed(baseline, chunk)
        measured += timed(resolve, chunk)
    b50, b99, bmean = statistics.median(base) / 1000, percentile(base, 0.99), statistics.fmean(base) / 1000
    r50, r99, rmean = statistics.median(measured) / 1000, percentile(measured, 0.99), statistics.fmean(measured) / 1000
    print(f"{len(picks):,} resolve() calls on random users, {tokens:,} tokens in PostgreSQL")
    print(f"  baseline: median {b50:6.1f} us   mean {bmean:6.1f} us   p99 {b99:6.1f} us   (one SELECT + one open)")
    print(f"  resolve(): median {r50:6.1f} us   mean {rmean:6.1f} us   p99 {r99:6.1f} us")
    print(f"  ratio:    median {r50 / b50:6.2f}      mean {rmean / bmean:6.2f}      p99 {r99 / b99:6.2f}")
    print(f"  resolve() mean / median: {rmean / r50:.2f}")
    resolver.store.flush()  # type: ignore[attr-defined]
    raw.close()
    rows.close()


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a local process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _throughput_worker(
    schema: str, users: int, operations: int, seed: int, start: object
) -> tuple[float, float, float]:
    resolver, rows = make_resolver(schema, users)
    tracker_list = trackers()
    with rows._pool.connection() as conn:
        backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    rng = random.Random(seed)
    picks = [rng.randrange(users) for _ in range(operations)]
    for user in picks[:200]:
        resolver.resolve(f"user{user}", tracker_list[user % TENANTS])
    start.wait()  # type: ignore[attr-defined]
    server0, client0, wall0 = _cpu_of(backend_pid), time.process_time(), time.perf_counter()
    for user in picks:
        resolver.resolve(f"user{user}", tracker_list[user % TENANTS])
    wall = time.perf_counter() - wall0
    client, server = time.process_time() - client0, _cpu_of(backend_pid) - server0
    resolver.store.flush()  # type: ignore[attr-defined]
    rows.close()
    return client, server, wall


def bench_throughput(schema: str, users: int, operations: int) -> None:
    print(f"throughput: {operations:,} resolve() calls per process, one connection each")
    print("  processes   client CPU us/op   server CPU us/op   total CPU us/op   ops/s (wall)")
    context = multiprocessing.get_context("spawn")
    for processes in (1, 2, 4, 8):
        with context.Manager() as manager:
            start = manager.Event()
            with context.Pool(processes) as pool:
                pending = pool.starmap_async(
                    _throughput_worker, [(schema, users, operations, seed, start) for seed in range(processes)]
                )
                time.sleep(3 + processes)  # let every worker connect and warm up
                start.set()
                results = pending.get()
        ops = processes * operations
        client = sum(r[0] for r in results) / ops * 1e6
        server = sum(r[1] for r in results) / ops * 1e6
        rate = ops / max(r[2] for r in results)
        print(f"  {processes:9d}   {client:16.1f}   {server:16.1f}   {client + server:15.1f}   {rate:12,.0f}")


def bench_size(schema: str, tokens: int) -> None:
    import psycopg

    with psycopg.connect("", autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".tokenproviders_tokens')
        sizes = {
            table: conn.execute("SELECT pg_total_relation_size(%s::regclass)", (f'"{schema}".{table}',)).fetchone()[0]  # type: ignore[index]
            for table in ("tokenproviders_tokens", "tokenproviders_used")
        }
        heap = conn.execute("SELECT pg_relation_size(%s::regclass)", (f'"{schema}".tokenproviders_tokens',)).fetchone()[
            0
        ]  # type: ignore[index]
    total = sum(sizes.values())
    print(f"bytes per token on disk, {tokens:,} tokens:")
    print(
        f"  tokens table with TOAST and indexes: {sizes['tokenproviders_tokens'] / tokens:6.1f}"
        f"  (heap alone {heap / tokens:.1f})"
    )
    print(f"  last-used table:                     {sizes['tokenproviders_used'] / tokens:6.1f}")
    print(f"  total:                               {total / tokens:6.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="tokens in the table")
    parser.add_argument("--samples", type=int, default=20_000, help="resolve() calls measured")
    parser.add_argument("--operations", type=int, default=5_000, help="resolve() calls per process in throughput")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args(argv)
    if not os.environ.get("PGHOST"):
        print("no PostgreSQL server: set PGHOST etc. (.ci/postgres.sh starts one)", file=sys.stderr)
        return 2
    import psycopg
    from psycopg import sql

    schema = f"tp_bench_{secrets.token_hex(4)}"
    try:
        print(f"sealing and loading {args.tokens:,} tokens with COPY into schema {schema} ...", flush=True)
        started = time.perf_counter()
        users = load(schema, args.tokens)
        tokens = users * TOKENS_PER_USER
        print(f"  loaded in {time.perf_counter() - started:.1f} s", flush=True)
        bench_size(schema, tokens)
        bench_resolve(schema, users, tokens, args.samples)
        if not args.skip_throughput:
            bench_throughput(schema, users, args.operations)
    finally:
        with psycopg.connect("", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
