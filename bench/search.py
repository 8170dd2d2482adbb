#!/usr/bin/env python3
"""Full-text search: 100k generated documents on 8 shards (3 nodes) next to one FTS5 table.

Measures, through the router: top-20 search p50/p99 for a few kinds of query (a common term, a
rare term, a phrase, a prefix, a field term, an OR), each as a ratio to the same query on one
apsw FTS5 table with the same content in this process: the same answer (the top 20 by bm25
with the same weights, their highlights and snippets, their documents), the fastest of three
ways; the ranking alone is printed beside. Target <= 3x. And a search matching nothing, which
still reaches every shard: the least any search costs here. The searches start once every node
has merged the freshly loaded shards' index segments (nodes do it when a shard is quiet; the
steady state a search meets). And indexing: insert_many docs/s into a collection with a search
index (title 2.0, body 1.0, porter) as a ratio to insert_many docs/s into a collection without
one, in the same cluster. And isolation: on a 1-node, 4-shard cluster, the p99 of point reads
of another shard while a full-text index is built over a 50k-document shard, as a ratio to the
same reads idle (target <= 3x; `--only-build-isolation` runs only this).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
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

from stats import percentile, timed  # noqa: E402

from db4.v1 import router_pb2, router_pb2_grpc  # noqa: E402
from db4client import Client  # noqa: E402
from db4node.search_merge import MERGED_LOG  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.procs import kill_all  # noqa: E402

COMMON = ["data", "system", "edge", "network", "query", "storage", "cache", "write"]
RARE = "quasar"
# A word no document holds: its search still asks every node (any shard may hold a match, and
# its statistics are needed), so its time is what reaching 8 shards on 3 nodes costs alone.
NOTHING = "no match"
NOTHING_QUERY = "zqxjvw"

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


FLOOR_WAYS = ("rank", "rowid", "scan")
MARKS = ("highlight(t, 0, '<b>', '</b>'), highlight(t, 1, '<b>', '</b>'), "
         "snippet(t, -1, '<b>', '</b>', '\u2026', 32)")


def floor_search(conn: apsw.Connection, expression: str, way: str) -> list:
    """What a db4 search answers, from the one table: the top 20 by bm25(t, 2.0, 1.0), their
    highlights and snippets (db4's default marks and 32 tokens) made for those 20 rows only,
    and their documents. Three ways (the floor is the fastest for each query): "rank" lets
    FTS5 sort every match by the rank and make the marks of the 20 it returns; "rowid" keeps
    the best 20 in SQLite's top-N sort, then finds each by its rowid for its marks; "scan"
    does the same, marking the 20 in one more scan of the matches."""
    if way == "rank":
        found = conn.execute(
            f"SELECT rowid, -rank, {MARKS} FROM t WHERE t MATCH ? "
            "AND rank MATCH 'bm25(2.0, 1.0)' ORDER BY rank LIMIT 20", (expression,)).fetchall()
        top = [(r[0], r[1]) for r in found]
        marks = {r[0]: r[2:] for r in found}
    elif way == "rowid":
        top = ranking(conn, expression)
        marks = {r: conn.execute(f"SELECT {MARKS} FROM t WHERE t MATCH ? AND rowid = ?",
                                 (expression, r)).fetchone() for r, _ in top}
    else:
        top = ranking(conn, expression)
        marks = {row[0]: row[1:] for row in conn.execute(
            f"SELECT rowid, {MARKS} FROM t WHERE t MATCH ? "
            "AND +rowid IN (SELECT value FROM json_each(?))",
            (expression, json.dumps([r for r, _ in top])))}
    return [(conn.execute("SELECT body FROM docs WHERE id = ?", (r,)).fetchone(), s,
             tuple(marks[r])) for r, s in top]


def ranking(conn: apsw.Connection, expression: str) -> list[tuple[int, float]]:
    """(rowid, score) of the top 20 by -bm25(t, 2.0, 1.0)."""
    return conn.execute("SELECT rowid, -bm25(t, 2.0, 1.0) FROM t WHERE t MATCH ? "
                        "ORDER BY bm25(t, 2.0, 1.0), rowid LIMIT 20", (expression,)).fetchall()


def ranking_only(conn: apsw.Connection, expression: str) -> list:
    """The top 20 and their documents, without highlights or snippets: less than a search
    answers (printed beside, for comparison with earlier runs)."""
    return [(conn.execute("SELECT body FROM docs WHERE id = ?", (r,)).fetchone(), s)
            for r, s in ranking(conn, expression)]


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
            settled = wait_for_merges(cluster)
            print(f"the nodes merged the fresh index segments of {len(settled)} shards "
                  "before the searches", flush=True)
            timings = {}
            for label, (query, _) in {**QUERIES, NOTHING: (NOTHING_QUERY, "")}.items():
                req = router_pb2.SearchRequest(index="articles_fts", query=query, limit=20)
                timings[label] = timed(lambda r=req: stub.Search(r, timeout=60), repeat)
            return rates, timings
    finally:
        cluster.stop()


MERGED = re.compile(re.escape(MERGED_LOG) + r" (\S+) ")


def wait_for_merges(cluster: Cluster, timeout: float = 120.0) -> set[str]:
    """Wait until every shard's node logged the merge of its index segments (nodes merge them
    once a freshly loaded shard is quiet: the steady state a search meets)."""
    deadline = time.monotonic() + timeout
    merged: set[str] = set()
    while len(merged) < cluster.shards:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only shards {sorted(merged)} merged their index segments")
        time.sleep(0.5)
        for log in (cluster.root / "logs").glob("n*.log"):
            merged |= set(MERGED.findall(log.read_text(errors="replace")))
    return merged


def point_reads(coll, ids: list[str], tenant: str, n: int) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        assert coll.get(ids[i % len(ids)], partition=tenant) is not None
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def build_isolation(root: Path, docs: list[dict], batch: int, reads: int) -> dict:
    """Point-read p99 on another shard idle and while a search index is built over `docs`,
    all on one shard of a one-node cluster."""
    cluster = Cluster(root, nodes=1, shards=4).start()
    try:
        with Client(cluster.address, timeout=600) as client:
            client.create_collection("big", partition_key="tenant")
            client.create_collection("small", partition_key="tenant")
            heavy = client.shard_for("big", "heavy")
            tenant = next(f"t{i}" for i in range(1000)
                          if client.shard_for("small", f"t{i}") != heavy)
            load(client, "big", [{**d, "tenant": "heavy"} for d in docs], batch)
            small = client.collection("small")
            ids = [small.create({"tenant": tenant, "i": i})["$id"] for i in range(20)]
            point_reads(small, ids, tenant, 100)
            idle = point_reads(small, ids, tenant, reads)
            progress: list[dict] = []
            with ThreadPoolExecutor(1) as pool:
                t0 = time.perf_counter()
                building = pool.submit(
                    client.create_search_index, "big_fts", "big",
                    {"title": 2.0, "body": 1.0}, on_progress=progress.append)
                while not progress and not building.done():
                    time.sleep(0.01)
                busy = point_reads(small, ids, tenant, reads)
                still_running = not building.done()
                building.result()
                seconds = time.perf_counter() - t0
    finally:
        cluster.stop()
    return {"idle_p99": percentile(idle, 99), "busy_p99": percentile(busy, 99),
            "seconds": seconds, "overlapped": still_running, "docs": len(docs)}


def print_build_isolation(iso: dict) -> None:
    note = "" if iso["overlapped"] else " (the build ended before the reads did)"
    print(f"search index build over {iso['docs']} documents on one shard ({iso['seconds']:.1f} "
          f"s): point-read p99 on another shard {iso['busy_p99']:.2f} ms, idle "
          f"{iso['idle_p99']:.2f} ms: ratio {iso['busy_p99'] / iso['idle_p99']:.2f}x "
          f"(target <= 3x){note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="documents")
    ap.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    ap.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    ap.add_argument("--build-docs", type=int, default=50_000,
                    help="documents of the shard indexed in the build-isolation run")
    ap.add_argument("--only-build-isolation", action="store_true",
                    help="run only the build-isolation measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="db4-sbench-") as tmpdir:
        try:
            iso = build_isolation(Path(tmpdir) / "iso", generate(args.build_docs, seed=3),
                                  args.batch, 500)
        finally:
            kill_all()
    if args.only_build_isolation:
        print_build_isolation(iso)
        return 0
    docs = generate(args.n)
    conn = reference(docs)
    floors, ranking = {}, {}
    for label, (_, fts5) in QUERIES.items():
        answers = [floor_search(conn, fts5, way) for way in FLOOR_WAYS]
        if any(a != answers[0] for a in answers):
            raise AssertionError(f"the ways of answering {label} on one table differ")
        ways = {way: timed(lambda e=fts5, w=way: floor_search(conn, e, w), args.repeat)
                for way in FLOOR_WAYS}
        fastest = min(FLOOR_WAYS, key=lambda w, t=ways: t[w]["p50"])
        floors[label] = {**ways[fastest], "way": fastest}
        ranking[label] = timed(lambda e=fts5: ranking_only(conn, e), args.repeat)
    with tempfile.TemporaryDirectory(prefix="db4-sbench-") as tmpdir:
        try:
            rates, timings = run_cluster(Path(tmpdir) / "c8", docs, args.batch, args.repeat)
        finally:
            kill_all()
    print(f"db4 search benchmark: {args.n} documents, {os.cpu_count()} cores; 8 shards on 3 "
          "nodes vs one apsw FTS5 table in this process; top 20")
    print("FTS5: the same answer from one table (top 20 with highlights and snippets, and their "
          "documents; the fastest way); in brackets, the ranking alone")
    for label in QUERIES:
        m, r, f = timings[label], ranking[label], floors[label]
        print(f"{label:<18} db4 p50 {m['p50']:7.2f} ms p99 {m['p99']:7.2f} ms | FTS5 p50 "
              f"{f['p50']:7.2f} ms p99 {f['p99']:7.2f} ms ({f['way']}) | ratio p50 "
              f"{m['p50'] / f['p50']:5.2f}x p99 {m['p99'] / f['p99']:5.2f}x (target <= 3x) "
              f"[ranking alone p50 {r['p50']:6.2f} ms: {m['p50'] / r['p50']:5.2f}x]")
    m = timings[NOTHING]
    print(f"{NOTHING:<18} db4 p50 {m['p50']:7.2f} ms p99 {m['p99']:7.2f} ms: reaching every "
          "shard alone; no query's db4 time can be below it")
    print(f"insert_many with a search index {rates['indexed']:8.0f} docs/s, without "
          f"{rates['plain']:8.0f} docs/s: ratio {rates['indexed'] / rates['plain']:.2f}x")
    print_build_isolation(iso)
    return 0


if __name__ == "__main__":
    sys.exit(main())
