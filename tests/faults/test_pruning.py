"""A query whose where pins the partition key asks only the shards owning the pinned values:
with every other node stopped, it still answers (and a query that must scatter does not)."""

from __future__ import annotations

import pytest

from db4client import Client, errors


def test_a_pinned_query_asks_only_its_shards(fresh_cluster):
    with Client(fresh_cluster.address, timeout=10) as client:
        client.create_collection("orders", partition_key="tenant")
        orders = client.collection("orders")
        tenants = [f"t{i}" for i in range(40)]
        orders.insert_many([{"tenant": t, "n": n} for t in tenants for n in range(5)])
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

        # a where that pins nothing must ask every shard, and two nodes are down
        with pytest.raises(errors.UnavailableError):
            orders.count(where={"n": 1})
        with pytest.raises(errors.UnavailableError):
            orders.find(where={"$or": [{"tenant": a}, {"n": 1}]})
