#!/usr/bin/env python3
"""Point-operation latency and throughput through a real router, as ratios to a floor.

In one run: measure the floor first (bare Python gRPC echo reached through a Python grpc.aio
proxy: two hops, ~200-byte payload), then start a db4 cluster of real processes (etcd, nodes,
router) and measure point read, durable create and update through the router, one at a time and
64 in flight. Every figure is printed with its ratio to the floor.

Targets: read p50 <= 1.3x floor p50; durable create p50 <= 1.6x; reads at 64 in flight >= 0.6x
the floor's rate at 64 in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import concurrent, row, sequential  # noqa: E402

from db4client import AsyncClient, Client  # noqa: E402
from tests.support.procs import Proc, free_port, kill_all, wait_until  # noqa: E402

PAYLOAD = b"x" * 200


def start_floor(tmp: Path) -> tuple[int, list[Proc]]:
    """Echo and proxy processes; returns the proxy port."""
    echo_port, proxy_port = free_port(), free_port()
    script = str(ROOT / "bench" / "floor.py")
    echo = Proc("echo", [sys.executable, script, "echo", str(echo_port)], tmp / "echo.log")
    proxy = Proc("proxy", [sys.executable, script, "proxy", str(proxy_port), str(echo_port)],
                 tmp / "proxy.log")
    for p in (echo, proxy):
        p.start()
        wait_until(lambda p=p: "serving" in p.new_log(), 20, p.name)
    return proxy_port, [echo, proxy]


def measure_floor(port: int, n: int, in_flight: int) -> tuple[dict, dict]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary("/bench.Echo/Echo")
        seq = sequential(lambda i: call(PAYLOAD), n)

    async def run() -> dict:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            acall = ch.unary_unary("/bench.Echo/Echo")
            return await concurrent(lambda i: acall(PAYLOAD), n * 2, in_flight)

    return seq, asyncio.run(run())


def doc(i: int) -> dict:
    """A ~200-byte document."""
    return {"$id": f"bench-{i}", "name": f"user {i}", "email": f"user{i}@example.com",
            "tags": ["a", "b", "c"], "score": i * 1.5, "bio": "b" * 90}


def measure_db4(address: str, n: int, in_flight: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with Client(address) as client:
        coll = client.collection("bench")
        for i in range(n + 200):
            coll.upsert(doc(i))
        out["read"] = sequential(lambda i: coll.get(f"bench-{i % n}"), n)
        out["create"] = sequential(lambda i: coll.create({**doc(i), "$id": f"new-{i}"}), n)
        out["update"] = sequential(lambda i: coll.update(f"bench-{i % n}", {"score": i}), n)

    async def run() -> None:
        async with AsyncClient(address) as aclient:
            acoll = aclient.collection("bench")
            out["read64"] = await concurrent(lambda i: acoll.get(f"bench-{i % n}"), n * 2,
                                             in_flight)
            out["create64"] = await concurrent(
                lambda i: acoll.create({**doc(i), "$id": f"c64-{i}"}), n, in_flight)

    asyncio.run(run())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="operations per measurement")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--shards", type=int, default=8)
    args = ap.parse_args()
    from tests.support.cluster import Cluster

    with tempfile.TemporaryDirectory(prefix="db4-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            port, procs = start_floor(tmp)
            floor_seq, floor_conc = measure_floor(port, args.n, args.in_flight)
            for p in procs:
                p.stop()
            cluster = Cluster(tmp / "cluster", nodes=args.nodes, shards=args.shards).start()
            time.sleep(0.5)
            m = measure_db4(cluster.address, args.n, args.in_flight)
            cluster.stop()
        finally:
            kill_all()
    print(f"db4 crud benchmark: {args.n} ops each, {args.nodes} nodes, {args.shards} shards, "
          f"{os.cpu_count()} cores")
    print(row("floor: echo via aio proxy, 1 by 1", floor_seq, floor_seq))
    print(row(f"floor: same, {args.in_flight} in flight", floor_conc, floor_conc))
    print(row("read (get by id), 1 by 1", m["read"], floor_seq, "target p50 <= 1.3x"))
    print(row("durable create, 1 by 1", m["create"], floor_seq, "target p50 <= 1.6x"))
    print(row("update, 1 by 1", m["update"], floor_seq))
    print(row(f"read, {args.in_flight} in flight", m["read64"], floor_conc,
              "target rate >= 0.6x"))
    print(row(f"durable create, {args.in_flight} in flight", m["create64"], floor_conc))
    checks = {
        "read p50": m["read"]["p50"] / floor_seq["p50"] <= 1.3,
        "create p50": m["create"]["p50"] / floor_seq["p50"] <= 1.6,
        "read rate at 64": m["read64"]["rate"] / floor_conc["rate"] >= 0.6,
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
