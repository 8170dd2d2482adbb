"""Tailing a shard's change log without sockets: a real shard file and its worker threads, the
tail generator driven by hand (records, push on commit, heartbeat, truncation, corruption), and
the consumers' checkpoints."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from db4core.errors import DataLossError, InvalidArgumentError, OutOfRangeError
from db4core.hashing import token_for
from db4node import tail
from db4node.checkpoint import checkpoints
from db4node.shard import Op, Shard
from db4node.worker import ShardWorker


def create(doc_id: str, **fields) -> Op:
    return Op("create", "c", doc_id, token_for(doc_id), json.dumps(fields).encode(), None, "$id")


@pytest.fixture
def worker(tmp_path):
    w = ShardWorker(Shard("s1", str(tmp_path / "s1.db")))
    try:
        yield w
    finally:
        w.close()


async def write(worker: ShardWorker, *ids: str) -> None:
    await worker.write(lambda s: s.write([create(i, a=1) for i in ids]), None, "write")


def test_tail_sends_the_log_then_each_commit_pushed_then_heartbeats(worker):
    async def go():
        await write(worker, "a", "b")
        gen = tail.batches(worker, 0, 500, heartbeat_s=0.3)
        first = await anext(gen)
        assert [c.lsn for c in first.records] == [1, 2] and first.last_lsn == 2
        waiting = asyncio.ensure_future(anext(gen))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        started = time.monotonic()
        await write(worker, "c")
        pushed = await waiting
        assert [c.id for c in pushed.records] == ["c"]
        assert time.monotonic() - started < 0.2  # pushed by the commit, not the heartbeat
        idle = time.monotonic()
        beat = await anext(gen)
        assert beat.records == [] and beat.last_lsn == 3
        assert 0.25 < time.monotonic() - idle < 1.0
        await gen.aclose()

    asyncio.run(go())


def test_a_cancelled_writer_still_wakes_the_tail(worker):
    async def go():
        gen = tail.batches(worker, 0, 500, heartbeat_s=5)
        waiting = asyncio.ensure_future(anext(gen))
        await asyncio.sleep(0.05)

        def slow(shard):
            time.sleep(0.2)
            return shard.write([create("x", a=1)])

        caller = asyncio.ensure_future(worker.write(slow, None, "write"))
        await asyncio.sleep(0.05)
        caller.cancel()  # the caller goes; the commit happens anyway
        batch = await asyncio.wait_for(waiting, 2)
        assert [c.id for c in batch.records] == ["x"]
        await gen.aclose()

    asyncio.run(go())


def test_batches_hold_max_records(worker):
    async def go():
        await write(worker, *[f"d{i}" for i in range(7)])
        gen = tail.batches(worker, 0, 3, heartbeat_s=1)
        sizes = [len((await anext(gen)).records) for _ in range(3)]
        assert sizes == [3, 3, 1]
        await gen.aclose()

    asyncio.run(go())


def test_truncation_under_a_tail_is_out_of_range(worker):
    async def go():
        await write(worker, "a", "b", "c")
        await worker.write(lambda s: s.truncate(2), None, "truncate")
        gen = tail.batches(worker, 1, 500, heartbeat_s=1)
        with pytest.raises(OutOfRangeError, match="oldest change-log record kept is LSN 3"):
            await anext(gen)

    asyncio.run(go())


def test_a_corrupt_record_ends_the_tail_after_the_good_ones(worker):
    async def go():
        await write(worker, "a", "b", "c")
        await worker.write(lambda s: s.conn.execute(
            "UPDATE changes SET after = replace(after, '\"a\":1', '\"a\":2') WHERE lsn = 2"),
            None, "tamper")
        gen = tail.batches(worker, 0, 500, heartbeat_s=1)
        assert [c.lsn for c in (await anext(gen)).records] == [1]
        with pytest.raises(DataLossError, match="record 2 of shard s1"):
            await anext(gen)

    asyncio.run(go())


def test_limits_default_and_refuse_huge_batches():
    assert tail.limits(0, 0) == (500, 1.0)
    assert tail.limits(20, 250) == (20, 0.25)
    with pytest.raises(InvalidArgumentError, match="max_records"):
        tail.limits(1_000_000, 0)


def test_checkpoint_is_the_lowest_acknowledged_lsn_per_shard():
    a = json.dumps({"token": "v1.x", "lsn": {"s1": 10, "s2": 4}, "ts": 1}).encode()
    b = json.dumps({"token": "v1.y", "lsn": {"s1": 7}, "ts": 1}).encode()
    assert checkpoints([], ["s1", "s2"]) is None
    assert checkpoints([a], ["s1", "s2", "s3"]) == {"s1": 10, "s2": 4, "s3": 0}
    assert checkpoints([a, b], ["s1", "s2"]) == {"s1": 7, "s2": 0}
    assert checkpoints([b"not json"], ["s1"]) == {"s1": 0}  # unreadable: keep everything
