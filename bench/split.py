#!/usr/bin/env python3
"""Splitting a 200k-document shard under write load.

A cluster of 2 nodes and 3 shards; 200k documents whose ids hash onto shard s000. Writers update
documents of s000 (on both sides of the split) and a reader reads one document of another shard
of the same node, all the time; then s000 is split. Printed:
- the split's total time, and its copy (snapshot, relay, install) as documents/s next to raw apsw
  batch inserts of the same documents measured in the same run (target >= 0.2x);
- the gaps between consecutive acknowledged writes on moving keys while the split runs: p99 and
  the longest (target p99 < 500 ms);
- write throughput in the 3 s before the split and the 3 s after the source's cleanup of the
  moved rows (how long that took, too), and the longest scatter count of the whole collection
  from the end of the copy to the end of the cleanup (counts start after the copy, so that
  they do not weigh on the reads measured during it);
- point-read p99 on the node's other shard during the copy, as a ratio to the same reads idle
  and to the same reads under the same writes without a copy (target <= 3x). `--writers 0`
  splits with no write load, so that the ratio to idle is the copy's alone.
"""

from __future__ import annotations

import argparse
import bisect
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from query import doc, raw_batch_insert_rate  # noqa: E402
from stats import percentile  # noqa: E402

from db4client import Client  # noqa: E402
from db4core.hashing import token_for  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402

SOURCE = "s000"


def ids_on(ranges: list[list[int]], n: int) -> list[str]:
    """n document ids whose tokens fall in the ranges."""
    firsts = [a for a, _ in ranges]
    out, i = [], 0
    while len(out) < n:
        doc_id = f"d{i:07d}"
        t = token_for(doc_id)
        k = bisect.bisect_right(firsts, t) - 1
        if k >= 0 and ranges[k][0] <= t <= ranges[k][1]:
            out.append(doc_id)
        i += 1
    return out


class Writers:
    """Threads updating documents of the source shard, recording each acknowledgement."""

    def __init__(self, address: str, ids: list[str], threads: int = 4) -> None:
        self.address, self.ids = address, ids
        self.stop = threading.Event()
        self.acks: list[tuple[float, str]] = []  # (time, id)
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(k,)) for k in range(threads)]

    def _run(self, k: int) -> None:
        with Client(self.address, timeout=30) as c:
            coll = c.collection("big")
            i = k
            while not self.stop.is_set():
                doc_id = self.ids[(i * 7919) % len(self.ids)]
                try:
                    coll.update(doc_id, {"w": i})
                    self.acks.append((time.monotonic(), doc_id))
                except Exception as err:  # noqa: BLE001 - counted and reported
                    self.errors.append(err)
                i += len(self.threads)

    def rate(self, start: float, end: float) -> float:
        return sum(1 for t, _ in self.acks if start <= t < end) / (end - start)


def read_p99(coll, doc_id: str, seconds: float) -> tuple[float, list[tuple[float, float]]]:
    """Point reads for `seconds`: p99 in ms and (time, ms) of each."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        coll.get(doc_id)
        samples.append((time.monotonic(), (time.perf_counter() - t0) * 1000))
    return percentile([s for _, s in samples], 99), samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--writers", type=int, default=4,
                    help="writer threads during the split (0: the copy alone)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="db4-bench-split-") as tmp:
        floor = raw_batch_insert_rate(Path(tmp), args.docs)
        c = Cluster(Path(tmp), nodes=2, shards=3)
        try:
            c.start()
            with Client(c.address, timeout=120) as client:
                status = client.admin.status(with_ranges=True)
                shards = {s["shard_id"]: s for s in status["shards"]}
                node = shards[SOURCE]["node_id"]
                neighbour = next(s for s, v in shards.items() if s != SOURCE
                                 and v["node_id"] == node)
                ids = ids_on(shards[SOURCE]["ranges"], args.docs)
                coll = client.collection("big")
                t0 = time.perf_counter()
                batches = [[{**doc(i), "$id": d} for i, d in enumerate(ids[k:k + 1000], k)]
                           for k in range(0, len(ids), 1000)]
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(coll.insert_many, batches))
                print(f"loaded {len(ids)} documents on {SOURCE} in "
                      f"{time.perf_counter() - t0:.1f} s")
                probe = ids_on(shards[neighbour]["ranges"], 1)[0]
                client.collection("probe").create({"$id": probe, "x": 1})
                idle_p99, _ = read_p99(client.collection("probe"), probe, 3.0)

                writers = Writers(c.address, ids, args.writers)
                for th in writers.threads:
                    th.start()
                time.sleep(1.0)
                # The same reads under the same writes, before any copy: the copy's own cost
                # is the ratio to this.
                busy_p99, _ = read_p99(client.collection("probe"), probe, 3.0)
                before_end = time.monotonic()
                states: list[tuple[float, str]] = []
                op = client.admin.split_shard(SOURCE, wait=False)
                started = time.monotonic()
                reads: list[tuple[float, float]] = []
                reading = threading.Event()

                def reader() -> None:
                    with Client(c.address, timeout=30) as rc:
                        while not reading.is_set():
                            reads.extend(read_p99(rc.collection("probe"), probe, 0.5)[1])

                counts: list[tuple[float, float]] = []  # (time, ms) of scatter counts

                copied = threading.Event()  # the copy ended: counts begin (not to weigh on it)

                def counter() -> None:
                    copied.wait()
                    with Client(c.address, timeout=60) as cc:
                        while not reading.is_set() or time.monotonic() - done_at[0] < 15:
                            t = time.perf_counter()
                            cc.collection("big").count()
                            counts.append((time.monotonic(), (time.perf_counter() - t) * 1000))
                            time.sleep(0.05)
                            if cleaned_at[0]:
                                return

                done_at, cleaned_at = [float("inf")], [0.0]
                rt = threading.Thread(target=reader)
                rt.start()
                ct = threading.Thread(target=counter)
                ct.start()
                while True:
                    op = client.admin.operation(op["op_id"])
                    if not states or states[-1][1] != op["state"]:
                        states.append((time.monotonic(), op["state"]))
                    if op["state"] not in ("planned", "copying"):
                        copied.set()
                    if op["state"] in ("done", "aborted"):
                        break
                    time.sleep(0.02)
                copied.set()
                reading.set()
                rt.join()
                done = time.monotonic()
                done_at[0] = done
                # The source deletes the rows it gave away in chunks, beside the writes.
                kept = len(ids) - op["documents"]
                while time.monotonic() - done < 120:
                    per = {s["shard_id"]: s["documents"]
                           for s in client.admin.status(with_stats=True)["shards"]}
                    if per.get(SOURCE, 0) <= kept:
                        break
                    time.sleep(0.2)
                cleaned = time.monotonic()
                cleaned_at[0] = cleaned
                ct.join()
                time.sleep(3.0)
                writers.stop.set()
                for th in writers.threads:
                    th.join()
        finally:
            c.stop()
            kill_all()

    if op["state"] != "done":
        print(f"split ended {op['state']}: {op['error']}")
        return 1
    at = dict((s, t) for t, s in states)
    copy_end = at.get("catching_up", done)
    copy_start = at.get("copying", started)
    copy_s = copy_end - copy_start
    moving = op["moving"]
    firsts = [a for a, _ in moving]

    def moves(doc_id: str) -> bool:
        t = token_for(doc_id)
        k = bisect.bisect_right(firsts, t) - 1
        return k >= 0 and moving[k][0] <= t <= moving[k][1]

    moving_acks = sorted(t for t, d in writers.acks if started <= t <= done + 0.5 and moves(d))
    gaps = [(b - a) * 1000 for a, b in zip(moving_acks, moving_acks[1:], strict=False)]
    copy_reads = [ms for t, ms in reads if copy_start <= t <= copy_end]
    during_p99 = percentile(copy_reads, 99) if copy_reads else float("nan")
    before = writers.rate(before_end - 3.0, before_end)
    after = writers.rate(cleaned, cleaned + 3.0)
    print(f"\nsplit of {SOURCE} ({op['documents']} documents to {op['target_shard']}): "
          f"{done - started:.2f} s in all; states: "
          + ", ".join(f"{s} +{t - started:.2f}s" for t, s in states))
    print(f"copy: {op['documents'] / copy_s:,.0f} docs/s ({op['total_bytes'] / 2**20:.0f} MiB "
          f"in {copy_s:.2f} s); raw apsw batch insert {floor:,.0f} rows/s -> "
          f"{op['documents'] / copy_s / floor:.2f}x the floor (target >= 0.2x)")
    if gaps:
        print(f"gaps between acknowledged writes on moving keys: p99 {percentile(gaps, 99):.0f} "
              f"ms, longest {max(gaps):.0f} ms over {len(moving_acks)} writes "
              "(target p99 < 500 ms)")
    print(f"the source's cleanup of the moved rows: {cleaned - done:.1f} s after the cutover; "
          f"the longest scatter count meanwhile: "
          f"{max((ms for t, ms in counts if t >= done), default=0):.0f} ms; from the end of the "
          f"copy to the cutover: {max((ms for t, ms in counts if t < done), default=0):.0f} ms")
    print(f"writes/s: {before:,.0f} before the split, {after:,.0f} after the cleanup; "
          f"write errors: {len(writers.errors)}")
    print(f"point reads on {node}'s other shard, p99: {idle_p99:.2f} ms idle, {busy_p99:.2f} ms "
          f"under the writes, {during_p99:.2f} ms under the writes and the copy -> "
          f"{during_p99 / idle_p99:.2f}x idle, {during_p99 / busy_p99:.2f}x the writes alone "
          "(target <= 3x)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        kill_all()
