"""`Client(direct=True)` with real processes: point reads and writes reach the owning node
without the router (they keep working while the router is down), the rest goes through the
router, and a ring that moved under the client (a split) sends the call to the router once and
the client reads the ring again."""

from __future__ import annotations

import asyncio
import threading

import pytest

from db4client import AsyncClient, Client, errors


def test_point_operations_go_straight_to_the_nodes(small_cluster):
    with Client(small_cluster.address, direct=True, timeout=10) as client:
        client.create_collection("people")
        client.create_collection("orders", partition_key="tenant")
        people, orders = client.collection("people"), client.collection("orders")
        for i in range(20):
            people.create({"$id": f"p{i}", "n": i})
            orders.create({"tenant": f"t{i % 3}", "n": i})  # generated id: no claim
        routes = client._routes
        assert routes is not None and routes.sent == 40 and routes.fell_back == 0
        mine = orders.find({"n": 4}).items[0]  # a query: through the router
        small_cluster.router.stop(graceful=False)
        # The router is gone: what can be placed alone still works.
        assert people.get("p3")["n"] == 3
        assert people.update("p3", {"m": 1})["$version"] == 2
        assert people.replace("p4", {"n": 40})["n"] == 40
        assert people.upsert({"$id": "p99", "n": 99})["$version"] == 1
        assert people.delete("p5") and not people.delete("p5")
        assert people.get("p5") is None
        assert orders.get(mine["$id"], partition=mine["tenant"])["n"] == 4
        with pytest.raises(errors.ConflictError):
            people.update("p3", {"m": 2}, expected_version=1)
        with pytest.raises(errors.AlreadyExistsError):
            people.create({"$id": "p6"})
        with pytest.raises(errors.NotFoundError):
            people.update("nobody", {"m": 1})
        assert routes.fell_back == 0
        # What needs the router fails as a routed client does without one.
        with pytest.raises(errors.UnavailableError):
            orders.get(mine["$id"])  # no partition value: a lookup on every shard


def test_a_split_under_a_direct_client_falls_back_once_and_reads_the_ring_again(small_cluster):
    with Client(small_cluster.address, direct=True, timeout=30) as client:
        coll = client.collection("moving")
        docs = [{"$id": f"m{i:03d}", "n": i} for i in range(200)]
        coll.insert_many(docs)
        assert coll.get("m000")["n"] == 0  # the ring is read now
        routes = client._routes
        assert routes is not None and routes.topology is not None
        epoch = routes.topology.epoch
        shard = client.admin.status()["shards"][0]["shard_id"]
        # Threads share the client through the split: every read answers, none errs.
        stop, failures, reads = threading.Event(), [], [0]

        def reader(k: int) -> None:
            while not stop.is_set():
                for d in docs[k::4]:
                    try:
                        assert coll.get(d["$id"])["n"] == d["n"]
                        reads[0] += 1
                    except Exception as err:  # noqa: BLE001 - collected, asserted below
                        failures.append(repr(err))

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            op = client.admin.split_shard(shard)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert op["state"] == "done", op
        assert failures == [] and reads[0] > 0
        # Every document still reads and writes, moved or not, with no error.
        for d in docs:
            assert coll.update(d["$id"], {"n": d["n"] + 1})["n"] == d["n"] + 1
        assert routes.topology is not None and routes.topology.epoch > epoch
        assert routes.fell_back >= 1  # the stale ring sent a moved key to the router once
        fell_back = routes.fell_back
        for d in docs:
            assert coll.get(d["$id"])["n"] == d["n"] + 1
        assert routes.fell_back == fell_back  # the new ring places them all


def test_async_direct_client(small_cluster):
    async def run() -> None:
        async with AsyncClient(small_cluster.address, direct=True) as client:
            await client.create_collection("aio")
            coll = client.collection("aio")
            assert (await coll.create({"$id": "a", "n": 1}))["$version"] == 1
            assert (await coll.get("a"))["n"] == 1
            assert (await coll.update("a", {"n": 2}))["$version"] == 2
            assert await coll.delete("a")
            assert await coll.get("a") is None
            with pytest.raises(errors.NotFoundError):
                await coll.update("a", {"n": 3})
            routes = client._routes
            assert routes is not None and routes.sent == 6 and routes.fell_back == 0

    asyncio.run(run())
