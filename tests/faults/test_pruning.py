"""A query whose where pins the partition key asks only the shards owning the pinned values:
with every other node stopped, it still answers (and a query that must scatter does not). So
does a range query whose two ends share their value of the partition key (an index's first
field)."""

from __future__ import annotations

import pytest

from db4client import Client, errors


def test_a_pinned_query_asks_only_its_shards(fresh_cluster):
    with Client(fresh_cluster.address, timeout=10) as client:
        client.create_collection("orders", partition_key="tenant")
        orders = client.collection("orders")
        tenants = [f"t{i}" for i in range(40)]
        orders.insert_many([{"tenant": t, "n": n} for t in tenants for n in range(5)])
        client.create_index("by_tenant_n", "orders", [("tenant", "asc"), ("n", "asc")])
        on_n1 = [t for t in tenants if client.shard_info("orders", t)["node_id"] == "n1"]
        assert len(on_n1) >= 2, "too few tenants on n1 to test with"
        a, b = on_n1[:2]
        for node in fresh_cluster.nodes:
            if node.node_id != "n1":
                node.stop(graceful=False)

        page = orders.find(where={"tenant": a}, sort=[("n", "asc")])
        assert [(d["tenant"], d["n"]) for d in page.items] == [(a, n) for n in range(5)]
        assert orders.count(where={"tenant": {"$in": [a, b]}, "n": {"$gte": 3}}) == 4
        either = {"$or": [{"tenant": a}, {"tenant": b, "n": 0}]}
        assert sorted((d["tenant"], d["n"]) for d in orders.iterate(where=either)) == sorted(
            [(a, n) for n in range(5)] + [(b, 0)])
        assert orders.find(where={"tenant": {"$in": []}}).items == []
        # a range whose two ends share the partition key value (the index's first field)
        ranged = client.query_range("by_tenant_n", start=([a, 1], True), end=([a], True))
        assert [(d["tenant"], d["n"]) for d in ranged.items] == [(a, n) for n in range(1, 5)]
        assert [d["n"] for d in client.iterate_range("by_tenant_n", start=([a], True),
                                                     end=([a, 2], False))] == [0, 1]

        # a where that pins nothing must ask every shard, and two nodes are down
        with pytest.raises(errors.UnavailableError):
            orders.count(where={"n": 1})
        with pytest.raises(errors.UnavailableError):
            orders.find(where={"$or": [{"tenant": a}, {"n": 1}]})
        with pytest.raises(errors.UnavailableError):
            client.query_range("by_tenant_n", start=([a], True), end=([b], True))
