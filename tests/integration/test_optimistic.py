"""Optimistic concurrency against a real cluster: concurrent atomic increments and optimistic
read-modify-write rounds lose no update; conditional updates and compare-and-swap report both
outcomes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from db4client import CasResult, errors


def test_fifty_concurrent_increments_count_to_fifty(client, coll_name):
    counters = client.collection(coll_name)
    counters.create({"$id": "hits", "n": 0})
    with ThreadPoolExecutor(max_workers=10) as pool:
        values = list(pool.map(lambda _: counters.atomic_increment("hits", "n"), range(50)))
    assert counters.get("hits")["n"] == 50
    assert sorted(values) == list(range(1, 51))  # each saw its own step


def test_increment_adds_floats_and_starts_absent_fields_at_zero(client, coll_name):
    counters = client.collection(coll_name)
    counters.create({"$id": "c", "label": "x"})
    assert counters.atomic_increment("c", "score", 2.5) == 2.5
    assert counters.atomic_increment("c", "score", -1) == 1.5
    with pytest.raises(errors.InvalidArgumentError):
        counters.atomic_increment("c", "label", 1)  # not a number: the server says so
    with pytest.raises(errors.NotFoundError):
        counters.atomic_increment("missing", "n", 1)
    assert counters.get("c")["label"] == "x"


def test_concurrent_optimistic_increments_lose_nothing(client, coll_name):
    docs = client.collection(coll_name)
    docs.create({"$id": "ctr", "n": 0})

    def ten_increments(_: int) -> int:
        attempts = 0
        for _ in range(10):
            result = docs.update_with_optimistic_lock(
                "ctr", lambda d: {"n": d["n"] + 1}, max_retries=200, initial_backoff_ms=2)
            attempts += result.attempts
        return attempts

    with ThreadPoolExecutor(max_workers=8) as pool:
        attempts = sum(pool.map(ten_increments, range(8)))
    doc = docs.get("ctr")
    assert doc["n"] == 80 and doc["$version"] == 81
    assert attempts >= 80


def test_optimistic_lock_on_a_missing_document(client, coll_name):
    with pytest.raises(errors.NotFoundError):
        client.collection(coll_name).update_with_optimistic_lock("nope", lambda d: {"n": 1})


def test_conditional_update_both_outcomes(client, coll_name):
    jobs = client.collection(coll_name)
    jobs.create({"$id": "j1", "state": "queued", "tries": 0})
    taken = jobs.conditional_update("j1", {"state": "queued"}, {"state": "running"})
    assert taken["state"] == "running" and taken["$version"] == 2
    assert jobs.conditional_update("j1", {"state": "queued"}, {"state": "running"}) is None
    assert jobs.conditional_update("ghost", {"state": "queued"}, {"state": "x"}) is None
    assert jobs.get("j1")["$version"] == 2  # the failed condition wrote nothing


def test_compare_and_swap_both_outcomes(client, coll_name):
    locks = client.collection(coll_name)
    locks.create({"$id": "lock", "owner": None, "epoch": 1})
    won = locks.compare_and_swap("lock", "owner", None, "w1")
    assert won.swapped and won.doc["owner"] == "w1"
    lost = locks.compare_and_swap("lock", "owner", None, "w2")
    assert lost == CasResult(False, locks.get("lock")) and lost.doc["owner"] == "w1"
    assert locks.compare_and_swap("gone", "owner", None, "w3") == CasResult(False, None)


def test_async_optimistic_methods(cluster, coll_name):
    import asyncio

    from db4client import AsyncClient

    async def main():
        async with AsyncClient(cluster.address) as client:
            docs = client.collection(coll_name)
            await docs.create({"$id": "a", "n": 0, "v": "x"})
            await asyncio.gather(*(docs.atomic_increment("a", "n") for _ in range(20)))
            assert (await docs.get("a"))["n"] == 20
            r = await docs.update_with_optimistic_lock("a", lambda d: {"n": d["n"] * 2})
            assert r.document["n"] == 40 and r.attempts == 1
            assert (await docs.compare_and_swap("a", "v", "x", "y")).swapped
            assert await docs.conditional_update("a", {"v": "x"}, {"v": "z"}) is None

    asyncio.run(main())
