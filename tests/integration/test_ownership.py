"""A node refuses keys it does not own at its ring epoch, and the router routes around a move.

The ring change here is made by hand in etcd (one transaction: new placement, epoch + 1), as a
shard move will make it: the old node must answer FAILED_PRECONDITION with its new epoch, and the
router must follow without the client noticing.
"""

from __future__ import annotations

import asyncio

import aetcd
import grpc
import pytest

from db4.v1 import node_pb2, node_pb2_grpc
from db4client import Client
from db4core.hashing import token_for
from db4core.topology import Keys, Topology
from tests.support.cluster import Cluster
from tests.support.procs import wait_until


def node_stub(node) -> node_pb2_grpc.NodeStub:
    return node_pb2_grpc.NodeStub(grpc.insecure_channel(f"127.0.0.1:{node.port}"))


def read_topology(cluster) -> Topology:
    async def go():
        host, port = cluster.etcd.url.rsplit(":", 1)
        async with aetcd.Client("127.0.0.1", int(port)) as etcd:
            kvs = {kv.key: kv.value for kv in await etcd.get_prefix(Keys("default").topo)}
        return Topology.from_kvs(Keys("default"), kvs)

    return asyncio.run(go())


def write_topology(cluster, topo: Topology) -> None:
    async def go():
        _, port = cluster.etcd.url.rsplit(":", 1)
        async with aetcd.Client("127.0.0.1", int(port)) as etcd:
            tx = etcd.transactions
            await etcd.transaction(compare=[], success=[tx.put(k, v) for k, v in
                                                        topo.to_kvs(Keys("default")).items()],
                                   failure=[])

    asyncio.run(go())


def test_node_refuses_a_token_of_another_shard(cluster):
    topo = read_topology(cluster)
    token = token_for("some-id")
    owner = topo.shard_for_token(token)
    other = next(s for s in sorted(topo.ring.shards) if s != owner)
    node = cluster.node(topo.node_of(other))
    op = node_pb2.WriteOp(kind=node_pb2.OP_KIND_CREATE, collection="own", id="some-id",
                          token=token, body=b"{}", partition_key="$id")
    with pytest.raises(grpc.RpcError) as info:
        node_stub(node).Write(node_pb2.WriteRequest(epoch=topo.epoch, shard_id=other, ops=[op]))
    err = info.value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    trailers = dict(err.trailing_metadata())
    assert trailers["db4-reason"] == "wrong_shard"
    assert int(trailers["db4-epoch"]) == topo.epoch
    assert cluster.change_count("own") == 0


def test_node_refuses_a_shard_it_does_not_host(cluster):
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[0]
    stranger = next(n for n in cluster.nodes if n.node_id != topo.node_of(shard))
    with pytest.raises(grpc.RpcError) as info:
        node_stub(stranger).Read(node_pb2.ReadRequest(epoch=topo.epoch, shard_id=shard,
                                                      collection="own", ids=["x"]))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_router_follows_a_placement_change(tmp_path):
    # Its own cluster (the shared one must keep its placement); the context manager kills
    # exactly the processes it started.
    with Cluster(tmp_path, nodes=2, shards=2) as c, Client(c.address) as client:
        users = client.collection("moving")
        users.create({"$id": "before"})
        topo = read_topology(c)
        shard = client.shard_for("moving", "after")
        old_node = topo.node_of(shard)
        new_node = next(n.node_id for n in c.nodes if n.node_id != old_node)
        moved = Topology(topo.epoch + 1, topo.ring, {**topo.placement, shard: new_node})
        write_topology(c, moved)
        # The old node learns the new epoch from its watch and refuses the shard.
        stub = node_stub(c.node(old_node))

        def refused() -> bool:
            try:
                stub.Read(node_pb2.ReadRequest(epoch=topo.epoch, shard_id=shard,
                                               collection="moving", ids=["x"]))
            except grpc.RpcError as err:
                return dict(err.trailing_metadata()).get("db4-epoch") == str(moved.epoch)
            return False

        wait_until(refused, 10, "the old node to refuse the moved shard")
        doc = users.create({"$id": "after"})
        assert users.get("after") == doc
        status = client.admin.status()
        assert status["epoch"] == moved.epoch
        placed = {s["shard_id"]: s["node_id"] for s in status["shards"]}
        assert placed[shard] == new_node
        # The document went to the new node's file for that shard.
        assert (c.node(new_node).data_dir / "shards" / f"{shard}.db").exists()
