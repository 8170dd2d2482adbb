"""QueryShards and CountShards: one request answers several shards of a node, exactly as a
Query or Count per shard would, and refuses a shard the node does not host."""

from __future__ import annotations

import grpc
import pytest

from db4.v1 import node_pb2
from tests.integration.test_ownership import node_stub, read_topology


def test_one_request_answers_every_shard_of_a_node(cluster, client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"n": i} for i in range(200)])
    topo = read_topology(cluster)
    node = cluster.nodes[0]
    shards = topo.shards_on(node.node_id)
    assert len(shards) >= 2
    stub = node_stub(node)

    def query(shard: str) -> node_pb2.QueryRequest:
        return node_pb2.QueryRequest(epoch=topo.epoch, shard_id=shard, collection=coll_name,
                                     where=b'{"n": {"$lt": 150}}', limit=1000)

    def count(shard: str) -> node_pb2.NodeCountRequest:
        return node_pb2.NodeCountRequest(epoch=topo.epoch, shard_id=shard,
                                         collection=coll_name, where=b'{"n": {"$lt": 150}}')

    together = stub.QueryShards(node_pb2.QueryShardsRequest(queries=[query(s) for s in shards]))
    one_by_one = [stub.Query(query(s)) for s in shards]
    assert list(together.results) == one_by_one
    counts = stub.CountShards(node_pb2.CountShardsRequest(counts=[count(s) for s in shards]))
    assert list(counts.counts) == [stub.Count(count(s)).count for s in shards]
    assert sum(counts.counts) == sum(len(r.rows) for r in together.results) > 0

    elsewhere = next(s for s in sorted(topo.ring.shards) if s not in shards)
    with pytest.raises(grpc.RpcError) as err:
        stub.QueryShards(node_pb2.QueryShardsRequest(
            queries=[query(shards[0]), query(elsewhere)]))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ("db4-reason", "wrong_shard") in tuple(err.value.trailing_metadata())
