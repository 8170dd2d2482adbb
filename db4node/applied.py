"""Writes applied, by txid: a write sent again (its first answer lost with a broken connection)
gets the first one's results instead of being applied twice.

The router gives every write a txid. When the connection to the node breaks before the answer
(the node was killed, say), the router cannot know whether the write committed, so once the
node is back it sends the same request, with the same txid, to the same shard. The shard
records each write's txid in the write's own SQLite transaction (`writes_applied`: the txid,
when, the LSNs of its change-log records, the ops that changed nothing), so the record exists
exactly when the write committed. A txid found there is answered from the change log (each
record's after-image) or, for records already truncated, from the documents as they are now.
The lookup comes before the fence check: a write applied before a split's fence is answered by
the shard that applied it, not applied again on the new shard. Records are kept KEEP_S seconds,
far longer than the router tries again, and pruned on the writer thread every PRUNE_EVERY
writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import apsw

from db4core.errors import InvalidArgumentError
from db4node.ops import Op, OpResult, ReadCheck

KEEP_S = 600
PRUNE_EVERY = 1000


def digest(ops: Sequence[Op], reads: Sequence[ReadCheck]) -> str:
    """What a write asks, in 32 hex digits: the same txid with another request is refused."""
    h = hashlib.blake2b(digest_size=16)
    for op in ops:  # on the writer thread for every write: ~2 us an op (json.dumps: ~8 us)
        condition = json.dumps(op.condition, sort_keys=True) if op.condition is not None else ""
        head = repr((op.kind, op.collection, op.id, op.token, op.expected_version,
                     op.partition_key, condition, len(op.body))).encode()
        h.update(len(head).to_bytes(4, "big"))
        h.update(head)
        h.update(op.body)
    h.update(repr([(r.collection, r.id, r.token, r.version) for r in reads]).encode())
    return h.hexdigest()


def record(conn: apsw.Connection, txid: str, now_ms: int, first_lsn: int, last_lsn: int,
           results: Sequence[OpResult], request: str) -> None:
    """Note a write inside its open transaction: its change-log records are first..last (in
    op order, one per op that changed a document); request is its digest."""
    unchanged = [i for i, r in enumerate(results) if not r.found]
    conn.execute(
        "INSERT INTO writes_applied(txid, at_ms, first_lsn, last_lsn, unchanged, digest) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (txid, now_ms, first_lsn, last_lsn, json.dumps(unchanged) if unchanged else None,
         request))


def lookup(conn: apsw.Connection, txid: str, ops: Sequence[Op], request: str
           ) -> tuple[list[OpResult], int] | None:
    """(results, last LSN) of the write already applied under txid, or None; INVALID_ARGUMENT
    when that txid was used by another request (its digest differs)."""
    row = conn.execute("SELECT first_lsn, last_lsn, unchanged, digest FROM writes_applied "
                       "WHERE txid = ?", (txid,)).fetchone()
    if row is None:
        return None
    first, last, unchanged_json, noted = row
    if noted != request:
        raise InvalidArgumentError(
            f"txid {txid!r} was already used by another write on this shard; a txid names "
            "one write (send the same request to repeat it)")
    unchanged = set(json.loads(unchanged_json)) if unchanged_json else set()
    afters = dict(conn.execute("SELECT lsn, after FROM changes WHERE lsn BETWEEN ? AND ?",
                               (first, last)))
    results: list[OpResult] = []
    lsn = first
    for i, op in enumerate(ops):
        if i in unchanged:
            results.append(OpResult(False))
            continue
        if op.kind == "delete":
            results.append(OpResult(True))
        elif lsn in afters:
            results.append(OpResult(True, (afters[lsn] or "").encode()))
        else:  # truncated since: the document as it is now
            now = conn.execute("SELECT body FROM docs WHERE collection = ? AND id = ?",
                               (op.collection, op.id)).fetchone()
            results.append(OpResult(True, now[0].encode() if now else b""))
        lsn += 1
    return results, last


def prune(conn: apsw.Connection, now_ms: int) -> int:
    """Forget writes older than KEEP_S (inside the caller's transaction); how many."""
    conn.execute("DELETE FROM writes_applied WHERE at_ms < ?", (now_ms - KEEP_S * 1000,))
    return conn.changes()
