"""The change log on a temporary shard file: CRC32C with participants, DATA_LOSS on a bad
record, truncation (checkpoint and retention limits, LSNs never reused) and replay."""

from __future__ import annotations

import json

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db4core.errors import DataLossError, OutOfRangeError
from db4core.hashing import token_for
from db4node import changelog, retention
from db4node.changelog import Change
from db4node.retention import Retention
from db4node.shard import Op, Shard

COLL = "users"


def create(doc_id: str, **fields) -> Op:
    return Op("create", COLL, doc_id, token_for(doc_id), json.dumps(fields).encode(), None,
              "$id")


def update(doc_id: str, **fields) -> Op:
    return Op("update", COLL, doc_id, token_for(doc_id), json.dumps(fields).encode(), None,
              "$id")


def delete(doc_id: str) -> Op:
    return Op("delete", COLL, doc_id, token_for(doc_id), b"", None, "$id")


@pytest.fixture
def shard(tmp_path):
    s = Shard("s003", str(tmp_path / "s003.db"))
    try:
        yield s
    finally:
        s.close()


def fill(shard: Shard, n: int, size: int = 10) -> None:
    for i in range(n):
        shard.write([create(f"d{i}", pad="x" * size)])


def test_a_record_without_participants_keeps_the_checksum_of_before_step_3():
    c = Change(7, "t1", "insert", COLL, "d1", None, '{"a":1}', 1000)
    old = crc32c.crc32c("\x00".join(["7", "t1", "insert", COLL, "d1", "", '{"a":1}',
                                     "1000"]).encode())
    assert changelog.checksum(c) == old
    with_parts = Change(7, "t1", "insert", COLL, "d1", None, '{"a":1}', 1000,
                        participants=("s1", "s2"))
    assert changelog.checksum(with_parts) != old


def test_participants_are_stored_sorted_and_covered_by_the_checksum(shard):
    shard.prepare("tx1", [create("d1", a=1)], [], ["s9", "s003"], 1000)
    shard.commit_prepared("tx1")
    shard.write([create("d2", a=2)])
    two_pc, plain = list(changelog.read(shard.conn))
    assert two_pc.participants == ("s003", "s9") and two_pc.txid == "tx1"
    assert plain.participants is None
    shard.conn.execute("UPDATE changes SET participants = '[\"s003\",\"s8\"]' WHERE lsn = 1")
    with pytest.raises(DataLossError, match="record 1 of shard s003 fails its CRC32C"):
        list(changelog.read(shard.conn))


def test_a_corrupt_record_is_data_loss_naming_shard_and_lsn(shard):
    fill(shard, 3)
    shard.conn.execute("UPDATE changes SET after = replace(after, 'xxx', 'xyx') WHERE lsn = 2")
    with pytest.raises(DataLossError) as info:
        list(changelog.read(shard.conn))
    assert info.value.code == "DATA_LOSS"
    assert str(info.value) == ("change-log record 2 of shard s003 fails its CRC32C check; "
                               "it is not served")
    # A batch serves what lies before the bad record; the next read starts at it and fails.
    batch = changelog.read_batch(shard.conn, 0, 500, 1 << 20)
    assert [c.lsn for c in batch.records] == [1]
    with pytest.raises(DataLossError, match="record 2 of shard s003"):
        changelog.read_batch(shard.conn, 1, 500, 1 << 20)


def test_batches_stop_at_max_records_and_max_bytes_but_hold_one_record(shard):
    fill(shard, 10, size=1000)
    assert [c.lsn for c in changelog.read_batch(shard.conn, 2, 3, 1 << 20).records] == [3, 4, 5]
    assert len(changelog.read_batch(shard.conn, 0, 500, 2500).records) == 2
    assert len(changelog.read_batch(shard.conn, 0, 500, 10).records) == 1
    end = changelog.read_batch(shard.conn, 10, 500, 1 << 20)
    assert end.records == [] and end.last_lsn == 10


def test_entries_limit_keeps_the_newest_records(shard):
    fill(shard, 10)
    limits = Retention(entries=4, bytes=0, seconds=0)
    assert retention.truncation_point(shard.conn, limits, None) == 6
    while shard.truncate(6, chunk=2):
        pass
    assert [c.lsn for c in changelog.read(shard.conn)] == [7, 8, 9, 10]


def test_the_most_generous_limit_wins(shard):
    fill(shard, 10, size=100)  # each record holds about 150 bytes of document
    by_bytes = Retention(entries=2, bytes=700, seconds=0)
    cut = retention.truncation_point(shard.conn, by_bytes, None)
    kept = [c for c in changelog.read(shard.conn) if c.lsn > cut]
    assert sum(c.size() for c in kept) >= 700
    assert sum(c.size() for c in kept[1:]) < 700  # and not a record more
    by_time = Retention(entries=2, bytes=0, seconds=3600)
    assert retention.truncation_point(shard.conn, by_time, None) == 0


def test_seconds_limit_keeps_recent_history(shard):
    fill(shard, 4)
    shard.conn.execute("UPDATE changes SET ts = 1000 WHERE lsn <= 2")
    limits = Retention(entries=0, bytes=0, seconds=60)
    assert retention.truncation_point(shard.conn, limits, None) == 2


def test_the_checkpoint_holds_records_a_consumer_has_not_acknowledged(shard):
    fill(shard, 10)
    limits = Retention(entries=0, bytes=0, seconds=0)
    assert retention.truncation_point(shard.conn, limits, 3) == 3
    assert retention.truncation_point(shard.conn, limits, 0) == 0
    assert retention.truncation_point(shard.conn, limits, None) == 10


def test_truncating_everything_keeps_the_next_lsn_across_a_restart(tmp_path):
    path = str(tmp_path / "s1.db")
    first = Shard("s1", path)
    fill(first, 5)
    while first.truncate(5):
        pass
    assert changelog.stats(first.conn) == changelog.LogStat(6, 5, 0, 0)
    first.close()
    again = Shard("s1", path)
    try:
        assert again.last_lsn == 5
        again.write([create("late", a=1)])
        assert [c.lsn for c in changelog.read(again.conn)] == [6]
    finally:
        again.close()


def test_a_truncated_position_is_out_of_range_naming_the_oldest_lsn(shard):
    fill(shard, 6)
    shard.truncate(3)
    assert changelog.read_batch(shard.conn, 3, 500, 1 << 20).records[0].lsn == 4
    with pytest.raises(OutOfRangeError, match="oldest change-log record kept is LSN 4"):
        changelog.read_batch(shard.conn, 2, 500, 1 << 20)
    with pytest.raises(OutOfRangeError, match="past the end"):
        changelog.read_batch(shard.conn, 7, 500, 1 << 20)


def replay(records: list[Change]) -> dict[tuple[str, str], str]:
    """Documents rebuilt from the log: insert/update put `after`, delete removes."""
    docs: dict[tuple[str, str], str] = {}
    for c in records:
        if c.op == "delete":
            docs.pop((c.collection, c.id), None)
        else:
            assert c.after is not None
            docs[(c.collection, c.id)] = c.after
    return docs


def test_replaying_the_log_from_lsn_1_rebuilds_the_documents(shard):
    fill(shard, 5)
    shard.write([update("d1", pad="changed"), delete("d2"), create("d9", a=1)])
    shard.write([Op("upsert", COLL, "d3", token_for("d3"), b'{"b":2}', None, "$id")])
    shard.prepare("tx", [update("d4", c=3), delete("d0")], [], ["s003", "s1"], 1000)
    shard.commit_prepared("tx")
    shard.prepare("tx-no", [delete("d9")], [], ["s003", "s1"], 1000)
    shard.abort_prepared("tx-no")
    stored = {(c, i): b for c, i, b in shard.conn.execute("SELECT collection, id, body FROM docs")}
    assert replay(list(changelog.read(shard.conn, 0, 10_000))) == stored


# ---- retention reads only what it deletes ----------------------------------------------------


def put_records(shard: Shard, records: list[tuple[int, int]], first: int = 1) -> None:
    """Change-log records with dense LSNs from `first`: (ts, document characters) each."""
    with shard.conn:
        shard.conn.executemany(
            "INSERT INTO changes(lsn, txid, op, collection, id, before, after, ts, crc) "
            "VALUES (?, 'tx', 'insert', 'c', ?, NULL, ?, ?, 0)",
            [(lsn, f"d{lsn}", "x" * size, ts)
             for lsn, (ts, size) in enumerate(records, start=first)])


def vm_steps(shard: Shard, limits: Retention) -> tuple[int, int]:
    """The truncation point, and the SQLite VM steps it took (every 10th counted)."""
    steps = 0

    def count() -> bool:
        nonlocal steps
        steps += 1
        return False

    shard.conn.set_progress_handler(count, 10)
    try:
        cut = retention.truncation_point(shard.conn, limits, None, now_ms=10_000_000)
    finally:
        shard.conn.set_progress_handler(None)
    return cut, steps


def test_retention_that_deletes_nothing_reads_no_record(tmp_path):
    """Old records over the entries limit that the bytes limit keeps: the truncation round
    (every few seconds) must not read the whole log to find that nothing goes."""
    limits = Retention(entries=10, bytes=10**9, seconds=60)
    found = {}
    for n in (300, 3000):
        s = Shard(f"s{n}", str(tmp_path / f"s{n}.db"))
        try:
            put_records(s, [(1000, 50)] * n)
            found[n] = vm_steps(s, limits)
        finally:
            s.close()
    assert found[300][0] == found[3000][0] == 0
    assert found[3000][1] <= found[300][1] + 5, f"VM steps grow with the log: {found}"


def reference_cut(records: list[tuple[int, int, int]], last: int, limits: Retention,
                  checkpoint: int | None, now_ms: int) -> int:
    """The truncation point as defined (a scan of every record): records (lsn, ts, size)."""
    first = records[0][0] if records else last + 1
    cut = max(last - limits.entries, 0)
    if checkpoint is not None:
        cut = min(cut, checkpoint)
    if cut < first:
        return cut
    oldest_kept = now_ms - int(limits.seconds * 1000)
    by_time = next((lsn - 1 for lsn, ts, _ in records if ts > oldest_kept), last)
    cut = min(cut, by_time)
    if cut < first:
        return cut
    newer, by_bytes = 0, 0
    for lsn, _, size in reversed(records):
        if newer >= limits.bytes:
            by_bytes = lsn
            break
        newer += size
    return min(cut, by_bytes)


@settings(max_examples=150, deadline=None)
@given(records=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40)), max_size=30),
       truncated=st.integers(0, 5), entries=st.integers(0, 35), keep_bytes=st.integers(0, 800),
       seconds=st.integers(0, 30), checkpoint=st.one_of(st.none(), st.integers(0, 40)))
def test_the_truncation_point_is_the_one_every_record_defines(
        tmp_path_factory, records, truncated, entries, keep_bytes, seconds, checkpoint):
    s = Shard("s0", str(tmp_path_factory.mktemp("cut") / "s0.db"))
    try:
        put_records(s, [(ts * 1000, size) for ts, size in records])
        with s.conn:  # the oldest records truncated already, as a round would
            s.conn.execute("DELETE FROM changes WHERE lsn <= ?", (truncated,))
        stored = [(lsn, ts, size) for lsn, ts, size in s.conn.execute(
            "SELECT lsn, ts, COALESCE(length(before), 0) + COALESCE(length(after), 0) "
            "FROM changes ORDER BY lsn")]
        limits = Retention(entries=entries, bytes=keep_bytes, seconds=seconds)
        last = changelog.last_lsn(s.conn)
        want = reference_cut(stored, last, limits, checkpoint, 31_000)
        got = retention.truncation_point(s.conn, limits, checkpoint, now_ms=31_000)
        assert got == want, (stored, limits, checkpoint)
    finally:
        s.close()
