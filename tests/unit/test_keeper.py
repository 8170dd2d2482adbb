"""A shard that gave token ranges away (a split or move committed) while it deletes their rows:
queries and counts keep to the ranges it owns at once, without waiting for the deletes, and a
read at an epoch older than the change is refused (db4node/keeper.py, queries.keep_to)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from db4core.errors import WrongShardError
from db4core.hashing import token_for
from db4core.ring import TOKEN_MAX, Ring
from db4core.topology import Topology
from db4node import queries
from db4node.keeper import RangeKeeper
from db4node.shard import Op
from db4node.store import ShardStore

COLL = "users"
TENANTS = [f"t{i}" for i in range(60)]
HALF = 1 << 63


def whole(epoch: int) -> Topology:
    return Topology(epoch, Ring((TOKEN_MAX,), ("s0",)), {"s0": "n1"})


def lower_half(epoch: int) -> Topology:
    """s0 keeps tokens below 2^63; s1 (elsewhere) takes the rest."""
    return Topology(epoch, Ring((HALF - 1, TOKEN_MAX), ("s0", "s1")), {"s0": "n1", "s1": "n2"})


def seed(worker) -> int:
    """One document per tenant on the shard; how many have tokens below 2^63 (what s0 keeps
    in lower_half)."""
    worker.shard.write([Op("create", COLL, f"{t}-a", token_for(t),
                           json.dumps({"tenant": t}).encode(), None, "tenant")
                        for t in TENANTS])
    return sum(token_for(t) < HALF for t in TENANTS)


@contextlib.asynccontextmanager
async def seeded(tmp_path) -> AsyncIterator[tuple]:
    """(worker, keeper, kept): shard s0 with one document per tenant (`seed`), its keeper at
    epoch 1, where s0 owns every token; the store closed afterwards."""
    store = ShardStore(str(tmp_path))
    try:
        worker = store.get("s0")
        kept = seed(worker)
        keeper = RangeKeeper(store, "n1")
        keeper.adopt(whole(1))
        await keeper._task
        yield worker, keeper, kept
    finally:
        store.close()


def test_queries_keep_to_the_owned_ranges_while_the_cleanup_runs(tmp_path):
    async def run() -> None:
        async with seeded(tmp_path) as (worker, keeper, kept):
            assert 0 < kept < len(TENANTS)
            assert keeper.scope("s0", 1) is None  # nothing given away: no filter
            keeper.adopt(lower_half(2))  # the cleanup starts in the background
            only = keeper.scope("s0", 2)
            assert only == [(0, HALF - 1)]
            conn = worker.shard.conn
            assert queries.count(conn, COLL, None, only) == kept
            assert queries.count(conn, COLL, None) == len(TENANTS)  # not deleted yet
            page = queries.find(conn, COLL, None, [("$id", "asc")], 1000, only=only)
            assert len(page.rows) == kept
            merged = queries.find_merged([conn], COLL, None, [("$id", "asc")], 1000, only=[only])
            assert merged.rows == page.rows
            assert queries.count_each([conn], COLL, {"tenant": "t1"}, [only]) == \
                [int(token_for("t1") < HALF)]
            with pytest.raises(WrongShardError):  # a read planned on the old ring
                keeper.scope("s0", 1)
            gate = asyncio.ensure_future(keeper.gate("s0", 2))
            await asyncio.sleep(0)
            assert not gate.done()  # search statistics wait for the deletes
            await asyncio.wait_for(gate, 10)
            assert keeper.scope("s0", 2) is None
            assert queries.count(conn, COLL, None) == kept

    asyncio.run(run())


def test_a_shard_that_owns_nothing_keeps_to_no_rows(tmp_path):
    store = ShardStore(str(tmp_path))
    try:
        conn = store.get("s0").shard.conn
        conn.execute("INSERT INTO docs(collection, id, token, version, body) "
                     "VALUES ('users', 'x', 0, 1, '{}')")
        assert queries.count(conn, COLL, None, []) == 0
        assert queries.count(conn, COLL, None, None) == 1
    finally:
        store.close()


def test_shard_stats_count_the_owned_ranges_while_the_cleanup_runs(tmp_path):
    """Statistics read after a split committed count what the shard owns, not the rows it gave
    away and has not deleted yet (db4 status, the documents of each shard)."""
    async def run() -> None:
        async with seeded(tmp_path) as (worker, keeper, kept):
            keeper.adopt(lower_half(2))
            assert worker.shard.stats(keeper.scope("s0", 2))["documents"] == kept
            assert worker.shard.stats()["documents"] == len(TENANTS)  # not deleted yet
            assert worker.shard.stats(keeper.scope("s0", 2))["collections"] == {COLL: kept}
            await keeper._task
            assert worker.shard.stats(keeper.scope("s0", 2))["documents"] == kept

    asyncio.run(run())


def test_a_read_whose_shard_gave_tokens_away_meanwhile_is_refused_after_it_ran(tmp_path):
    """The node checks a read's epoch before the read; it may adopt a new ring and commit its
    cleanup before the read opens its snapshot. The read then answers too few rows for its
    epoch, so the node checks again once the read ran (Membership.recheck) and answers
    wrong_shard: the router reads again over the new ring."""
    from db4node.membership import Membership

    async def run() -> None:
        async with seeded(tmp_path) as (worker, keeper, kept):
            membership = Membership.__new__(Membership)
            membership.epoch_check = keeper.check_epoch
            only = keeper.scope("s0", 1)  # a read at epoch 1 passes its check...
            assert only is None
            keeper.adopt(lower_half(2))  # ...then the split commits and the cleanup runs
            await keeper._task
            answer = queries.count(worker.shard.conn, COLL, None, only)
            assert answer == kept < len(TENANTS)  # too few for epoch 1, where s0 has them all
            with pytest.raises(WrongShardError, match="older"):
                membership.recheck([("s0", 1)])
            membership.recheck([("s0", 2), ("s0", 0)])  # the new epoch, or internal: fine

    asyncio.run(run())
