"""insert_many and delete_many over several shards are one transaction: a failure on any shard
leaves no document and no change-log record anywhere; one shard is one Write."""

from __future__ import annotations

import json

import grpc

from db4.v1 import router_pb2
from tests.integration.txn_support import (
    EtcdGateway,
    create,
    expect_error,
    ids_on_distinct_shards,
    ids_on_one_shard,
)


def insert_many(raw, collection: str, docs: list[dict]) -> list[dict]:
    resp = raw.InsertMany(router_pb2.InsertManyRequest(
        collection=collection, documents=[json.dumps(d).encode() for d in docs]))
    return [json.loads(d) for d in resp.documents]


def test_insert_many_over_shards_with_one_duplicate_writes_nothing(raw, coll_name, cluster):
    spread = ids_on_distinct_shards(raw, coll_name, 4)
    create(raw, coll_name, {"$id": spread[2], "v": "original"})
    changes = cluster.change_count(coll_name)
    docs = [{"$id": i, "v": "new"} for i in spread]  # all new but spread[2]
    err = expect_error(grpc.StatusCode.ALREADY_EXISTS, insert_many, raw, coll_name, docs)
    assert spread[2] in err.details()
    assert cluster.change_count(coll_name) == changes
    assert cluster.doc_count(coll_name) == 1
    stored = insert_many(raw, coll_name, [d for d in docs if d["$id"] != spread[2]])
    assert [d["$version"] for d in stored] == [1, 1, 1]
    assert cluster.change_count(coll_name) == changes + 3


def test_one_shard_batch_writes_no_decision(raw, coll_name, cluster):
    etcd = EtcdGateway(cluster.etcd.url)
    *ids, absent = ids_on_one_shard(raw, coll_name, 6)
    create(raw, coll_name, {"$id": "first"})  # the collection's record is written once, here
    before = etcd.revision()
    insert_many(raw, coll_name, [{"$id": i} for i in ids])
    resp = raw.DeleteMany(router_pb2.DeleteManyRequest(collection=coll_name,
                                                       ids=[*ids[:3], absent]))
    assert list(resp.deleted) == [True, True, True, False]
    assert etcd.written_since(before) == []


def test_delete_many_over_shards_is_one_transaction(raw, coll_name, cluster):
    spread = ids_on_distinct_shards(raw, coll_name, 3)
    insert_many(raw, coll_name, [{"$id": i} for i in spread])
    resp = raw.DeleteMany(router_pb2.DeleteManyRequest(collection=coll_name,
                                                       ids=[*spread, "gone"]))
    assert list(resp.deleted) == [True, True, True, False]
    assert cluster.doc_count(coll_name) == 0
    assert EtcdGateway(cluster.etcd.url).gone("txns/")
