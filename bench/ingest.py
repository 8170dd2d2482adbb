#!/usr/bin/env python3
"""Bulk ingest: insert_many, bulk_load and `db4 import` next to raw apsw batch inserts.

One cluster of 8 shards on 3 nodes. For documents of about 200 bytes and about 4 KB, and batches
of 100, 1000 and 10000 documents, each path loads a fresh collection:
- `insert_many`: the batches sent by 4 threads, each batch one call (all or nothing);
- `bulk_load`: one call over a generator, `in_flight=4`;
- `db4 import`: the same documents as a JSON-lines file, through the command line;
and prints docs/s as a ratio to raw apsw inserting the same rows (the same JSON text, ready-made,
`batch` rows per transaction, WAL, synchronous=FULL) in the same run; the target is >= 0.3x.
It also prints the CPU each process spent per document during the insert_many runs (client,
router, the three nodes; from /proc), the per-document budget bench/README.md keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db4client import Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402

SIZES = {"200B": 80, "4KB": 3_900}  # padding that brings a document to about that size
BATCHES = (100, 1_000, 10_000)


def doc(i: int, pad: int) -> dict:
    return {"$id": f"d{i:07d}", "status": ("active", "idle", "new")[i % 3], "age": i % 90,
            "score": (i * 13) % 1000 / 10, "name": f"user {i}", "pad": "p" * pad}


def raw_rate(tmp: Path, docs: list[dict], batch: int) -> float:
    """Rows/s of apsw inserting the documents `batch` per transaction (the floor)."""
    path = tmp / f"raw-{batch}-{len(docs)}.db"
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE docs(collection TEXT NOT NULL, id TEXT NOT NULL, token INTEGER "
                 "NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, "
                 "PRIMARY KEY(collection, id)) WITHOUT ROWID")
    rows = [("c", d["$id"], i, 1, json.dumps(d)) for i, d in enumerate(docs)]
    start = time.perf_counter()
    for k in range(0, len(rows), batch):
        with conn:
            conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", rows[k:k + batch])
    rate = len(rows) / (time.perf_counter() - start)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return rate


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def by_insert_many(client: Client, name: str, docs: list[dict], batch: int) -> float:
    coll = client.collection(name)
    chunks = [docs[k:k + batch] for k in range(0, len(docs), batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(coll.insert_many, chunks))
    return len(docs) / (time.perf_counter() - start)


def by_bulk_load(client: Client, name: str, docs: list[dict], batch: int) -> float:
    start = time.perf_counter()
    result = client.bulk_load(name, iter(docs), batch_size=batch, in_flight=4)
    assert result.loaded == len(docs), result
    return len(docs) / (time.perf_counter() - start)


def by_import(address: str, name: str, path: Path, n: int, batch: int) -> float:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "db4client.cli", "import", name, str(path),
                          "--batch-size", str(batch), "--router", address, "--timeout", "600"],
                         capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start  # the command's start-up counts, as a user sees it
    assert json.loads(out.stdout)["loaded"] == n, out.stdout
    return n / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=30_000, help="documents of ~200 B per run")
    ap.add_argument("--big-docs", type=int, default=10_000, help="documents of ~4 KB per run")
    args = ap.parse_args()
    counts = {"200B": args.docs, "4KB": args.big_docs}
    rows: list[tuple] = []
    budget: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="db4-ingest-") as tmpdir:
        tmp = Path(tmpdir)
        cluster = Cluster(tmp / "c", nodes=3, shards=8).start()
        try:
            pids = {"client": os.getpid(), "router": cluster.router.pid,
                    **{n.node_id: n.pid for n in cluster.nodes}}
            with Client(cluster.address, timeout=600) as client:
                client.collection("warm").insert_many([doc(i, 80) for i in range(2_000)])
                run = 0
                for size, pad in SIZES.items():
                    n = counts[size]
                    docs = [doc(i, pad) for i in range(n)]
                    path = tmp / f"{size}.jsonl"
                    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
                    for batch in BATCHES:
                        floor = raw_rate(tmp, docs, batch)
                        run += 1
                        before = {k: cpu_seconds(p) for k, p in pids.items()}
                        many = by_insert_many(client, f"m{run}", docs, batch)
                        if size == "200B" and batch == 1_000:
                            budget = {k: (cpu_seconds(p) - before[k]) / n * 1e6
                                      for k, p in pids.items()}
                        bulk = by_bulk_load(client, f"b{run}", docs, batch)
                        imported = by_import(cluster.address, f"i{run}", path, n, batch)
                        rows.append((size, batch, n, floor, many, bulk, imported))
        finally:
            cluster.stop()
            kill_all()
    print(f"db4 ingest benchmark: 8 shards on 3 nodes, {os.cpu_count()} cores; docs/s and the "
          "ratio to raw apsw batch inserts of the same rows (target >= 0.3x)")
    print(f"{'docs':>5} {'batch':>6} {'n':>6} {'raw apsw':>10} | {'insert_many':>18} | "
          f"{'bulk_load':>18} | {'db4 import':>18}")
    for size, batch, n, floor, many, bulk, imported in rows:
        print(f"{size:>5} {batch:>6} {n:>6} {floor:>10.0f} | "
              + " | ".join(f"{rate:>9.0f} {rate / floor:>6.3f}x" for rate in
                           (many, bulk, imported)))
    if budget:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in budget.items())
        print(f"CPU per document, insert_many of ~200 B documents in batches of 1000 (us): "
              f"{parts}; total {sum(budget.values()):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
