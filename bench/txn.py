#!/usr/bin/env python3
"""Transaction latency through a real router, as ratios to a durable create in the same run.

One cluster of real processes (etcd, 3 nodes, 8 shards, one router). In alternating rounds, one
at a time: a durable create (the floor), a single-shard transaction updating two documents of
one shard (one SQLite transaction, no etcd write), and two-phase commits updating one document
on each of 2 and of 4 shards (prepare on each, the decision recorded in etcd, commit on each,
the record removed). Every figure is printed with its ratio to the create's p50.

Targets: single-shard transaction p50 <= 1.5x a create; 2-shard two-phase commit p50 <= 3x.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import Series, row, sequential  # noqa: E402

from db4client import Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402


def ids_on_distinct_shards(client: Client, collection: str, count: int, prefix: str
                           ) -> list[str]:
    """`count` ids whose documents live on `count` different shards."""
    out: dict[str, str] = {}
    i = 0
    while len(out) < count:
        doc_id = f"{prefix}-{i}"
        out.setdefault(client.shard_for(collection, doc_id), doc_id)
        i += 1
    return list(out.values())


def ids_on_one_shard(client: Client, collection: str, count: int, prefix: str) -> list[str]:
    """`count` ids whose documents share one shard."""
    by_shard: dict[str, list[str]] = defaultdict(list)
    i = 0
    while True:
        doc_id = f"{prefix}-{i}"
        group = by_shard[client.shard_for(collection, doc_id)]
        group.append(doc_id)
        if len(group) == count:
            return group
        i += 1


def update_all(client: Client, collection: str, ids: list[str], n: int) -> None:
    """One transaction updating every id."""
    with client.transaction() as tx:
        for doc_id in ids:
            tx.update(collection, doc_id, {"n": n})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=600, help="operations per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = ap.parse_args()
    out: dict[str, Series] = defaultdict(Series)
    with tempfile.TemporaryDirectory(prefix="db4-bench-") as tmpdir:
        try:
            cluster = Cluster(Path(tmpdir) / "cluster", nodes=3, shards=8).start()
            with Client(cluster.address) as client:
                coll = client.collection("acct")
                one = ids_on_one_shard(client, "acct", 2, "one")
                two = ids_on_distinct_shards(client, "acct", 2, "two")
                four = ids_on_distinct_shards(client, "acct", 4, "four")
                for doc_id in set(one + two + four):
                    coll.upsert({"$id": doc_id, "n": 0})
                per = args.n // args.rounds
                for r in range(args.rounds):
                    out["create"].add(sequential(
                        lambda i, r=r: coll.create({"$id": f"c-{r}-{i}", "n": i}), per))
                    out["one"].add(sequential(lambda i: update_all(client, "acct", one, i), per))
                    out["two"].add(sequential(lambda i: update_all(client, "acct", two, i), per))
                    out["four"].add(sequential(
                        lambda i: update_all(client, "acct", four, i), per))
            cluster.stop()
        finally:
            kill_all()
    s = {k: v.summary() for k, v in out.items()}
    print(f"db4 transaction benchmark: {args.n} ops each in {args.rounds} alternating rounds, "
          f"3 nodes, 8 shards, {os.cpu_count()} cores")
    print(row("floor: durable create, 1 by 1", s["create"], s["create"]))
    print(row("single-shard txn, 2 documents", s["one"], s["create"], "target p50 <= 1.5x"))
    print(row("2-shard two-phase commit", s["two"], s["create"], "target p50 <= 3x"))
    print(row("4-shard two-phase commit", s["four"], s["create"]))
    checks = {
        "single-shard p50": s["one"]["p50"] / s["create"]["p50"] <= 1.5,
        "2-shard p50": s["two"]["p50"] / s["create"]["p50"] <= 3.0,
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
