"""Helpers of the transaction tests: a Commit built by hand, and etcd read over its JSON gateway."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from db4.v1 import router_pb2
from tests.support.etcd_gateway import EtcdGateway  # noqa: F401 - the tests import it from here

CLUSTER = "default"  # the test routers' cluster name


def txid() -> str:
    return uuid.uuid4().hex


def op(kind: str, collection: str, doc_id: str, body: dict | None = None, **extra
       ) -> router_pb2.TxnOp:
    kinds = {"create": 1, "update": 2, "replace": 3, "upsert": 4, "delete": 5}
    raw = json.dumps(body).encode() if body is not None else b""
    if "partition" in extra:
        extra["partition"] = json.dumps(extra["partition"]).encode()
    return router_pb2.TxnOp(kind=kinds[kind], collection=collection, id=doc_id, body=raw,
                            **extra)


def read(collection: str, doc_id: str, version: int, token: int | None = None
         ) -> router_pb2.TxnRead:
    return router_pb2.TxnRead(collection=collection, id=doc_id, version=version, token=token)


def commit(stub, ops=(), reads=(), isolation=0, tid: str | None = None
           ) -> router_pb2.CommitResponse:
    return stub.Commit(router_pb2.CommitRequest(txid=tid or txid(), isolation=isolation,
                                                reads=list(reads), ops=list(ops)))


def create(stub, collection: str, doc: dict) -> dict:
    resp = stub.Create(router_pb2.CreateRequest(collection=collection,
                                                document=json.dumps(doc).encode()))
    return json.loads(resp.document)


def get(stub, collection: str, doc_id: str) -> tuple[dict | None, int]:
    resp = stub.Get(router_pb2.GetRequest(collection=collection, id=doc_id))
    return (json.loads(resp.document) if resp.found else None), resp.token


def shard_of(stub, collection: str, value) -> str:
    resp = stub.ShardFor(router_pb2.ShardForRequest(collection=collection,
                                                    partition=json.dumps(value).encode()))
    return resp.shard_id


def ids_on_distinct_shards(stub, collection: str, n: int, prefix: str = "k") -> list[str]:
    """n ids (or partition values) owned by n different shards."""
    out: dict[str, str] = {}
    i = 0
    while len(out) < n:
        value = f"{prefix}{i}"
        out.setdefault(shard_of(stub, collection, value), value)
        i += 1
    return list(out.values())


def ids_on_one_shard(stub, collection: str, n: int, prefix: str = "k") -> list[str]:
    """n ids owned by one shard."""
    by_shard: dict[str, list[str]] = {}
    i = 0
    while True:
        value = f"{prefix}{i}"
        group = by_shard.setdefault(shard_of(stub, collection, value), [])
        group.append(value)
        if len(group) == n:
            return group
        i += 1


def expect_error(code: grpc.StatusCode, fn, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    assert info.value.code() == code, info.value.details()
    return info.value


def reason(err: grpc.RpcError) -> str:
    return dict(err.trailing_metadata() or ()).get("db4-reason", "")
