"""Commit through the router, spoken to with the bare stub: the three commit paths, conflicts,
write skew under both isolation levels, Increment, conditional Update, and bad input."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from db4.v1 import router_pb2
from db4core.txn import COMMIT, Decision
from tests.integration.txn_support import (
    EtcdGateway,
    commit,
    create,
    expect_error,
    get,
    ids_on_distinct_shards,
    ids_on_one_shard,
    op,
    read,
    reason,
    txid,
)

SERIALIZABLE, READ_COMMITTED = 1, 2


@pytest.fixture
def etcd(cluster):
    return EtcdGateway(cluster.etcd.url)


def test_single_shard_commit_writes_nothing_to_etcd(raw, coll_name, cluster, etcd):
    a, b = ids_on_one_shard(raw, coll_name, 2)
    create(raw, coll_name, {"$id": a, "n": 1})
    doc, token = get(raw, coll_name, a)
    assert token != 0
    before = etcd.revision()
    resp = commit(raw, reads=[read(coll_name, a, doc["$version"], token)],
                  ops=[op("update", coll_name, a, {"n": 2}, token=token),
                       op("create", coll_name, b, {"$id": b, "n": 3})])
    assert resp.shards == 1 and list(resp.found) == [True, True]
    assert json.loads(resp.documents[0])["n"] == 2
    assert etcd.written_since(before) == []
    assert get(raw, coll_name, a)[0]["n"] == 2 and get(raw, coll_name, b)[0]["n"] == 3


def test_two_shard_commit_applies_on_both_and_leaves_no_record(raw, coll_name, cluster, etcd):
    a, b = ids_on_distinct_shards(raw, coll_name, 2)
    create(raw, coll_name, {"$id": a, "balance": 100})
    create(raw, coll_name, {"$id": b, "balance": 0})
    (da, ta), (db, tb) = get(raw, coll_name, a), get(raw, coll_name, b)
    tid = txid()
    before = etcd.revision()
    resp = commit(raw, tid=tid,
                  reads=[read(coll_name, a, da["$version"], ta),
                         read(coll_name, b, db["$version"], tb)],
                  ops=[op("update", coll_name, a, {"balance": 60}, token=ta),
                       op("update", coll_name, b, {"balance": 40}, token=tb)])
    assert resp.shards == 2 and resp.txid == tid
    assert [json.loads(d)["balance"] for d in resp.documents] == [60, 40]
    assert get(raw, coll_name, a)[0]["balance"] == 60
    assert get(raw, coll_name, b)[0]["balance"] == 40
    assert etcd.gone(f"txns/{tid}", timeout=5)
    assert f"txns/{tid}" in etcd.written_since(before)  # put and deleted since: still seen
    assert cluster.change_count(coll_name) == 4  # two creates, two updates


def test_read_only_across_shards_validates_without_etcd(raw, coll_name, etcd):
    a, b = ids_on_distinct_shards(raw, coll_name, 2)
    create(raw, coll_name, {"$id": a})
    before = etcd.revision()
    resp = commit(raw, reads=[read(coll_name, a, 1), read(coll_name, b, 0)])
    assert resp.shards == 2 and len(resp.documents) == 0
    err = expect_error(grpc.StatusCode.ABORTED, commit, raw,
                       reads=[read(coll_name, a, 1), read(coll_name, b, 1)])
    assert reason(err) == "conflict"
    assert etcd.written_since(before) == []


@pytest.mark.parametrize("shards", [1, 2])
def test_conflicting_read_version_aborts_and_writes_nothing(raw, coll_name, cluster, shards):
    pick = ids_on_one_shard if shards == 1 else ids_on_distinct_shards
    a, b = pick(raw, coll_name, 2)
    create(raw, coll_name, {"$id": a, "v": 0})
    raw.Update(router_pb2.UpdateRequest(collection=coll_name, id=a, patch=b'{"v": 1}'))
    changes = cluster.change_count(coll_name)
    err = expect_error(grpc.StatusCode.ABORTED, commit, raw,
                       reads=[read(coll_name, a, 1)],  # stale: it is at version 2
                       ops=[op("update", coll_name, a, {"v": 9}),
                            op("create", coll_name, b, {"$id": b})])
    assert reason(err) == "conflict"
    md = dict(err.trailing_metadata())
    assert md.get("db4-expected-version") == "1" and md.get("db4-actual-version") == "2"
    assert get(raw, coll_name, a)[0]["v"] == 1 and get(raw, coll_name, b)[0] is None
    assert cluster.change_count(coll_name) == changes


@pytest.mark.parametrize("isolation", [SERIALIZABLE, READ_COMMITTED])
def test_write_skew(raw, coll_name, isolation):
    """Each transaction reads both on-call doctors and takes one off call: serializable lets
    only the first commit; read committed lets both (the classic anomaly)."""
    a, b = ids_on_distinct_shards(raw, coll_name, 2)
    create(raw, coll_name, {"$id": a, "on_call": True})
    create(raw, coll_name, {"$id": b, "on_call": True})
    reads = [read(coll_name, a, 1), read(coll_name, b, 1)]
    commit(raw, reads=reads, ops=[op("update", coll_name, a, {"on_call": False})],
           isolation=isolation)
    second = [op("update", coll_name, b, {"on_call": False})]
    if isolation == SERIALIZABLE:
        err = expect_error(grpc.StatusCode.ABORTED, commit, raw, reads=reads, ops=second,
                           isolation=isolation)
        assert reason(err) == "conflict"
        assert get(raw, coll_name, b)[0]["on_call"] is True
    else:
        assert commit(raw, reads=reads, ops=second, isolation=isolation).shards == 1
        assert get(raw, coll_name, b)[0]["on_call"] is False


def test_delete_of_missing_document_is_not_found_and_others_commit(raw, coll_name):
    client_coll = f"{coll_name}t"
    raw.CreateCollection(router_pb2.CreateCollectionRequest(name=client_coll,
                                                            partition_key="tenantId"))
    create(raw, client_coll, {"$id": "x", "tenantId": "acme"})
    resp = commit(raw, ops=[op("delete", client_coll, "nobody"),
                            op("update", client_coll, "x", {"seen": True})])
    assert list(resp.found) == [False, True]
    expect_error(grpc.StatusCode.NOT_FOUND, commit, raw,
                 ops=[op("update", client_coll, "nobody", {"a": 1})])


def test_increment(raw, coll_name):
    create(raw, coll_name, {"$id": "ctr", "hits": 1, "name": "x"})
    resp = raw.Increment(router_pb2.IncrementRequest(collection=coll_name, id="ctr",
                                                     deltas=b'{"hits": 2, "misses": 0.5}'))
    doc = json.loads(resp.document)
    assert (doc["hits"], doc["misses"], doc["$version"]) == (3, 0.5, 2)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, raw.Increment, router_pb2.IncrementRequest(
        collection=coll_name, id="ctr", deltas=b'{"hits": "1"}'))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, raw.Increment, router_pb2.IncrementRequest(
        collection=coll_name, id="ctr", deltas=b'{"$version": 1}'))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, raw.Increment, router_pb2.IncrementRequest(
        collection=coll_name, id="ctr", deltas=b'{"name": 1}'))  # not a number stored
    expect_error(grpc.StatusCode.NOT_FOUND, raw.Increment, router_pb2.IncrementRequest(
        collection=coll_name, id="none", deltas=b'{"hits": 1}'))
    assert get(raw, coll_name, "ctr")[0]["hits"] == 3


def test_conditional_update(raw, coll_name):
    create(raw, coll_name, {"$id": "u", "status": "active", "n": 1})

    def update(cond: bytes, patch: bytes = b'{"n": 2}'):
        return raw.Update(router_pb2.UpdateRequest(collection=coll_name, id="u", patch=patch,
                                                   condition=cond))

    err = expect_error(grpc.StatusCode.FAILED_PRECONDITION, update, b'{"status": "gone"}')
    assert reason(err) == "condition_failed"
    assert get(raw, coll_name, "u")[0]["n"] == 1
    assert json.loads(update(b'{"status": "active", "n": {"$lt": 5}}').document)["n"] == 2
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, update, b'{"n": {"$bogus": 1}}')
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, update, b'[1]')


def test_bad_input_is_invalid_argument_and_writes_nothing(raw, coll_name, cluster):
    good = op("create", coll_name, "ok", {"$id": "ok"})
    cases = [
        dict(tid="not-hex", ops=[good]),
        dict(tid="A" * 32, ops=[good]),
        dict(ops=[router_pb2.TxnOp(kind=9, collection=coll_name, id="x")]),
        dict(ops=[router_pb2.TxnOp(kind=0, collection=coll_name, id="x")]),
        dict(ops=[good] * 10_001),
        dict(ops=[good], isolation=7),
        dict(ops=[good, op("create", coll_name, "bad id!", {})]),
        dict(ops=[good, op("create", coll_name, "y", {"$id": "z"})]),
        dict(ops=[good, op("update", coll_name, "y", {"$version": 3})]),
        dict(ops=[good, op("create", coll_name, "y", {"$bad": 1})]),
        dict(ops=[good, router_pb2.TxnOp(kind=1, collection=coll_name, id="y", body=b"{")]),
        dict(ops=[good, op("delete", coll_name, "y", {"a": 1})]),
        dict(ops=[good], reads=[read("bad name", "a", 0)]),
        dict(ops=[good], reads=[read(coll_name, "a", -1)]),
    ]
    for case in cases:
        err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, commit, raw, **case)
        assert err.details()
    big = "x" * (900 << 10)
    too_big = [op("create", coll_name, f"b{i}", {"blob": big}) for i in range(20)]
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, commit, raw, ops=too_big)
    assert "bytes" in err.details()
    assert get(raw, coll_name, "ok")[0] is None
    assert cluster.change_count(coll_name) == 0


def test_get_answers_the_stored_token(raw, coll_name):
    raw.CreateCollection(router_pb2.CreateCollectionRequest(name=coll_name,
                                                            partition_key="tenantId"))
    create(raw, coll_name, {"$id": "d1", "tenantId": "acme"})
    shard = raw.ShardFor(router_pb2.ShardForRequest(collection=coll_name, partition=b'"acme"'))
    doc, token = get(raw, coll_name, "d1")  # looked up on every shard
    assert doc is not None and token == shard.token
    missing = raw.Get(router_pb2.GetRequest(collection=coll_name, id="none"))
    assert not missing.found and missing.token == 0


def test_janitor_concludes_old_records_only(raw, coll_name, etcd):
    """A commit record 20 s old whose participants hold nothing is acknowledged by them and
    deleted within a janitor round; one just written stays (its coordinator may be at work)."""
    shards = sorted({raw.ShardFor(router_pb2.ShardForRequest(
        collection=coll_name, partition=json.dumps(k).encode())).shard_id
        for k in ids_on_distinct_shards(raw, coll_name, 2)})
    old, young = txid(), txid()
    now_ms = int(time.time() * 1000)
    etcd.put(f"txns/{old}", Decision(COMMIT, shards, by="router", ts=now_ms - 20_000).encode())
    etcd.put(f"txns/{young}", Decision(COMMIT, shards, by="router", ts=now_ms).encode())
    deadline = time.monotonic() + 8
    while etcd.count(f"txns/{old}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert etcd.count(f"txns/{old}") == 0
    assert etcd.count(f"txns/{young}") == 1
    etcd.delete(f"txns/{young}")
