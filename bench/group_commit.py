#!/usr/bin/env python3
"""Group commit on one shard: durable writes/s with many in flight, as a ratio to the same
writes each committed alone, measured in the same run.

The node's own write path (db4node: Participant.write -> ShardWorker.write_grouped ->
Shard.write_group, synchronous=FULL, a change-log record and a txid note per write) on one
shard file, no network: it shows what sharing one commit and one fsync among the writes queued
on a shard's writer thread is worth for a write-hot shard. The floor is the same path with
groups of one (each write its own transaction and fsync).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db4core.hashing import token_for  # noqa: E402
from db4node import worker  # noqa: E402
from db4node.participant import Participant  # noqa: E402
from db4node.shard import Op  # noqa: E402
from db4node.store import ShardStore  # noqa: E402


async def rate(group_max: int, n: int, in_flight: int) -> float:
    """Creates/s of n ~200-byte documents, in_flight at a time, groups of at most group_max."""
    worker.GROUP_MAX = group_max
    with tempfile.TemporaryDirectory(prefix="db4-bench-group-") as tmp:
        store = ShardStore(tmp)
        participant = Participant(store, 2000)
        gate = asyncio.Semaphore(in_flight)

        async def create(i: int) -> None:
            async with gate:
                doc_id = f"d{i}"
                body = json.dumps({"$id": doc_id, "pad": "x" * 150}).encode()
                op = Op("create", "bench", doc_id, token_for(doc_id), body, None, "$id")
                await participant.write("s0", [op], f"txid-{i}", [], None)

        try:
            await create(-1)  # the file and its schema
            start = time.perf_counter()
            await asyncio.gather(*(create(i) for i in range(n)))
            return n / (time.perf_counter() - start)
        finally:
            store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="writes per round")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    alone, grouped = [], []
    for _ in range(args.rounds):  # alternating, so both see the same machine
        alone.append(asyncio.run(rate(1, args.n, args.in_flight)))
        grouped.append(asyncio.run(rate(worker.GROUP_MAX_DEFAULT, args.n, args.in_flight)))
    a, g = sorted(alone)[len(alone) // 2], sorted(grouped)[len(grouped) // 2]
    print(f"one shard, {args.in_flight} durable creates in flight, median of {args.rounds} "
          f"rounds of {args.n}:")
    print(f"  each write its own commit (floor): {a:8,.0f} writes/s (1.00x)")
    print(f"  group commit:                      {g:8,.0f} writes/s ({g / a:.2f}x the floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
