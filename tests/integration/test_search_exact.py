"""Search ranks exactly as one FTS5 index over the whole collection would.

A skewed corpus over the 8 shards (most documents holding a rare term sit on one shard, so
per-shard statistics would rank them quite differently) is indexed by the cluster and by one
apsw FTS5 table with the same content, columns in field order and the same tokenizer. For
several kinds of query the cluster's top 20 ids equal the table's, ranked by
`-bm25(t, 2.0, 1.0)` then id, and the scores agree within 1e-6 relative.
"""

from __future__ import annotations

import random

import apsw
import pytest

from db4.v1 import router_pb2

WORDS = [
    "edge", "database", "network", "storage", "query", "index", "shard", "replica", "commit",
    "log", "cache", "latency", "region", "cluster", "token", "stream", "vector", "search",
    "ranking", "document", "field", "value", "schema", "table", "column", "engine", "memory",
    "disk", "write", "read",
]
RARE = "zyzzyva"
DOCS_TOTAL = 400
RARE_ON_HOT = 24  # documents holding RARE on one shard
RARE_ELSEWHERE = 4

# (cluster query, the same query in FTS5 syntax over the reference table's columns)
QUERIES = [
    ("database", "database"),
    (RARE, RARE),
    (f"{RARE} cache", f"{RARE} cache"),
    ('"edge database"', '"edge database"'),
    ("lat*", "lat*"),
    ("title:shard", "title : shard"),
    (f"{RARE} OR vector", f"{RARE} OR vector"),
    ("query NOT index", "query NOT index"),
    (f"title:{RARE} body:commit", f"title : {RARE} AND body : commit"),
]


def _text(rng: random.Random, low: int, high: int, rare: bool = False) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    if rare:
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), RARE)
    return " ".join(words).capitalize()


@pytest.fixture(scope="module")
def corpus(client, mode):
    """(collection, documents): RARE mostly on one shard, the rest spread by hashing."""
    rng = random.Random(20240611)
    coll = f"exact{rng.randrange(10**9)}{mode}"
    hot = client.shard_for(coll, "e0000")
    hot_ids, other_ids, plain_ids, i = [], [], [], 0
    while len(hot_ids) < RARE_ON_HOT or len(other_ids) < RARE_ELSEWHERE:
        doc_id = f"e{i:04}"
        on_hot = client.shard_for(coll, doc_id) == hot
        if on_hot and len(hot_ids) < RARE_ON_HOT:
            hot_ids.append(doc_id)
        elif not on_hot and len(other_ids) < RARE_ELSEWHERE:
            other_ids.append(doc_id)
        else:
            plain_ids.append(doc_id)
        i += 1
    rare_ids = set(hot_ids) | set(other_ids)
    while len(plain_ids) + len(rare_ids) < DOCS_TOTAL:
        plain_ids.append(f"e{i:04}")
        i += 1
    docs = []
    for doc_id in sorted([*plain_ids, *rare_ids]):
        rare = doc_id in rare_ids
        docs.append({"$id": doc_id, "title": _text(rng, 2, 6, rare and rng.random() < 0.5),
                     "body": _text(rng, 5, 60, rare)})
    client.collection(coll).insert_many(docs)
    return coll, docs


@pytest.fixture(scope="module")
def cluster_index(raw_module, corpus):
    coll, _ = corpus
    name = f"{coll}_fts"
    index = router_pb2.SearchIndex(name=name, collection=coll, tokenizer="porter", fields=[
        router_pb2.SearchField(path="title", weight=2.0),
        router_pb2.SearchField(path="body", weight=1.0)])
    progress = list(raw_module.CreateSearchIndex(router_pb2.CreateSearchIndexRequest(index=index)))
    assert progress[-1].done and progress[-1].documents == DOCS_TOTAL
    return name


@pytest.fixture(scope="module")
def raw_module(cluster):
    import grpc

    from db4.v1 import router_pb2_grpc

    with grpc.insecure_channel(cluster.address) as ch:
        yield router_pb2_grpc.Db4Stub(ch)


@pytest.fixture(scope="module")
def reference(corpus):
    """One FTS5 table holding the whole corpus."""
    _, docs = corpus
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='porter')")
    with conn:  # rowids in id order, so ordering by rowid is ordering by id
        conn.executemany("INSERT INTO t(rowid, title, body) VALUES (?, ?, ?)",
                         [(n, d["title"], d["body"]) for n, d in enumerate(docs)])
    yield conn, [d["$id"] for d in docs]
    conn.close()


def test_the_rare_term_is_skewed(client, corpus):
    coll, docs = corpus
    shards = [client.shard_for(coll, d["$id"]) for d in docs if RARE in d["body"].lower()]
    assert max(shards.count(s) for s in set(shards)) == RARE_ON_HOT
    assert len(set(client.shard_for(coll, d["$id"]) for d in docs)) == 8


@pytest.mark.parametrize(("query", "fts5"), QUERIES, ids=[q for q, _ in QUERIES])
def test_top_20_equals_one_fts5_table(raw_module, cluster_index, reference, query, fts5):
    conn, doc_ids = reference
    expected = [(doc_ids[rowid], score) for rowid, score in conn.execute(
        "SELECT rowid, -bm25(t, 2.0, 1.0) AS score FROM t WHERE t MATCH ? "
        "ORDER BY score DESC, rowid LIMIT 20", (fts5,))]
    assert expected, f"the corpus has no match for {fts5!r}"
    got = raw_module.Search(router_pb2.SearchRequest(index=cluster_index, query=query, limit=20))
    assert [h.id for h in got.hits] == [i for i, _ in expected]
    for hit, (_, score) in zip(got.hits, expected, strict=True):
        assert hit.score == pytest.approx(score, rel=1e-6), hit.id


def _reference_top(docs: list[dict], fts5: str) -> list[tuple[str, float]]:
    docs = sorted(docs, key=lambda d: d["$id"])
    conn = apsw.Connection(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='porter')")
        with conn:
            conn.executemany("INSERT INTO t(rowid, title, body) VALUES (?, ?, ?)",
                             [(n, d["title"], d["body"]) for n, d in enumerate(docs)])
        return [(docs[rowid]["$id"], score) for rowid, score in conn.execute(
            "SELECT rowid, -bm25(t, 2.0, 1.0) AS score FROM t WHERE t MATCH ? "
            "ORDER BY score DESC, rowid LIMIT 20", (fts5,))]
    finally:
        conn.close()


def test_statistics_kept_from_an_earlier_search_are_not_used_once_writes_changed_them(
        client, raw_module, mode):
    """The router keeps each shard's statistics of a query to skip round 1 next time; a write
    since (here through the router or straight to the nodes, by mode) must make the shards
    answer theirs, so the second search still ranks exactly as one FTS5 table."""
    rng = random.Random(7)
    coll = f"kept{rng.randrange(10**9)}{mode}"
    docs = {f"k{i:03}": {"$id": f"k{i:03}", "title": _text(rng, 2, 5, i % 9 == 0),
                         "body": _text(rng, 5, 40, i % 5 == 0)} for i in range(120)}
    client.collection(coll).insert_many(list(docs.values()))
    index = router_pb2.SearchIndex(name=f"{coll}_fts", collection=coll, tokenizer="porter",
                                   fields=[router_pb2.SearchField(path="title", weight=2.0),
                                           router_pb2.SearchField(path="body", weight=1.0)])
    list(raw_module.CreateSearchIndex(router_pb2.CreateSearchIndexRequest(index=index)))

    def check(query: str, fts5: str) -> None:
        expected = _reference_top(list(docs.values()), fts5)
        assert expected
        got = raw_module.Search(router_pb2.SearchRequest(index=index.name, query=query,
                                                         limit=20))
        assert [h.id for h in got.hits] == [i for i, _ in expected]
        for hit, (_, score) in zip(got.hits, expected, strict=True):
            assert hit.score == pytest.approx(score, rel=1e-6), hit.id

    for _ in range(2):  # the second search runs on the statistics the first one kept
        check(RARE, RARE)
        check(f"{RARE} OR cache", f"{RARE} OR cache")
    more = [{"$id": f"k{i:03}", "title": _text(rng, 2, 5, True), "body": _text(rng, 5, 40, True)}
            for i in range(120, 150)]
    client.collection(coll).insert_many(more)
    docs.update({d["$id"]: d for d in more})
    for doc_id in ("k000", "k005", "k010"):
        client.collection(coll).delete(doc_id)
        del docs[doc_id]
    for _ in range(2):
        check(RARE, RARE)
        check(f"{RARE} OR cache", f"{RARE} OR cache")
