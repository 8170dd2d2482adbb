#!/usr/bin/env python3
"""Change data capture through a real router, as ratios to floors measured in the same run.

One cluster of real processes (etcd, 3 nodes, 8 shards, one router) and one subscriber (a
thread of this process, `client.subscribe(start="now")`, on its own channel) that records when
each event arrives.

- Commit-to-delivery latency: documents created one at a time; for each, the time from the
  moment create() was called to the arrival of its event (the next create waits for it). The
  floor is a durable create's own latency, measured in alternating rounds.
- Delivery during a bulk load: insert_many in batches of 1000; the events delivered per second
  (from the load's start to the last event's arrival) against the load's own documents per
  second.

Targets: delivery latency p50 <= 2x a create's p50; events/s during a bulk load >= 0.8x the
load's docs/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import Series, row, sequential  # noqa: E402

from db4client import Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all, wait_until  # noqa: E402


class Arrivals:
    """A subscriber on its own thread and channel: arrival time (perf_counter) per event id."""

    def __init__(self, address: str, collections: list[str]) -> None:
        self.client = Client(address)
        self.sub = self.client.subscribe(collections=collections, start="now", heartbeat_ms=50)
        self.at: dict[str, float] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.sub.token is not None, 30, "the subscription to start")

    def _run(self) -> None:
        for event in self.sub:
            now = time.perf_counter()
            with self.cond:
                self.at[event.id] = now
                self.cond.notify_all()

    def wait_for(self, doc_id: str, timeout: float = 30.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: doc_id in self.at, timeout):
                raise TimeoutError(f"no event for {doc_id} within {timeout} s")
            return self.at[doc_id]

    def close(self) -> None:
        self.sub.close()
        self.thread.join(5)
        self.client.close()


def delivery_round(client: Client, arrivals: Arrivals, r: int, n: int) -> dict:
    """n creates one at a time; for each, the ms from the create() call to its event."""
    coll = client.collection("lat")
    samples = []
    start = time.perf_counter()
    for i in range(n):
        doc_id = f"l-{r}-{i}"
        t0 = time.perf_counter()
        coll.create({"$id": doc_id, "n": i})
        samples.append((arrivals.wait_for(doc_id) - t0) * 1000)
    elapsed = time.perf_counter() - start
    return {"samples": samples, "elapsed": elapsed}


def bulk_load(client: Client, arrivals: Arrivals, total: int, batch: int) -> dict:
    """insert_many in batches; the load's docs/s and the events/s delivered meanwhile."""
    coll = client.collection("bulk")
    ids = [f"b-{i}" for i in range(total)]
    start = time.perf_counter()
    for k in range(0, total, batch):
        coll.insert_many([{"$id": i, "v": "x" * 100} for i in ids[k:k + batch]])
    loaded = time.perf_counter() - start
    delivered = max(arrivals.wait_for(i, timeout=120) for i in ids) - start
    return {"load_rate": total / loaded, "delivered_rate": total / delivered,
            "lag_after_load_s": max(0.0, delivered - loaded)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=600, help="creates per latency measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    ap.add_argument("--bulk", type=int, default=30000, help="documents in the bulk load")
    args = ap.parse_args()
    out: dict[str, Series] = defaultdict(Series)
    with tempfile.TemporaryDirectory(prefix="db4-bench-") as tmpdir:
        try:
            cluster = Cluster(Path(tmpdir) / "cluster", nodes=3, shards=8).start()
            with Client(cluster.address) as client:
                arrivals = Arrivals(cluster.address, ["lat", "bulk"])
                floor = client.collection("floor")
                per = args.n // args.rounds
                for r in range(args.rounds):
                    out["create"].add(sequential(
                        lambda i, r=r: floor.create({"$id": f"c-{r}-{i}", "n": i}), per))
                    out["delivery"].add(delivery_round(client, arrivals, r, per))
                bulk = bulk_load(client, arrivals, args.bulk, 1000)
                arrivals.close()
            cluster.stop()
        finally:
            kill_all()
    s = {k: v.summary() for k, v in out.items()}
    print(f"db4 change-data-capture benchmark: {args.n} creates each in {args.rounds} "
          f"alternating rounds, bulk load of {args.bulk}, 3 nodes, 8 shards, "
          f"{os.cpu_count()} cores")
    print(row("floor: durable create, 1 by 1", s["create"], s["create"]))
    print(row("create() call to its event", s["delivery"], s["create"], "target p50 <= 2x"))
    ratio = bulk["delivered_rate"] / bulk["load_rate"]
    print(f"{'bulk load (insert_many x1000)':<34} load {bulk['load_rate']:8.0f} docs/s  "
          f"delivered {bulk['delivered_rate']:8.0f} events/s ({ratio:5.2f}x load)  "
          f"last event {bulk['lag_after_load_s']:.2f} s after the load  target >= 0.8x")
    checks = {
        "delivery p50": s["delivery"]["p50"] / s["create"]["p50"] <= 2.0,
        "bulk delivery rate": ratio >= 0.8,
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
