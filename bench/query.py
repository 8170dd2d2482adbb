#!/usr/bin/env python3
"""Queries across shards: 100k documents on an 8-shard cluster next to the same on 1 shard.

Measures, through the router: a selective filter with sort and limit 100; the same selection read
through a range index; count over a full scan; deep pagination (page 1 vs page 200 of 100, both
fetched with a cursor, never OFFSET), sorted on a field without an index and then with one. Each
is printed with p50/p99 and its ratio to the same query on a 1-shard cluster. insert_many
throughput is printed against raw apsw batch inserts (10k rows per transaction, WAL,
synchronous=FULL) measured in the same run: target >= 0.3x.

Node isolation (a 1-node, 4-shard cluster): point-read p99 on the node's other shards while a heavy
query (a filter of 299 object literals) runs on one shard, as a ratio to the same reads idle
(target <= 3x); and a range index built on a 15-document collection beside a 200k-document one,
as a ratio to the same build on a shard holding nothing else (target ~1x: independent of the other
collection).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import percentile, timed  # noqa: E402

from db4client import Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402

STATUSES = ["active", "idle", "banned", "new", "gone"]


def doc(i: int) -> dict:
    return {"$id": f"d{i:06d}", "status": STATUSES[i % 5], "age": (i * 7) % 80,
            "createdAt": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T{i % 86400:05d}",
            "score": (i * 13) % 1000 / 10, "name": f"user {i}", "pad": "p" * 80}


def raw_batch_insert_rate(tmp: Path, n: int) -> float:
    """Rows/s of apsw inserting the same documents 10k per transaction (the floor)."""
    conn = apsw.Connection(str(tmp / "raw.db"))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE docs(collection TEXT NOT NULL, id TEXT NOT NULL, token INTEGER "
                 "NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, "
                 "PRIMARY KEY(collection, id)) WITHOUT ROWID")
    rows = [("c", d["$id"], i, 1, json.dumps(d)) for i, d in enumerate(map(doc, range(n)))]
    # The floor is given its JSON text ready-made: it measures SQLite, not Python encoding.
    start = time.perf_counter()
    for k in range(0, n, 10_000):
        with conn:
            conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", rows[k:k + 10_000])
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def load(client: Client, n: int, batch: int, parallel: int = 4) -> float:
    """insert_many the data set, `parallel` batches in flight; documents/s."""
    coll = client.collection("people")
    batches = [[doc(i) for i in range(k, min(n, k + batch))] for k in range(0, n, batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(coll.insert_many, batches))
    return n / (time.perf_counter() - start)


def measure(client: Client, repeat: int) -> dict[str, dict]:
    coll = client.collection("people")
    where = {"status": "active", "age": {"$gte": 30, "$lt": 33}}
    sort = [("createdAt", "desc")]
    out = {"filter+sort, limit 100": timed(lambda: coll.find(where, sort, limit=100), repeat)}
    client.create_index("people_by_created", "people", [("createdAt", "asc")])
    start, end = ("2024-03-01", True), ("2024-03-04", False)
    out["range index, limit 100"] = timed(
        lambda: client.query_range("people_by_created", start, end, limit=100), repeat)
    out["count, full scan"] = timed(lambda: coll.count(), max(5, repeat // 3))
    by_age = [("age", "asc")]
    deep_pages(coll, by_age, repeat, out, "sorted")
    client.create_index("people_by_age", "people", by_age)
    deep_pages(coll, by_age, repeat, out, "indexed sort")
    return out


def deep_pages(coll, sort: list, repeat: int, out: dict, label: str) -> None:
    """Time page 1 and page 200 (of 100), each fetched with its cursor."""
    cursor = None
    for _ in range(199):
        cursor = coll.find(None, sort, limit=100, cursor=cursor).cursor
    assert cursor, "fewer than 200 pages"
    out[f"{label}, page 1 of 100"] = timed(lambda: coll.find(None, sort, limit=100), repeat)
    out[f"{label}, page 200 of 100"] = timed(
        lambda: coll.find(None, sort, limit=100, cursor=cursor), repeat)


def run_cluster(root: Path, shards: int, n: int, batch: int, repeat: int) -> tuple[float, dict]:
    cluster = Cluster(root, nodes=3 if shards > 1 else 1, shards=shards).start()
    try:
        with Client(cluster.address, timeout=300) as client:
            rate = load(client, n, batch)
            return rate, measure(client, repeat)
    finally:
        cluster.stop()


HEAVY_WHERE = {"$or": [{"obj": {"k": j, "s": "never"}} for j in range(299)]}


def point_reads(coll, ids: list[str], tenant: str, n: int) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        coll.get(ids[i % len(ids)], partition=tenant)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def build_small_index(client: Client, name: str) -> float:
    """Seconds to build a range index on a fresh 15-document collection."""
    coll = client.collection(name)
    coll.insert_many([{"k": i} for i in range(15)])
    t0 = time.perf_counter()
    client.create_index(f"{name}_by_k", name, [("k", "asc")])
    return time.perf_counter() - t0


def isolation(root: Path, n: int, repeat: int) -> dict:
    """Point-read p99 beside a heavy query, and a small index build beside a large collection."""
    cluster = Cluster(root, nodes=1, shards=4).start()
    try:
        with Client(cluster.address, timeout=300) as client:
            alone = min(build_small_index(client, f"alone{i}") for i in range(3))
            client.create_collection("big", partition_key="tenant")
            client.create_collection("small", partition_key="tenant")
            heavy_shard = client.shard_for("big", "heavy")
            tenant = next(f"t{i}" for i in range(1000)
                          if client.shard_for("small", f"t{i}") != heavy_shard)
            big = client.collection("big")
            for k in range(0, n, 2000):
                big.insert_many([{"tenant": "heavy", "n": i, "obj": {"k": i, "s": "x" * 20}}
                                 for i in range(k, min(n, k + 2000))])
            beside = min(build_small_index(client, f"beside{i}") for i in range(3))
            small = client.collection("small")
            ids = [small.create({"tenant": tenant, "i": i})["$id"] for i in range(20)]
            point_reads(small, ids, tenant, 100)
            idle = point_reads(small, ids, tenant, repeat * 20)
            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(lambda: _heavy(big))
                time.sleep(0.3)
                busy = point_reads(small, ids, tenant, repeat * 20)
                heavy_s = running.result()
    finally:
        cluster.stop()
    return {"idle_p99": percentile(idle, 99), "busy_p99": percentile(busy, 99),
            "heavy_s": heavy_s, "build_alone": alone, "build_beside": beside}


def _heavy(coll) -> float:
    t0 = time.perf_counter()
    try:
        coll.find(where=HEAVY_WHERE, limit=10)
    except Exception:  # noqa: BLE001 - the node's query ceiling ends it: that is expected
        pass
    return time.perf_counter() - t0


def print_isolation(iso: dict, n: int) -> None:
    print(f"node isolation: point-read p99 on other shards {iso['busy_p99']:.2f} ms while a "
          f"heavy query ran {iso['heavy_s']:.1f} s on one shard ({n} docs), idle "
          f"{iso['idle_p99']:.2f} ms: ratio {iso['busy_p99'] / iso['idle_p99']:.2f}x "
          "(target <= 3x)")
    print(f"index build on 15 docs beside {n} docs: {iso['build_beside'] * 1000:.1f} ms, alone "
          f"{iso['build_alone'] * 1000:.1f} ms: ratio "
          f"{iso['build_beside'] / iso['build_alone']:.2f}x (target ~1x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="documents")
    ap.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    ap.add_argument("--isolation-docs", type=int, default=200_000,
                    help="documents of the heavy tenant in the node-isolation run")
    ap.add_argument("--only-isolation", action="store_true", help="run only node isolation")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="db4-qbench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            iso = isolation(tmp / "iso", args.isolation_docs, args.repeat)
            if args.only_isolation:
                print_isolation(iso, args.isolation_docs)
                return 0
            raw_rate = raw_batch_insert_rate(tmp, args.n)
            rate8, m8 = run_cluster(tmp / "c8", 8, args.n, args.batch, args.repeat)
            rate1, m1 = run_cluster(tmp / "c1", 1, args.n, args.batch, args.repeat)
        finally:
            kill_all()
    print(f"db4 query benchmark: {args.n} documents, {os.cpu_count()} cores; 8 shards on 3 "
          "nodes vs 1 shard on 1 node")
    for name, m in m8.items():
        one = m1[name]
        print(f"{name:<26} 8 shards p50 {m['p50']:8.2f} ms p99 {m['p99']:8.2f} ms | 1 shard p50 "
              f"{one['p50']:8.2f} ms p99 {one['p99']:8.2f} ms | ratio p50 "
              f"{m['p50'] / one['p50']:5.2f}x")
    for label in ("sorted", "indexed sort"):
        deep = (m8[f"{label}, page 200 of 100"]["p50"] / m8[f"{label}, page 1 of 100"]["p50"])
        print(f"deep pagination, {label}: page 200 costs {deep:.2f}x page 1 (8 shards)")
    print(f"insert_many: 8 shards {rate8:8.0f} docs/s ({rate8 / raw_rate:.2f}x raw apsw), "
          f"1 shard {rate1:8.0f} docs/s ({rate1 / raw_rate:.2f}x); raw apsw batch insert "
          f"{raw_rate:8.0f} rows/s; target >= 0.3x")
    print_isolation(iso, args.isolation_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
