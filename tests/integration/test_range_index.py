"""Range indexes on a real cluster: build over existing documents, bounds, composite keys,
paging, drop and re-create; and on a real shard file, that SQLite seeks in the index.
"""

from __future__ import annotations

import json

import apsw
import grpc
import pytest

from db4.v1 import router_pb2, router_pb2_grpc
from db4client import errors
from db4core.query import bound_position, compile_index_page, sort_values
from db4node import queries

# 60 documents with n = i % 10 (6 per value, ids in insertion order), plus the other ranks an
# index orders: missing < null < numbers < strings < ... < true.
NUMBERED = [{"$id": f"d{i:02}", "n": i % 10, "grp": "abc"[i % 3]} for i in range(60)]
OTHERS = [
    {"$id": "x-missing", "grp": "b"},
    {"$id": "x-null", "n": None, "grp": "b"},
    {"$id": "x-str", "n": "ten", "grp": "b"},
    {"$id": "x-true", "n": True, "grp": "b"},
    {"$id": "x-half", "n": 2.5, "grp": "b"},
]


def ids(items) -> list[str]:
    items = items.items if hasattr(items, "items") else items
    return [d["$id"] for d in items]


def _numbered(pred) -> list[str]:
    """Ids of NUMBERED (and x-half) whose n satisfies pred, in (n, $id) order."""
    docs = [*NUMBERED, OTHERS[4]]
    return [d["$id"] for d in sorted(docs, key=lambda d: (d["n"], d["$id"])) if pred(d["n"])]


@pytest.fixture
def index_name(coll_name) -> str:
    return f"i{coll_name}"[:64]


@pytest.fixture
def by_n(client, coll_name, index_name):
    """The collection filled first, then indexed on n ascending; returns the progress seen."""
    coll = client.collection(coll_name)
    coll.insert_many([*NUMBERED, *OTHERS])
    seen: list[dict] = []
    index = client.create_index(index_name, coll_name, [("n", "asc")], on_progress=seen.append)
    assert index == {"name": index_name, "collection": coll_name, "fields": [("n", "asc")]}
    return seen


def test_create_index_reports_progress(by_n, cluster, coll_name):
    assert [p["shards_done"] for p in by_n] == list(range(1, 9))
    assert all(p["shards_total"] == 8 for p in by_n)
    assert [p["done"] for p in by_n] == [False] * 7 + [True]
    counts = [p["documents"] for p in by_n]
    assert counts == sorted(counts)
    assert counts[-1] == len(NUMBERED) + len(OTHERS) == cluster.doc_count(coll_name)


def test_index_exists_in_every_shard_file(by_n, cluster, index_name):
    for path in cluster.shard_files():
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            found = conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?",
                                 (f"ix_{index_name}",)).fetchone()
        finally:
            conn.close()
        assert found, path


BOUND_CASES = [
    ((3, True), (5, False), lambda n: 3 <= n < 5),
    ((3, False), (5, True), lambda n: 3 < n <= 5),
    ((3, True), (3, True), lambda n: n == 3),
    ((3, False), (3, True), lambda n: False),
    ((2, True), (3, False), lambda n: 2 <= n < 3),  # takes 2.5
    ((7, False), (2, False), lambda n: False),  # start after end
    ((-100, True), (100, True), lambda n: True),
]


@pytest.mark.parametrize(("start", "end", "pred"), BOUND_CASES,
                         ids=["ie", "ei", "point", "empty", "float", "reversed", "wide"])
def test_bounds(by_n, client, index_name, start, end, pred):
    page = client.query_range(index_name, start=start, end=end, limit=1000)
    assert ids(page) == _numbered(pred)
    assert not page.has_more and page.cursor is None


def test_open_bounds_stay_within_the_bounds_type(by_n, client, index_name):
    low = client.query_range(index_name, start=None, end=(2, True), limit=1000)
    assert ids(low) == _numbered(lambda n: n <= 2)
    high = client.query_range(index_name, start=(8, False), end=None, limit=1000)
    assert ids(high) == _numbered(lambda n: n > 8)
    assert ids(client.query_range(index_name, start=("", True))) == ["x-str"]
    assert ids(client.query_range(index_name, end=(None, True))) == ["x-null"]
    everything = client.query_range(index_name, limit=1000)
    assert ids(everything) == ["x-missing", "x-null", *_numbered(lambda n: True),
                               "x-str", "x-true"]
    strings = client.query_range(index_name, start=("", True), end=("zzz", True))
    assert ids(strings) == ["x-str"]


def test_pages_equal_iterate_range(by_n, client, index_name):
    start, end = (1, False), (8, True)
    expected = _numbered(lambda n: 1 < n <= 8)
    got, cursor, pages = [], None, 0
    while True:
        page = client.query_range(index_name, start=start, end=end, limit=7, cursor=cursor)
        pages += 1
        assert len(page.items) <= 7
        got += ids(page)
        if not page.has_more:
            break
        cursor = page.cursor
    assert got == expected and pages == -(-len(expected) // 7)
    assert ids(client.iterate_range(index_name, start=start, end=end, page_size=5)) == expected
    assert ids(client.iterate_range(index_name, page_size=9)) == ids(
        client.query_range(index_name, limit=1000))


def test_range_cursor_is_bound_to_its_bounds(by_n, client, index_name):
    page = client.query_range(index_name, start=(1, True), end=(5, True), limit=3)
    assert page.has_more
    with pytest.raises(errors.InvalidArgumentError):
        client.query_range(index_name, start=(1, True), end=(6, True), limit=3,
                           cursor=page.cursor)
    with pytest.raises(errors.InvalidArgumentError):
        client.query_range(index_name, start=(1, False), end=(5, True), limit=3,
                           cursor=page.cursor)
    rest = client.query_range(index_name, start=(1, True), end=(5, True), limit=1000,
                              cursor=page.cursor)
    assert ids(page) + ids(rest) == _numbered(lambda n: 1 <= n <= 5)


def test_insert_after_index_is_indexed(by_n, client, coll_name, index_name):
    client.collection(coll_name).create({"$id": "late", "n": 4})
    client.collection(coll_name).create({"$id": "a-late", "n": 4})
    got = ids(client.query_range(index_name, start=(4, True), end=(4, True)))
    assert got == sorted([*_numbered(lambda n: n == 4), "late", "a-late"])


def test_composite_index_mixed_directions_and_prefix_bounds(client, coll_name, index_name):
    coll = client.collection(coll_name)
    docs = [{"$id": f"c{i:02}", "grp": "abc"[i % 3], "n": i % 4} for i in range(36)]
    coll.insert_many(docs)
    client.create_index(index_name, coll_name, [("grp", "asc"), ("n", "desc")])

    def expect(pred):
        chosen = [d for d in docs if pred(d)]
        return [d["$id"] for d in sorted(chosen, key=lambda d: (d["grp"], -d["n"], d["$id"]))]

    everything = client.query_range(index_name, limit=1000)
    assert ids(everything) == expect(lambda d: True)
    b = client.query_range(index_name, start=(["b"], True), end=(["b"], True), limit=1000)
    assert ids(b) == expect(lambda d: d["grp"] == "b")
    # n descends: a start at ["b", 2] means n <= 2 within b
    b2 = client.query_range(index_name, start=(["b", 2], True), end=(["b"], True), limit=1000)
    assert ids(b2) == expect(lambda d: d["grp"] == "b" and d["n"] <= 2)
    b2x = client.query_range(index_name, start=(["b", 2], False), end=(["b", 0], False),
                             limit=1000)
    assert ids(b2x) == expect(lambda d: d["grp"] == "b" and d["n"] == 1)
    between = client.query_range(index_name, start=(["a"], False), end=(["c"], False),
                                 limit=1000)
    assert ids(between) == expect(lambda d: d["grp"] == "b")
    across = client.query_range(index_name, start=(["a", 1], True), end=(["c", 3], True),
                                limit=1000)
    assert ids(across) == expect(lambda d: (d["grp"] == "a" and d["n"] <= 1) or d["grp"] == "b"
                                 or (d["grp"] == "c" and d["n"] >= 3))
    paged, cursor = [], None
    while True:
        page = client.query_range(index_name, start=(["a", 1], True), end=(["c", 3], True),
                                  limit=4, cursor=cursor)
        paged += ids(page)
        if not page.has_more:
            break
        cursor = page.cursor
    assert paged == ids(across)


def test_ties_broken_by_id_on_a_descending_index(client, coll_name, index_name):
    coll = client.collection(coll_name)
    tied = ["t-b", "t-a", "t-d", "t-c", "t-e"]
    coll.insert_many([{"$id": i, "v": 1} for i in tied] + [{"$id": "u", "v": 2}])
    client.create_index(index_name, coll_name, [("v", "desc")])
    assert ids(client.query_range(index_name, limit=100)) == ["u", *sorted(tied)]
    assert ids(client.query_range(index_name, start=(1, True), limit=2)) == ["t-a", "t-b"]


def test_bad_bounds(client, coll_name, index_name, cluster):
    client.collection(coll_name).create({"$id": "x", "n": 1})
    client.create_index(index_name, coll_name, [("n", "asc")])
    with pytest.raises(errors.InvalidArgumentError):
        client.query_range(index_name, start=([1, 2], True))  # 2 values, 1 field
    with pytest.raises(errors.InvalidArgumentError):
        client.query_range(index_name, start=(float("nan"), True))
    with grpc.insecure_channel(cluster.address) as ch:
        stub = router_pb2_grpc.Db4Stub(ch)
        for value in (b"[1, 2]", b"[]", b"NaN", b"{", b"\xff"):
            with pytest.raises(grpc.RpcError) as info:
                stub.QueryRange(router_pb2.QueryRangeRequest(
                    index=index_name, start=router_pb2.RangeBound(value=value, inclusive=True)))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, value
        with pytest.raises(grpc.RpcError) as info:
            stub.QueryRange(router_pb2.QueryRangeRequest(index=index_name, limit=10_001))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_router_refuses_non_scalar_bounds_like_the_sdk(client, coll_name, index_name, cluster):
    """A bound value is a scalar, or a list of scalars for a composite key (router.proto
    RangeBound, client/DESIGN.md); the SDK refuses objects and nested lists, so must the router."""
    client.collection(coll_name).create({"$id": "x", "n": {"a": 1}})
    client.create_index(index_name, coll_name, [("n", "asc")])
    for value in ({"a": 1}, [[1]], [{"a": 1}]):
        with pytest.raises(errors.InvalidArgumentError):
            client.query_range(index_name, start=(value, True))
    with grpc.insecure_channel(cluster.address) as ch:
        stub = router_pb2_grpc.Db4Stub(ch)
        for raw in (b'{"a": 1}', b"[[1]]", b'[{"a": 1}]'):
            for side in ("start", "end"):
                bound = router_pb2.RangeBound(value=raw, inclusive=True)
                with pytest.raises(grpc.RpcError) as info:
                    stub.QueryRange(router_pb2.QueryRangeRequest(index=index_name,
                                                                 **{side: bound}))
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (raw, side)


def test_drop_index(by_n, client, coll_name, index_name, cluster):
    assert index_name in [i["name"] for i in client.list_indexes(coll_name)]
    client.drop_index(index_name)
    with pytest.raises(errors.NotFoundError):
        client.query_range(index_name)
    with pytest.raises(errors.NotFoundError):
        list(client.iterate_range(index_name))
    with pytest.raises(errors.NotFoundError):
        client.drop_index(index_name)
    assert index_name not in [i["name"] for i in client.list_indexes()]
    for path in cluster.shard_files():
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            assert conn.execute("SELECT 1 FROM sqlite_schema WHERE name = ?",
                                (f"ix_{index_name}",)).fetchone() is None
        finally:
            conn.close()
    # the name is free again, for another definition
    client.create_index(index_name, coll_name, [("grp", "desc")])
    assert ids(client.query_range(index_name, start=("c", True), end=("c", True))) == sorted(
        d["$id"] for d in NUMBERED if d["grp"] == "c")


def test_create_twice(client, coll_name, index_name):
    client.collection(coll_name).create({"$id": "x", "n": 1})
    first = client.create_index(index_name, coll_name, [("n", "asc")])
    again: list[dict] = []
    assert client.create_index(index_name, coll_name, [("n", "asc")],
                               on_progress=again.append) == first
    assert again[-1]["done"] and again[-1]["documents"] == 1
    for fields, coll in (([("n", "desc")], coll_name), ([("m", "asc")], coll_name),
                         ([("n", "asc"), ("m", "asc")], coll_name),
                         ([("n", "asc")], f"{coll_name}other")):
        with pytest.raises(errors.AlreadyExistsError):
            client.create_index(index_name, coll, fields)
    listed = [i for i in client.list_indexes() if i["name"] == index_name]
    assert listed == [first]


def test_index_on_missing_collection_and_unknown_index(client, coll_name, index_name):
    with pytest.raises(errors.NotFoundError):
        client.query_range(f"{index_name}zz")
    # a collection that does not exist cannot be indexed (a typo, most likely), and nothing
    # is recorded: the name stays free
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        client.create_index(index_name, coll_name, [("n", "asc")])
    assert index_name not in [i["name"] for i in client.list_indexes()]
    # once the collection exists, an index may be defined before it has documents
    client.create_collection(coll_name)
    client.create_index(index_name, coll_name, [("n", "asc")])
    assert client.query_range(index_name).items == []
    client.collection(coll_name).create({"$id": "x", "n": 1})
    assert ids(client.query_range(index_name)) == ["x"]


# ---- on a real shard file: SQLite seeks in the index ----------------------------------------

def test_shard_file_uses_the_index(client, cluster, coll_name, index_name):
    # fields no other test indexes, so the planner has exactly one index to choose
    sort = [("rsKey", "asc"), ("rsTie", "desc")]
    docs = [{"$id": f"e{i:03}", "rsKey": i % 13, "rsTie": f"t{i % 5}"} for i in range(200)]
    client.collection(coll_name).insert_many(docs)
    client.create_index(index_name, coll_name, sort)

    shard = client.admin.status()["shards"][0]
    path = cluster.node(shard["node_id"]).data_dir / "shards" / f"{shard['shard_id']}.db"
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        on_shard = {r[0] for r in conn.execute("SELECT id FROM docs WHERE collection = ?",
                                               (coll_name,))}
        assert 0 < len(on_shard) < len(docs)
        some = next(d for d in docs if d["$id"] in on_shard and d["rsKey"] == 6)
        key = [some["rsKey"], some["rsTie"]]
        # (after, until) given to the node; the same range as SDK bounds; ids to drop in front
        cases = [
            (None, None, None, None, None),
            (None, bound_position(sort, [9, "t2"], False, "end"), None, ([9, "t2"], False),
             None),
            (bound_position(sort, [3], True, "start"), None, ([3], True), None, None),
            (bound_position(sort, [3], False, "start"), bound_position(sort, [9], True, "end"),
             ([3], False), ([9], True), None),
            (sort_values(some, sort), bound_position(sort, [9, "t2"], False, "end"),
             (key, True), ([9, "t2"], False), some["$id"]),
            (sort_values(some, sort), None, (key, True), None, some["$id"]),
        ]
        for after, until, start, end, drop_through in cases:
            statements = compile_index_page(coll_name, sort, after, until, 50)
            assert len(statements) == (1 if after is None else 2)
            for sql, params in statements:
                plan = " | ".join(queries.explain(conn, sql, params))
                assert f"INDEX ix_{index_name}" in plan, plan
                assert "TEMP B-TREE" not in plan, plan

            # the node's own read of this file equals the cluster's answer, restricted to it
            page = queries.find(conn, coll_name, None, sort, 10_000, after, until,
                                index=index_name)
            assert not page.has_more
            local = [json.loads(body)["$id"] for body, _position in page.rows]
            assert local, (after, until)
            remote = ids(client.query_range(index_name, start=start, end=end, limit=10_000))
            if drop_through is not None:
                remote = remote[remote.index(drop_through) + 1:]
            assert local == [i for i in remote if i in on_shard], (after, until)
            # and a small page of the node equals the front of it
            small = queries.find(conn, coll_name, None, sort, 3, after, until, index=index_name)
            assert [json.loads(b)["$id"] for b, _ in small.rows] == local[:3]
            assert small.has_more == (len(local) > 3)
    finally:
        conn.close()


def test_find_sorted_like_an_index_reads_it_and_agrees(client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"$id": f"f{i:03d}", "k": (i * 7) % 13, "odd": i % 2 == 1}
                      for i in range(300)] + [{"$id": "nok"}, {"$id": "strk", "k": "x"}])
    where = {"odd": True}

    def pages(sort):
        got, cursor = [], None
        while True:
            page = coll.find(where=where, sort=sort, limit=17, cursor=cursor)
            got += [d["$id"] for d in page.items]
            if not page.has_more:
                return got
            cursor = page.cursor

    for sort in ([("k", "asc")], [("k", "desc")]):
        before = pages(sort)
        name = f"ix{coll_name[:14]}{sort[0][1]}"
        client.create_index(name, coll_name, sort)
        assert pages(sort) == before
        assert len(before) == 150
