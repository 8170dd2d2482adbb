"""Full-text search on a real cluster: definitions, indexing with every kind of write, ranking
pages, highlights, filters, and precise answers to bad input.
"""

from __future__ import annotations

import json

import grpc
import pytest

from db4.v1 import node_pb2, node_pb2_grpc, router_pb2
from tests.integration.txn_support import commit, expect_error, ids_on_distinct_shards, op

FIELDS = (("title", 2.0), ("body", 1.0))

DOCS = [
    {"$id": "a1", "title": "Edge databases", "body": "How to build a key value store", "n": 1},
    {"$id": "a2", "title": "Cooking pasta", "body": "Boil water, add salt and pasta", "n": 2},
    {"$id": "a3", "title": "Distributed systems", "body": "Databases at the edge of the network",
     "n": 3},
    {"$id": "a4", "title": "Gardening", "body": "Tomatoes need sun and water", "n": 4},
    {"$id": "a5", "title": "Key value stores", "body": "A database of keys and values", "n": 5},
]


def definition(name: str, collection: str, fields=FIELDS, tokenizer: str = "porter"
               ) -> router_pb2.SearchIndex:
    return router_pb2.SearchIndex(
        name=name, collection=collection, tokenizer=tokenizer,
        fields=[router_pb2.SearchField(path=p, weight=w) for p, w in fields])


def create_search(raw, name: str, collection: str, **kwargs) -> list:
    """Create a search index; every progress message."""
    req = router_pb2.CreateSearchIndexRequest(index=definition(name, collection, **kwargs))
    return list(raw.CreateSearchIndex(req))


def search(raw, index: str, query: str, **kwargs) -> router_pb2.SearchResponse:
    if "where" in kwargs:
        kwargs["where"] = json.dumps(kwargs["where"]).encode()
    return raw.Search(router_pb2.SearchRequest(index=index, query=query, **kwargs))


def ids(resp) -> list[str]:
    return [h.id for h in resp.hits]


@pytest.fixture
def indexed(client, raw, coll_name):
    """DOCS written first, then indexed; the index name."""
    client.collection(coll_name).insert_many(DOCS)
    name = f"s{coll_name}"[:100]
    progress = create_search(raw, name, coll_name)
    assert progress[-1].done and progress[-1].documents == len(DOCS)
    return name


def test_create_streams_progress_and_lists(client, raw, coll_name):
    client.collection(coll_name).insert_many(DOCS)
    progress = create_search(raw, "fts" + coll_name, coll_name)
    assert all(p.shards_total == 8 for p in progress)
    assert [p.done for p in progress] == [False] * (len(progress) - 1) + [True]
    assert [p.shards_done for p in progress] == sorted(p.shards_done for p in progress)
    assert progress[-1].shards_done == 8 and progress[-1].documents == len(DOCS)
    assert progress[-1].index == definition("fts" + coll_name, coll_name)
    listed = raw.ListSearchIndexes(router_pb2.ListSearchIndexesRequest(collection=coll_name))
    assert list(listed.indexes) == [definition("fts" + coll_name, coll_name)]
    everything = raw.ListSearchIndexes(router_pb2.ListSearchIndexesRequest()).indexes
    assert definition("fts" + coll_name, coll_name) in everything


def test_create_again_is_idempotent_another_definition_already_exists(raw, indexed, coll_name):
    again = create_search(raw, indexed, coll_name)
    assert again[-1].done and again[-1].documents == len(DOCS)
    err = expect_error(grpc.StatusCode.ALREADY_EXISTS, create_search, raw, indexed, coll_name,
                       fields=(("title", 1.0),))
    assert indexed in err.details()
    err = expect_error(grpc.StatusCode.ALREADY_EXISTS, create_search, raw, indexed, coll_name,
                       tokenizer="trigram")
    assert ids(search(raw, indexed, "pasta")) == ["a2"]  # the first definition still serves


def test_create_on_unknown_collection_or_bad_definition(raw, coll_name):
    err = expect_error(grpc.StatusCode.NOT_FOUND, create_search, raw, "x" + coll_name,
                       "nosuch" + coll_name)
    assert "nosuch" + coll_name in err.details()
    assert not raw.ListSearchIndexes(router_pb2.ListSearchIndexesRequest(
        collection="nosuch" + coll_name)).indexes
    for kwargs, needle in [({"tokenizer": "ngram"}, "tokenizer"),
                           ({"fields": ()}, "1 to 32 fields"),
                           ({"fields": (("title", -2.0),)}, "weight")]:
        err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, create_search, raw,
                           "y" + coll_name, coll_name, **kwargs)
        assert needle in err.details()


def test_ranking_and_fields(raw, indexed):
    # a5 says "key value" in its title (weight 2) and a1 in its body.
    assert ids(search(raw, indexed, '"key value"')) == ["a5", "a1"]
    assert ids(search(raw, indexed, "title:key")) == ["a5"]
    assert set(ids(search(raw, indexed, "databas*"))) == {"a1", "a3", "a5"}
    assert set(ids(search(raw, indexed, "database"))) == {"a1", "a3", "a5"}  # porter: databases
    assert ids(search(raw, indexed, "water NOT pasta")) == ["a4"]
    assert set(ids(search(raw, indexed, "pasta OR tomatoes"))) == {"a2", "a4"}
    scores = [h.score for h in search(raw, indexed, "database").hits]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    hit = search(raw, indexed, "gardening").hits[0]
    assert json.loads(hit.document)["n"] == 4


def test_writes_after_creation_updates_and_deletes(client, raw, indexed, coll_name):
    coll = client.collection(coll_name)
    coll.create({"$id": "b1", "title": "Quantum widgets", "body": "nothing else"})
    coll.insert_many([{"$id": f"b{i}", "title": "widgets", "body": f"batch {i}"}
                      for i in range(2, 6)])
    assert set(ids(search(raw, indexed, "widgets"))) == {"b1", "b2", "b3", "b4", "b5"}
    coll.update("b1", {"title": "Plain gadgets"})
    assert "b1" not in ids(search(raw, indexed, "widgets"))
    assert ids(search(raw, indexed, "gadgets")) == ["b1"]
    coll.replace("b2", {"title": "Sprockets", "body": "replaced"})
    coll.upsert({"$id": "b3", "title": "Sprockets too", "body": "upserted"})
    coll.delete("b4")
    coll.delete_many(["b5"])
    assert ids(search(raw, indexed, "widgets")) == []
    assert ids(search(raw, indexed, "sprockets")) == ["b2", "b3"]
    coll.update("a4", {"body": 42})  # a non-string value is not indexed
    assert ids(search(raw, indexed, "tomatoes")) == []


def test_cross_shard_transaction_is_searchable_after_commit(raw, indexed, coll_name):
    keys = ids_on_distinct_shards(raw, coll_name, 3, prefix="t")
    commit(raw, ops=[op("create", coll_name, k, {"title": "Transactional zebra",
                                                         "body": k}) for k in keys]
                  + [op("delete", coll_name, "a4")])
    assert ids(search(raw, indexed, "zebra")) == sorted(keys)
    assert ids(search(raw, indexed, "tomatoes")) == []


def test_highlights_and_snippet_with_custom_marks(raw, indexed):
    resp = search(raw, indexed, "edge", highlight_open="[[", highlight_close="]]",
                  snippet_tokens=4)
    by_id = {h.id: h for h in resp.hits}
    assert by_id["a1"].highlights["title"] == "[[Edge]] databases"
    assert by_id["a3"].highlights["body"] == "Databases at the [[edge]] of the network"
    assert "[[edge]]" in by_id["a3"].snippet.lower()
    assert len(by_id["a3"].snippet.replace("[[", "").replace("]]", "").split()) <= 4
    default = search(raw, indexed, "gardening").hits[0]
    assert default.highlights["title"] == "<b>Gardening</b>"


def test_where_filter(raw, indexed):
    filtered = search(raw, indexed, "database", where={"n": {"$gte": 3}})
    unfiltered = search(raw, indexed, "database")
    assert ids(filtered) == [i for i in ids(unfiltered) if i in ("a3", "a5")]
    assert ids(search(raw, indexed, "database", where={"n": 1})) == ["a1"]
    assert ids(search(raw, indexed, "database", where={"n": 99})) == []


def test_a_where_pinning_the_partition_key_ranks_as_the_scatter_does(client, raw, coll_name):
    # Round 2 asks only the tenants' shards; scores still use every shard's statistics.
    client.create_collection(coll_name, partition_key="tenant")
    client.collection(coll_name).insert_many(
        [{"tenant": f"t{i % 6}", "body": " ".join(["lynx"] * (i % 4 + 1) + ["moss"] * (i % 5))}
         for i in range(60)])
    name = "pin" + coll_name
    create_search(raw, name, coll_name, fields=(("body", 1.0),))
    for pinned, scattered, hits in (
            ({"tenant": "t2"}, {"tenant": {"$gte": "t2", "$lte": "t2"}}, 10),
            ({"tenant": {"$in": ["t1", "t4"]}},
             {"$or": [{"tenant": "t1"}, {"tenant": {"$gte": "t4", "$lte": "t4"}}]}, 20)):
        got = search(raw, name, "lynx", where=pinned, limit=100)
        want = search(raw, name, "lynx", where=scattered, limit=100)
        assert len(got.hits) == hits
        assert [(h.id, h.score) for h in got.hits] == [(h.id, h.score) for h in want.hits]


def test_cursor_pages_give_every_hit_once_in_order(client, raw, coll_name):
    # 45 matches with 9 distinct scores (the term repeated 1..9 times), so ties cross pages.
    docs = [{"$id": f"p{i:02}", "title": "", "body": " ".join(["ocelot"] * (i % 9 + 1)
                                                              + ["filler"] * 5)}
            for i in range(45)]
    client.collection(coll_name).insert_many(docs)
    name = "pg" + coll_name
    create_search(raw, name, coll_name)
    whole = search(raw, name, "ocelot", limit=1000)
    assert len(whole.hits) == 45 and not whole.has_more and not whole.cursor
    keys = [(-h.score, h.id) for h in whole.hits]
    assert keys == sorted(keys)
    got, cursor = [], ""
    while True:
        page = search(raw, name, "ocelot", limit=7, cursor=cursor)
        assert len(page.hits) <= 7
        got += [(h.id, h.score) for h in page.hits]
        if not page.has_more:
            assert not page.cursor
            break
        cursor = page.cursor
    assert got == [(h.id, h.score) for h in whole.hits]
    first = search(raw, name, "ocelot", limit=7)
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, name, "filler", limit=7,
                       cursor=first.cursor)
    assert "cursor" in err.details()
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, name, "ocelot",
                 cursor=first.cursor[:-3] + "AAA")


BAD_QUERIES = [
    ("", "empty"),
    ("   ", "empty"),
    ("(edge OR key", "unbalanced '('"),
    ('"key value', "unbalanced quote"),
    ("AND", "AND"),
    ("edge OR", "OR"),
    ("NOT edge", "NOT"),
]


@pytest.mark.parametrize(("query", "needle"), BAD_QUERIES,
                         ids=["empty", "blank", "paren", "quote", "bare-and", "dangling-or",
                              "leading-not"])
def test_bad_queries_are_invalid_argument(raw, indexed, query, needle):
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, query)
    assert needle.lower() in err.details().lower(), err.details()


def test_unknown_field_names_it_and_the_fields(raw, indexed):
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, "author:bob")
    assert "author" in err.details() and "title" in err.details() and "body" in err.details()


def test_request_limits(raw, indexed):
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, "a " * 2049)
    assert "4096" in err.details()
    assert len(search(raw, indexed, "edge " * 800).hits) == 2  # 4000 bytes is fine
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, "edge",
                       limit=1001)
    assert "1000" in err.details()
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, "edge", limit=-1)
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, "edge",
                       snippet_tokens=65)
    assert "snippet_tokens" in err.details()
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, search, raw, indexed, "edge",
                       where={"n": {"$bogus": 1}})
    assert "$bogus" in err.details()
    assert len(search(raw, indexed, "database", limit=1).hits) == 1


def test_unknown_index_is_not_found(raw):
    err = expect_error(grpc.StatusCode.NOT_FOUND, search, raw, "no_such_fts", "edge")
    assert "no_such_fts" in err.details()


def test_drop_removes_everywhere(raw, indexed):
    raw.DropSearchIndex(router_pb2.DropSearchIndexRequest(name=indexed))
    expect_error(grpc.StatusCode.NOT_FOUND, search, raw, indexed, "edge")
    err = expect_error(grpc.StatusCode.NOT_FOUND, raw.DropSearchIndex,
                       router_pb2.DropSearchIndexRequest(name=indexed))
    assert indexed in err.details()
    assert indexed not in [i.name for i in raw.ListSearchIndexes(
        router_pb2.ListSearchIndexesRequest()).indexes]


def test_a_shard_missing_the_index_gets_it_before_answering(cluster, raw, indexed, coll_name):
    where = raw.ShardFor(router_pb2.ShardForRequest(collection=coll_name,
                                                    partition=json.dumps("a2").encode()))
    with grpc.insecure_channel(f"127.0.0.1:{cluster.node(where.node_id).port}") as ch:
        node_pb2_grpc.NodeStub(ch).DropShardSearchIndex(
            node_pb2.DropShardSearchIndexRequest(shard_id=where.shard_id, name=indexed))
    assert ids(search(raw, indexed, "pasta")) == ["a2"]
