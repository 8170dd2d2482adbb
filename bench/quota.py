#!/usr/bin/env python3
"""Per-token quotas: one token flooding scatter queries next to another token's point reads.

A secured cluster (TLS, tokens; 2 nodes, 4 shards, as `db4 dev --tls` makes it) holds a
20k-document collection. Token B reads single documents one at a time; its p50/p99 are measured:
1. idle;
2. while token A, with a quota (--requests-per-s, default 20), floods scatter queries (a filter
   no index serves, over every shard) from --flooders processes as fast as it is let;
3. the same flood from a token without a quota, for comparison.
Printed as ratios of B's p99 to its idle p99 (target <= 3x with the quota), with how many of
A's calls ran and how many were refused RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import percentile  # noqa: E402

from db4client import Client, errors  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402
from tests.support.secured import Secured  # noqa: E402

SCAN = {"n": {"$gte": 0}, "tag": "t7"}


def flood(address: str, token: str, tls: dict, stop, out) -> None:
    """Scatter queries as fast as the router lets this token: (ran, refused)."""
    ran = refused = 0
    with Client(address, token=token, tls=tls, timeout=60) as client:
        coll = client.collection("big")
        while not stop.is_set():
            try:
                coll.find(where=SCAN, limit=50)
                ran += 1
            except errors.ResourceExhaustedError as err:
                refused += 1
                time.sleep(min((err.retry_after_ms or 10) / 1000, 0.05))
    out.put((ran, refused))


def reads(client: Client, ids: list[str], n: int) -> list[float]:
    coll = client.collection("small")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        coll.get(ids[i % len(ids)])
        out.append((time.perf_counter() - t0) * 1000)
    return out


def under_flood(secured: Secured, reader: Client, ids: list[str], token: str, flooders: int,
                n: int) -> tuple[list[float], int, int]:
    ctx = multiprocessing.get_context("spawn")
    out, stop = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=flood, args=(secured.router.address, token,
                                            secured.tls.sdk_tls(), stop, out))
             for _ in range(flooders)]
    for p in procs:
        p.start()
    time.sleep(3)  # the flooders connect and run
    samples = reads(reader, ids, n)
    stop.set()
    ran = refused = 0
    for _ in procs:
        a, b = out.get(timeout=120)
        ran, refused = ran + a, refused + b
    for p in procs:
        p.join(10)
    return samples, ran, refused


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--reads", type=int, default=1000)
    ap.add_argument("--flooders", type=int, default=3)
    ap.add_argument("--requests-per-s", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="db4-quota-") as tmp:
        secured = Secured(Path(tmp)).start()
        try:
            with secured.client("admin") as admin:
                limited = admin.admin.create_token("read", "flood-limited",
                                                   requests_per_s=args.requests_per_s)["token"]
                unlimited = admin.admin.create_token("read", "flood-unlimited")["token"]
            with secured.client("write") as writer:
                big = writer.collection("big")
                for k in range(0, args.docs, 2000):
                    big.insert_many([{"n": i, "tag": f"t{i % 10}", "pad": "x" * 200}
                                     for i in range(k, min(args.docs, k + 2000))])
                ids = [writer.collection("small").create({"i": i})["$id"] for i in range(50)]
            with secured.client("read") as reader:
                reads(reader, ids, 200)
                idle = reads(reader, ids, args.reads)
                t0 = time.perf_counter()
                with Client(secured.router.address, token=unlimited,
                            tls=secured.tls.sdk_tls()) as one:
                    one.collection("big").find(where=SCAN, limit=50)
                scan_ms = (time.perf_counter() - t0) * 1000
                quota, q_ran, q_refused = under_flood(secured, reader, ids, limited,
                                                      args.flooders, args.reads)
                free, f_ran, f_refused = under_flood(secured, reader, ids, unlimited,
                                                     args.flooders, args.reads)
        finally:
            secured.stop()
            kill_all()
    idle_p99 = percentile(idle, 99)
    print(f"db4 quota benchmark: {args.docs} documents, {os.cpu_count()} cores, 2 nodes, "
          f"4 shards, TLS and tokens; {args.flooders} processes flood scatter queries "
          f"({scan_ms:.1f} ms each alone)")
    print(f"point read, idle:                        p50 {percentile(idle, 50):6.2f} ms  "
          f"p99 {idle_p99:6.2f} ms")
    for label, samples, ran, refused in (
            (f"flood with a quota of {args.requests_per_s:g}/s", quota, q_ran, q_refused),
            ("flood without a quota", free, f_ran, f_refused)):
        p99 = percentile(samples, 99)
        print(f"point read, {label:<28} p50 {percentile(samples, 50):6.2f} ms  p99 "
              f"{p99:6.2f} ms = {p99 / idle_p99:5.2f}x idle p99 (flood: {ran} queries ran, "
              f"{refused} refused)")
    print("target: <= 3x idle p99 with the quota")
    return 0


if __name__ == "__main__":
    sys.exit(main())
