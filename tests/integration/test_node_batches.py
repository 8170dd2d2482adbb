"""QueryShards and CountShards: one request answers several shards of a node, exactly as a
Query or Count per shard would, and refuses a shard the node does not host."""

from __future__ import annotations

import json

import grpc
import pytest

from db4.v1 import node_pb2, router_pb2
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


def _merged_request(topo, shards, coll_name, **fields) -> node_pb2.QueryShardsRequest:
    return node_pb2.QueryShardsRequest(queries=[node_pb2.QueryRequest(
        epoch=topo.epoch, shard_id=s, collection=coll_name, **fields) for s in shards])


def test_query_merged_answers_the_merge_of_its_shards_pages(cluster, client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"n": i, "v": (i * 7) % 50} for i in range(300)])
    topo = read_topology(cluster)
    node = cluster.nodes[0]
    shards = topo.shards_on(node.node_id)
    assert len(shards) >= 2
    stub = node_stub(node)
    sort = [router_pb2.SortField(path="v", descending=True)]
    where = b'{"n": {"$lt": 250}}'

    def one_shard(shard: str, **extra) -> list[tuple[bytes, bytes]]:
        page = stub.Query(node_pb2.QueryRequest(epoch=topo.epoch, shard_id=shard,
                                                collection=coll_name, where=where, sort=sort,
                                                limit=1000, **extra))
        assert not page.has_more
        return [(r.position, r.document) for r in page.rows]

    # Every matching row of the node's shards, in the merged order (v descending, then id).
    everything = sorted((row for s in shards for row in one_shard(s)),
                        key=lambda r: (-json.loads(r[0])[0][1], json.loads(r[0])[-1]))
    assert len(everything) > 30

    pages, after = [], b""
    while True:
        page = stub.QueryMerged(_merged_request(topo, shards, coll_name, where=where, sort=sort,
                                                limit=7, after=after))
        pages.extend((r.position, r.document) for r in page.rows)
        if not page.has_more:
            break
        assert len(page.rows) == 7
        after = page.rows[-1].position
    assert pages == everything

    whole = stub.QueryMerged(_merged_request(topo, shards, coll_name, where=where, sort=sort,
                                             limit=len(everything)))
    assert not whole.has_more and len(whole.rows) == len(everything)


def test_query_merged_refuses_what_it_cannot_merge(cluster, client, coll_name):
    client.collection(coll_name).create({"n": 1})
    topo = read_topology(cluster)
    node = cluster.nodes[0]
    shards = topo.shards_on(node.node_id)
    stub = node_stub(node)
    elsewhere = next(s for s in sorted(topo.ring.shards) if s not in shards)

    with pytest.raises(grpc.RpcError) as err:
        stub.QueryMerged(_merged_request(topo, [shards[0], elsewhere], coll_name, limit=5))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    different = _merged_request(topo, shards[:2], coll_name, limit=5)
    different.queries[1].limit = 6
    with pytest.raises(grpc.RpcError) as err:
        stub.QueryMerged(different)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "differ only in their shard" in err.value.details()

    with pytest.raises(grpc.RpcError) as err:
        stub.QueryMerged(_merged_request(topo, [shards[0], shards[0]], coll_name, limit=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than once" in err.value.details()

    with pytest.raises(grpc.RpcError) as err:
        stub.QueryMerged(node_pb2.QueryShardsRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
