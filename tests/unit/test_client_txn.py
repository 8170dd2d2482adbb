"""Transactions and optimistic concurrency in the SDK, without a server: the buffer (reads see
their own writes, savepoints, limits, timeout, bad input), the one Commit request it sends, and
the retry loops of run_transaction and update_with_optimistic_lock."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest

from db4.v1 import router_pb2
from db4client import AsyncClient, CasResult, Client, RetryPolicy, _channel, errors
from db4core.txn import MAX_TXN_BYTES, MAX_TXN_OPS
from tests.support.fakes import FakeAioChannel, FakeChannel, FakeRpcError, FakeStub

NO_WAIT = RetryPolicy(attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0, unary_budget_s=0.0)
STORED = {"$id": "a1", "$version": 3, "$createdAt": 100, "$updatedAt": 200,
          "balance": 500, "owner": "ann"}


def conflict(expected: int = 3, actual: int = 4) -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.ABORTED, "version moved",
                        [("db4-reason", "conflict"), ("db4-expected-version", str(expected)),
                         ("db4-actual-version", str(actual))])


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    monkeypatch.setattr(_channel, "open_channel", lambda address, tls: FakeChannel())
    monkeypatch.setattr(_channel, "open_aio_channel", lambda address, tls: FakeAioChannel())


def make_client() -> tuple[Client, FakeStub]:
    client = Client(retry=NO_WAIT)
    stub = FakeStub()
    client._stubs = {"db4": stub, "admin": FakeStub()}
    return client, stub


def make_async_client() -> tuple[AsyncClient, FakeStub]:
    client = AsyncClient(retry=NO_WAIT)
    stub = FakeStub(asynchronous=True)
    client._stubs = {"db4": stub, "admin": FakeStub(asynchronous=True)}
    return client, stub


def found(doc: dict, token: int = 77) -> router_pb2.GetResponse:
    return router_pb2.GetResponse(found=True, document=json.dumps(doc).encode(), token=token)


def doc_response(doc: dict) -> router_pb2.DocumentResponse:
    return router_pb2.DocumentResponse(document=json.dumps(doc).encode())


def commit_response(docs: list, txid: str = "t", shards: int = 1) -> router_pb2.CommitResponse:
    return router_pb2.CommitResponse(
        documents=[json.dumps(d).encode() if d is not None else b"" for d in docs],
        found=[True] * len(docs), txid=txid, shards=shards)


def commit_request(stub: FakeStub) -> router_pb2.CommitRequest:
    commits = [req for name, req, _ in stub.calls if name == "Commit"]
    assert len(commits) == 1, stub.methods()
    return commits[0]


# ---- reads see the transaction's own writes ----

def test_update_merges_into_what_was_read_and_none_removes_a_field():
    client, stub = make_client()
    stub.script = [found(STORED)]
    # Discarded at the end (an exception): only the reads matter here.
    with pytest.raises(RuntimeError), client.transaction() as tx:
        assert tx.get("accounts", "a1") == STORED
        tx.update("accounts", "a1", {"balance": 400, "owner": None, "note": "x"})
        seen = tx.get("accounts", "a1")
        raise RuntimeError("stop")
    assert stub.methods() == ["Get"]  # the second get did not go out
    assert seen["balance"] == 400 and seen["note"] == "x" and "owner" not in seen
    assert seen["$id"] == "a1" and seen["$createdAt"] == 100
    assert seen["$version"] == 4  # provisional: what it becomes if nobody writes first


def test_a_second_get_repeats_the_first_read():
    client, stub = make_client()
    stub.script = [found(STORED), found({**STORED, "balance": 1, "$version": 9})]
    tx = client.transaction()
    first = tx.get("accounts", "a1")
    first["balance"] = -1  # the caller's copy: changing it changes nothing in the buffer
    assert tx.get("accounts", "a1") == STORED
    assert stub.methods() == ["Get"]


def test_delete_makes_get_return_none_and_create_needs_no_read():
    client, stub = make_client()
    stub.script = [found(STORED)]
    tx = client.transaction()
    tx.get("accounts", "a1")
    tx.delete("accounts", "a1")
    assert tx.get("accounts", "a1") is None
    new_id = tx.create("notes", {"$type": "Note", "text": "hi"})
    note = tx.get("notes", new_id)
    assert note["text"] == "hi" and note["$type"] == "Note" and note["$version"] == 1
    tx.upsert("notes", {"$id": "n2", "text": "up"})
    tx.update("notes", "n2", {"more": 1})
    assert tx.get("notes", "n2")["more"] == 1 and tx.get("notes", "n2")["text"] == "up"
    assert stub.methods() == ["Get"]  # notes were decided by the buffer alone


def test_get_many_reads_once_in_one_request_and_sees_the_buffer():
    client, stub = make_client()
    other = {**STORED, "$id": "a2", "$version": 5}
    stub.script = [router_pb2.GetManyResponse(items=[found(STORED), found(other),
                                                     router_pb2.GetResponse(found=False)]),
                   commit_response([None], shards=2)]
    with client.transaction() as tx:
        tx.create("accounts", {"$id": "a9", "balance": 1})
        got = tx.get_many("accounts", ["a1", "a2", "a3", "a9", "a1"])
        assert [d and d["$id"] for d in got] == ["a1", "a2", None, "a9", "a1"]
        assert tx.get("accounts", "a2") == other  # read once: no second request
    assert stub.methods() == ["GetMany", "Commit"]
    assert list(stub.calls[0][1].ids) == ["a1", "a2", "a3"]  # a9 is decided by the buffer
    reads = {r.id: r.version for r in commit_request(stub).reads}
    assert reads == {"a1": 3, "a2": 5, "a3": 0}


def test_get_many_asks_again_for_the_rest_of_a_short_answer():
    client, stub = make_client()
    stub.script = [router_pb2.GetManyResponse(items=[found(STORED)]),
                   router_pb2.GetManyResponse(items=[router_pb2.GetResponse(found=False)])]
    tx = client.transaction()
    assert tx.get_many("accounts", ["a1", "a2"])[1] is None
    assert [list(req.ids) for _, req, _ in stub.calls] == [["a1", "a2"], ["a2"]]


def test_replace_keeps_created_at_and_swaps_user_fields():
    client, stub = make_client()
    stub.script = [found(STORED)]
    tx = client.transaction()
    tx.replace("accounts", "a1", {"balance": 7})
    doc = tx.get("accounts", "a1")
    assert doc["balance"] == 7 and "owner" not in doc and doc["$createdAt"] == 100


def test_update_of_a_missing_document_reads_as_none():
    client, stub = make_client()
    stub.script = [router_pb2.GetResponse(found=False)]
    tx = client.transaction()
    tx.update("accounts", "nope", {"a": 1})
    assert tx.get("accounts", "nope") is None


def test_find_is_a_plain_find_bounded_by_the_transaction_timeout():
    client, stub = make_client()
    stub.script = [router_pb2.FindResponse()]
    tx = client.transaction(timeout=5)
    tx.create("notes", {"text": "buffered"})
    page = tx.find("notes", where={"text": "buffered"})
    assert page.items == []  # the buffered create is not seen
    name, req, kw = stub.calls[0]
    assert name == "Find" and kw["timeout"] <= 5


# ---- the Commit request ----

def test_commit_sends_reads_and_ops_in_one_request_under_serializable():
    client, stub = make_client()
    stub.script = [found(STORED, token=1234), router_pb2.GetResponse(found=False),
                   commit_response([{**STORED, "balance": 400}, {"$id": "n1"}, None],
                               shards=2)]
    with client.transaction() as tx:
        tx.get("accounts", "a1")
        tx.get("accounts", "gone", partition="acme")
        tx.update("accounts", "a1", {"balance": 400}, expected_version=3)
        created = tx.create("notes", {"text": "t"})
        tx.delete("notes", "old")
    req = commit_request(stub)
    assert len(req.txid) == 32 and req.txid == tx.txid
    int(req.txid, 16)
    assert req.isolation == router_pb2.ISOLATION_SERIALIZABLE
    assert [(r.collection, r.id, r.version) for r in req.reads] == [
        ("accounts", "a1", 3), ("accounts", "gone", 0)]
    assert req.reads[0].token == 1234 and not req.reads[1].HasField("token")
    assert json.loads(req.reads[1].partition) == "acme"
    kinds = [op.kind for op in req.ops]
    assert kinds == [router_pb2.TXN_OP_KIND_UPDATE, router_pb2.TXN_OP_KIND_CREATE,
                     router_pb2.TXN_OP_KIND_DELETE]
    assert req.ops[0].expected_version == 3 and req.ops[0].token == 1234
    assert json.loads(req.ops[0].body) == {"balance": 400}
    # A generated id travels in the op only: the router knows it is fresh (no id claim).
    assert len(created) == 26 and req.ops[1].id == created
    assert json.loads(req.ops[1].body) == {"text": "t"}
    assert not req.ops[1].HasField("token") and req.ops[2].body == b""
    assert tx.state == "committed" and tx.results.shards == 2
    assert tx.results.documents[0]["balance"] == 400 and tx.results.documents[2] is None


def test_read_committed_sends_no_reads():
    client, stub = make_client()
    stub.script = [found(STORED), commit_response([STORED])]
    with client.transaction(isolation="read_committed") as tx:
        tx.get("accounts", "a1")
        tx.update("accounts", "a1", {"balance": 1})
    req = commit_request(stub)
    assert req.isolation == router_pb2.ISOLATION_READ_COMMITTED and len(req.reads) == 0
    assert req.ops[0].token == 77  # the read still places the write


def test_read_only_serializable_commits_its_reads_and_an_empty_one_sends_nothing():
    client, stub = make_client()
    stub.script = [found(STORED), commit_response([])]
    with client.transaction() as tx:
        tx.get("accounts", "a1")
    assert len(commit_request(stub).reads) == 1 and len(commit_request(stub).ops) == 0
    client2, stub2 = make_client()
    with client2.transaction() as empty:
        pass
    assert stub2.calls == [] and empty.state == "committed"


def test_an_exception_discards_everything_and_propagates():
    client, stub = make_client()
    with pytest.raises(KeyError), client.transaction() as tx:
        tx.create("notes", {"text": "never"})
        raise KeyError("boom")
    assert stub.calls == [] and tx.state == "rolled back"
    with pytest.raises(errors.FailedPreconditionError, match="rolled back"):
        tx.create("notes", {"text": "late"})


def test_use_after_commit_is_failed_precondition():
    client, stub = make_client()
    stub.script = [commit_response([{"$id": "x"}])]
    with client.transaction() as tx:
        tx.create("notes", {"$id": "x"})
    for late in (lambda: tx.get("notes", "x"), lambda: tx.delete("notes", "x"),
                 lambda: tx.savepoint("s"), tx.commit):
        with pytest.raises(errors.FailedPreconditionError, match="committed"):
            late()
    assert stub.methods() == ["Commit"]


def test_a_conflict_at_commit_propagates_and_ends_the_transaction():
    client, stub = make_client()
    stub.script = [conflict(3, 4)]
    with pytest.raises(errors.ConflictError) as info, client.transaction() as tx:
        tx.update("accounts", "a1", {"x": 1})
    assert (info.value.expected_version, info.value.actual_version) == (3, 4)
    assert tx.state == "failed"


def test_commit_is_not_retried_on_unavailable():
    client, stub = make_client()
    stub.script = [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "router went away")]
    with pytest.raises(errors.UnavailableError), client.transaction() as tx:
        tx.update("accounts", "a1", {"x": 1})
    assert stub.methods() == ["Commit"]


# ---- savepoints ----

def ops_of(tx) -> list[tuple[str, str]]:
    return [(op.message.collection, op.message.id) for op in tx._buf._ops]


def test_rollback_to_drops_later_writes_and_later_savepoints():
    client, _ = make_client()
    tx = client.transaction()
    tx.create("n", {"$id": "1"})
    tx.savepoint("a")
    tx.create("n", {"$id": "2"})
    tx.savepoint("b")
    tx.create("n", {"$id": "3"})
    tx.rollback_to("a")
    assert ops_of(tx) == [("n", "1")]
    with pytest.raises(errors.InvalidArgumentError, match="'b'"):
        tx.rollback_to("b")
    tx.create("n", {"$id": "4"})
    tx.rollback_to("a")  # the savepoint itself survives a rollback to it
    assert ops_of(tx) == [("n", "1")]


def test_release_keeps_the_writes_and_forgets_later_savepoints():
    client, _ = make_client()
    tx = client.transaction()
    tx.savepoint("a")
    tx.create("n", {"$id": "1"})
    tx.savepoint("b")
    tx.create("n", {"$id": "2"})
    tx.release("a")
    assert ops_of(tx) == [("n", "1"), ("n", "2")]
    for gone in ("a", "b"):
        with pytest.raises(errors.InvalidArgumentError):
            tx.rollback_to(gone)


def test_a_name_given_twice_marks_anew():
    client, _ = make_client()
    tx = client.transaction()
    tx.savepoint("s")
    tx.create("n", {"$id": "1"})
    tx.savepoint("s")
    tx.create("n", {"$id": "2"})
    tx.rollback_to("s")
    assert ops_of(tx) == [("n", "1")]


def test_nested_undoes_only_its_own_writes_then_propagates():
    client, stub = make_client()
    stub.script = [commit_response([{"$id": "1"}, {"$id": "3"}])]
    with client.transaction() as tx:
        tx.create("n", {"$id": "1"})
        with pytest.raises(ValueError), tx.nested():
            tx.create("n", {"$id": "2"})
            raise ValueError("inner")
        with tx.nested():
            tx.create("n", {"$id": "3"})
    assert [op.id for op in commit_request(stub).ops] == ["1", "3"]


def test_nested_inside_nested_and_an_outer_rollback_from_inside():
    client, _ = make_client()
    tx = client.transaction()
    tx.savepoint("outer")
    with tx.nested():
        tx.create("n", {"$id": "1"})
        with pytest.raises(ValueError), tx.nested():
            tx.create("n", {"$id": "2"})
            raise ValueError
        assert ops_of(tx) == [("n", "1")]
        tx.rollback_to("outer")  # drops the nested savepoint too; leaving it is still fine
    assert ops_of(tx) == [] and tx._buf._savepoints == [("outer", 0)]


def test_unknown_savepoint_names_and_bad_names_are_invalid_argument():
    client, _ = make_client()
    tx = client.transaction()
    for call in (lambda: tx.rollback_to("nope"), lambda: tx.release("nope"),
                 lambda: tx.savepoint(""), lambda: tx.savepoint(3)):
        with pytest.raises(errors.InvalidArgumentError):
            call()


# ---- limits, timeout, bad input ----

def test_the_write_past_max_txn_ops_is_refused_and_nothing_is_sent():
    client, stub = make_client()
    tx = client.transaction()
    for i in range(MAX_TXN_OPS):
        tx.delete("n", f"d{i}")
    with pytest.raises(errors.InvalidArgumentError, match="at most 10000 writes"):
        tx.delete("n", "one-too-many")
    assert tx._buf.writes == MAX_TXN_OPS and stub.calls == []


def test_the_write_past_max_txn_bytes_is_refused_and_nothing_is_sent():
    client, stub = make_client()
    tx = client.transaction()
    chunk = "x" * (1_000_000)
    n = MAX_TXN_BYTES // (len(chunk) + 20)
    for i in range(n):
        tx.create("n", {"$id": f"b{i}", "data": chunk})
    with pytest.raises(errors.InvalidArgumentError, match="bytes"):
        tx.create("n", {"$id": "big", "data": chunk})
    assert tx._buf.writes == n and stub.calls == []


def test_rollback_to_gives_back_the_bytes_of_dropped_writes():
    client, _ = make_client()
    tx = client.transaction()
    tx.savepoint("s")
    tx.create("n", {"$id": "a", "data": "x" * 1000})
    tx.rollback_to("s")
    assert tx._buf._bytes == 0


def test_past_its_timeout_every_operation_and_the_commit_abort():
    client, stub = make_client()
    with pytest.raises(errors.TransactionAbortedError, match="timeout"), \
            client.transaction(timeout=0.05) as tx:
        tx.create("n", {"$id": "a"})
        time.sleep(0.06)
    assert stub.calls == [] and tx.state == "timed out"
    for late in (lambda: tx.get("n", "a"), lambda: tx.create("n", {}), tx.commit):
        with pytest.raises(errors.TransactionAbortedError):
            late()
    assert stub.calls == []


def test_a_get_that_runs_into_the_timeout_aborts():
    client, stub = make_client()
    tx = client.transaction(timeout=0.05)

    def slow_get(request, **kw):
        assert kw["timeout"] <= 0.05
        time.sleep(0.06)
        raise FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline")

    stub.Get = slow_get  # type: ignore[method-assign]
    with pytest.raises(errors.TransactionAbortedError):
        tx.get("n", "a")


@pytest.mark.parametrize("kw", [{"isolation": "snapshot"}, {"isolation": None},
                                {"timeout": 0}, {"timeout": -1}, {"timeout": True},
                                {"timeout": float("inf")}])
def test_bad_transaction_options_are_invalid_argument(kw):
    client, _ = make_client()
    with pytest.raises(errors.InvalidArgumentError):
        client.transaction(**kw)


@pytest.mark.parametrize("write", [
    lambda tx: tx.create("n", {"$secret": 1}),
    lambda tx: tx.create("bad name", {}),
    lambda tx: tx.update("n", "a/b", {"x": 1}),
    lambda tx: tx.update("n", "a", {"$version": 2}),
    lambda tx: tx.replace("n", "a", ["not", "a", "dict"]),
    lambda tx: tx.delete("n", "a", expected_version=0),
    lambda tx: tx.upsert("n", {"x": float("nan")}),
])
def test_a_bad_write_is_refused_and_not_buffered(write):
    client, stub = make_client()
    tx = client.transaction()
    with pytest.raises(errors.InvalidArgumentError):
        write(tx)
    assert tx._buf.writes == 0 and stub.calls == []


# ---- run_transaction ----

def test_run_transaction_retries_a_conflict_in_a_fresh_transaction():
    client, stub = make_client()
    stub.script = [conflict(), commit_response([{"$id": "a"}])]
    seen: list[str] = []

    def fn(tx):
        seen.append(tx.txid)
        tx.update("n", "a", {"x": len(seen)})
        return "done"

    result = client.run_transaction(fn, initial_backoff_ms=1)
    assert (result.value, result.attempts) == ("done", 2)
    assert len(set(seen)) == 2  # each attempt is a new transaction id
    assert json.loads(commit_request_last(stub).ops[0].body) == {"x": 2}


def commit_request_last(stub: FakeStub) -> router_pb2.CommitRequest:
    return [req for name, req, _ in stub.calls if name == "Commit"][-1]


def test_run_transaction_gives_up_after_max_retries_with_the_last_error():
    client, stub = make_client()
    locked = FakeRpcError(grpc.StatusCode.ABORTED, "held", [("db4-reason", "locked")])
    stub.script = [conflict(), conflict(), locked]
    with pytest.raises(errors.LockedError):
        client.run_transaction(lambda tx: tx.delete("n", "a"), max_retries=2,
                               initial_backoff_ms=1)
    assert stub.methods() == ["Commit"] * 3


def test_run_transaction_does_not_retry_other_errors():
    client, stub = make_client()
    calls = []

    def fn(tx):
        calls.append(1)
        raise errors.NotFoundError("missing")

    with pytest.raises(errors.NotFoundError):
        client.run_transaction(fn)
    assert calls == [1] and stub.calls == []


@pytest.mark.parametrize("kw", [{"max_retries": -1}, {"max_retries": 1.5},
                                {"initial_backoff_ms": -1}, {"isolation": "dirty"},
                                {"timeout": 0}])
def test_run_transaction_checks_its_arguments_first(kw):
    client, stub = make_client()
    with pytest.raises(errors.InvalidArgumentError):
        client.run_transaction(lambda tx: None, **kw)
    with pytest.raises(errors.InvalidArgumentError):
        client.run_transaction("not callable")


def test_async_transaction_and_run_transaction():
    async def main():
        client, stub = make_async_client()
        stub.script = [found(STORED), commit_response([STORED])]
        async with client.transaction() as tx:
            doc = await tx.get("accounts", "a1")
            tx.update("accounts", "a1", {"balance": doc["balance"] - 1})
            assert (await tx.get("accounts", "a1"))["balance"] == 499
            async with tx.nested():
                tx.delete("accounts", "a1")
                assert await tx.get("accounts", "a1") is None
        assert [op.kind for op in commit_request(stub).ops] == [
            router_pb2.TXN_OP_KIND_UPDATE, router_pb2.TXN_OP_KIND_DELETE]

        with pytest.raises(RuntimeError):
            async with client.transaction() as tx2:
                tx2.create("n", {})
                raise RuntimeError
        assert tx2.state == "rolled back"

        stub.calls.clear()
        stub.script = [conflict(), commit_response([{"$id": "a"}])]

        async def fn(tx):
            tx.update("n", "a", {"x": 1})
            await asyncio.sleep(0)
            return 42

        result = await client.run_transaction(fn, initial_backoff_ms=1)
        assert (result.value, result.attempts) == (42, 2)

    asyncio.run(main())


# ---- optimistic concurrency ----

def test_update_with_optimistic_lock_retries_on_conflict_with_the_new_version():
    client, stub = make_client()
    stub.script = [found({**STORED, "$version": 3, "n": 1}), conflict(3, 4),
                   found({**STORED, "$version": 4, "n": 5}), doc_response({"$id": "a1", "n": 6})]
    result = client.collection("c").update_with_optimistic_lock(
        "a1", lambda d: {"n": d["n"] + 1}, initial_backoff_ms=1)
    assert result.attempts == 2 and result.document == {"$id": "a1", "n": 6}
    updates = [req for name, req, _ in stub.calls if name == "Update"]
    assert [u.expected_version for u in updates] == [3, 4]
    assert json.loads(updates[1].patch) == {"n": 6}


def test_update_with_optimistic_lock_missing_and_exhausted():
    client, stub = make_client()
    stub.script = [router_pb2.GetResponse(found=False)]
    with pytest.raises(errors.NotFoundError):
        client.collection("c").update_with_optimistic_lock("a1", lambda d: {})
    stub.script = [found(STORED), conflict(), found(STORED), conflict()]
    with pytest.raises(errors.ConflictError):
        client.collection("c").update_with_optimistic_lock(
            "a1", lambda d: {"x": 1}, max_retries=1, initial_backoff_ms=0)
    with pytest.raises(errors.InvalidArgumentError):
        client.collection("c").update_with_optimistic_lock("a1", None)


def test_conditional_update_sends_the_condition_and_says_none_when_it_fails():
    client, stub = make_client()
    failed = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "no",
                          [("db4-reason", "condition_failed")])
    stub.script = [doc_response({"$id": "a1", "s": "done"}), failed]
    users = client.collection("c")
    assert users.conditional_update("a1", {"s": "open"}, {"s": "done"})["s"] == "done"
    assert users.conditional_update("a1", {"s": "open"}, {"s": "done"}) is None
    req = stub.calls[0][1]
    assert json.loads(req.condition) == {"s": "open"} and json.loads(req.patch) == {"s": "done"}
    for bad in (None, {}, {"s": {"$bogus": 1}}):
        with pytest.raises(errors.InvalidArgumentError):
            users.conditional_update("a1", bad, {"s": 1})


def test_compare_and_swap_both_outcomes():
    client, stub = make_client()
    failed = FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "no",
                          [("db4-reason", "condition_failed")])
    stub.script = [doc_response({"$id": "a1", "v": 2}), failed, found({"$id": "a1", "v": 9})]
    users = client.collection("c")
    assert users.compare_and_swap("a1", "v", 1, 2) == CasResult(True, {"$id": "a1", "v": 2})
    assert json.loads(stub.calls[0][1].condition) == {"v": {"$eq": 1}}
    assert users.compare_and_swap("a1", "v", 1, 2) == CasResult(False, {"$id": "a1", "v": 9})
    for field in ("", "$version", "a.b", 3):
        with pytest.raises(errors.InvalidArgumentError):
            users.compare_and_swap("a1", field, 1, 2)


def test_atomic_increment_sends_deltas_and_returns_the_new_number():
    client, stub = make_client()
    stub.script = [doc_response({"$id": "a1", "hits": 8})]
    assert client.collection("c").atomic_increment("a1", "hits", 3) == 8
    name, req, _ = stub.calls[0]
    assert name == "Increment" and json.loads(req.deltas) == {"hits": 3}
    for delta in (True, "1", None, float("nan"), float("inf")):
        with pytest.raises(errors.InvalidArgumentError):
            client.collection("c").atomic_increment("a1", "hits", delta)
    assert len(stub.calls) == 1


def test_async_optimistic_methods():
    async def main():
        client, stub = make_async_client()
        users = client.collection("c")

        async def bump(doc):
            return {"n": doc["n"] + 1}

        stub.script = [found({**STORED, "n": 1}), doc_response({"$id": "a1", "n": 2})]
        result = await users.update_with_optimistic_lock("a1", bump)
        assert (result.document["n"], result.attempts) == (2, 1)
        stub.script = [doc_response({"$id": "a1", "hits": 1.5})]
        assert await users.atomic_increment("a1", "hits", 0.5) == 1.5
        stub.script = [doc_response({"$id": "a1", "v": 2})]
        assert (await users.compare_and_swap("a1", "v", 1, 2)).swapped

    asyncio.run(main())

