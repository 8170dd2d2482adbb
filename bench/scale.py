#!/usr/bin/env python3
"""Query cost as the shard count grows: the same data on 8, 32 and 64 shards over 3 nodes.

Measures, through the router: a single-partition find (limit 20) and count on a collection
partitioned by tenant (the where pins the tenant, so the router asks one shard), and a scatter
find with sort and limit 100 and a scatter count. Each is printed with p50/p99 and its ratio to
the 8-shard figure measured in the same run. Targets at 64 shards: single-partition <= 1.2x,
scatter <= 1.5x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import timed  # noqa: E402

from db4client import Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402

TENANTS = 100


def measure(root: Path, shards: int, n: int, repeat: int) -> dict[str, dict]:
    cluster = Cluster(root, nodes=3, shards=shards).start()
    try:
        with Client(cluster.address, timeout=120) as client:
            client.create_collection("orders", partition_key="tenantId")
            orders = client.collection("orders")
            for k in range(0, n, 1000):
                orders.insert_many([{"tenantId": f"t{i % TENANTS}", "n": i, "v": (i * 7) % 1000}
                                    for i in range(k, min(n, k + 1000))])
            one = {"tenantId": "t7"}
            return {
                "single-partition find, limit 20": timed(
                    lambda: orders.find(where=one, limit=20), repeat, warmup=5),
                "single-partition count": timed(lambda: orders.count(where=one), repeat),
                "scatter find, sort, limit 100": timed(
                    lambda: orders.find(where={"v": {"$lt": 500}}, sort=[("v", "desc")],
                                        limit=100), repeat),
                "scatter count": timed(lambda: orders.count(where={"v": {"$lt": 500}}), repeat),
            }
    finally:
        cluster.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10_000, help="documents")
    ap.add_argument("--repeat", type=int, default=50, help="timed runs per query")
    ap.add_argument("--shards", default="8,32,64", help="shard counts, the first is the base")
    args = ap.parse_args()
    counts = [int(s) for s in args.shards.split(",")]
    with tempfile.TemporaryDirectory(prefix="db4-scale-") as tmpdir:
        try:
            results = {s: measure(Path(tmpdir) / f"s{s}", s, args.n, args.repeat)
                       for s in counts}
        finally:
            kill_all()
    base = results[counts[0]]
    print(f"db4 scale benchmark: {args.n} documents of {TENANTS} tenants, 3 nodes")
    for name in base:
        cells = []
        for s in counts:
            m = results[s][name]
            cells.append(f"{s} shards p50 {m['p50']:7.2f} ms p99 {m['p99']:7.2f} ms "
                         f"({m['p50'] / base[name]['p50']:.2f}x)")
        print(f"{name:<32} " + " | ".join(cells))
    print("targets at 64 shards: single-partition <= 1.2x, scatter <= 1.5x (ratio of p50 to the "
          f"{counts[0]}-shard figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
