"""A router's view of etcd can lag another router's create_collection (its watch has not fired
yet). `Collections.get`/`current` read etcd on a miss, so whoever calls them obeys the options
that won, never the defaults of a late view."""

from __future__ import annotations

import asyncio

import aetcd

from db4core.config import parse_endpoint
from db4core.topology import Keys
from db4router.collections import Collections
from db4router.topology import ClusterView


async def fresh_lookups(etcd_url: str, name: str, missing: str):
    host, port = parse_endpoint(etcd_url)
    etcd = aetcd.Client(host, port, timeout=5)
    try:
        collections = Collections(ClusterView(etcd, Keys("default")))  # never refreshed: late
        assert collections.lookup(name).partition_key == "$id"  # what a late view believes
        return (await collections.get(name), await collections.current(name),
                await collections.get(missing), await collections.current(missing))
    finally:
        await etcd.close()


def test_a_late_view_reads_options_from_etcd(client, cluster, coll_name):
    client.create_collection(coll_name, partition_key="tenant")  # through the cluster's router
    got, current, absent, default = asyncio.run(
        fresh_lookups(cluster.etcd.url, coll_name, f"{coll_name}none"))
    assert got is not None and got.partition_key == "tenant"
    assert current.partition_key == "tenant"
    assert absent is None and default.partition_key == "$id"
