"""A shard's document counts: kept by the writes themselves, so the load report (every few
seconds, on every shard) reads them without scanning the documents.

Each write path that adds or removes rows (creates, upserts, replaces, deletes, a prepared
transaction's commit, a follower's catch-up, a split's snapshot and install, the parent's
cleanup) is checked against a count of the rows themselves.
"""

from __future__ import annotations

import json

import apsw
import pytest

from db4core.hashing import token_for
from db4core.ring import TOKEN_MAX
from db4node import changelog, follow, schema
from db4node.shard import Op, Shard

PK = "tenant"
TENANTS = [f"t{i}" for i in range(24)]
UPPER = [(1 << 63, TOKEN_MAX)]  # the moving ranges
LOWER = [(0, (1 << 63) - 1)]  # what the parent keeps


def op(kind: str, coll: str, doc_id: str, tenant: str, **fields) -> Op:
    body = json.dumps({"tenant": tenant, **fields}).encode() if kind != "delete" else b""
    return Op(kind, coll, doc_id, token_for(tenant), body, None, PK)


def scanned(shard: Shard) -> dict[str, int]:
    """Documents per collection, counted row by row."""
    return {c: n for c, n in shard.conn.execute(
        "SELECT collection, COUNT(*) FROM docs GROUP BY collection")}


def counted(shard: Shard) -> dict[str, int]:
    return shard.stats()["collections"]


def test_the_load_report_reads_no_document_row(shard):
    shard.write([op("create", "users", f"u{i}", "acme") for i in range(50)])
    read: set[str] = set()

    def authorizer(action, table, *_):
        if action == apsw.SQLITE_READ:
            read.add(table)
        return apsw.SQLITE_OK

    shard.conn.authorizer = authorizer
    try:
        stats = shard.stats()
    finally:
        shard.conn.authorizer = None
    assert stats["documents"] == 50 and stats["collections"] == {"users": 50}
    assert "docs" not in read, f"the report scanned the documents (read {sorted(read)})"


def test_counts_follow_single_shard_writes(shard):
    shard.write([op("create", "users", f"u{i}", "acme", n=i) for i in range(10)])
    shard.write([op("create", "orders", "o1", "acme")])
    assert counted(shard) == scanned(shard) == {"users": 10, "orders": 1}
    shard.write([op("upsert", "users", "u1", "acme", n=100),   # replaces a stored row
                 op("upsert", "users", "u99", "acme"),         # adds one
                 op("replace", "users", "u2", "acme", n=5),
                 op("update", "users", "u3", "acme", n=6)])
    assert counted(shard) == scanned(shard) == {"users": 11, "orders": 1}
    shard.write([op("delete", "users", "u4", "acme"), op("delete", "users", "nope", "acme"),
                 op("delete", "orders", "o1", "acme")])
    assert counted(shard) == scanned(shard) == {"users": 10}


def test_a_failed_write_changes_no_count(shard):
    shard.write([op("create", "users", "u1", "acme")])
    with pytest.raises(Exception, match="already exists"):
        shard.write([op("create", "users", "u2", "acme"), op("create", "users", "u1", "acme")])
    assert counted(shard) == scanned(shard) == {"users": 1}


def test_counts_follow_prepared_transactions(shard):
    shard.write([op("create", "users", "u1", "acme")])
    shard.prepare("tx-a", [op("create", "users", f"n{i}", "acme") for i in range(5)], [],
                  ["s0", "s1"], 60_000)
    assert counted(shard) == {"users": 1}  # nothing counts before the commit
    shard.commit_prepared("tx-a")
    shard.prepare("tx-b", [op("delete", "users", "u1", "acme"),
                           op("create", "users", "x", "acme")], [], ["s0", "s1"], 60_000)
    shard.abort_prepared("tx-b")
    assert counted(shard) == scanned(shard) == {"users": 6}
    shard.prepare("tx-c", [op("delete", "users", "u1", "acme")], [], ["s0", "s1"], 60_000)
    shard.commit_prepared("tx-c")
    assert counted(shard) == scanned(shard) == {"users": 5}


def test_counts_follow_a_split(tmp_path):
    source = Shard("s0", str(tmp_path / "s0.db"))
    try:
        source.write([op("create", "users", f"{t}-a", t) for t in TENANTS])
        snap = str(tmp_path / "part.db")
        follow.snapshot_ranges(source.path, snap, UPPER)
        follow.install(snap, "s0", UPPER, "op1")
        target = Shard("s9", snap)
        try:
            moving = sum(token_for(t) >= 1 << 63 for t in TENANTS)
            assert counted(target) == scanned(target) == {"users": moving}
            source.write([op("create", "users", f"{t}-b", t) for t in TENANTS[:6]]
                         + [op("delete", "users", f"{t}-a", t) for t in TENANTS[6:12]]
                         + [op("upsert", "users", f"{t}-a", t, n=1) for t in TENANTS[12:]])
            target.apply_parent(list(changelog.read(source.conn, 0, 1000)))
            assert counted(target) == scanned(target)
            while source.cleanup_step(LOWER):
                pass
            assert counted(source) == scanned(source)
        finally:
            target.close()
    finally:
        source.close()


def test_a_whole_file_snapshot_keeps_its_counts(tmp_path, shard):
    shard.write([op("create", "users", f"{t}-a", t) for t in TENANTS])
    snap = str(tmp_path / "copy.db")
    follow.snapshot(shard.path, snap)
    follow.install(snap, "s0", UPPER, "op1")
    target = Shard("s9", snap)
    try:
        assert counted(target) == scanned(target) == {
            "users": sum(token_for(t) >= 1 << 63 for t in TENANTS)}
    finally:
        target.close()


def test_a_shard_written_before_counts_is_counted_once_at_open(tmp_path):
    path = str(tmp_path / "old.db")
    conn = apsw.Connection(path)
    done = schema.MIGRATIONS.index(schema.COUNTS_MIGRATION)
    for step, sql in enumerate(schema.MIGRATIONS[:done], start=1):
        with conn:
            conn.execute(sql)
            conn.execute(f"PRAGMA user_version={step}")
    with conn:
        conn.executemany("INSERT INTO docs(collection, id, token, version, body) "
                         "VALUES (?, ?, ?, 1, '{}')",
                         [("users", f"u{i}", i) for i in range(7)] + [("orders", "o1", 0)])
    conn.close()
    shard = Shard("old", path)
    try:
        assert counted(shard) == scanned(shard) == {"users": 7, "orders": 1}
        shard.write([op("create", "users", "u-new", "acme")])
        assert counted(shard) == {"users": 8, "orders": 1}
    finally:
        shard.close()
