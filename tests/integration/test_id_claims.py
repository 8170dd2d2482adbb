"""A caller-chosen `$id` names one document of a collection partitioned by a field, even when
two creates of it under different partition values race (claims.py)."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from db4.v1 import router_pb2, router_pb2_grpc
from tests.integration.txn_support import create, expect_error, get, ids_on_distinct_shards


@pytest.fixture
def tenants(raw, coll_name):
    raw.CreateCollection(router_pb2.CreateCollectionRequest(name=coll_name,
                                                            partition_key="tenantId"))
    return ids_on_distinct_shards(raw, coll_name, 3, prefix="t")


def test_racing_creates_of_one_id_under_two_partition_values(cluster, raw, coll_name,
                                                            tenants):
    """200 pairs, each pair sent at once: exactly one create of each pair succeeds, the other
    is ALREADY_EXISTS (or ABORTED, retriable, when it met the winner's claim still prepared)."""
    a, b = tenants[0], tenants[1]
    pairs = 200

    async def race() -> list[list[object]]:
        async with grpc.aio.insecure_channel(cluster.address) as ch:
            stub = router_pb2_grpc.Db4Stub(ch)

            async def one(doc_id: str, tenant: str) -> object:
                doc = json.dumps({"$id": doc_id, "tenantId": tenant}).encode()
                try:
                    await stub.Create(router_pb2.CreateRequest(collection=coll_name,
                                                               document=doc))
                    return tenant
                except grpc.aio.AioRpcError as err:
                    return err.code()

            out = []
            for start in range(0, pairs, 20):
                out += await asyncio.gather(*(
                    asyncio.gather(one(f"r{i}", a), one(f"r{i}", b))
                    for i in range(start, start + 20)))
            return [list(p) for p in out]

    results = asyncio.run(race())
    for i, (ra, rb) in enumerate(results):
        wins = [r for r in (ra, rb) if isinstance(r, str)]
        assert len(wins) == 1, (i, ra, rb)
        loss = rb if ra == a else ra
        assert loss in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED), (i, loss)
        assert get(raw, coll_name, f"r{i}")[0]["tenantId"] == wins[0]
    assert cluster.doc_count(coll_name) == pairs


def test_deleted_id_can_be_taken_again_under_another_value(raw, coll_name, tenants):
    a, b = tenants[0], tenants[1]
    create(raw, coll_name, {"$id": "x", "tenantId": a})
    expect_error(grpc.StatusCode.ALREADY_EXISTS, create, raw, coll_name,
                 {"$id": "x", "tenantId": b})
    raw.Delete(router_pb2.DeleteRequest(collection=coll_name, id="x"))
    create(raw, coll_name, {"$id": "x", "tenantId": b})  # takes the claim over
    expect_error(grpc.StatusCode.ALREADY_EXISTS, create, raw, coll_name,
                 {"$id": "x", "tenantId": a})
    assert get(raw, coll_name, "x")[0]["tenantId"] == b


def test_upsert_keeps_one_document_per_id(raw, coll_name, tenants):
    a, b = tenants[0], tenants[1]

    def upsert(doc: dict) -> dict:
        resp = raw.Upsert(router_pb2.UpsertRequest(collection=coll_name,
                                                   document=json.dumps(doc).encode()))
        return json.loads(resp.document)

    assert upsert({"$id": "u", "tenantId": a, "n": 1})["$version"] == 1
    assert upsert({"$id": "u", "tenantId": a, "n": 2})["$version"] == 2
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, upsert, {"$id": "u", "tenantId": b})
    assert get(raw, coll_name, "u")[0]["n"] == 2


def test_insert_many_refuses_an_id_claimed_under_another_value(cluster, raw, coll_name,
                                                               tenants):
    a, b, c = tenants
    create(raw, coll_name, {"$id": "dup", "tenantId": a})
    changes = cluster.change_count(coll_name)
    docs = [{"$id": "m1", "tenantId": b}, {"$id": "m2", "tenantId": c},
            {"$id": "dup", "tenantId": c}]
    expect_error(grpc.StatusCode.ALREADY_EXISTS, raw.InsertMany, router_pb2.InsertManyRequest(
        collection=coll_name, documents=[json.dumps(d).encode() for d in docs]))
    assert cluster.change_count(coll_name) == changes and cluster.doc_count(coll_name) == 1
    stored = raw.InsertMany(router_pb2.InsertManyRequest(
        collection=coll_name, documents=[json.dumps(d).encode() for d in docs[:2]]))
    assert len(stored.documents) == 2
    expect_error(grpc.StatusCode.ALREADY_EXISTS, create, raw, coll_name,
                 {"$id": "m2", "tenantId": a})


def test_generated_ids_write_no_claim(cluster, raw, coll_name, tenants):
    create(raw, coll_name, {"tenantId": tenants[0]})
    assert cluster.doc_count(f"$ids:{coll_name}") == 0
    create(raw, coll_name, {"$id": "chosen", "tenantId": tenants[0]})
    assert cluster.doc_count(f"$ids:{coll_name}") == 1
