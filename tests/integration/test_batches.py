"""insert_many / get_many / delete_many through a real router and 8 shards: input order,
all-or-nothing inserts, batches larger than one message, tenant-partitioned collections."""

from __future__ import annotations

import grpc
import pytest

from db4.v1 import router_pb2
from db4client import errors


class Unchanged:
    """Snapshot of a collection's rows and change-log records, compared later."""

    def __init__(self, cluster, collection: str):
        self.cluster, self.collection = cluster, collection
        self.before = self.counts()

    def counts(self) -> tuple[int, int]:
        return (self.cluster.doc_count(self.collection),
                self.cluster.change_count(self.collection))

    def check(self) -> None:
        assert self.counts() == self.before


def ids(docs) -> list[str]:
    return [d["$id"] for d in docs]


# a scrambled order, so "input order" cannot be mistaken for id order or shard order
SCRAMBLED = [f"b{(i * 37) % 100:02}" for i in range(100)]


def test_insert_many_keeps_input_order_across_shards(client, coll_name, cluster):
    coll = client.collection(coll_name)
    stored = coll.insert_many([{"$id": i, "pos": n} for n, i in enumerate(SCRAMBLED)])
    assert ids(stored) == SCRAMBLED
    assert [d["pos"] for d in stored] == list(range(100))
    assert all(d["$version"] == 1 and d["$createdAt"] == d["$updatedAt"] for d in stored)
    assert len({client.shard_for(coll_name, i) for i in SCRAMBLED}) == 8
    assert cluster.doc_count(coll_name) == 100
    assert cluster.change_count(coll_name) == 100
    assert coll.get(SCRAMBLED[5]) == stored[5]


def test_insert_many_generates_ids(client, coll_name):
    stored = client.collection(coll_name).insert_many([{"n": i} for i in range(20)])
    assert [d["n"] for d in stored] == list(range(20))
    assert len(set(ids(stored))) == 20 and all(len(i) == 26 for i in ids(stored))


def test_duplicate_inside_batch_writes_nothing(client, coll_name, cluster):
    coll = client.collection(coll_name)
    coll.insert_many([{"$id": "keep", "v": 1}])
    snap = Unchanged(cluster, coll_name)
    docs = [{"$id": f"n{i}"} for i in range(30)] + [{"$id": "n17", "again": True}]
    with pytest.raises(errors.AlreadyExistsError) as info:
        coll.insert_many(docs)
    assert "n17" in str(info.value)
    snap.check()
    assert coll.get_many(["n0", "n17", "n29"]) == [None, None, None]
    assert coll.get("keep")["v"] == 1


def test_existing_id_fails_whole_batch(client, coll_name, cluster):
    coll = client.collection(coll_name)
    coll.create({"$id": "taken", "v": "original"})
    snap = Unchanged(cluster, coll_name)
    docs = [{"$id": f"new{i}"} for i in range(40)]
    docs.insert(23, {"$id": "taken", "v": "new"})
    with pytest.raises(errors.AlreadyExistsError) as info:
        coll.insert_many(docs)
    assert "taken" in str(info.value)
    snap.check()
    assert coll.get("taken")["v"] == "original"
    assert coll.count() == 1


def test_bad_document_fails_whole_batch(client, coll_name, cluster, raw):
    coll = client.collection(coll_name)
    coll.create({"$id": "seed"})
    snap = Unchanged(cluster, coll_name)
    with pytest.raises(errors.InvalidArgumentError):
        coll.insert_many([{"$id": "ok1"}, {"$bad": 1}, {"$id": "ok2"}])
    for bad in (b'{"x": NaN}', b"[1]", b'{"$id": "a b"}', b'{"x": '):
        with pytest.raises(grpc.RpcError) as info:
            raw.InsertMany(router_pb2.InsertManyRequest(
                collection=coll_name, documents=[b'{"$id": "ok3"}', bad, b'{"$id": "ok4"}']))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert "documents[1]" in info.value.details()
    snap.check()


def test_an_invalid_document_is_named_before_a_taken_or_repeated_id(coll_name, cluster, raw):
    """Whatever else is wrong with a batch, its first invalid document is the error, as when
    the router read every document strictly before anything else."""
    raw.Create(router_pb2.CreateRequest(collection=coll_name, document=b'{"$id": "taken"}'))
    snap = Unchanged(cluster, coll_name)
    spread = [f'{{"$id": "s{i}"}}'.encode() for i in range(12)]  # over several shards
    for docs in ([b'{"$id": "taken"}', b'{"x": NaN}'],
                 [b'{"$id": "twice"}', b'{"$id": "twice"}', b'{"x": NaN}'],
                 [*spread[:5], b'{"y": 1, "y": 2}', *spread[5:], b'{"x": NaN}']):
        with pytest.raises(grpc.RpcError) as info:
            raw.InsertMany(router_pb2.InsertManyRequest(collection=coll_name, documents=docs))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, docs
        first_bad = next(i for i, d in enumerate(docs) if b"NaN" in d or b'"y": 1' in d)
        assert f"documents[{first_bad}]" in info.value.details(), info.value.details()
    snap.check()


def test_get_many_and_delete_many_in_input_order(client, coll_name, cluster):
    coll = client.collection(coll_name)
    coll.insert_many([{"$id": i, "v": i} for i in SCRAMBLED[:60]])
    ask = ["b00", "ghost1", SCRAMBLED[59], "ghost2", SCRAMBLED[30], "b00"]
    got = coll.get_many(ask)
    assert [None if d is None else d["$id"] for d in got] == [
        "b00", None, SCRAMBLED[59], None, SCRAMBLED[30], "b00"]
    assert got[0] == coll.get("b00")
    assert coll.get_many([]) == []

    delete = [SCRAMBLED[10], "ghost", SCRAMBLED[40], SCRAMBLED[3]]
    assert coll.delete_many(delete) == [True, False, True, True]
    assert coll.delete_many(delete) == [False, False, False, False]
    assert coll.get_many(delete) == [None, None, None, None]
    assert coll.count() == 57 == cluster.doc_count(coll_name)
    assert cluster.change_count(coll_name) == 63


def test_batch_larger_than_one_message(client, coll_name, cluster):
    """40 documents of ~600 KiB (24 MiB in all) are packed into several node writes."""
    coll = client.collection(coll_name)
    docs = [{"$id": f"big{i:02}", "blob": chr(65 + i % 26) * (600 << 10)} for i in range(40)]
    stored = coll.insert_many(docs)
    assert ids(stored) == ids(docs)
    got = coll.get_many(ids(docs)[::-1])
    assert [d["blob"][0] for d in got] == [d["blob"][0] for d in docs[::-1]]
    assert all(len(d["blob"]) == 600 << 10 for d in got)
    assert cluster.doc_count(coll_name) == 40


def test_one_shard_batch_larger_than_one_message(client, coll_name, cluster):
    """Every document on one shard: that shard's part alone needs two packed writes."""
    client.create_collection(coll_name, partition_key="tenantId")
    coll = client.collection(coll_name)
    docs = [{"$id": f"one{i:02}", "tenantId": "bulk", "blob": "z" * (600 << 10)}
            for i in range(30)]
    stored = coll.insert_many(docs)
    assert ids(stored) == ids(docs)
    shard = client.shard_for(coll_name, "bulk")
    assert coll.count_in_shard(shard) == 30
    assert all(d is not None and len(d["blob"]) == 600 << 10
               for d in coll.get_many(ids(docs)))
    assert coll.delete_many(ids(docs)) == [True] * 30
    assert cluster.doc_count(coll_name) == 0


def test_tenant_partitioned_batches(client, coll_name, cluster):
    client.create_collection(coll_name, partition_key="tenantId")
    coll = client.collection(coll_name)
    tenants = [f"t{i}" for i in range(12)]
    docs = [{"$id": f"{t}-{j}", "tenantId": t, "j": j} for j in range(4) for t in tenants]
    stored = coll.insert_many(docs)
    assert ids(stored) == ids(docs)
    for t in ("t0", "t5", "t11"):
        shard = client.shard_for(coll_name, t)
        local = ids(coll.find_in_shard(shard, where={"tenantId": t}).items)
        assert local == [f"{t}-{j}" for j in range(4)]
    assert len({client.shard_for(coll_name, t) for t in tenants}) > 1

    ask = ["t3-2", "nope", "t9-0", "t3-2"]
    assert [None if d is None else d["$id"] for d in coll.get_many(ask)] == [
        "t3-2", None, "t9-0", "t3-2"]
    assert coll.delete_many(["t3-2", "nope", "t9-0"]) == [True, False, True]
    assert coll.count() == 46

    snap = Unchanged(cluster, coll_name)
    with pytest.raises(errors.InvalidArgumentError):  # a document without its partition key
        coll.insert_many([{"$id": "x1", "tenantId": "t1"}, {"$id": "x2"}])
    with pytest.raises(errors.AlreadyExistsError):  # taken in the same tenant
        coll.insert_many([{"$id": "x3", "tenantId": "t1"}, {"$id": "t1-1", "tenantId": "t1"}])
    snap.check()


def test_tenant_partitioned_id_taken_under_another_tenant(client, coll_name, cluster):
    """`$id` names one document of a collection: batches.py says an id that already exists
    *anywhere* fails the whole batch, and get(id) without partition= must find one answer."""
    client.create_collection(coll_name, partition_key="tenantId")
    coll = client.collection(coll_name)
    tenants = [f"t{i}" for i in range(40)]
    first = tenants[0]
    other = next(t for t in tenants if client.shard_for(coll_name, t)
                 != client.shard_for(coll_name, first))
    coll.create({"$id": "shared", "tenantId": first})
    snap = Unchanged(cluster, coll_name)
    with pytest.raises(errors.AlreadyExistsError):
        coll.insert_many([{"$id": "fresh", "tenantId": other},
                          {"$id": "shared", "tenantId": other}])
    snap.check()
    assert coll.get("shared")["tenantId"] == first


def test_batch_size_limit(client, coll_name, cluster, raw):
    coll = client.collection(coll_name)
    snap = Unchanged(cluster, coll_name)
    with pytest.raises(grpc.RpcError) as info:
        raw.InsertMany(router_pb2.InsertManyRequest(collection=coll_name,
                                                    documents=[b"{}"] * 10_001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        raw.GetMany(router_pb2.GetManyRequest(collection=coll_name, ids=["a"] * 10_001))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    snap.check()
    with pytest.raises(errors.InvalidArgumentError):
        coll.get_many(["ok", "not ok"])
    with pytest.raises(errors.InvalidArgumentError):
        coll.delete_many(["ok", "x" * 257])
