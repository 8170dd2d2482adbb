"""A node's side of splits and moves (db4router/DESIGN.md, "Elastic sharding").

- **Snapshot** (source): a new database file with the shard's schema holding only the rows of
  the moving ranges, copied in one read snapshot, and the change-log LSN it stands at (L0);
  or (no ranges) a copy of the whole file with SQLite's online backup.
- **Follower** (target): the snapshot installed as a new shard that keeps only the moving token
  ranges, with an empty change log and no prepared transactions, then kept current by applying
  the parent's change-log records after L0 whose token falls in those ranges. Applying writes
  no change-log record (copy and catch-up are never events) and records the last applied LSN
  in the same SQLite transaction, so a follower resumed after any crash applies each record
  exactly once. The follower serves nothing until the ring places it.
- **Fence** (source): from the cutover on, writes and prepares of keys in the moving ranges
  answer wrong_shard with the next epoch (the router waits for it and routes again). Kept in
  `meta`, so a restart keeps it; checked on the writer thread, so no write slips past the LSN
  the leader reads when it sets the fence.
- **Cleanup** (source): once the node sees the ring no longer give it some tokens, it deletes
  those rows (without change-log records) and lifts the fence.

Token ranges are inclusive (first, last) pairs of unsigned ring tokens, as `Ring.ranges` gives.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from db4core.errors import FailedPreconditionError, InvalidArgumentError, WrongShardError
from db4core.hashing import to_signed
from db4core.ring import TOKEN_MAX
from db4node import changelog, schema, search_query
from db4node.sql import scalar, transaction

FOLLOW_KEY = "follow"  # meta: {"parent", "ranges", "applied", "op"} while a shard follows
FENCE_KEY = "fence"  # meta: {"op", "ranges", "epoch"} while a shard's ranges are moving
# Rows deleted per transaction: writes interleave between chunks, and scatter reads of the shard
# wait for the whole cleanup (keeper.py), so chunks are large (one fsync each).
CLEANUP_CHUNK = 20_000

Ranges = list[tuple[int, int]]


def check_ranges(raw: Sequence[tuple[int, int]]) -> Ranges:
    """Sorted, non-overlapping inclusive unsigned ranges, or InvalidArgumentError."""
    ranges = sorted((int(a), int(b)) for a, b in raw)
    for a, b in ranges:
        if not 0 <= a <= b <= TOKEN_MAX:
            raise InvalidArgumentError(f"token range ({a}, {b}) is not within 0..2^64-1")
    for (_, b), (c, _) in zip(ranges, ranges[1:], strict=False):
        if c <= b:
            raise InvalidArgumentError("token ranges overlap")
    return ranges


def contains(ranges: Ranges, token: int) -> bool:
    """Whether a token falls in one of the (sorted) ranges."""
    i = bisect.bisect_right(ranges, (token, TOKEN_MAX)) - 1
    return i >= 0 and ranges[i][0] <= token <= ranges[i][1]


def complement(ranges: Ranges) -> Ranges:
    """The tokens outside the (sorted) ranges."""
    out: Ranges = []
    nxt = 0
    for a, b in ranges:
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= TOKEN_MAX:
        out.append((nxt, TOKEN_MAX))
    return out


def signed_spans(ranges: Ranges) -> list[tuple[int, int]]:
    """Unsigned ranges as inclusive ranges of the `token` column (its signed view keeps the
    order, so a range stays one range)."""
    return [(to_signed(a), to_signed(b)) for a, b in ranges]


def _get_meta(conn: apsw.Connection, key: str) -> dict | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def _put_meta(conn: apsw.Connection, key: str, value: dict) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                 (key, json.dumps(value, separators=(",", ":"))))


# ---- fence (source) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fence:
    """Moving ranges of a shard in cutover."""

    op: str
    ranges: Ranges
    epoch: int  # the ring epoch the operation was planned at

    def check(self, shard_id: str, tokens: Sequence[int]) -> None:
        """wrong_shard (with the next epoch) when a token falls in the moving ranges."""
        for token in tokens:
            if contains(self.ranges, token):
                raise WrongShardError(
                    f"token {token} of shard {shard_id} is moving (operation {self.op} is in "
                    "its cutover); retry at the next epoch", self.epoch + 1)


def load_fence(conn: apsw.Connection) -> Fence | None:
    """The fence kept in `meta`, if any."""
    raw = _get_meta(conn, FENCE_KEY)
    if raw is None:
        return None
    return Fence(raw["op"], [tuple(r) for r in raw["ranges"]], int(raw["epoch"]))


def set_fence(conn: apsw.Connection, fence: Fence) -> None:
    """Persist a fence (one per shard: a shard takes part in one operation at a time)."""
    held = load_fence(conn)
    if held is not None and held.op != fence.op:
        raise FailedPreconditionError(
            f"shard {changelog.shard_of(conn)} is fenced by operation {held.op}")
    with transaction(conn):
        _put_meta(conn, FENCE_KEY, {"op": fence.op, "ranges": fence.ranges,
                                    "epoch": fence.epoch})


def lift_fence(conn: apsw.Connection, op: str | None = None) -> bool:
    """Remove the fence (only operation `op`'s, when given); whether one was removed."""
    held = load_fence(conn)
    if held is None or (op is not None and held.op != op):
        return False
    with transaction(conn):
        conn.execute("DELETE FROM meta WHERE key = ?", (FENCE_KEY,))
    return True


# ---- snapshot (source) and install (target) -------------------------------------------------


def snapshot(source_path: str, dest_path: str) -> int:
    """Copy a shard's database to dest_path as one consistent snapshot (SQLite's online
    backup, all pages in one step, so one read transaction); its last LSN (L0)."""
    if os.path.exists(dest_path):
        os.remove(dest_path)
    src = apsw.Connection(source_path, flags=apsw.SQLITE_OPEN_READWRITE)
    dest = apsw.Connection(dest_path)
    try:
        with dest.backup("main", src, "main") as backup:
            while not backup.step(-1):
                pass
        dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to ship
        return changelog.last_lsn(dest)
    finally:
        dest.close()
        src.close()


_FTS5_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")


def snapshot_ranges(source_path: str, dest_path: str, ranges: Ranges) -> int:
    """A new database at dest_path holding only the source's rows of `ranges`, as of one read
    snapshot of the source, with the source's schema (range indexes, full-text indexes and
    their triggers, which index the rows as they are copied) and an empty change log; its LSN
    (L0). The copy is one INSERT ... SELECT per range, in SQLite's C code, and reads no row it
    does not copy (the token index)."""
    if os.path.exists(dest_path):
        os.remove(dest_path)
    src = apsw.Connection(source_path, flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        search_query.register(src)
        rows = [(str(t), str(n), str(q)) for t, n, q in src.execute(
            "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid")]
        version = scalar(src, "PRAGMA user_version")
        virtual = [n for t, n, q in rows if t == "table" and q.upper().startswith("CREATE VIRTUAL")]
        shadows = {v + suffix for v in virtual for suffix in _FTS5_SHADOWS}
        dest = apsw.Connection(dest_path)
        try:
            dest.execute("PRAGMA journal_mode=OFF")  # a tmp/ file: a crash discards it
            with transaction(dest):
                for kind, name, sql in rows:
                    if name.startswith("sqlite_") or name in shadows or kind == "index":
                        continue
                    dest.execute(sql)
                dest.execute(f"PRAGMA user_version={int(version)}")
        finally:
            dest.close()
        src.execute("ATTACH DATABASE ? AS snap", (dest_path,))
        try:
            src.execute("PRAGMA snap.journal_mode=OFF")
            src.execute("PRAGMA snap.synchronous=OFF")
            with transaction(src, "BEGIN"):
                l0 = changelog.last_lsn(src)  # the read snapshot starts here
                # In primary-key order, so the copy appends to its B-tree.
                where = " OR ".join("token BETWEEN ? AND ?" for _ in ranges)
                src.execute(f"INSERT INTO snap.docs SELECT * FROM main.docs WHERE {where} "
                            "ORDER BY collection, id",
                            [v for span in signed_spans(ranges) for v in span])
                src.execute("INSERT INTO snap.search_indexes SELECT * FROM main.search_indexes")
                src.execute("INSERT INTO snap.meta(key, value) VALUES (?, ?)",
                            (changelog.LAST_LSN_KEY, str(l0)))
        finally:
            src.execute("DETACH DATABASE snap")
        dest = apsw.Connection(dest_path)
        try:  # indexes last: built from the copied rows in one pass each
            dest.execute("PRAGMA journal_mode=OFF")
            with transaction(dest):
                for kind, name, sql in rows:
                    if kind == "index" and not name.startswith("sqlite_"):
                        dest.execute(sql)
        finally:
            dest.close()
        return int(l0)
    finally:
        src.close()


@dataclass(frozen=True)
class Follow:
    """A following shard's state."""

    parent: str
    ranges: Ranges
    applied: int
    op: str


def load_follow(conn: apsw.Connection) -> Follow | None:
    """The follower state kept in `meta`, if the shard follows a parent."""
    raw = _get_meta(conn, FOLLOW_KEY)
    if raw is None:
        return None
    return Follow(raw["parent"], [tuple(r) for r in raw["ranges"]], int(raw["applied"]),
                  raw["op"])


def _put_follow(conn: apsw.Connection, f: Follow) -> None:
    _put_meta(conn, FOLLOW_KEY, {"parent": f.parent, "ranges": f.ranges,
                                 "applied": f.applied, "op": f.op})


def install(path: str, parent: str, ranges: Ranges, op: str) -> tuple[int, int]:
    """Turn a snapshot file into a follower of `parent` keeping only `ranges`: rows outside
    them, the change log, prepared transactions and any fence go; (L0, documents kept)."""
    conn = apsw.Connection(path)
    try:
        # A file of tmp/ that nothing serves yet: a crash discards it, so no journal and no
        # fsync per statement; it is fsynced once, whole, below.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        schema.migrate(conn)
        search_query.register(conn)
        l0 = changelog.last_lsn(conn)
        with transaction(conn):
            for lo, hi in signed_spans(complement(ranges)):
                conn.execute("DELETE FROM docs WHERE token BETWEEN ? AND ?", (lo, hi))
            conn.execute("DELETE FROM changes")
            conn.execute("DELETE FROM txn_locks")
            conn.execute("DELETE FROM txn_prepared")
            conn.execute("DELETE FROM meta WHERE key IN (?, ?, ?)",
                         (FENCE_KEY, changelog.LAST_LSN_KEY, FOLLOW_KEY))
            _put_follow(conn, Follow(parent, ranges, l0, op))
        kept = int(scalar(conn, "SELECT COALESCE(SUM(n), 0) FROM doc_counts"))
    finally:
        conn.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return l0, kept


def apply(conn: apsw.Connection, records: Sequence[changelog.Change]) -> int:
    """Apply a parent's records in LSN order to a follower, in one transaction with its new
    position; records at or before the position are skipped (a resend). Returns the position.
    FAILED_PRECONDITION for a shard that does not follow, a gap, or a record without token."""
    follow = load_follow(conn)
    if follow is None:
        raise FailedPreconditionError(f"shard {changelog.shard_of(conn)} follows no parent")
    applied = follow.applied
    with transaction(conn):
        for r in records:
            if r.lsn <= applied:
                continue
            if r.lsn != applied + 1:
                raise FailedPreconditionError(
                    f"record {r.lsn} does not follow position {applied} of "
                    f"{changelog.shard_of(conn)}")
            if r.token is None:
                raise FailedPreconditionError(
                    f"record {r.lsn} of shard {follow.parent} carries no token (written by an "
                    "older node); it cannot be placed")
            if contains(follow.ranges, r.token):
                if r.after is None:
                    conn.execute("DELETE FROM docs WHERE collection = ? AND id = ?",
                                 (r.collection, r.id))
                else:
                    version = int(json.loads(r.after).get("$version", 0))
                    conn.execute(
                        "INSERT OR REPLACE INTO docs(collection, id, token, version, body) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (r.collection, r.id, to_signed(r.token), version, r.after))
            applied = r.lsn
        _put_follow(conn, Follow(follow.parent, follow.ranges, applied, follow.op))
    return applied


def end_follow(conn: apsw.Connection) -> bool:
    """The follower became a shard of the ring: forget its parent (whether it had one)."""
    if load_follow(conn) is None:
        return False
    with transaction(conn):
        conn.execute("DELETE FROM meta WHERE key = ?", (FOLLOW_KEY,))
    return True


# ---- cleanup (source, after the ring moved) ---------------------------------------------------


def outside_rows(conn: apsw.Connection, owned: Ranges) -> bool:
    """Whether the shard holds any row whose token it no longer owns (index probes only)."""
    for lo, hi in signed_spans(complement(owned)):
        if conn.execute("SELECT 1 FROM docs WHERE token BETWEEN ? AND ? LIMIT 1",
                        (lo, hi)).fetchone():
            return True
    return False


def cleanup_step(conn: apsw.Connection, owned: Ranges, chunk: int = CLEANUP_CHUNK) -> int:
    """Delete up to `chunk` rows whose token the shard no longer owns, without change-log
    records, in one transaction; when none is left, lift the fence of ranges no longer owned.
    How many rows went (0: done)."""
    gone = 0
    with transaction(conn):
        for lo, hi in signed_spans(complement(owned)):
            conn.execute(
                "DELETE FROM docs WHERE (collection, id) IN (SELECT collection, id FROM docs "
                "WHERE token BETWEEN ? AND ? LIMIT ?)", (lo, hi, chunk - gone))
            gone += conn.changes()
            if gone >= chunk:
                break
    if gone == 0:
        fence = load_fence(conn)
        if fence is not None and not any(contains(owned, a) or contains(owned, b)
                                          for a, b in fence.ranges):
            lift_fence(conn, fence.op)
    return gone


def prepared_on(prepared: dict, ranges: Ranges) -> list[str]:
    """Transactions prepared on the shard that write a key in the ranges."""
    return sorted(txid for txid, p in prepared.items()
                  if any(contains(ranges, e.token) for e in p.effects))
