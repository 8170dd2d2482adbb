"""Point operations through a real router and real nodes."""

from __future__ import annotations

import time

import pytest

from db4client import errors


def test_create_sets_system_fields(client, coll_name):
    before = int(time.time() * 1000)
    doc = client.collection(coll_name).create({"$type": "User", "name": "Alice"})
    after = int(time.time() * 1000)
    assert doc["$type"] == "User" and doc["name"] == "Alice"
    assert doc["$version"] == 1
    assert before <= doc["$createdAt"] == doc["$updatedAt"] <= after
    assert isinstance(doc["$id"], str) and len(doc["$id"]) == 26


def test_generated_ids_are_unique_and_time_sortable(client, coll_name):
    users = client.collection(coll_name)
    ids = []
    for i in range(40):
        ids.append(users.create({"n": i})["$id"])
        if i % 10 == 9:
            time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_get_round_trips_and_missing_is_none(client, coll_name):
    users = client.collection(coll_name)
    doc = users.create({"$id": "u1", "nested": {"a": [1, 2.5, "x", None, True]}, "big": 2**60})
    assert users.get("u1") == doc
    assert users.get("nope") is None


def test_update_merges_removes_and_bumps_version(client, coll_name):
    users = client.collection(coll_name)
    d = users.create({"$id": "u1", "a": 1, "b": 2})
    time.sleep(0.002)
    u = users.update("u1", {"b": None, "c": 3})
    assert u["a"] == 1 and "b" not in u and u["c"] == 3
    assert u["$version"] == 2
    assert u["$createdAt"] == d["$createdAt"] and u["$updatedAt"] > d["$updatedAt"]
    assert users.get("u1") == u


def test_replace_and_upsert(client, coll_name):
    users = client.collection(coll_name)
    users.create({"$id": "u1", "a": 1})
    r = users.replace("u1", {"z": 9})
    assert r["$version"] == 2 and "a" not in r and r["z"] == 9
    up = users.upsert({"$id": "u2", "x": 1})
    assert up["$version"] == 1
    up2 = users.upsert({"$id": "u2", "x": 2})
    assert up2["$version"] == 2 and up2["x"] == 2


def test_delete(client, coll_name):
    users = client.collection(coll_name)
    users.create({"$id": "u1"})
    assert users.delete("u1") is True
    assert users.get("u1") is None
    assert users.delete("u1") is False


def test_expected_version(client, coll_name):
    users = client.collection(coll_name)
    users.create({"$id": "u1", "n": 0})
    assert users.update("u1", {"n": 1}, expected_version=1)["$version"] == 2
    with pytest.raises(errors.ConflictError) as info:
        users.update("u1", {"n": 2}, expected_version=1)
    assert info.value.expected_version == 1 and info.value.actual_version == 2
    assert info.value.retriable
    with pytest.raises(errors.ConflictError):
        users.delete("u1", expected_version=7)
    assert users.get("u1")["n"] == 1


def test_partitioned_collection(client, coll_name):
    client.create_collection(coll_name, partition_key="tenantId")
    client.create_collection(coll_name, partition_key="tenantId")  # idempotent
    orders = client.collection(coll_name)
    docs = [orders.create({"tenantId": "acme", "n": i}) for i in range(5)]
    shard = client.shard_for(coll_name, "acme")
    assert all(client.shard_for(coll_name, "acme") == shard for _ in docs)
    first = docs[0]["$id"]
    assert orders.get(first, partition="acme") == docs[0]
    assert orders.get(first) == docs[0]  # looked up on every shard
    assert orders.update(first, {"n": 99})["n"] == 99
    assert orders.update(first, {"n": 100}, partition="acme")["$version"] == 3
    assert orders.delete(first) is True
    assert orders.get(first, partition="acme") is None


def test_a_partition_value_is_a_boundary_in_a_collection_partitioned_by_id(client, coll_name):
    """In a collection partitioned by `$id`, a document's partition value is its id: naming
    another value finds nothing, and no write goes through."""
    coll = client.collection(coll_name)
    doc = coll.create({"$id": "m1", "n": 1})
    assert coll.get("m1", partition="m1") == doc
    assert coll.get("m1", partition="other") is None
    with pytest.raises(errors.NotFoundError):
        coll.update("m1", {"n": 2}, partition="other")
    with pytest.raises(errors.NotFoundError):
        coll.replace("m1", {"n": 3}, partition="other")
    with pytest.raises(errors.NotFoundError):
        coll.atomic_increment("m1", "n", partition="other")
    assert coll.delete("m1", partition="other") is False
    assert coll.get("m1") == doc  # untouched
    assert coll.update("m1", {"n": 5}, partition="m1")["n"] == 5
    assert coll.delete("m1", partition="m1") is True


def test_same_tenant_shares_a_shard_across_collections(client, coll_name):
    a, b = f"{coll_name}a", f"{coll_name}b"
    client.create_collection(a, partition_key="tenantId")
    client.create_collection(b, partition_key="tenantId")
    assert client.shard_for(a, "globex") == client.shard_for(b, "globex")


def test_partition_key_change_refused_when_documents_exist(client, coll_name):
    client.collection(coll_name).create({"tenantId": "t"})
    with pytest.raises(errors.Db4Error) as info:
        client.create_collection(coll_name, partition_key="tenantId")
    assert info.value.code == "FAILED_PRECONDITION"


def test_partition_key_value_cannot_change(client, coll_name, cluster):
    client.create_collection(coll_name, partition_key="tenantId")
    orders = client.collection(coll_name)
    d = orders.create({"tenantId": "acme"})
    with pytest.raises(errors.InvalidArgumentError):
        orders.update(d["$id"], {"tenantId": "other"}, partition="acme")
    assert orders.get(d["$id"], partition="acme")["tenantId"] == "acme"


def test_documents_spread_over_every_shard(client, coll_name, cluster):
    users = client.collection(coll_name)
    for i in range(200):
        users.create({"$id": f"u{i}"})
    status = client.admin.status(with_stats=True)
    assert len(status["shards"]) == 8
    assert all(s["documents"] > 0 for s in status["shards"])
    assert cluster.doc_count(coll_name) == 200


def test_id_is_unique_across_partitions(client, coll_name):
    client.create_collection(coll_name, partition_key="tenantId")
    orders = client.collection(coll_name)
    tenants = [f"t{i}" for i in range(40)]
    first = orders.create({"$id": "shared", "tenantId": tenants[0]})
    home = client.shard_for(coll_name, tenants[0])
    other = next(t for t in tenants if client.shard_for(coll_name, t) != home)
    with pytest.raises(errors.AlreadyExistsError):
        orders.create({"$id": "shared", "tenantId": other})
    with pytest.raises(errors.InvalidArgumentError):
        orders.upsert({"$id": "shared", "tenantId": other})
    assert orders.upsert({"$id": "shared", "tenantId": tenants[0], "v": 2})["$version"] == 2
    assert orders.get("shared")["$createdAt"] == first["$createdAt"]
    assert orders.count() == 1
