"""A write sent again under its txid (its first answer lost with a broken connection) is
answered with the first one's results and not applied twice (db4node/applied.py)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from db4core.errors import InvalidArgumentError, NotFoundError, UnavailableError, WrongShardError
from db4core.hashing import token_for
from db4node import applied, follow
from db4node.participant import Participant
from db4node.shard import Op, Shard, WriteItem
from db4node.store import ShardStore

COLL = "users"
PK = "tenant"
ACME = token_for("acme")


def op(kind: str, doc_id: str = "d1", **fields) -> Op:
    return Op(kind, COLL, doc_id, ACME, json.dumps(fields).encode() if fields else b"", None,
              PK)


def versions(shard: Shard) -> list[int]:
    return [r[0] for r in shard.conn.execute("SELECT version FROM docs ORDER BY id")]


def test_a_write_sent_again_is_answered_not_applied_twice(shard):
    shard.write([op("create", tenant="acme", n=0)], "t0")
    ops = [op("update", n=1), op("delete", "missing"), op("create", "d2", tenant="acme")]
    first, _ = shard.write(ops, "t1")
    lsn = shard.last_lsn
    shard.write([op("update", n=2)], "t2")  # a later write by someone else
    (written,) = shard.write_group([WriteItem(ops, "t1")])
    again = written.results
    assert written.txid == "t1"
    assert again == first
    assert [r.found for r in again] == [True, False, True]
    assert json.loads(again[0].document)["n"] == 1  # the write's own after-image, not n=2
    assert written.lsn == lsn < shard.last_lsn
    assert versions(shard) == [3, 1]
    assert shard.conn.execute("SELECT COUNT(*) FROM changes WHERE txid = 't1'").fetchone()[0] \
        == 2


def test_without_a_txid_nothing_is_noted(shard):
    shard.write([op("create", tenant="acme")])
    assert shard.conn.execute("SELECT COUNT(*) FROM writes_applied").fetchone()[0] == 0


def test_a_failed_write_is_not_noted_and_may_be_sent_again(shard):
    with pytest.raises(NotFoundError):
        shard.write([op("update", n=1)], "t1")  # no such document
    shard.write([op("create", tenant="acme")], "t0")
    results, _ = shard.write([op("update", n=1)], "t1")
    assert json.loads(results[0].document)["$version"] == 2


def test_a_write_applied_before_a_fence_is_answered_by_its_shard(shard):
    first, _ = shard.write([op("create", tenant="acme")], "t1")
    shard.set_fence(follow.Fence("op1", [(0, follow.TOKEN_MAX)], 7))
    again, _ = shard.write([op("create", tenant="acme")], "t1")
    assert again == first
    with pytest.raises(WrongShardError):  # a new write of a moving key is refused
        shard.write([op("update", n=1)], "t2")


def test_after_truncation_the_answer_is_the_document_as_it_is_now(shard):
    shard.write([op("create", tenant="acme", n=0)], "t1")
    shard.truncate(shard.last_lsn)
    again, _ = shard.write([op("create", tenant="acme", n=0)], "t1")
    assert json.loads(again[0].document)["n"] == 0
    assert versions(shard) == [1]


def test_old_notes_are_pruned(shard):
    shard.write([op("create", tenant="acme")], "t1")
    now = shard.conn.execute("SELECT at_ms FROM writes_applied").fetchone()[0]
    with shard.conn:
        assert applied.prune(shard.conn, now + applied.KEEP_S * 1000 - 1) == 0
        assert applied.prune(shard.conn, now + applied.KEEP_S * 1000 + 1) == 1


def test_the_same_write_arriving_twice_at_once_is_applied_once(tmp_path):
    """Both go to the shard's one writer thread: the second finds the first noted."""
    async def run():
        store = ShardStore(str(tmp_path))
        try:
            participant = Participant(store, 2000)
            ops = [op("create", tenant="acme")]
            a, b = await asyncio.gather(participant.write("s0", ops, "t1", [], None),
                                        participant.write("s0", ops, "t1", [], None))
            assert a == b
            return versions(store.get("s0").shard)
        finally:
            store.close()

    assert asyncio.run(run()) == [1]


def test_a_group_commits_every_write_but_the_failed_one(shard):
    """Group commit: one transaction, each write in a savepoint of its own."""
    shard.write([op("create", tenant="acme", n=0)], "t0")
    first = shard.last_lsn
    out = shard.write_group([
        WriteItem([op("update", n=1)], "a"),
        WriteItem([op("create", tenant="acme")], "b"),  # exists: fails alone
        WriteItem([op("create", "d2", tenant="acme"), op("update", "nope", n=1)], "c"),  # 2nd op
        WriteItem([op("update", n=2), op("create", "d3", tenant="acme")], "d"),
        WriteItem([op("update", n=1)], "a"),  # the first one again: answered, not applied
    ])
    assert [type(o).__name__ for o in out] == [
        "Written", "AlreadyExistsError", "NotFoundError", "Written", "Written"]
    assert out[0].lsn == first + 1 and out[3].lsn == first + 3 and out[4].lsn == first + 1
    assert out[4].results == out[0].results
    assert shard.last_lsn == first + 3
    assert versions(shard) == [3, 1]  # d1 updated twice; d2 never written; d3 created
    lsns = [r[0] for r in shard.conn.execute("SELECT lsn FROM changes ORDER BY lsn")]
    assert lsns == list(range(1, first + 4))  # dense: the failed writes left no gap
    noted = {r[0] for r in shard.conn.execute("SELECT txid FROM writes_applied")}
    assert noted == {"t0", "a", "d"}


def test_a_txid_names_one_write_another_request_under_it_is_refused(shard):
    shard.write([op("create", tenant="acme", n=0)], "t1")
    with pytest.raises(InvalidArgumentError, match="already used by another write"):
        shard.write([op("update", n=5)], "t1")
    assert versions(shard) == [1]


def test_closing_a_shard_fails_the_writes_still_queued(tmp_path):
    async def run() -> list:
        store = ShardStore(str(tmp_path))
        worker = store.get("s0")
        gate = threading.Event()
        busy = asyncio.ensure_future(worker.write(lambda s: gate.wait(10), None, "hold"))
        await asyncio.sleep(0.05)  # the writer thread is held
        queued = [asyncio.ensure_future(worker.write_grouped(
            WriteItem([op("create", f"d{i}", tenant="acme")], f"t{i}"), None, "write"))
            for i in range(3)]
        await asyncio.sleep(0.05)
        closing = asyncio.get_running_loop().run_in_executor(None, store.close)
        await asyncio.sleep(0.05)
        gate.set()
        await closing
        await busy
        return await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 5)

    outcomes = asyncio.run(run())
    assert all(isinstance(o, UnavailableError) for o in outcomes), outcomes
