"""The participant's side of two-phase commit, on one shard's writer thread.

Prepare persists a transaction's intents (the after-images of its ops, computed exactly as a
plain write would, then rolled back) and its locks in one fsynced SQLite transaction; commit
writes the after-images with their change-log records; abort drops them. Until one of those, no
other transaction may read-validate or write the locked keys, so the after-images stay right.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from db4core.errors import LockedError
from db4node.ops import Effect, Op, OpResult, ReadCheck
from db4node.sql import transaction

if TYPE_CHECKING:
    from db4node.shard import Shard

Key = tuple[str, str]  # (collection, id)


class KeyLockedError(LockedError):
    """A key is held by the prepared transaction `holder` (ABORTED, reason locked)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass
class Prepared:
    """A prepared transaction on one shard, awaiting its decision."""

    txid: str
    participants: list[str]
    prepared_at_ms: int
    in_doubt_ms: int
    effects: list[Effect]
    results: list[OpResult]
    keys: list[Key]

    def in_doubt(self, now_ms: int) -> bool:
        """Whether it has waited for its decision longer than it should."""
        return now_ms >= self.prepared_at_ms + self.in_doubt_ms

    def intents_json(self) -> str:
        """The stored intents. A result whose document is an effect's after-image (a create,
        update or replace) names that effect instead of holding the document a second time."""
        afters = {e.after: k for k, e in enumerate(self.effects) if e.after is not None}
        results: list[dict[str, Any]] = []
        for r in self.results:
            text = r.document.decode()
            k = afters.get(text)
            results.append({"found": r.found, "effect": k} if k is not None
                           else {"found": r.found, "document": text})
        return json.dumps({"effects": [e.to_json() for e in self.effects], "results": results},
                          separators=(",", ":"), ensure_ascii=False)


def results_of(obj: dict, effects: list[Effect]) -> list[OpResult]:
    """The results stored by intents_json (documents in place or by effect)."""
    out = []
    for r in obj["results"]:
        text = effects[r["effect"]].after if "effect" in r else r["document"]
        out.append(OpResult(r["found"], (text or "").encode()))
    return out


def only_creates(ops: Sequence[Op]) -> bool:
    """Whether every op creates a key no other op of the request touches: each op's checks
    then see only the stored rows, never a row an earlier op of the request wrote."""
    return all(o.kind == "create" for o in ops) and \
        len({(o.collection, o.id) for o in ops}) == len(ops)


def keys_of(ops: Iterable[Op], reads: Iterable[ReadCheck]) -> list[Key]:
    """The keys a request touches, each once, in first-seen order."""
    keys = [(r.collection, r.id) for r in reads] + [(o.collection, o.id) for o in ops]
    return list(dict.fromkeys(keys))


def check_unlocked(shard: Shard, keys: Iterable[Key], txid: str) -> None:
    """Raise KeyLockedError when another transaction holds any of the keys."""
    for key in keys:
        holder = shard.locks.get(key)
        if holder is not None and holder != txid:
            raise KeyLockedError(
                f"{key[0]}/{key[1]} is held by transaction {holder}, which is prepared and "
                "awaits its decision; retry shortly", holder)


def load(shard: Shard) -> None:
    """Fill shard.locks and shard.prepared from the database (at open)."""
    keys: dict[str, list[Key]] = {}
    for collection, doc_id, txid in shard.conn.execute(
            "SELECT collection, id, txid FROM txn_locks"):
        shard.locks[(collection, doc_id)] = txid
        keys.setdefault(txid, []).append((collection, doc_id))
    for txid, participants, prepared_at, in_doubt_ms, intents in shard.conn.execute(
            "SELECT txid, participants, prepared_at_ms, in_doubt_ms, intents FROM txn_prepared"):
        obj = json.loads(intents)
        effects = [Effect.from_json(e) for e in obj["effects"]]
        shard.prepared[txid] = Prepared(
            txid, json.loads(participants), prepared_at, in_doubt_ms, effects,
            results_of(obj, effects), keys.get(txid, []))


def prepare(shard: Shard, txid: str, ops: list[Op], reads: Sequence[ReadCheck],
            participants: list[str], in_doubt_ms: int) -> list[OpResult]:
    """Lock the keys, validate the reads, compute and persist the intents (fsynced); returns
    each op's result as it will commit. A txid prepared already answers its stored results."""
    done = shard.prepared.get(txid)
    if done is not None:
        return done.results
    keys = keys_of(ops, reads)
    check_unlocked(shard, keys, txid)
    now = int(time.time() * 1000)
    conn = shard.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        shard.validate_reads(reads)
        # The ops run for real, with every check a plain write makes, then are undone: only
        # their effects are kept, and written at commit. Creates of distinct keys (a batch
        # insert) need no row written to be checked: their rows are not written here at all.
        conn.execute("SAVEPOINT intents")
        results, effects = shard.apply_ops(ops, now, store=not only_creates(ops))
        conn.execute("ROLLBACK TO intents")
        conn.execute("RELEASE intents")
        record = Prepared(txid, list(participants), now, in_doubt_ms, effects, results, keys)
        conn.execute(
            "INSERT INTO txn_prepared(txid, participants, prepared_at_ms, in_doubt_ms, intents) "
            "VALUES (?, ?, ?, ?, ?)",
            (txid, json.dumps(record.participants), now, in_doubt_ms, record.intents_json()))
        conn.executemany("INSERT INTO txn_locks(collection, id, txid) VALUES (?, ?, ?)",
                         [(c, i, txid) for c, i in keys])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    shard.prepared[txid] = record
    shard.locks.update((key, txid) for key in keys)
    return results


def commit_prepared(shard: Shard, txid: str) -> bool:
    """Write the after-images and their change-log records (all with the txid and the sorted
    participants) and release the locks, in one transaction; False when the shard holds no
    such transaction."""
    record = shard.prepared.get(txid)
    if record is None:
        return False
    now = int(time.time() * 1000)
    shard.conn.execute("BEGIN IMMEDIATE")
    try:
        shard.store_effects(record.effects)
        lsn = shard.log_effects(record.effects, txid, now, record.participants)
        _forget(shard, record)
        shard.conn.execute("COMMIT")
    except BaseException:
        shard.conn.execute("ROLLBACK")
        raise
    shard.last_lsn = lsn
    _release(shard, record)
    return True


def abort_prepared(shard: Shard, txid: str) -> bool:
    """Drop the intents and release the locks; False when the shard holds no such
    transaction."""
    record = shard.prepared.get(txid)
    if record is None:
        return False
    with transaction(shard.conn):
        _forget(shard, record)
    _release(shard, record)
    return True


def in_doubt(shard: Shard, now_ms: int) -> list[Prepared]:
    """The prepared transactions past their in-doubt timeout (callable from any thread)."""
    return [p for p in list(shard.prepared.values()) if p.in_doubt(now_ms)]


def _forget(shard: Shard, record: Prepared) -> None:
    # By key: txn_locks is keyed by (collection, id), so a delete by txid alone would scan it.
    shard.conn.executemany("DELETE FROM txn_locks WHERE collection = ? AND id = ? AND txid = ?",
                           [(c, i, record.txid) for c, i in record.keys])
    shard.conn.execute("DELETE FROM txn_prepared WHERE txid = ?", (record.txid,))


def _release(shard: Shard, record: Prepared) -> None:
    """Forget the transaction in memory once its removal committed."""
    for key in record.keys:
        if shard.locks.get(key) == record.txid:
            del shard.locks[key]
    del shard.prepared[record.txid]
