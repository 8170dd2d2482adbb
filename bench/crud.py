#!/usr/bin/env python3
"""Point-operation latency and throughput through a real router, as ratios to a floor.

In one run: a bare Python gRPC echo reached through a Python grpc.aio proxy (two hops, ~200-byte
payload) is the floor; a db4 cluster of real processes (etcd, nodes, router) is measured for
point read, durable create and update through the router, one at a time and 64 in flight, and
again with a token-aware client (`Client(direct=True)`, straight to the owning node) next to the
echo reached directly (one hop). Floors and db4 are measured in alternating rounds, so both see
the same machine; every figure is printed with its ratio to its floor.

Targets: read p50 <= 1.3x floor p50; durable create p50 <= 1.6x (<= 1.5x for the write path);
reads at 64 in flight >= 0.6x the floor's rate at 64 in flight; creates at 64 in flight >= 0.8x;
direct read p50 <= 1.2x the one-hop floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import Series, concurrent, row, sequential  # noqa: E402

from db4client import AsyncClient, Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import Proc, free_port, kill_all, wait_until  # noqa: E402

PAYLOAD = b"x" * 200


def start_floor(tmp: Path) -> tuple[int, int]:
    """Echo and proxy processes; returns (the echo's port, the proxy's port)."""
    echo_port, proxy_port = free_port(), free_port()
    script = str(ROOT / "bench" / "floor.py")
    echo = Proc("echo", [sys.executable, script, "echo", str(echo_port)], tmp / "echo.log")
    proxy = Proc("proxy", [sys.executable, script, "proxy", str(proxy_port), str(echo_port)],
                 tmp / "proxy.log")
    for p in (echo, proxy):
        p.start()
        wait_until(lambda p=p: "serving" in p.new_log(), 20, p.name)
    return echo_port, proxy_port


def doc(i: int) -> dict:
    """A ~200-byte document."""
    return {"$id": f"bench-{i}", "name": f"user {i}", "email": f"user{i}@example.com",
            "tags": ["a", "b", "c"], "score": i * 1.5, "bio": "b" * 90}


def sequential_rounds(ports: tuple[int, int], address: str, n: int, rounds: int
                      ) -> dict[str, Series]:
    out: dict[str, Series] = defaultdict(Series)
    per = n // rounds
    with grpc.insecure_channel(f"127.0.0.1:{ports[1]}") as ch, \
            grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as ch1, Client(address) as client, \
            Client(address, direct=True) as direct:
        echo = ch.unary_unary("/bench.Echo/Echo")
        echo1 = ch1.unary_unary("/bench.Echo/Echo")
        coll, dcoll = client.collection("bench"), direct.collection("bench")
        for i in range(n + 400):
            coll.upsert(doc(i))
        for r in range(rounds):
            base = r * per
            out["floor"].add(sequential(lambda i: echo(PAYLOAD), per))
            out["read"].add(sequential(
                lambda i, b=base: coll.get(f"bench-{(b + i) % n}"), per))
            out["create"].add(sequential(
                lambda i, b=base, r=r: coll.create({**doc(i), "$id": f"new-{b + i}-{r}"}), per))
            out["update"].add(sequential(
                lambda i, b=base: coll.update(f"bench-{(b + i) % n}", {"score": i}), per))
            out["floor1"].add(sequential(lambda i: echo1(PAYLOAD), per))
            out["direct read"].add(sequential(
                lambda i, b=base: dcoll.get(f"bench-{(b + i) % n}"), per))
            out["direct create"].add(sequential(
                lambda i, b=base, r=r: dcoll.create({**doc(i), "$id": f"dnew-{b + i}-{r}"}),
                per))
        routes = direct._routes
        assert routes is not None and routes.fell_back == 0, "direct calls went to the router"
    return out


async def concurrent_rounds(floor_port: int, address: str, n: int, in_flight: int,
                            rounds: int) -> dict[str, Series]:
    out: dict[str, Series] = defaultdict(Series)
    per = 2 * n // rounds
    async with grpc.aio.insecure_channel(f"127.0.0.1:{floor_port}") as ch, \
            AsyncClient(address) as client:
        echo = ch.unary_unary("/bench.Echo/Echo")
        coll = client.collection("bench")
        async with AsyncClient(address, direct=True) as direct:
            dcoll = direct.collection("bench")
            for r in range(rounds):
                out["floor"].add(await concurrent(lambda i: echo(PAYLOAD), per, in_flight))
                out["read"].add(await concurrent(lambda i: coll.get(f"bench-{i % n}"), per,
                                                 in_flight))
                out["create"].add(await concurrent(
                    lambda i, r=r: coll.create({**doc(i), "$id": f"c64-{r}-{i}"}), per,
                    in_flight))
                out["direct read"].add(await concurrent(
                    lambda i: dcoll.get(f"bench-{i % n}"), per, in_flight))
                out["direct create"].add(await concurrent(
                    lambda i, r=r: dcoll.create({**doc(i), "$id": f"d64-{r}-{i}"}), per,
                    in_flight))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="operations per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--shards", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="db4-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            ports = start_floor(tmp)
            cluster = Cluster(tmp / "cluster", nodes=args.nodes, shards=args.shards).start()
            seq = sequential_rounds(ports, cluster.address, args.n, args.rounds)
            conc = asyncio.run(concurrent_rounds(ports[1], cluster.address, args.n,
                                                 args.in_flight, args.rounds))
            cluster.stop()
        finally:
            kill_all()
    s = {k: v.summary() for k, v in seq.items()}
    c = {k: v.summary() for k, v in conc.items()}
    print(f"db4 crud benchmark: {args.n} ops each in {args.rounds} alternating rounds, "
          f"{args.nodes} nodes, {args.shards} shards, {os.cpu_count()} cores")
    print(row("floor: echo via aio proxy, 1 by 1", s["floor"], s["floor"]))
    print(row(f"floor: same, {args.in_flight} in flight", c["floor"], c["floor"]))
    print(row("read (get by id), 1 by 1", s["read"], s["floor"], "target p50 <= 1.3x"))
    print(row("durable create, 1 by 1", s["create"], s["floor"], "target p50 <= 1.6x"))
    print(row("update, 1 by 1", s["update"], s["floor"]))
    print(row(f"read, {args.in_flight} in flight", c["read"], c["floor"], "target rate >= 0.6x"))
    print(row(f"durable create, {args.in_flight} in flight", c["create"], c["floor"],
              "target rate >= 0.8x"))
    print(row("floor: echo direct (one hop), 1 by 1", s["floor1"], s["floor1"]))
    print(row("direct read, 1 by 1 (vs one hop)", s["direct read"], s["floor1"],
              "target p50 <= 1.2x"))
    print(row("direct durable create, 1 by 1", s["direct create"], s["floor"],
              "target p50 <= 1.5x"))
    print(row(f"direct read, {args.in_flight} in flight", c["direct read"], c["floor"]))
    print(row(f"direct durable create, {args.in_flight} in flight", c["direct create"],
              c["floor"], "target rate >= 0.8x"))
    checks = {
        "read p50": s["read"]["p50"] / s["floor"]["p50"] <= 1.3,
        "create p50": s["create"]["p50"] / s["floor"]["p50"] <= 1.6,
        "read rate at 64": c["read"]["rate"] / c["floor"]["rate"] >= 0.6,
        "direct read p50": s["direct read"]["p50"] / s["floor1"]["p50"] <= 1.2,
        "direct create p50": s["direct create"]["p50"] / s["floor"]["p50"] <= 1.5,
        "create rate at 64": max(c["create"]["rate"], c["direct create"]["rate"])
        / c["floor"]["rate"] >= 0.8,
    }
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in checks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
