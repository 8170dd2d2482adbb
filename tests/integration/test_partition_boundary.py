"""A partition value is a boundary, even between two values that hash onto the same shard.

Tenant "acme" stores a document; an attacker knows its id and names a partition value of their
own that lives on acme's shard (found by brute force through the router's ShardFor). Every point
and batch operation with the wrong value must read, change and delete nothing.
"""

from __future__ import annotations

import grpc
import pytest

from db4.v1 import node_pb2, node_pb2_grpc
from db4client import errors
from db4core.errors import OP_INDEX_KEY
from tests.support.procs import HOST

SECRET = {"$id": "doc-1", "tenant": "acme", "secret": "acme-only"}


def colliding_value(client, collection: str, value: str, prefix: str = "evil") -> str:
    """A partition value other than `value` that the ring places on `value`'s shard."""
    shard = client.shard_for(collection, value)
    for i in range(1000):  # 8 shards: a hit every ~8 tries; 1000 misses cannot happen
        candidate = f"{prefix}{i}"
        if client.shard_for(collection, candidate) == shard:
            return candidate
    raise AssertionError(f"no value among 1000 shares shard {shard} with {value!r}")


@pytest.fixture
def tenants(client, cluster, coll_name):
    """(collection, acme's stored document, a colliding wrong value)."""
    client.create_collection(coll_name, partition_key="tenant")
    users = client.collection(coll_name)
    doc = users.create(dict(SECRET))
    evil = colliding_value(client, coll_name, "acme")
    assert client.shard_info(coll_name, evil)["token"] != client.shard_info(coll_name, "acme")[
        "token"]
    yield users, doc, evil
    # Whatever the test tried, acme's document is exactly as stored and was never rewritten.
    assert users.get("doc-1", partition="acme") == doc
    assert cluster.change_count(coll_name) == 1
    assert cluster.doc_count(coll_name) == 1


def test_colliding_values_share_a_shard(client, coll_name):
    client.create_collection(coll_name, partition_key="tenant")
    evil = colliding_value(client, coll_name, "acme")
    assert evil != "acme"
    assert client.shard_for(coll_name, evil) == client.shard_for(coll_name, "acme")


def test_get_with_the_wrong_partition_reads_nothing(tenants):
    users, doc, evil = tenants
    assert users.get("doc-1", partition=evil) is None
    assert users.get("doc-1", partition="acme") == doc
    assert users.get("doc-1") == doc  # without partition= the router looks the id up


def test_delete_with_the_wrong_partition_deletes_nothing(tenants):
    users, _, evil = tenants
    assert users.delete("doc-1", partition=evil) is False
    with pytest.raises(errors.NotFoundError):
        users.delete("doc-1", expected_version=1, partition=evil)


def test_update_with_the_wrong_partition_changes_nothing(tenants):
    users, _, evil = tenants
    with pytest.raises(errors.NotFoundError):
        users.update("doc-1", {"secret": "stolen"}, partition=evil)
    with pytest.raises(errors.NotFoundError):  # not a ConflictError that would give a version
        users.update("doc-1", {"secret": "stolen"}, expected_version=9, partition=evil)


def test_replace_with_the_wrong_partition_changes_nothing(tenants):
    users, _, evil = tenants
    for body in ({"tenant": evil, "secret": "stolen"}, {"tenant": "acme", "secret": "stolen"}):
        with pytest.raises(errors.NotFoundError):
            users.replace("doc-1", body, partition=evil)


def test_no_write_changes_the_partition_value(tenants):
    users, _, evil = tenants
    with pytest.raises(errors.InvalidArgumentError, match="partition key"):
        users.update("doc-1", {"tenant": evil})
    with pytest.raises(errors.InvalidArgumentError, match="partition key"):
        users.update("doc-1", {"tenant": evil}, partition="acme")
    with pytest.raises(errors.InvalidArgumentError, match="partition key"):
        users.replace("doc-1", {"tenant": evil}, partition="acme")
    with pytest.raises(errors.InvalidArgumentError, match="partition key"):
        users.upsert({"$id": "doc-1", "tenant": evil, "secret": "stolen"})


def test_replace_without_partition_cannot_move_the_document(tenants):
    # The router routes this by the new body's value, where the node finds nothing; the router
    # then finds the document under its own value and says why the replace cannot be.
    users, _, evil = tenants
    with pytest.raises(errors.InvalidArgumentError, match="partition key value cannot change"):
        users.replace("doc-1", {"tenant": evil, "secret": "moved"})
    with pytest.raises(errors.NotFoundError):
        users.replace("no-such-doc", {"tenant": evil})


def test_create_of_the_id_under_another_partition_is_refused(tenants):
    users, _, evil = tenants
    with pytest.raises(errors.AlreadyExistsError) as err:
        users.create({"$id": "doc-1", "tenant": evil})
    assert "acme" not in str(err.value)
    with pytest.raises(errors.AlreadyExistsError):
        users.insert_many([{"$id": "other", "tenant": evil}, {"$id": "doc-1", "tenant": evil}])


# ---- the node itself, without the router's checks in front ----------------------------------


def node_stub(client, cluster, collection: str, value: str):
    """(stub of the node owning value, ReadRequest/WriteRequest header fields, token)."""
    info = client.shard_info(collection, value)
    channel = grpc.insecure_channel(f"{HOST}:{cluster.node(info['node_id']).port}")
    header = {"epoch": info["epoch"], "shard_id": info["shard_id"]}
    return channel, node_pb2_grpc.NodeStub(channel), header, info["token"]


def wire_op(kind: int, collection: str, token: int, body: bytes = b"") -> node_pb2.WriteOp:
    return node_pb2.WriteOp(kind=kind, collection=collection, id="doc-1", token=token, body=body,
                            partition_key="tenant")


def test_node_refuses_every_wrong_token_op(client, cluster, tenants):
    users, _, evil = tenants
    channel, stub, header, token = node_stub(client, cluster, users.name, evil)
    with channel:
        deleted = stub.Write(node_pb2.WriteRequest(
            ops=[wire_op(node_pb2.OP_KIND_DELETE, users.name, token)], **header), timeout=10)
        assert deleted.results[0].found is False
        for kind in (node_pb2.OP_KIND_UPDATE, node_pb2.OP_KIND_REPLACE):
            body = b'{"tenant": "%s", "secret": "stolen"}' % evil.encode()
            with pytest.raises(grpc.RpcError) as err:
                stub.Write(node_pb2.WriteRequest(
                    ops=[wire_op(kind, users.name, token, body)], **header), timeout=10)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_node_write_error_names_the_failing_op(client, cluster, tenants):
    users, _, _ = tenants
    channel, stub, header, token = node_stub(client, cluster, users.name, "acme")
    ops = [wire_op(node_pb2.OP_KIND_UPDATE, users.name, token, b'{"a": 1}'),
           wire_op(node_pb2.OP_KIND_UPDATE, users.name, token, b'{"b": 2}'),
           wire_op(node_pb2.OP_KIND_CREATE, users.name, token, b'{"tenant": "acme"}')]
    with channel, pytest.raises(grpc.RpcError) as err:
        stub.Write(node_pb2.WriteRequest(ops=ops, **header), timeout=10)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (OP_INDEX_KEY, "2") in tuple(err.value.trailing_metadata())
