"""find, iterate and count through a real router and 8 shards: every operator, sort orders,
limits, cursors (paging, tampering, reuse, concurrent inserts), shard-local queries, bad input.

Expected ids are spelled out by hand, not computed by the product's own oracle.
"""

from __future__ import annotations

import itertools
import os

import apsw
import grpc
import pytest

from db4.v1 import router_pb2
from db4client import errors

_n = itertools.count()

# A small fixed data set: mixed types in one field, nested objects, arrays, nulls, missing fields.
DOCS = [
    {"$id": "a1", "name": "Alice", "age": 30, "tags": ["x", "y"],
     "addr": {"city": "Paris", "zip": "75001"}, "score": 9.5, "active": True},
    {"$id": "a2", "name": "Bob", "age": 25, "tags": ["y"], "addr": {"city": "Berlin"},
     "score": 7, "active": False},
    {"$id": "a3", "name": "Carol", "age": "thirty", "tags": [],
     "addr": {"city": "Paris", "zip": None}, "active": True},
    {"$id": "a4", "name": "dave", "age": None, "tags": "x-tag", "addr": "nowhere"},
    {"$id": "a5", "name": "Eve", "tags": ["x", {"k": 1}],
     "addr": {"city": "Rome", "geo": {"lat": 41.9}}, "score": 7.0},
    {"$id": "a6", "age": 41, "active": True, "addr": {}},
    {"$id": "a7", "name": "Alfred", "age": 30.0, "tags": ["z", "x"], "addr": {"city": "paris"},
     "score": -1},
]
ALL = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]


def _unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{next(_n)}"


@pytest.fixture(scope="module")
def people(client):
    """The fixed data set in its own collection, shared (read-only) by the module's tests."""
    coll = client.collection(_unique("findpeople"))
    coll.insert_many(DOCS)
    return coll



@pytest.fixture
def untouched(cluster, people):
    """Assert the shared collection gains no change-log record and loses no row."""
    before = cluster.change_count(people.name), cluster.doc_count(people.name)
    assert before[1] == len(DOCS)
    yield
    assert (cluster.change_count(people.name), cluster.doc_count(people.name)) == before
    assert people.count() == len(DOCS)


def ids(page_or_docs) -> list[str]:
    items = page_or_docs.items if hasattr(page_or_docs, "items") else page_or_docs
    return [d["$id"] for d in items]


# ---- every operator ----------------------------------------------------------------------------

OPERATOR_CASES = [
    ({"name": "Alice"}, ["a1"]),
    ({"age": 30}, ["a1", "a7"]),  # 30 == 30.0
    ({"age": {"$eq": 30}}, ["a1", "a7"]),
    ({"age": {"$ne": 30}}, ["a2", "a3", "a4", "a5", "a6"]),  # a5: missing matches $ne
    ({"name": {"$ne": "Alice"}}, ["a2", "a3", "a4", "a5", "a6", "a7"]),
    ({"age": {"$gt": 25}}, ["a1", "a6", "a7"]),  # never "thirty", null or missing
    ({"age": {"$gte": 25}}, ["a1", "a2", "a6", "a7"]),
    ({"age": {"$lt": 30}}, ["a2"]),
    ({"age": {"$lte": 30}}, ["a1", "a2", "a7"]),
    ({"age": {"$gt": "a"}}, ["a3"]),  # strings only against strings
    ({"name": {"$gt": "Bob"}}, ["a3", "a4", "a5"]),  # codepoint order: "Eve" < "dave"
    ({"name": {"$lt": "B"}}, ["a1", "a7"]),
    ({"name": {"$gte": ""}}, ["a1", "a2", "a3", "a4", "a5", "a7"]),  # a6 has no name
    ({"score": {"$lt": 100}}, ["a1", "a2", "a5", "a7"]),
    ({"score": {"$gte": 7, "$lt": 9.5}}, ["a2", "a5"]),  # 7 and 7.0
    ({"active": {"$gt": 0}}, []),  # ranges never match booleans
    ({"active": True}, ["a1", "a3", "a6"]),
    ({"active": 1}, []),  # booleans are not numbers
    ({"age": {"$in": [25, 41, "thirty"]}}, ["a2", "a3", "a6"]),
    ({"age": {"$in": []}}, []),
    ({"age": {"$nin": [30, 25]}}, ["a3", "a4", "a5", "a6"]),  # a5: missing matches $nin
    ({"age": {"$nin": [30, None]}}, ["a2", "a3", "a6"]),  # null in the list: not missing, not null
    ({"age": {"$eq": None}}, ["a4", "a5"]),  # null and missing
    ({"age": {"$ne": None}}, ["a1", "a2", "a3", "a6", "a7"]),
    ({"age": {"$exists": True}}, ["a1", "a2", "a3", "a4", "a6", "a7"]),
    ({"age": {"$exists": False}}, ["a5"]),
    ({"tags": {"$contains": "x"}}, ["a1", "a4", "a5", "a7"]),  # arrays, and the string "x-tag"
    ({"tags": {"$contains": {"k": 1}}}, ["a5"]),
    ({"tags": {"$contains": "X"}}, []),  # case-sensitive
    ({"tags": []}, ["a3"]),
    ({"tags": "x"}, []),  # a bare value does not match an array that contains it
    ({"name": {"$contains": "li"}}, ["a1"]),
    ({"name": {"$contains": "e"}}, ["a1", "a4", "a5", "a7"]),
    ({"name": {"$startsWith": "Al"}}, ["a1", "a7"]),
    ({"name": {"$startsWith": "al"}}, []),
    ({"name": {"$startsWith": ""}}, ["a1", "a2", "a3", "a4", "a5", "a7"]),
    ({"addr.city": "Paris"}, ["a1", "a3"]),
    ({"addr.city": {"$in": ["Paris", "paris"]}}, ["a1", "a3", "a7"]),
    ({"addr.zip": None}, ["a2", "a3", "a4", "a5", "a6", "a7"]),  # a4: addr is a string
    ({"addr.zip": {"$exists": True}}, ["a1", "a3"]),
    ({"addr.geo.lat": {"$gt": 40}}, ["a5"]),
    ({"addr": {}}, ["a6"]),  # an empty object literal
    ({"addr": {"city": "Berlin"}}, ["a2"]),  # an object literal: exact JSON equality
    ({"addr": {"$eq": {"city": "Paris"}}}, []),  # a1 and a3 hold more keys
    ({"$and": [{"age": {"$gte": 25}}, {"addr.city": "Paris"}]}, ["a1"]),
    ({"$or": [{"name": "Bob"}, {"score": {"$lt": 0}}]}, ["a2", "a7"]),
    ({"$not": {"age": {"$exists": True}}}, ["a5"]),
    ({"age": {"$not": {"$gt": 25}}}, ["a2", "a3", "a4", "a5"]),
    ({"age": {"$not": 30}}, ["a2", "a3", "a4", "a5", "a6"]),
    ({"$or": [{"$and": [{"tags": {"$contains": "x"}}, {"$not": {"addr.city": "Paris"}}]},
              {"age": 41}]}, ["a4", "a5", "a6", "a7"]),
    ({"$and": [{"$or": [{"age": 30}, {"age": "thirty"}]},
               {"$not": {"$or": [{"name": {"$startsWith": "Alf"}}, {"active": False}]}}]},
     ["a1", "a3"]),
    ({"$id": {"$in": ["a1", "a3", "zz"]}}, ["a1", "a3"]),
    ({"$id": {"$gt": "a5"}}, ["a6", "a7"]),
    ({"$version": 1, "name": {"$exists": True}}, ["a1", "a2", "a3", "a4", "a5", "a7"]),
    ({}, ALL),
]


@pytest.mark.parametrize(("where", "expected"), OPERATOR_CASES,
                         ids=[str(i) for i in range(len(OPERATOR_CASES))])
def test_operator(people, where, expected):
    assert ids(people.find(where=where)) == expected
    assert people.count(where=where) == len(expected)


def test_count_without_where(people):
    assert people.count() == len(DOCS)
    assert people.count(where=None) == people.count(where={}) == 7


# ---- sort ------------------------------------------------------------------------------------

SORT_DOCS = [
    {"$id": "s1", "g": 1, "n": "b"},
    {"$id": "s2", "g": 1, "n": "a"},
    {"$id": "s3", "g": 2, "n": "a"},
    {"$id": "s4", "n": "z"},  # g missing
    {"$id": "s5", "g": None, "n": "c"},
    {"$id": "s6", "g": "x", "n": "a"},
    {"$id": "s7", "g": 1, "n": "b"},  # ties with s1 on both fields
    {"$id": "s8", "g": 1},  # n missing
    {"$id": "s9", "g": True},
]

SORT_CASES = [
    # missing < null < numbers < strings < ... < true; desc reverses the field, ties by $id asc
    ([("g", "asc"), ("n", "desc")], ["s4", "s5", "s1", "s7", "s2", "s8", "s3", "s6", "s9"]),
    ([("g", "desc"), ("n", "asc")], ["s9", "s6", "s3", "s8", "s2", "s1", "s7", "s5", "s4"]),
    ([("n", "asc")], ["s8", "s9", "s2", "s3", "s6", "s1", "s7", "s5", "s4"]),
    ([("n", "desc")], ["s4", "s5", "s1", "s7", "s2", "s3", "s6", "s8", "s9"]),
    ([("$id", "desc")], ["s9", "s8", "s7", "s6", "s5", "s4", "s3", "s2", "s1"]),
]


@pytest.fixture(scope="module")
def sorted_coll(client):
    coll = client.collection(_unique("findsort"))
    coll.insert_many(SORT_DOCS)
    return coll


@pytest.mark.parametrize(("sort", "expected"), SORT_CASES,
                         ids=["g_asc_n_desc", "g_desc_n_asc", "n_asc", "n_desc", "id_desc"])
def test_sort(sorted_coll, sort, expected):
    assert ids(sorted_coll.find(sort=sort)) == expected
    paged, cursor = [], None
    for _ in range(len(expected)):
        page = sorted_coll.find(sort=sort, limit=2, cursor=cursor)
        paged += ids(page)
        if not page.has_more:
            assert page.cursor is None
            break
        cursor = page.cursor
    assert paged == expected
    assert ids(sorted_coll.iterate(sort=sort, page_size=4)) == expected


def test_sort_with_where_on_nested_path(people):
    page = people.find(where={"addr.city": {"$exists": True}},
                       sort=[("addr.city", "desc"), ("age", "asc")])
    # "paris" > "Rome" > "Paris" > "Berlin"; the two "Paris" by age: 30 (number) < "thirty"
    assert ids(page) == ["a7", "a5", "a1", "a3", "a2"]


# ---- limits ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def many(client):
    """150 documents, ids m000..m149, spread over every shard."""
    coll = client.collection(_unique("findmany"))
    coll.insert_many([{"$id": f"m{i:03}", "i": i, "mod": i % 7} for i in range(150)])
    return coll


def test_default_limit_is_100(many):
    first = many.find()
    assert ids(first) == [f"m{i:03}" for i in range(100)]
    assert first.has_more and first.cursor
    second = many.find(cursor=first.cursor)
    assert ids(second) == [f"m{i:03}" for i in range(100, 150)]
    assert not second.has_more and second.cursor is None


def test_raw_limit_zero_means_100(raw, many):
    resp = raw.Find(router_pb2.FindRequest(collection=many.name))
    assert len(resp.documents) == 100 and resp.has_more


def test_limit_maximum(many, raw):
    assert len(many.find(limit=10_000).items) == 150
    exact = many.find(limit=150)
    assert len(exact.items) == 150 and not exact.has_more and exact.cursor is None
    with pytest.raises(errors.InvalidArgumentError):
        many.find(limit=10_001)
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=many.name, limit=10_001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cursor_pages_cover_every_shard_once_in_order(many, client):
    shards = {client.shard_for(many.name, f"m{i:03}") for i in range(150)}
    assert len(shards) == 8
    sort = [("mod", "desc"), ("i", "asc")]
    expected = [f"m{i:03}" for i in sorted(range(150), key=lambda i: (-(i % 7), i))]
    got, cursor, pages = [], None, 0
    while True:
        page = many.find(sort=sort, limit=23, cursor=cursor)
        pages += 1
        assert len(page.items) <= 23
        got += ids(page)
        if not page.has_more:
            break
        cursor = page.cursor
    assert pages == 7
    assert got == expected


def test_iterate_streams_everything(many):
    assert ids(many.iterate(page_size=7)) == [f"m{i:03}" for i in range(150)]
    assert ids(many.iterate(where={"mod": 3}, sort=[("i", "desc")], page_size=5)) == [
        f"m{i:03}" for i in range(149, -1, -1) if i % 7 == 3]


def test_count_with_where(many):
    assert many.count() == 150
    assert many.count(where={"mod": 0}) == 22
    assert many.count(where={"i": {"$gte": 140}}) == 10


# ---- cursors ---------------------------------------------------------------------------------

def _tamper(cursor: str) -> str:
    i = len(cursor) // 2
    if cursor[i] == ".":
        i += 1
    return cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:]


def test_tampered_cursor(many):
    page = many.find(limit=10)
    with pytest.raises(errors.InvalidArgumentError) as info:
        many.find(limit=10, cursor=_tamper(page.cursor))
    assert "corrupt" in str(info.value)
    with pytest.raises(errors.InvalidArgumentError):
        many.find(limit=10, cursor=page.cursor[:-3])


def test_cursor_bound_to_its_query(many, people):
    page = many.find(where={"mod": 1}, sort=[("i", "asc")], limit=5)
    for kwargs in ({"where": {"mod": 2}, "sort": [("i", "asc")]},
                   {"where": {"mod": 1}, "sort": [("i", "desc")]},
                   {"where": None, "sort": [("i", "asc")]}):
        with pytest.raises(errors.InvalidArgumentError) as info:
            many.find(limit=5, cursor=page.cursor, **kwargs)
        assert "does not belong" in str(info.value)
    with pytest.raises(errors.InvalidArgumentError):
        people.find(where={"mod": 1}, sort=[("i", "asc")], limit=5, cursor=page.cursor)
    # the page size is not part of the query
    assert ids(many.find(where={"mod": 1}, sort=[("i", "asc")], limit=3, cursor=page.cursor)) \
        == ["m036", "m043", "m050"]


def test_concurrent_insert_and_open_cursor(client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"$id": f"k{i:03}", "v": i} for i in range(0, 40, 2)])
    first = coll.find(sort=[("v", "asc")], limit=5)
    assert ids(first) == ["k000", "k002", "k004", "k006", "k008"]
    coll.create({"$id": "k001", "v": 1})  # before the cursor's position: never seen
    coll.create({"$id": "k007", "v": 7})  # before too
    coll.create({"$id": "k015", "v": 15})  # after it: seen later
    coll.create({"$id": "k999", "v": 999})  # at the very end
    coll.delete("k020")  # not yet seen: gone
    got, cursor = ids(first), first.cursor
    while cursor:
        page = coll.find(sort=[("v", "asc")], limit=5, cursor=cursor)
        got += ids(page)
        cursor = page.cursor
    expected = [f"k{i:03}" for i in range(0, 40, 2) if i != 20]
    expected = sorted([*expected, "k015"], key=lambda s: int(s[1:])) + ["k999"]
    assert got == expected
    assert len(got) == len(set(got))


# ---- shard_for and find_in_shard -------------------------------------------------------------

def _shard_ids_on_disk(cluster, client, shard: str, collection: str) -> list[str]:
    node_id = next(s["node_id"] for s in client.admin.status()["shards"] if s["shard_id"] == shard)
    path = cluster.node(node_id).data_dir / "shards" / f"{shard}.db"
    assert path.exists(), path
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute("SELECT id FROM docs WHERE collection = ? ORDER BY id",
                            (collection,)).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


def test_find_in_shard_returns_exactly_that_shards_documents(client, cluster, coll_name):
    client.create_collection(coll_name, partition_key="tenantId")
    coll = client.collection(coll_name)
    tenants = [f"t{i}" for i in range(24)]
    coll.insert_many([{"$id": f"{t}-{j}", "tenantId": t, "j": j}
                      for t in tenants for j in range(3)])
    shard = client.shard_for(coll_name, "t3")
    same_shard = [t for t in tenants if client.shard_for(coll_name, t) == shard]
    assert "t3" in same_shard and len(same_shard) < len(tenants)

    on_disk = _shard_ids_on_disk(cluster, client, shard, coll_name)
    assert on_disk == sorted(f"{t}-{j}" for t in same_shard for j in range(3))
    page = coll.find_in_shard(shard, limit=1000)
    assert ids(page) == on_disk and not page.has_more
    assert coll.count_in_shard(shard) == len(on_disk)

    tenant = coll.find_in_shard(shard, where={"tenantId": "t3"}, sort=[("j", "desc")])
    assert ids(tenant) == ["t3-2", "t3-1", "t3-0"]
    assert coll.count_in_shard(shard, where={"tenantId": "t3"}) == 3

    # paging inside one shard; the cursor is bound to that shard
    first = coll.find_in_shard(shard, limit=2)
    assert ids(first) == on_disk[:2] and first.has_more
    assert ids(coll.find_in_shard(shard, limit=100, cursor=first.cursor)) == on_disk[2:]
    other = next(s["shard_id"] for s in client.admin.status()["shards"]
                 if s["shard_id"] != shard)
    with pytest.raises(errors.InvalidArgumentError):
        coll.find_in_shard(other, limit=2, cursor=first.cursor)
    with pytest.raises(errors.InvalidArgumentError):
        coll.find(limit=2, cursor=first.cursor)


def test_every_shard_together_is_the_collection(client, many):
    shards = [s["shard_id"] for s in client.admin.status()["shards"]]
    assert len(shards) == 8
    parts = [ids(many.find_in_shard(s, limit=1000)) for s in shards]
    assert all(parts)
    assert sorted(i for part in parts for i in part) == [f"m{i:03}" for i in range(150)]
    assert sum(many.count_in_shard(s) for s in shards) == 150


def test_nonexistent_shard(client, many, raw):
    with pytest.raises(errors.InvalidArgumentError):
        many.find_in_shard("no-such-shard")
    with pytest.raises(errors.InvalidArgumentError):
        many.count_in_shard("no-such-shard")
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=many.name, shard_id="s999"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- bad input: INVALID_ARGUMENT, nothing written -------------------------------------------

INJECTION = 'a"); DROP TABLE docs; --'

SDK_BAD_WHERE = {
    "unknown_operator": {"age": {"$regex": "x"}},
    "valid_and_unknown_keys": {"age": {"$gt": 1, "$foo": 2}},
    "operator_and_plain_keys": {"age": {"$gt": 1, "x": 2}},
    "unknown_top_level": {"$nor": [{"age": 1}]},
    "or_not_a_list": {"$or": {"age": 1}},
    "or_empty": {"$or": []},
    "and_of_non_objects": {"$and": [1, 2]},
    "path_with_quotes": {INJECTION: 1},
    "path_with_brackets": {"tags[0]": "x"},
    "path_empty_segment": {"addr..city": "Paris"},
    "in_not_a_list": {"age": {"$in": 30}},
    "exists_not_bool": {"age": {"$exists": 1}},
    "startswith_not_string": {"name": {"$startsWith": 1}},
    "range_on_object": {"age": {"$gt": {"a": 1}}},
    "range_on_bool": {"age": {"$lt": True}},
    "nan": {"age": float("nan")},
    "huge_int": {"age": 2**64},
}


@pytest.mark.parametrize("case", sorted(SDK_BAD_WHERE))
def test_sdk_rejects_where(people, untouched, case):
    with pytest.raises(errors.InvalidArgumentError):
        people.find(where=SDK_BAD_WHERE[case])
    with pytest.raises(errors.InvalidArgumentError):
        people.count(where=SDK_BAD_WHERE[case])


RAW_BAD_WHERE = {
    "unknown_operator": b'{"age": {"$regex": "x"}}',
    "valid_and_unknown_keys": b'{"age": {"$gt": 1, "$foo": 2}}',
    "operator_and_plain_keys": b'{"age": {"$gt": 1, "x": 2}}',
    "or_not_a_list": b'{"$or": {"age": 1}}',
    "or_empty": b'{"$or": []}',
    "path_with_quotes": b'{"a\\"); DROP TABLE docs; --": 1}',
    "path_with_sql_in_operator": b'{"age": {"$eq) OR 1=1; --": 1}}',
    "nan": b'{"age": NaN}',
    "not_json": b'{"age": ',
    "bad_utf8": b'{"name": "\xff"}',
    "array": b"[1, 2]",
    "string": b'"age"',
    "number": b"5",
    "null": b"null",
    "too_deep": b'{"$not": ' * 40 + b'{"a": 1}' + b"}" * 40,
}


@pytest.mark.parametrize("case", sorted(RAW_BAD_WHERE))
def test_router_rejects_where(raw, people, untouched, case):
    for call, req in ((raw.Find, router_pb2.FindRequest), (raw.Count, router_pb2.CountRequest)):
        with pytest.raises(grpc.RpcError) as info:
            call(req(collection=people.name, where=RAW_BAD_WHERE[case]))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
        assert info.value.details()


BAD_SORT_PATHS = [INJECTION, "a..b", "", "a b", "tags[0]", "$bad", "a'b"]


@pytest.mark.parametrize("path", BAD_SORT_PATHS)
def test_sort_on_invalid_path(raw, people, untouched, path):
    with pytest.raises(errors.InvalidArgumentError):
        people.find(sort=[(path, "asc")])
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=people.name,
                                        sort=[router_pb2.SortField(path=path, descending=True)]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_sort_field_twice_raw(raw, people, untouched):
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=people.name,
                                        sort=[router_pb2.SortField(path="age"),
                                              router_pb2.SortField(path="age", descending=True)]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("limit", [10_001, -1, 2**31 - 1])
def test_limit_out_of_range_raw(raw, people, untouched, limit):
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=people.name, limit=limit))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        list(raw.Iterate(router_pb2.FindRequest(collection=people.name, limit=limit)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_limit_out_of_range_sdk(people, untouched):
    for limit in (10_001, 0, -5, 1.5, "10"):
        with pytest.raises(errors.InvalidArgumentError):
            people.find(limit=limit)


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "....", "x" * 300])
def test_garbage_cursor_raw(raw, people, untouched, cursor):
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=people.name, limit=2, cursor=cursor))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_tampered_cursor_raw(raw, people, untouched):
    page = raw.Find(router_pb2.FindRequest(collection=people.name, limit=2))
    assert page.has_more and page.cursor
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=people.name, limit=2,
                                        cursor=_tamper(page.cursor)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        raw.Find(router_pb2.FindRequest(collection=people.name, limit=2, cursor=page.cursor,
                                        where=b'{"age": 30}'))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_collection_name_raw(raw, untouched):
    for name in ("", "has space", 'x"; DROP TABLE docs; --'):
        with pytest.raises(grpc.RpcError) as info:
            raw.Find(router_pb2.FindRequest(collection=name))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_injection_is_only_data(client, coll_name):
    """A value that looks like SQL is just a string to compare."""
    coll = client.collection(coll_name)
    coll.create({"$id": "x", "q": INJECTION})
    assert ids(coll.find(where={"q": INJECTION})) == ["x"]
    assert ids(coll.find(where={"q": {"$startsWith": 'a")'}})) == ["x"]
    assert coll.count() == 1
