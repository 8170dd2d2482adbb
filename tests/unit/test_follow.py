"""A shard's split on real files: snapshot, follower install, catch-up, fence and cleanup."""

from __future__ import annotations

import json

import pytest

from db4core.errors import FailedPreconditionError, WrongShardError
from db4core.hashing import token_for
from db4core.ring import TOKEN_MAX
from db4node import changelog, follow
from db4node.shard import Op, Shard

COLL = "users"
PK = "tenant"
TENANTS = [f"t{i}" for i in range(40)]
HALF = 1 << 63
UPPER = [(HALF, TOKEN_MAX)]  # the moving ranges: tokens at or above 2^63


def create(shard: Shard, tenant: str, doc_id: str, **fields) -> None:
    body = json.dumps({"tenant": tenant, **fields}).encode()
    shard.write([Op("create", COLL, doc_id, token_for(tenant), body, None, PK)])


def update(shard: Shard, tenant: str, doc_id: str, **fields) -> None:
    body = json.dumps(fields).encode()
    shard.write([Op("update", COLL, doc_id, token_for(tenant), body, None, PK)])


def delete(shard: Shard, tenant: str, doc_id: str) -> None:
    shard.write([Op("delete", COLL, doc_id, token_for(tenant), b"", None, PK)])


def rows(shard: Shard) -> dict[str, tuple[int, str]]:
    return {i: (v, b) for i, v, b in shard.conn.execute(
        "SELECT id, version, body FROM docs WHERE collection = ?", (COLL,))}


def moving(tenant: str) -> bool:
    return token_for(tenant) >= HALF


@pytest.fixture
def source(tmp_path):
    s = Shard("s0", str(tmp_path / "s0.db"))
    for t in TENANTS:
        create(s, t, f"{t}-a", n=0)
    yield s
    s.close()


def follower(tmp_path, source: Shard) -> tuple[Shard, int]:
    snap = str(tmp_path / "snap.db")
    l0 = follow.snapshot(source.path, snap)
    assert l0 == source.last_lsn
    applied, kept = follow.install(snap, "s0", UPPER, "op1")
    assert applied == l0
    assert kept == sum(moving(t) for t in TENANTS)
    return Shard("s9", snap), l0


def test_a_follower_catches_up_to_the_moving_rows_of_its_parent(tmp_path, source):
    target, l0 = follower(tmp_path, source)
    assert target.follow.applied == l0 and target.last_lsn == 0  # its own log is empty
    for t in TENANTS:  # changes after the snapshot, on both sides of the split
        update(source, t, f"{t}-a", n=1)
        create(source, t, f"{t}-b", n=2)
    delete(source, TENANTS[0], f"{TENANTS[0]}-a")
    delete(source, TENANTS[1], f"{TENANTS[1]}-a")
    records = list(changelog.read(source.conn, l0, 10_000))
    assert all(r.token is not None for r in records)
    half = len(records) // 2
    target.apply_parent(records[:half])
    assert target.apply_parent(records[:half + 3]) == records[half + 2].lsn  # resend skipped
    assert target.apply_parent(records) == source.last_lsn
    want = {i: vb for i, vb in rows(source).items() if moving(i.split("-")[0])}
    assert rows(target) == want and want
    assert target.last_lsn == 0  # catch-up logged nothing
    with pytest.raises(FailedPreconditionError, match="does not follow"):
        target.apply_parent([records[0].__class__(source.last_lsn + 5, "x", "delete", COLL,
                                                  "zz", "{}", None, 0, token=HALF)])
    target.close()


def test_the_fence_stops_writes_of_moving_keys_and_cleanup_lifts_it(tmp_path, source):
    prepared, last = source.set_fence(follow.Fence("op1", UPPER, 7))
    assert prepared == [] and last == source.last_lsn
    mover = next(t for t in TENANTS if moving(t))
    stayer = next(t for t in TENANTS if not moving(t))
    with pytest.raises(WrongShardError) as err:
        update(source, mover, f"{mover}-a", n=5)
    assert err.value.epoch == 8
    update(source, stayer, f"{stayer}-a", n=5)  # the rest of the shard keeps serving
    source.close()
    reopened = Shard("s0", source.path)  # the fence survives a restart
    with pytest.raises(WrongShardError):
        update(reopened, mover, f"{mover}-a", n=5)
    kept = [(0, HALF - 1)]
    total = 0
    while gone := reopened.cleanup_step(kept):
        total += gone
    assert total == sum(moving(t) for t in TENANTS)
    assert reopened.fence is None
    assert all(not moving(i.split("-")[0]) for i in rows(reopened))
    assert not follow.outside_rows(reopened.conn, kept)
    reopened.close()


def test_another_operation_cannot_fence_a_fenced_shard(source):
    source.set_fence(follow.Fence("op1", UPPER, 1))
    source.set_fence(follow.Fence("op1", UPPER, 1))  # idempotent
    with pytest.raises(FailedPreconditionError, match="op1"):
        source.set_fence(follow.Fence("op2", UPPER, 1))
    assert not source.lift_fence("op2") and source.lift_fence("op1") and source.fence is None


def test_range_helpers():
    assert follow.complement([(5, 9)]) == [(0, 4), (10, TOKEN_MAX)]
    assert follow.complement([(0, TOKEN_MAX)]) == []
    assert follow.signed_spans([(HALF - 2, HALF + 1)]) == [(-2, 1)]
    assert follow.contains([(1, 2), (10, 20)], 15) and not follow.contains([(1, 2)], 3)
    with pytest.raises(Exception, match="overlap"):
        follow.check_ranges([(1, 5), (5, 6)])


def test_a_snapshot_of_ranges_holds_only_their_rows_with_the_schema(tmp_path, source):
    from db4node import queries, search_index

    source.conn.execute("BEGIN")
    source.conn.execute(queries.index_ddl("by_n", COLL, [("n", "asc")]))
    source.conn.execute("COMMIT")
    d = search_index.define("ft", COLL, [("tenant", 1.0)], "unicode61")
    search_index.begin(source.conn, d)
    search_index.finish(source.conn, d)
    update(source, TENANTS[3], f"{TENANTS[3]}-a", n=7)
    snap = str(tmp_path / "part.db")
    l0 = follow.snapshot_ranges(source.path, snap, UPPER)
    assert l0 == source.last_lsn
    applied, kept = follow.install(snap, "s0", UPPER, "op1")
    assert applied == l0 and kept == sum(moving(t) for t in TENANTS)
    target = Shard("s9", snap)
    want = {i: vb for i, vb in rows(source).items() if moving(i.split("-")[0])}
    assert rows(target) == want
    names = {n for (n,) in target.conn.execute("SELECT name FROM sqlite_schema")}
    assert queries.index_sql_name("by_n") in names
    assert search_index.lookup(target.conn, "ft") is not None
    mover = next(t for t in TENANTS if moving(t))
    hits = target.conn.execute(f"SELECT COUNT(*) FROM {d.table} WHERE {d.table} MATCH ?",
                               (mover,)).fetchone()[0]
    assert hits == 1  # the full-text index was built as the rows were copied
    target.close()
