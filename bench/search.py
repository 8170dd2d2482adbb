#!/usr/bin/env python3
"""Full-text search: 100k generated documents on 8 shards (3 nodes) next to one FTS5 table.

Measures, through the router: top-20 search p50/p99 for a few kinds of query (a common term, a
rare term, a phrase, a prefix, a field term, an OR), each as a ratio to the same query on one
apsw FTS5 table with the same content in this process (rank by bm25 with the same weights,
then read the 20 documents): target <= 3x. And indexing: insert_many docs/s into a collection
with a search index (title 2.0, body 1.0, porter) as a ratio to insert_many docs/s into a
collection without one, in the same cluster.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw
import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import timed  # noqa: E402

from db4.v1 import router_pb2, router_pb2_grpc  # noqa: E402
from db4client import Client  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402

COMMON = ["data", "system", "edge", "network", "query", "storage", "cache", "write"]
RARE = "quasar"

QUERIES = {
    "common term": ("data", "data"),
    "two terms (AND)": ("edge network", "edge network"),
    "rare term": (RARE, RARE),
    "phrase": ('"edge network"', '"edge network"'),
    "prefix": ("stor*", "stor*"),
    "field:term": ("title:cache", "title : cache"),
    "OR": (f"{RARE} OR system", f"{RARE} OR system"),
}


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]


def generate(n: int, seed: int = 7) -> list[dict]:
    """Documents whose words follow a Zipf-like law, a few common words, one rare one."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    cumulative = list(itertools.accumulate(1 / (k + 1) for k in range(len(vocab))))

    def text(low: int, high: int) -> str:
        words = rng.choices(vocab, cum_weights=cumulative, k=rng.randint(low, high))
        words += rng.sample(COMMON, rng.randint(0, 2))
        if rng.random() < 0.001:
            words.append(RARE)
        rng.shuffle(words)
        return " ".join(words)

    return [{"$id": f"a{i:06d}", "title": text(3, 8), "body": text(20, 80), "n": i % 100}
            for i in range(n)]


def reference(docs: list[dict]) -> apsw.Connection:
    """One FTS5 table (and the documents beside it) holding the whole corpus."""
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='porter')")
    conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)")
    with conn:
        conn.executemany("INSERT INTO t(rowid, title, body) VALUES (?, ?, ?)",
                         [(i, d["title"], d["body"]) for i, d in enumerate(docs)])
        conn.executemany("INSERT INTO docs VALUES (?, ?)",
                         [(i, json.dumps(d)) for i, d in enumerate(docs)])
    return conn


def floor_search(conn: apsw.Connection, expression: str) -> list:
    """Top 20 by -bm25(t, 2.0, 1.0), then their documents."""
    top = conn.execute("SELECT rowid, -bm25(t, 2.0, 1.0) FROM t WHERE t MATCH ? "
                       "ORDER BY bm25(t, 2.0, 1.0), rowid LIMIT 20", (expression,)).fetchall()
    return [(conn.execute("SELECT body FROM docs WHERE id = ?", (r,)).fetchone(), s)
            for r, s in top]


def load(client: Client, collection: str, docs: list[dict], batch: int,
         parallel: int = 4) -> float:
    """insert_many the documents, `parallel` batches in flight; documents/s."""
    coll = client.collection(collection)
    batches = [docs[k:k + batch] for k in range(0, len(docs), batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(coll.insert_many, batches))
    return len(docs) / (time.perf_counter() - start)


def create_search_index(stub: router_pb2_grpc.Db4Stub, name: str, collection: str) -> None:
    index = router_pb2.SearchIndex(name=name, collection=collection, tokenizer="porter", fields=[
        router_pb2.SearchField(path="title", weight=2.0),
        router_pb2.SearchField(path="body", weight=1.0)])
    list(stub.CreateSearchIndex(router_pb2.CreateSearchIndexRequest(index=index)))


def run_cluster(root: Path, docs: list[dict], batch: int, repeat: int) -> tuple[dict, dict]:
    """(rates, search timings) on a 3-node, 8-shard cluster."""
    cluster = Cluster(root, nodes=3, shards=8).start()
    try:
        with Client(cluster.address, timeout=300) as client, \
                grpc.insecure_channel(cluster.address) as channel:
            stub = router_pb2_grpc.Db4Stub(channel)
            client.create_collection("plain")
            client.create_collection("articles")
            create_search_index(stub, "articles_fts", "articles")
            rates = {"plain": load(client, "plain", docs, batch),
                     "indexed": load(client, "articles", docs, batch)}
            timings = {}
            for label, (query, _) in QUERIES.items():
                req = router_pb2.SearchRequest(index="articles_fts", query=query, limit=20)
                timings[label] = timed(lambda r=req: stub.Search(r, timeout=60), repeat)
            return rates, timings
    finally:
        cluster.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="documents")
    ap.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    args = ap.parse_args()
    docs = generate(args.n)
    conn = reference(docs)
    floors = {label: timed(lambda e=fts5: floor_search(conn, e), args.repeat)
              for label, (_, fts5) in QUERIES.items()}
    with tempfile.TemporaryDirectory(prefix="db4-sbench-") as tmpdir:
        try:
            rates, timings = run_cluster(Path(tmpdir) / "c8", docs, args.batch, args.repeat)
        finally:
            kill_all()
    print(f"db4 search benchmark: {args.n} documents, {os.cpu_count()} cores; 8 shards on 3 "
          "nodes vs one apsw FTS5 table in this process; top 20")
    for label, m in timings.items():
        f = floors[label]
        print(f"{label:<18} db4 p50 {m['p50']:7.2f} ms p99 {m['p99']:7.2f} ms | FTS5 p50 "
              f"{f['p50']:7.2f} ms p99 {f['p99']:7.2f} ms | ratio p50 "
              f"{m['p50'] / f['p50']:5.2f}x p99 {m['p99'] / f['p99']:5.2f}x (target <= 3x)")
    print(f"insert_many with a search index {rates['indexed']:8.0f} docs/s, without "
          f"{rates['plain']:8.0f} docs/s: ratio {rates['indexed'] / rates['plain']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
