"""Queries, batches and range indexes in the SDK, without a server: what requests carry, what
is refused before any RPC, how pages and progress are read, how streams resume and time out."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import grpc
import pytest

from db4.v1 import router_pb2
from db4client import AsyncClient, Client, Page, RetryPolicy, _channel, errors
from tests.support.fakes import FakeAioChannel, FakeChannel, FakeRpcError

NO_WAIT = RetryPolicy(attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0, stream_budget_s=0.0)


# ---- fakes ----

def unavailable() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "router restarting")


class Stream:
    """A scripted server stream: messages, optionally ending with an exception to raise."""

    def __init__(self, *items: object) -> None:
        self.items = list(items)
        self.cancelled = False
        self.served = 0

    def _next(self):
        if self.cancelled:
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")
        if not self.items:
            return None
        item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        self.served += 1
        return item

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    # the blocking stub's iterator
    def __iter__(self):
        return self

    def __next__(self):
        item = self._next()
        if item is None:
            raise StopIteration
        return item

    # the grpc.aio call's read()
    async def read(self):
        item = self._next()
        return grpc.aio.EOF if item is None else item


class FakeStub:
    """Records every call (method, request, kwargs) and answers from a script: a response, an
    exception to raise, or a Stream (returned as is, as stream stubs do in both APIs)."""

    def __init__(self, asynchronous: bool = False) -> None:
        self.calls: list[tuple[str, object, dict]] = []
        self.script: list[object] = []
        self.asynchronous = asynchronous

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]

    def __getattr__(self, method: str):
        def call(request, **kw):
            self.calls.append((method, request, kw))
            answer = self.script.pop(0) if self.script else None
            if isinstance(answer, BaseException):
                raise answer
            return answer

        def dispatch(request, **kw):
            if self.script and isinstance(self.script[0], Stream):
                return call(request, **kw)

            async def unary():
                return call(request, **kw)

            return unary() if self.asynchronous else call(request, **kw)

        return dispatch


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    monkeypatch.setattr(_channel, "open_channel", lambda address, tls: FakeChannel())
    monkeypatch.setattr(_channel, "open_aio_channel", lambda address, tls: FakeAioChannel())


def make_client(**kw) -> tuple[Client, FakeStub]:
    client = Client(retry=kw.pop("retry", NO_WAIT), **kw)
    db4 = FakeStub()
    client._stubs = {"db4": db4, "admin": FakeStub()}
    return client, db4


def make_async_client(**kw) -> tuple[AsyncClient, FakeStub]:
    client = AsyncClient(retry=kw.pop("retry", NO_WAIT), **kw)
    db4 = FakeStub(asynchronous=True)
    client._stubs = {"db4": db4, "admin": FakeStub(asynchronous=True)}
    return client, db4


def find_response(*docs: dict, cursor: str = "", has_more: bool = False):
    return router_pb2.FindResponse(documents=[json.dumps(d).encode() for d in docs],
                                   cursor=cursor, has_more=has_more)


def progress(done: int, total: int, documents: int, index=None):
    return router_pb2.IndexProgress(shards_done=done, shards_total=total, documents=documents,
                                    done=done == total, index=index)


# ---- find, count: requests ----

def test_find_sends_where_as_json_and_sort_as_fields():
    client, db4 = make_client()
    db4.script.append(find_response({"$id": "u1", "age": 30}, cursor="c1", has_more=True))
    page = client.collection("users").find(
        where={"status": "active", "age": {"$gte": 18}}, sort=[("age", "desc"), "name"],
        limit=20, cursor="c0")
    method, req, kw = db4.calls[0]
    assert method == "Find" and req.collection == "users"
    assert json.loads(req.where) == {"status": "active", "age": {"$gte": 18}}
    assert [(f.path, f.descending) for f in req.sort] == [("age", True), ("name", False)]
    assert (req.limit, req.cursor) == (20, "c0")
    assert not req.HasField("shard_id")
    assert kw["timeout"] == 30.0
    assert page == Page([{"$id": "u1", "age": 30}], "c1", True)


def test_find_defaults_and_a_bare_sort_string():
    client, db4 = make_client()
    db4.script += [find_response(), find_response()]
    users = client.collection("users")
    users.find()
    users.find(where={}, sort="$createdAt")
    bare, second = db4.calls[0][1], db4.calls[1][1]
    assert (bare.where, list(bare.sort), bare.limit, bare.cursor) == (b"", [], 100, "")
    assert second.where == b""  # {} and None are the same query (and so the same cursors)
    assert [(f.path, f.descending) for f in second.sort] == [("$createdAt", False)]


def test_last_page_has_no_cursor():
    client, db4 = make_client()
    db4.script.append(find_response({"$id": "a"}, {"$id": "b"}))
    page = client.collection("users").find()
    assert page.items == [{"$id": "a"}, {"$id": "b"}]
    assert page.cursor is None and page.has_more is False
    assert page.to_dict() == {"items": page.items, "cursor": None, "has_more": False}


def test_shard_variants_set_shard_id():
    client, db4 = make_client()
    db4.script += [find_response(), router_pb2.CountResponse(count=7),
                   router_pb2.CountResponse(count=42)]
    users = client.collection("users")
    users.find_in_shard("s002", where={"a": 1}, limit=5)
    assert users.count_in_shard("s002", where={"a": 1}) == 7
    assert users.count() == 42
    find, count_one, count_all = (c[1] for c in db4.calls)
    assert find.shard_id == "s002" and find.limit == 5 and json.loads(find.where) == {"a": 1}
    assert count_one.shard_id == "s002" and json.loads(count_one.where) == {"a": 1}
    assert not count_all.HasField("shard_id") and count_all.where == b""
    assert db4.methods() == ["Find", "Count", "Count"]


# ---- validation: nothing is sent ----

BAD_CALLS = {
    "where not a dict": lambda c: c.collection("u").find(where=[("a", 1)]),
    "unknown operator": lambda c: c.collection("u").find(where={"a": {"$regex": "x"}}),
    "mixed operator object": lambda c: c.collection("u").count(where={"a": {"$gt": 1, "b": 2}}),
    "bad path": lambda c: c.collection("u").find(where={"a..b": 1}),
    "where nan": lambda c: c.collection("u").find(where={"a": math.nan}),
    "where int key": lambda c: c.collection("u").count(where={1: 2}),
    "$in not a list": lambda c: c.collection("u").find(where={"a": {"$in": 3}}),
    "sort bad direction": lambda c: c.collection("u").find(sort=[("a", "up")]),
    "sort twice": lambda c: c.collection("u").find(sort=["a", ("a", "desc")]),
    "sort nine fields": lambda c: c.collection("u").find(sort=[f"f{i}" for i in range(9)]),
    "sort ambiguous pair": lambda c: c.collection("u").find(sort=["age", "desc"]),
    "sort not a list": lambda c: c.collection("u").find(sort={"age": "asc"}),
    "sort bad path": lambda c: c.collection("u").find(sort=[("$secret", "asc")]),
    "limit zero": lambda c: c.collection("u").find(limit=0),
    "limit too big": lambda c: c.collection("u").find(limit=10_001),
    "limit str": lambda c: c.collection("u").find(limit="5"),
    "limit bool": lambda c: c.collection("u").find(limit=True),
    "cursor empty": lambda c: c.collection("u").find(cursor=""),
    "cursor int": lambda c: c.collection("u").find(cursor=5),
    "shard empty": lambda c: c.collection("u").find_in_shard(""),
    "shard None": lambda c: c.collection("u").count_in_shard(None),
    "page_size zero": lambda c: c.collection("u").iterate(page_size=0),
    "iterate bad where": lambda c: c.collection("u").iterate(where={"$nor": []}),
    "insert_many a dict": lambda c: c.collection("u").insert_many({"a": 1}),
    "insert_many bad doc": lambda c: c.collection("u").insert_many([{}, {"a": math.inf}]),
    "insert_many $ field": lambda c: c.collection("u").insert_many([{"$x": 1}]),
    "get_many a str": lambda c: c.collection("u").get_many("u1"),
    "get_many bad id": lambda c: c.collection("u").get_many(["u1", "a b"]),
    "delete_many bad id": lambda c: c.collection("u").delete_many([7]),
    "index name": lambda c: c.create_index("by-age", "u", ["age"]),
    "index name digit": lambda c: c.create_index("1x", "u", ["age"]),
    "index no fields": lambda c: c.create_index("ix", "u", []),
    "index bad direction": lambda c: c.create_index("ix", "u", [("age", "down")]),
    "index bad collection": lambda c: c.create_index("ix", "9u", ["age"]),
    "index on_progress": lambda c: c.create_index("ix", "u", ["age"], on_progress="print"),
    "drop bad name": lambda c: c.drop_index("a b"),
    "list bad collection": lambda c: c.list_indexes(collection=""),
    "range bad index": lambda c: c.query_range("", start=(1, True)),
    "bound not a pair": lambda c: c.query_range("ix", start=5),
    "bound three items": lambda c: c.query_range("ix", start=(5, True, 1)),
    "inclusive not bool": lambda c: c.query_range("ix", end=(5, 1)),
    "bound dict value": lambda c: c.query_range("ix", start=({"a": 1}, True)),
    "bound nan": lambda c: c.query_range("ix", start=(math.nan, True)),
    "bound huge int": lambda c: c.query_range("ix", end=(2**70, True)),
    "empty prefix": lambda c: c.query_range("ix", start=([], True)),
    "prefix too long": lambda c: c.query_range("ix", start=(list(range(9)), True)),
    "nested prefix": lambda c: c.query_range("ix", start=([1, [2]], True)),
    "range limit": lambda c: c.query_range("ix", limit=0),
    "iterate_range page_size": lambda c: c.iterate_range("ix", page_size=10_001),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_input_raises_before_any_rpc(name):
    client, db4 = make_client()
    with pytest.raises(errors.InvalidArgumentError):
        BAD_CALLS[name](client)
    assert db4.calls == []


def test_messages_name_what_was_wrong():
    client, _ = make_client()
    users = client.collection("users")
    with pytest.raises(errors.InvalidArgumentError, match="page_size must be between"):
        users.iterate(page_size=0)
    with pytest.raises(errors.InvalidArgumentError, match=r"ambiguous.*\('age', 'desc'\)"):
        users.find(sort=("age", "desc"))
    with pytest.raises(errors.InvalidArgumentError, match=r"start\[1\]"):
        client.query_range("ix", start=(["a", {"b": 1}], True))


# ---- batches ----

def test_insert_many_sends_every_document_and_keeps_order():
    client, db4 = make_client()
    stored = [{"$id": "a", "$version": 1, "n": 1}, {"$id": "g1", "$version": 1}]
    db4.script.append(router_pb2.InsertManyResponse(
        documents=[json.dumps(d).encode() for d in stored]))
    docs = ({"$id": "a", "n": 1} if i == 0 else {} for i in range(2))  # any iterable
    assert client.collection("users").insert_many(docs) == stored
    req = db4.calls[0][1]
    assert [json.loads(d) for d in req.documents] == [{"$id": "a", "n": 1}, {}]


def test_get_many_and_delete_many_answer_in_input_order():
    client, db4 = make_client()
    db4.script += [
        router_pb2.GetManyResponse(items=[
            router_pb2.GetResponse(found=True, document=b'{"$id":"b"}'),
            router_pb2.GetResponse(found=False),
            router_pb2.GetResponse(found=True, document=b'{"$id":"a"}')]),
        router_pb2.DeleteManyResponse(deleted=[False, True])]
    users = client.collection("users")
    assert users.get_many(["b", "x", "a"]) == [{"$id": "b"}, None, {"$id": "a"}]
    assert users.delete_many(("x", "a")) == [False, True]
    assert list(db4.calls[0][1].ids) == ["b", "x", "a"]
    assert list(db4.calls[1][1].ids) == ["x", "a"]


def test_reads_retry_on_unavailable():
    client, db4 = make_client()
    db4.script += [unavailable(),
                   router_pb2.GetManyResponse(items=[router_pb2.GetResponse(found=False)]),
                   unavailable(), find_response(),
                   unavailable(), router_pb2.CountResponse(count=3),
                   unavailable(), router_pb2.ListIndexesResponse(),
                   unavailable(), find_response()]
    users = client.collection("users")
    assert users.get_many(["a"]) == [None]
    assert users.find().items == []
    assert users.count() == 3
    assert client.list_indexes() == []
    assert client.query_range("ix").items == []
    assert db4.methods() == ["GetMany"] * 2 + ["Find"] * 2 + ["Count"] * 2 + \
        ["ListIndexes"] * 2 + ["QueryRange"] * 2


@pytest.mark.parametrize("write", ["insert_many", "delete_many", "drop_index", "create_index"])
def test_writes_are_never_retried(write):
    client, db4 = make_client()
    db4.script += [Stream(unavailable()) if write == "create_index" else unavailable(),
                   router_pb2.InsertManyResponse()]
    users = client.collection("users")
    calls = {"insert_many": lambda: users.insert_many([{}]),
             "delete_many": lambda: users.delete_many(["u1"]),
             "drop_index": lambda: client.drop_index("ix"),
             "create_index": lambda: client.create_index("ix", "users")}
    with pytest.raises(errors.UnavailableError):
        calls[write]()
    assert len(db4.calls) == 1


# ---- iterate: one stream, resumed from the last cursor ----

def test_iterate_flattens_the_pages_of_one_stream():
    client, db4 = make_client()
    db4.script.append(Stream(find_response({"$id": "a"}, {"$id": "b"}, cursor="c1", has_more=True),
                             find_response({"$id": "c"})))
    docs = client.collection("users").iterate(where={"x": 1}, sort=[("x", "desc")], page_size=2)
    assert db4.calls == []  # nothing is sent before the first next()
    assert [d["$id"] for d in docs] == ["a", "b", "c"]
    method, req, kw = db4.calls[0]
    assert (method, req.limit, req.cursor, json.loads(req.where)) == ("Iterate", 2, "", {"x": 1})
    assert [(f.path, f.descending) for f in req.sort] == [("x", True)]
    assert "timeout" not in kw  # streams have no overall deadline, only a per-message one
    assert len(db4.calls) == 1


def test_iterate_resumes_after_unavailable_from_the_last_cursor():
    client, db4 = make_client()
    first = Stream(find_response({"$id": "a"}, cursor="c1", has_more=True),
                   find_response({"$id": "b"}, cursor="c2", has_more=True), unavailable())
    second = Stream(find_response({"$id": "c"}))
    db4.script += [first, second]
    assert [d["$id"] for d in client.collection("users").iterate(page_size=1)] == ["a", "b", "c"]
    assert [c[1].cursor for c in db4.calls] == ["", "c2"]
    assert all(c[1].limit == 1 for c in db4.calls)


def test_iterate_gives_up_after_the_policy_without_progress():
    client, db4 = make_client()
    db4.script += [Stream(unavailable()), Stream(unavailable()), Stream(unavailable()),
                   Stream(find_response())]
    with pytest.raises(errors.UnavailableError):
        list(client.collection("users").iterate())
    assert len(db4.calls) == 3


def test_progress_resets_the_retry_budget():
    client, db4 = make_client()
    db4.script += [Stream(unavailable()),
                   Stream(find_response({"$id": "a"}, cursor="c1", has_more=True), unavailable()),
                   Stream(unavailable()),
                   Stream(find_response({"$id": "b"}))]
    assert [d["$id"] for d in client.collection("users").iterate()] == ["a", "b"]
    assert [c[1].cursor for c in db4.calls] == ["", "", "c1", "c1"]


def test_iterate_other_errors_are_raised_as_domain_errors():
    client, db4 = make_client()
    db4.script += [Stream(find_response({"$id": "a"}, cursor="c1", has_more=True),
                          FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "cursor is corrupt"))]
    docs = client.collection("users").iterate()
    assert next(docs) == {"$id": "a"}
    with pytest.raises(errors.InvalidArgumentError, match="corrupt") as caught:
        next(docs)
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert len(db4.calls) == 1


def test_an_error_after_the_last_page_loses_nothing():
    client, db4 = make_client()
    db4.script.append(Stream(find_response({"$id": "a"}), unavailable()))
    assert [d["$id"] for d in client.collection("users").iterate()] == ["a"]
    assert len(db4.calls) == 1


def test_closing_an_iteration_cancels_the_stream():
    client, db4 = make_client()
    stream = Stream(find_response({"$id": "a"}, {"$id": "b"}, cursor="c", has_more=True),
                    find_response({"$id": "c"}))
    db4.script.append(stream)
    docs = client.collection("users").iterate()
    assert next(docs) == {"$id": "a"}
    docs.close()
    assert stream.cancelled and stream.served == 1


class SilentStream(Stream):
    """A stream whose server never answers: next() blocks until the call is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.woken = threading.Event()

    def cancel(self) -> bool:
        self.cancelled = True
        self.woken.set()
        return True

    def __next__(self):
        assert self.woken.wait(5), "the client never cancelled the silent stream"
        raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")


def test_a_silent_stream_times_out_per_message():
    client, db4 = make_client(timeout=0.05)
    db4.script.append(SilentStream())
    with pytest.raises(errors.DeadlineExceededError, match="sent nothing for 0.05 s"):
        list(client.collection("users").iterate())
    assert len(db4.calls) == 1  # DEADLINE_EXCEEDED is not retried


# ---- range indexes ----

def test_create_index_reports_progress_and_returns_the_stored_index():
    client, db4 = make_client()
    stored = router_pb2.Index(name="users_by_created", collection="users",
                              fields=[router_pb2.IndexField(path="createdAt")])
    db4.script.append(Stream(progress(0, 2, 0), progress(1, 2, 12000),
                             progress(2, 2, 20000, stored)))
    seen = []
    index = client.create_index("users_by_created", "users", on_progress=seen.append)
    assert index == {"name": "users_by_created", "collection": "users",
                     "fields": [("createdAt", "asc")]}
    assert [(p["shards_done"], p["shards_total"], p["documents"], p["done"]) for p in seen] == \
        [(0, 2, 0, False), (1, 2, 12000, False), (2, 2, 20000, True)]
    assert seen[0]["index"] is None and seen[2]["index"] == index
    method, req, _ = db4.calls[0]
    assert method == "CreateIndex"
    assert (req.index.name, req.index.collection) == ("users_by_created", "users")
    assert [(f.path, f.descending) for f in req.index.fields] == [("createdAt", False)]


def test_create_index_fields_and_directions():
    client, db4 = make_client()
    db4.script.append(Stream(progress(1, 1, 5)))
    index = client.create_index("ix", "orders", [("tenant", "asc"), ("total", "desc"), "day"])
    fields = db4.calls[0][1].index.fields
    assert [(f.path, f.descending) for f in fields] == \
        [("tenant", False), ("total", True), ("day", False)]
    # no index in the last message: the definition that was sent
    assert index["fields"] == [("tenant", "asc"), ("total", "desc"), ("day", "asc")]


def test_create_index_stream_ending_early_is_an_error():
    client, db4 = make_client()
    db4.script.append(Stream(progress(1, 4, 10)))
    with pytest.raises(errors.InternalError, match="before it was done"):
        client.create_index("ix", "users", ["age"])


def test_an_exception_in_on_progress_cancels_the_build_stream():
    client, db4 = make_client()
    stream = Stream(progress(1, 3, 1), progress(2, 3, 2), progress(3, 3, 3))
    db4.script.append(stream)

    def stop(p):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.create_index("ix", "users", ["age"], on_progress=stop)
    assert stream.cancelled and stream.served == 1


def test_drop_and_list_indexes():
    client, db4 = make_client()
    db4.script += [router_pb2.DropIndexResponse(),
                   router_pb2.ListIndexesResponse(indexes=[
                       router_pb2.Index(name="a", collection="users", fields=[
                           router_pb2.IndexField(path="t"),
                           router_pb2.IndexField(path="n", descending=True)])]),
                   router_pb2.ListIndexesResponse(),
                   FakeRpcError(grpc.StatusCode.NOT_FOUND, "no index 'zz'")]
    assert client.drop_index("ix") is None
    assert client.list_indexes(collection="users") == [
        {"name": "a", "collection": "users", "fields": [("t", "asc"), ("n", "desc")]}]
    assert client.list_indexes() == []
    with pytest.raises(errors.NotFoundError):
        client.drop_index("zz")
    assert [c[1] for c in db4.calls[:3]] == [
        router_pb2.DropIndexRequest(name="ix"), router_pb2.ListIndexesRequest(collection="users"),
        router_pb2.ListIndexesRequest()]


@pytest.mark.parametrize(("bound", "value", "inclusive"), [
    (("2024-01-01", True), "2024-01-01", True),
    ((42, False), 42, False),
    ((1.5, True), 1.5, True),
    ((None, True), None, True),
    ((False, True), False, True),
    ((["acme", 2024], True), ["acme", 2024], True),
    ((("acme",), False), ["acme"], False),
    ([["é", -1], True], ["é", -1], True),
])
def test_range_bounds_are_json_values_with_their_inclusivity(bound, value, inclusive):
    client, db4 = make_client()
    db4.script.append(find_response())
    client.query_range("ix", start=bound, end=bound, limit=7, cursor="c9")
    req = db4.calls[0][1]
    for side in (req.start, req.end):
        assert json.loads(side.value) == value and side.inclusive is inclusive
    assert (req.index, req.limit, req.cursor) == ("ix", 7, "c9")


def test_open_range_ends_are_unset():
    client, db4 = make_client()
    db4.script += [find_response({"$id": "a"}, cursor="c1", has_more=True), find_response()]
    page = client.query_range("ix", end=("m", False))
    assert page == Page([{"$id": "a"}], "c1", True)
    client.query_range("ix")
    first, second = db4.calls[0][1], db4.calls[1][1]
    assert not first.HasField("start") and first.HasField("end") and first.limit == 100
    assert not second.HasField("start") and not second.HasField("end")


def test_iterate_range_streams_and_resumes():
    client, db4 = make_client()
    db4.script += [Stream(find_response({"$id": "a"}, cursor="c1", has_more=True), unavailable()),
                   Stream(find_response({"$id": "b"}))]
    docs = client.iterate_range("ix", start=(3, True), end=(9, False))
    assert [d["$id"] for d in docs] == ["a", "b"]
    assert [c[0] for c in db4.calls] == ["IterateRange", "IterateRange"]
    assert [c[1].cursor for c in db4.calls] == ["", "c1"]
    req = db4.calls[1][1]
    assert req.limit == 50 and json.loads(req.start.value) == 3 and not req.end.inclusive


# ---- asyncio: the same requests, the same parsing ----

def test_async_queries_and_batches():
    client, db4 = make_async_client()
    db4.script += [find_response({"$id": "a"}, cursor="c", has_more=True),
                   router_pb2.CountResponse(count=5),
                   router_pb2.CountResponse(count=2),
                   find_response(),
                   router_pb2.InsertManyResponse(documents=[b'{"$id":"n"}']),
                   router_pb2.GetManyResponse(items=[router_pb2.GetResponse(found=False)]),
                   router_pb2.DeleteManyResponse(deleted=[True])]

    async def scenario():
        async with client:
            users = client.collection("users")
            page = await users.find(where={"a": 1}, sort="a", limit=1)
            assert page == Page([{"$id": "a"}], "c", True)
            assert await users.count() == 5
            assert await users.count_in_shard("s1", where={"a": 1}) == 2
            assert (await users.find_in_shard("s1", cursor="c")).items == []
            assert await users.insert_many([{"$id": "n"}]) == [{"$id": "n"}]
            assert await users.get_many(["x"]) == [None]
            assert await users.delete_many(["n"]) == [True]
            with pytest.raises(errors.InvalidArgumentError):
                await users.find(limit=-1)
            with pytest.raises(errors.InvalidArgumentError):
                users.iterate(sort=[("a", "sideways")])  # checked at call time

    asyncio.run(scenario())
    assert db4.methods() == ["Find", "Count", "Count", "Find", "InsertMany", "GetMany",
                             "DeleteMany"]
    assert db4.calls[3][1].shard_id == "s1" and db4.calls[3][1].cursor == "c"


def test_async_iterate_resumes_and_closes():
    client, db4 = make_async_client()
    tail = Stream(find_response({"$id": "c"}, cursor="c3", has_more=True),
                  find_response({"$id": "d"}))
    db4.script += [Stream(find_response({"$id": "a"}, {"$id": "b"}, cursor="c2", has_more=True),
                          unavailable()), tail]

    async def scenario():
        docs = client.collection("users").iterate(page_size=2)
        got = []
        async for doc in docs:
            got.append(doc["$id"])
            if doc["$id"] == "c":
                break
        await docs.aclose()
        return got

    assert asyncio.run(scenario()) == ["a", "b", "c"]
    assert [c[1].cursor for c in db4.calls] == ["", "c2"]
    assert tail.cancelled and tail.served == 1


def test_async_index_calls():
    client, db4 = make_async_client()
    db4.script += [Stream(progress(1, 2, 10), progress(2, 2, 30)),
                   router_pb2.ListIndexesResponse(indexes=[router_pb2.Index(name="ix")]),
                   router_pb2.DropIndexResponse(),
                   find_response({"$id": "r"}),
                   Stream(find_response({"$id": "s"}))]
    seen = []

    async def scenario():
        index = await client.create_index("ix", "users", [("age", "desc")],
                                          on_progress=seen.append)
        assert index == {"name": "ix", "collection": "users", "fields": [("age", "desc")]}
        assert [i["name"] for i in await client.list_indexes()] == ["ix"]
        await client.drop_index("ix")
        assert (await client.query_range("ix", start=(["a"], True))).items == [{"$id": "r"}]
        return [d async for d in client.iterate_range("ix", end=(5, True), page_size=9)]

    assert asyncio.run(scenario()) == [{"$id": "s"}]
    assert [p["documents"] for p in seen] == [10, 30]
    assert db4.methods() == ["CreateIndex", "ListIndexes", "DropIndex", "QueryRange",
                             "IterateRange"]
    assert db4.calls[4][1].limit == 9


class NeverStream(Stream):
    """An aio stream whose read() never completes."""

    async def read(self):
        await asyncio.Event().wait()


def test_async_silent_stream_times_out_per_message():
    client, db4 = make_async_client(timeout=0.05)
    stream = NeverStream()
    db4.script.append(stream)

    async def scenario():
        return [d async for d in client.collection("users").iterate()]

    with pytest.raises(errors.DeadlineExceededError):
        asyncio.run(scenario())
    assert stream.cancelled and len(db4.calls) == 1


def test_get_many_asks_again_after_a_short_answer_and_sends_nothing_for_no_ids():
    client, db4 = make_client()
    db4.script += [
        router_pb2.GetManyResponse(items=[router_pb2.GetResponse(found=True,
                                                                 document=b'{"$id":"a"}')]),
        router_pb2.GetManyResponse(items=[router_pb2.GetResponse(found=False),
                                          router_pb2.GetResponse(found=True,
                                                                 document=b'{"$id":"c"}')])]
    users = client.collection("users")
    assert users.get_many(["a", "b", "c"]) == [{"$id": "a"}, None, {"$id": "c"}]
    assert [list(call[1].ids) for call in db4.calls] == [["a", "b", "c"], ["b", "c"]]
    assert users.get_many([]) == [] and len(db4.calls) == 2
