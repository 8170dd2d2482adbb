"""A shard as a two-phase-commit participant, on a temporary file (no sockets): prepare, commit,
abort, idempotency, locks against plain writes, read validation, the change log, restarts; and
the single-shard pieces a transaction uses: reads checked with a write, increment, condition."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from db4core.errors import (
    OP_INDEX_KEY,
    AlreadyExistsError,
    ConditionFailedError,
    ConflictError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
)
from db4core.hashing import token_for
from db4node import changelog
from db4node.shard import Op, ReadCheck, Shard
from db4node.txn import KeyLockedError

COLL = "accounts"
T1 = "a" * 32
T2 = "b" * 32


def tok(doc_id: str) -> int:
    return token_for(doc_id)


def op(kind: str, doc_id: str, condition: dict | None = None, expected: int | None = None,
       **fields) -> Op:
    body = json.dumps(fields).encode() if fields else b""
    return Op(kind, COLL, doc_id, tok(doc_id), body, expected, "$id", condition)


def inc(doc_id: str, **deltas) -> Op:
    return op("increment", doc_id, **deltas)


def read(doc_id: str, version: int) -> ReadCheck:
    return ReadCheck(COLL, doc_id, tok(doc_id), version)


def stored(shard: Shard, doc_id: str) -> dict | None:
    row = shard.read(COLL, [doc_id])[0]
    return json.loads(row[0]) if row else None


def log(shard: Shard) -> list[changelog.Change]:
    return list(changelog.read(shard.conn))


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "s0.db")


@pytest.fixture
def shard(path):
    s = Shard("s0", path)
    s.write([op("create", "a1", balance=100), op("create", "a2", balance=5)])
    try:
        yield s
    finally:
        s.close()


def prepare_transfer(shard: Shard, txid: str = T1) -> list:
    return shard.prepare(txid, [inc("a1", balance=-30), op("delete", "a2"),
                                op("create", "n1", note="x")],
                         [read("a1", 1)], ["s0", "s1"], 2000)


# ---- prepare -------------------------------------------------------------------------------


def test_prepare_answers_results_and_writes_nothing_visible(shard):
    results = prepare_transfer(shard)
    assert json.loads(results[0].document)["balance"] == 70
    assert results[1].found and results[1].document == b""
    assert json.loads(results[2].document)["$version"] == 1
    assert stored(shard, "a1")["balance"] == 100 and stored(shard, "a2") is not None
    assert stored(shard, "n1") is None
    assert len(log(shard)) == 2  # only the two creates of the fixture
    assert shard.locks == {(COLL, "a1"): T1, (COLL, "a2"): T1, (COLL, "n1"): T1}
    assert shard.prepared[T1].participants == ["s0", "s1"]


def test_prepare_is_idempotent(shard):
    first = prepare_transfer(shard)
    again = shard.prepare(T1, [op("create", "other", x=1)], [], ["s0"], 2000)
    assert [r.document for r in again] == [r.document for r in first]
    assert (COLL, "other") not in shard.locks


def test_commit_prepared_applies_with_the_txid_in_the_log(shard):
    prepare_transfer(shard)
    assert shard.commit_prepared(T1) is True
    assert stored(shard, "a1")["balance"] == 70 and stored(shard, "a1")["$version"] == 2
    assert stored(shard, "a2") is None and stored(shard, "n1")["note"] == "x"
    records = log(shard)[2:]
    assert [(c.lsn, c.txid, c.op, c.id) for c in records] == [
        (3, T1, "update", "a1"), (4, T1, "delete", "a2"), (5, T1, "insert", "n1")]
    assert json.loads(records[0].before)["balance"] == 100
    assert json.loads(records[0].after)["balance"] == 70
    assert shard.last_lsn == 5 and shard.locks == {} and shard.prepared == {}
    assert shard.conn.execute("SELECT count(*) FROM txn_locks").fetchone()[0] == 0


def test_commit_and_abort_of_an_unknown_txid_are_acknowledged(shard):
    assert shard.commit_prepared(T2) is False
    assert shard.abort_prepared(T2) is False
    prepare_transfer(shard)
    assert shard.commit_prepared(T1) is True
    assert shard.commit_prepared(T1) is False  # a repeated commit writes nothing again
    assert len(log(shard)) == 5


def test_abort_prepared_leaves_nothing(shard):
    prepare_transfer(shard)
    assert shard.abort_prepared(T1) is True
    assert stored(shard, "a1")["balance"] == 100 and stored(shard, "n1") is None
    assert len(log(shard)) == 2 and shard.locks == {} and shard.prepared == {}
    assert shard.conn.execute("SELECT count(*) FROM txn_prepared").fetchone()[0] == 0


def test_prepare_with_a_stale_read_votes_no_and_keeps_nothing(shard):
    shard.write([inc("a1", balance=1)])
    with pytest.raises(ConflictError) as err:
        prepare_transfer(shard)
    assert (err.value.expected_version, err.value.actual_version) == (1, 2)
    assert shard.locks == {} and shard.prepared == {}


def test_prepare_with_a_failing_op_votes_no_and_keeps_nothing(shard):
    with pytest.raises(NotFoundError):
        shard.prepare(T1, [inc("a1", balance=1), inc("missing", balance=1)], [], ["s0"], 2000)
    assert shard.locks == {} and shard.prepared == {}
    assert stored(shard, "a1")["balance"] == 100


def test_a_prepare_of_creates_checks_each_without_writing_rows(shard):
    """Creates of distinct keys are checked without their rows being written (txn.only_creates):
    a taken id still fails the prepare and names its op; an id given twice is checked against
    the first op's row, as a plain write would."""
    creates = [op("create", f"n{i}", v=i) for i in range(5)]
    results = shard.prepare(T1, creates, [], ["s0", "s1"], 2000)
    assert [json.loads(r.document)["v"] for r in results] == list(range(5))
    assert stored(shard, "n0") is None  # not written before the commit
    assert shard.commit_prepared(T1)
    assert [stored(shard, f"n{i}")["$version"] for i in range(5)] == [1] * 5
    with pytest.raises(AlreadyExistsError) as err:
        shard.prepare(T2, [op("create", "m0", v=0), op("create", "n3", v=0)], [], ["s0"], 2000)
    assert err.value.extra_trailers[OP_INDEX_KEY] == "1"
    with pytest.raises(AlreadyExistsError) as err:
        shard.prepare(T2, [op("create", "m0", v=0), op("create", "m0", v=1)], [], ["s0"], 2000)
    assert err.value.extra_trailers[OP_INDEX_KEY] == "1"
    assert shard.prepared == {} and stored(shard, "m0") is None


def test_prepare_of_a_key_held_by_another_transaction_is_locked(shard):
    prepare_transfer(shard)
    with pytest.raises(KeyLockedError) as err:
        shard.prepare(T2, [inc("n1", balance=1)], [], ["s0"], 2000)
    assert err.value.holder == T1 and err.value.code == "ABORTED"
    with pytest.raises(LockedError):
        shard.prepare(T2, [], [read("a2", 1)], ["s0"], 2000)  # a read is held too


def test_ops_of_one_transaction_on_one_key_apply_in_order(shard):
    shard.prepare(T1, [inc("a1", balance=1), inc("a1", balance=2)], [], ["s0"], 2000)
    shard.commit_prepared(T1)
    doc = stored(shard, "a1")
    assert doc["balance"] == 103 and doc["$version"] == 3


# ---- locks against plain writes and single-shard transactions ------------------------------


def test_a_plain_write_of_a_locked_key_is_locked_and_writes_nothing(shard):
    prepare_transfer(shard)
    with pytest.raises(KeyLockedError) as err:
        shard.write([op("create", "free", x=1), op("update", "a1", balance=0)])
    assert err.value.holder == T1 and err.value.reason == "locked"
    assert stored(shard, "free") is None
    shard.abort_prepared(T1)
    shard.write([op("update", "a1", balance=0)])
    assert stored(shard, "a1")["balance"] == 0


def test_a_write_reading_a_locked_key_is_locked(shard):
    prepare_transfer(shard)
    with pytest.raises(LockedError):
        shard.write([op("create", "free", x=1)], reads=[read("n1", 0)])


def test_a_write_with_current_reads_commits(shard):
    results, _ = shard.write([inc("a1", balance=1)], reads=[read("a2", 1), read("none", 0)])
    assert json.loads(results[0].document)["balance"] == 101


def test_a_write_with_a_stale_read_is_a_conflict_and_writes_nothing(shard):
    with pytest.raises(ConflictError) as err:
        shard.write([inc("a1", balance=1)], reads=[read("a2", 7)])
    assert (err.value.expected_version, err.value.actual_version) == (7, 1)
    with pytest.raises(ConflictError) as err:
        shard.write([], reads=[read("a2", 0)])  # it read "no document", one exists now
    assert (err.value.expected_version, err.value.actual_version) == (0, 1)
    assert stored(shard, "a1")["balance"] == 100 and len(log(shard)) == 2


def test_a_read_under_another_token_is_no_document(shard):
    other = ReadCheck(COLL, "a1", token_for("elsewhere"), 0)
    shard.write([], reads=[other])  # validates: no document of that partition value


# ---- restart ---------------------------------------------------------------------------------


def test_intents_and_locks_survive_a_reopen(shard, path):
    answered = prepare_transfer(shard)
    shard.close()
    again = Shard("s0", path)
    try:
        assert again.locks == {(COLL, "a1"): T1, (COLL, "a2"): T1, (COLL, "n1"): T1}
        record = again.prepared[T1]
        assert [(r.found, r.document) for r in record.results] == \
            [(r.found, r.document) for r in answered]
        assert record.in_doubt_ms == 2000 and record.participants == ["s0", "s1"]
        with pytest.raises(LockedError):
            again.write([op("update", "a1", balance=0)])
        assert again.prepare(T1, [], [], [], 0)[0].document == record.results[0].document
        assert again.commit_prepared(T1)
        assert stored(again, "a1")["balance"] == 70
        assert [c.txid for c in log(again)][2:] == [T1, T1, T1]
    finally:
        again.close()


def test_in_doubt_after_its_timeout(shard):
    prepare_transfer(shard)
    record = shard.prepared[T1]
    assert not record.in_doubt(record.prepared_at_ms + 1999)
    assert record.in_doubt(record.prepared_at_ms + 2000)


# ---- increment -------------------------------------------------------------------------------


def test_increment_adds_and_counts_absent_fields_as_zero(shard):
    results, _ = shard.write([inc("a1", balance=-0.5, visits=2, **{"stats.n": 3})])
    doc = json.loads(results[0].document)
    assert (doc["balance"], doc["visits"], doc["stats"], doc["$version"]) == (99.5, 2, {"n": 3}, 2)
    change = log(shard)[-1]
    assert change.op == "update" and json.loads(change.before)["balance"] == 100


@pytest.mark.parametrize("deltas", [{"balance": "1"}, {"balance": True}, {}, {"$version": 1},
                                    {"bad path": 1}])
def test_increment_rejects_bad_deltas(shard, deltas):
    with pytest.raises(InvalidArgumentError):
        shard.write([Op("increment", COLL, "a1", tok("a1"), json.dumps(deltas).encode())])
    assert stored(shard, "a1")["$version"] == 1


def test_increment_of_a_non_number_field_is_invalid(shard):
    shard.write([op("update", "a1", name="x")])
    with pytest.raises(InvalidArgumentError, match="not a number"):
        shard.write([inc("a1", name=1)])
    with pytest.raises(InvalidArgumentError, match="not an object"):
        shard.write([inc("a1", **{"name.n": 1})])


def test_increment_of_a_missing_document_is_not_found(shard):
    with pytest.raises(NotFoundError):
        shard.write([inc("nope", n=1)])


# ---- condition -------------------------------------------------------------------------------


def test_a_holding_condition_writes(shard):
    results, _ = shard.write([op("update", "a1", {"balance": {"$gte": 100}}, balance=1)])
    assert json.loads(results[0].document)["balance"] == 1


def test_a_failing_condition_writes_nothing(shard):
    with pytest.raises(ConditionFailedError) as err:
        shard.write([op("create", "z", x=1),
                     op("update", "a1", {"balance": {"$lt": 100}}, balance=1)])
    assert err.value.code == "FAILED_PRECONDITION" and err.value.reason == "condition_failed"
    assert stored(shard, "z") is None and stored(shard, "a1")["balance"] == 100
    assert len(log(shard)) == 2


def test_a_condition_on_a_missing_document_fails(shard):
    with pytest.raises(ConditionFailedError):
        shard.write([op("upsert", "nope", {"x": 1}, x=2)])


def test_a_condition_sees_earlier_ops_of_its_request(shard):
    shard.write([op("update", "a1", balance=5), op("increment", "a1", {"balance": 5}, balance=1)])
    assert stored(shard, "a1")["balance"] == 6


def test_a_condition_in_prepare_votes_no(shard):
    with pytest.raises(ConditionFailedError):
        shard.prepare(T1, [op("delete", "a2", {"balance": 6})], [], ["s0"], 2000)
    assert shard.prepared == {}


# ---- id claims -------------------------------------------------------------------------------


def test_id_claims_are_not_counted_as_documents(shard):
    shard.write([Op("create", "$ids:users", "u1", tok("u1"), b'{"partition": "acme"}')])
    stats = shard.stats()
    assert stats["documents"] == 2 and stats["collections"] == {COLL: 2}
    assert shard.read("$ids:users", ["u1"])[0] is not None


# ---- waiting on the event loop (Participant, no sockets) -------------------------------------


@pytest.fixture
def node(tmp_path):
    from db4node.participant import Participant
    from db4node.store import ShardStore

    store = ShardStore(str(tmp_path))
    store.get("s0")
    try:
        yield Participant(store, 2000)
    finally:
        store.close()


async def _prepared(node) -> None:
    await node.prepare("s0", T1, [op("create", "k", n=1)], [], ["s0"], 0, None)


def test_a_waiting_write_goes_ahead_once_the_holder_commits(node):
    async def go():
        await _prepared(node)
        waiting = asyncio.ensure_future(
            node.write("s0", [inc("k", n=1)], "", [], time.monotonic() + 5))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        assert await node.resolve("s0", T1, "commit") == (True, 1)
        results, _, last_lsn = await asyncio.wait_for(waiting, 1)
        return json.loads(results[0].document)["n"], last_lsn

    assert asyncio.run(go()) == (2, 2)


def test_a_waiting_write_is_locked_when_its_time_runs_out(node):
    async def go():
        await _prepared(node)
        started = time.monotonic()
        with pytest.raises(LockedError):
            await node.write("s0", [inc("k", n=1)], "", [], started + 0.3)
        return time.monotonic() - started

    assert 0.25 < asyncio.run(go()) < 1.5


def test_a_read_waits_for_an_abort_then_reads(node):
    async def go():
        await _prepared(node)
        waiting = asyncio.ensure_future(node.wait_readable("s0", COLL, ["x", "k"], None))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        assert await node.resolve("s0", T1, "abort") == (True, 0)
        await asyncio.wait_for(waiting, 1)
        assert await node.resolve("s0", T1, "abort") == (False, 0)

    asyncio.run(go())


def test_intents_stored_with_documents_in_place_still_load(shard, path):
    """Intents written before results named their effect hold each document in place."""
    answered = prepare_transfer(shard)
    (intents,) = shard.conn.execute("SELECT intents FROM txn_prepared").fetchone()
    obj = json.loads(intents)
    assert any("effect" in r for r in obj["results"])  # stored once, named by index
    effects = obj["effects"]
    obj["results"] = [{"found": r["found"], "document": effects[r["effect"]]["after"]}
                      if "effect" in r else r for r in obj["results"]]
    shard.conn.execute("UPDATE txn_prepared SET intents = ?", (json.dumps(obj),))
    shard.close()
    again = Shard("s0", path)
    try:
        assert [(r.found, r.document) for r in again.prepared[T1].results] == \
            [(r.found, r.document) for r in answered]
        assert again.commit_prepared(T1)
        assert stored(again, "a1")["balance"] == 70
    finally:
        again.close()
