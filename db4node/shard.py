"""One shard: a SQLite database holding documents and their change log.

Every write request runs in one IMMEDIATE transaction: either all of its ops and their change-log
records commit, or nothing does. Commit returns only after the WAL is fsynced (synchronous=FULL).

A partition value is a boundary. Documents of two partition values that hash onto one shard share
the `docs` table, told apart only by the stored ring token: an op or read whose token differs from
the stored row's sees no document there, and no write changes a document's partition value.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from db4core import documents
from db4core.errors import (
    OP_INDEX_KEY,
    AlreadyExistsError,
    ConditionFailedError,
    ConflictError,
    Db4Error,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
)
from db4core.hashing import canonical_json, from_signed, to_signed, token_for
from db4core.query import compile_where
from db4node import applied, changelog, follow, pragmas, retention, schema, search_query, txn
from db4node.ops import Effect, Op, OpResult, ReadCheck, increment, is_claim
from db4node.queries import keep_to
from db4node.sql import transaction

__all__ = ["Current", "Op", "OpResult", "ReadCheck", "Shard", "WriteItem", "Written",
           "read_rows"]


class GroupFailedError(InternalError):
    """A write of a group could not be rolled back to its savepoint: the group fails whole."""


@dataclass(frozen=True)
class WriteItem:
    """One write of a group (Shard.write_group)."""

    ops: list[Op]
    txid: str = ""
    reads: Sequence[ReadCheck] = ()


@dataclass(frozen=True)
class Written:
    """A write's answer: its results, its txid and the last LSN it wrote (the first time)."""

    results: list[OpResult]
    txid: str
    lsn: int


@dataclass
class Current:
    """The stored row an op starts from."""

    doc: documents.Document
    version: int
    raw: str
    token: int  # unsigned: the partition value the document was stored under


def _now_ms() -> int:
    return int(time.time() * 1000)


_encode = documents.compact_json


def read_rows(conn: apsw.Connection, collection: str, ids: list[str],
              tokens: list[int] | None = None) -> list[tuple[str, int] | None]:
    """(body, unsigned token) per id, None where missing. With tokens (one per id; empty means
    none, as on the wire), a row stored under another token is missing too."""
    if tokens and len(tokens) != len(ids):
        raise InvalidArgumentError("tokens must be empty or one per id")
    wanted: list[int | None] = list(tokens) if tokens else [None] * len(ids)
    out: list[tuple[str, int] | None] = []
    for doc_id, token in zip(ids, wanted, strict=True):
        row = conn.execute(
            "SELECT body, token FROM docs WHERE collection = ? AND id = ?", (collection, doc_id)
        ).fetchone()
        stored = (row[0], from_signed(row[1])) if row else None
        out.append(stored if stored and token in (None, stored[1]) else None)
    return out


class Shard:
    """A shard database file and the operations on it.

    Only the shard's writer thread calls the methods that write; `locks` and `prepared` change
    only there, and the event loop may look keys up in them (a dict lookup is atomic).
    """

    def __init__(self, shard_id: str, path: str) -> None:
        self.shard_id = shard_id
        self.path = path
        self.conn = apsw.Connection(path)
        pragmas.apply_all(self.conn)
        schema.migrate(self.conn)
        search_query.register(self.conn)
        self.last_lsn = changelog.last_lsn(self.conn)
        self.truncated_through = 0  # highest LSN truncation deleted since open
        # (collection, id) -> txid of the prepared transaction holding the key
        self.locks: dict[tuple[str, str], str] = {}
        self.prepared: dict[str, txn.Prepared] = {}
        txn.load(self)
        # Splits and moves (follow.py): the fence on ranges in cutover; the parent followed.
        self.fence = follow.load_fence(self.conn)
        self.follow = follow.load_follow(self.conn)
        self._writes_noted = 0  # since open: every PRUNE_EVERY-th write prunes old notes

    def close(self) -> None:
        """Close the database (a checkpoint happens on the last connection's close)."""
        self.conn.close()

    # ---- reads -------------------------------------------------------------------------------

    def read(self, collection: str, ids: list[str], tokens: list[int] | None = None
             ) -> list[tuple[str, int] | None]:
        """read_rows on the shard's own connection."""
        return read_rows(self.conn, collection, ids, tokens)

    def _current(self, collection: str, doc_id: str) -> Current | None:
        row = self.conn.execute(
            "SELECT body, version, token FROM docs WHERE collection = ? AND id = ?",
            (collection, doc_id),
        ).fetchone()
        return Current(json.loads(row[0]), row[1], row[0], from_signed(row[2])) if row else None

    def validate_reads(self, reads: Sequence[ReadCheck]) -> None:
        """Each read's version is still the stored one (0: still no document), else ABORTED
        with both versions. A row under another token is no document for that read."""
        for r in reads:
            current = self._current(r.collection, r.id)
            actual = current.version if current is not None and current.token == r.token else 0
            if actual != r.version:
                raise ConflictError(
                    f"read of {r.collection}/{r.id} is stale: it saw version {r.version}, the "
                    f"shard holds {actual}", r.version, actual)

    # ---- writes ------------------------------------------------------------------------------

    def write(self, ops: list[Op], txid: str = "", reads: Sequence[ReadCheck] = ()
              ) -> tuple[list[OpResult], str]:
        """One write alone (write_group of one): results and the txid, or its error."""
        (outcome,) = self.write_group([WriteItem(ops, txid, reads)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome.results, outcome.txid

    def write_group(self, items: Sequence[WriteItem]) -> list[Written | Exception]:
        """Apply independent writes in one SQLite transaction, one commit and one fsync (group
        commit): each validates its reads, then applies its ops atomically with their
        change-log records, in a savepoint of its own, so a write that fails (its error in its
        place in the answer) leaves the others. Answers hold only once the transaction
        committed. A key held by a prepared transaction is LockedError. A write with ops under
        a caller's txid is noted (applied.py): sent again, it is answered with the first one's
        results, before any fence or lock check, and not applied twice. An error that is not
        one write's own (the disk, say) fails them all."""
        out: list[Written | Exception] = []
        now = _now_ms()
        lsn = self.last_lsn
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                try:
                    written = self._write_one(item, lsn, now)
                except GroupFailedError:
                    raise
                except Exception as err:
                    if not self.conn.in_transaction:
                        raise  # SQLite ended the whole transaction: not this write's alone
                    out.append(err)
                    continue
                out.append(written)
                lsn = max(lsn, written.lsn)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.last_lsn = lsn
        return out

    def _write_one(self, item: WriteItem, lsn: int, now: int) -> Written:
        """One write of a group, after LSN `lsn`, inside the open transaction."""
        ops, txid, reads = item.ops, item.txid, item.reads
        noted = bool(txid) and bool(ops)
        request = applied.digest(ops, reads) if noted else ""
        if noted:
            again = applied.lookup(self.conn, txid, ops, request)
            if again is not None:
                return Written(again[0], txid, again[1])
        txid = txid or uuid.uuid4().hex
        self.check_fence(ops)
        txn.check_unlocked(self, txn.keys_of(ops, reads), txid)
        self.conn.execute("SAVEPOINT one_write")
        try:
            self.validate_reads(reads)
            results, effects = self.apply_ops(ops, now)
            last = self.log_effects(effects, txid, now, after=lsn)
            if noted:
                applied.record(self.conn, txid, now, lsn + 1, last, results, request)
                self._writes_noted += 1
                if self._writes_noted % applied.PRUNE_EVERY == 0:
                    applied.prune(self.conn, now)
        except BaseException:
            # Back to before this write (unless SQLite already ended the whole transaction:
            # a full disk, an I/O error; then the group fails, as it does when this fails).
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK TO one_write")
                    self.conn.execute("RELEASE one_write")
                except apsw.Error as err:
                    raise GroupFailedError(
                        f"a write of shard {self.shard_id} could not be undone alone ({err}); "
                        "its whole group was rolled back") from err
            raise
        self.conn.execute("RELEASE one_write")
        return Written(results, txid, last)

    def apply_ops(self, ops: list[Op], now: int, store: bool = True
                  ) -> tuple[list[OpResult], list[Effect]]:
        """Apply ops in order inside the open transaction: each op's result, and the effects of
        those that changed a row. With store=False (a prepare of creates of distinct keys,
        txn.only_creates) every check runs but no row is written."""
        results: list[OpResult] = []
        effects: list[Effect] = []
        # Creates of distinct keys (store=False): one statement tells that none of their ids
        # is stored, and each op skips its own lookup; else every op looks (and the first
        # taken id fails where a plain write fails).
        absent = not store and not self._any_stored(ops)
        for index, op in enumerate(ops):
            result, effect = self._apply_at(index, op, now, store, absent)
            results.append(result)
            if effect is not None:
                effects.append(effect)
        return results, effects

    def _any_stored(self, ops: Sequence[Op]) -> bool:
        """Whether a row exists for any op's (collection, id)."""
        by_collection: dict[str, list[str]] = {}
        for op in ops:
            by_collection.setdefault(op.collection, []).append(op.id)
        return any(self.conn.execute(
            "SELECT 1 FROM docs WHERE collection = ? AND id IN (SELECT value FROM json_each(?)) "
            "LIMIT 1", (collection, json.dumps(ids))).fetchone()
            for collection, ids in by_collection.items())

    def log_effects(self, effects: list[Effect], txid: str, now: int,
                    participants: Sequence[str] | None = None, after: int | None = None
                    ) -> int:
        """Append a change-log record per effect (dense LSNs after `after`, by default the last
        committed one; participants: a cross-shard transaction's shards); returns the last LSN.
        The caller holds the transaction and sets last_lsn once it commits."""
        parts = tuple(sorted(participants)) if participants is not None else None
        first = self.last_lsn if after is None else after
        changelog.append_many(self.conn, [
            changelog.Change(lsn, txid, e.op, e.collection, e.id, e.before, e.after, now,
                             participants=parts, token=e.token)
            for lsn, e in enumerate(effects, first + 1)])
        return first + len(effects)

    def store_effects(self, effects: Sequence[Effect]) -> None:
        """Write the effects' rows (a prepared transaction's after-images) as computed, in
        order: consecutive writes run as one statement."""
        for deletes, run in itertools.groupby(effects, key=lambda e: e.after is None):
            if deletes:
                self.conn.executemany("DELETE FROM docs WHERE collection = ? AND id = ?",
                                      [(e.collection, e.id) for e in run])
            else:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO docs(collection, id, token, version, body) "
                    "VALUES (?,?,?,?,?)",
                    [(e.collection, e.id, to_signed(e.token), e.version, e.after) for e in run])

    def prepare(self, txid: str, ops: list[Op], reads: Sequence[ReadCheck],
                participants: list[str], in_doubt_ms: int) -> list[OpResult]:
        """Phase one of a cross-shard commit (txn.prepare)."""
        if txid not in self.prepared:
            self.check_fence(ops)
        return txn.prepare(self, txid, ops, reads, participants, in_doubt_ms)

    def check_fence(self, ops: Sequence[Op]) -> None:
        """wrong_shard when an op writes a key of ranges in a cutover (follow.Fence)."""
        if self.fence is not None:
            self.fence.check(self.shard_id, [op.token for op in ops])

    # ---- splits and moves (follow.py), on the writer thread ------------------------------------

    def set_fence(self, fence: follow.Fence) -> tuple[list[str], int]:
        """Fence moving ranges; (transactions prepared on them, last LSN) as of the fence."""
        follow.set_fence(self.conn, fence)
        self.fence = fence
        return follow.prepared_on(self.prepared, fence.ranges), self.last_lsn

    def lift_fence(self, op: str | None = None) -> bool:
        """Lift the fence (only operation op's, when given); whether there was one."""
        lifted = follow.lift_fence(self.conn, op)
        self.fence = follow.load_fence(self.conn)
        return lifted

    def apply_parent(self, records: Sequence[changelog.Change]) -> int:
        """Apply the followed parent's records (follow.apply); the new position."""
        applied = follow.apply(self.conn, records)
        self.follow = follow.load_follow(self.conn)
        return applied

    def end_follow(self) -> bool:
        """Stop following (the shard is placed now)."""
        ended = follow.end_follow(self.conn)
        self.follow = None
        return ended

    def cleanup_step(self, owned: follow.Ranges) -> int:
        """Delete a chunk of rows no longer owned (follow.cleanup_step); how many."""
        gone = follow.cleanup_step(self.conn, owned)
        self.fence = follow.load_fence(self.conn)
        return gone

    def commit_prepared(self, txid: str) -> bool:
        """Apply a prepared transaction (txn.commit_prepared); False when none is held."""
        return txn.commit_prepared(self, txid)

    def abort_prepared(self, txid: str) -> bool:
        """Drop a prepared transaction (txn.abort_prepared); False when none is held."""
        return txn.abort_prepared(self, txid)

    def _apply_at(self, index: int, op: Op, now: int, store: bool = True, absent: bool = False
                  ) -> tuple[OpResult, Effect | None]:
        """_apply, with the op's index in the request on any error so a batch can say which
        document failed (the router maps it to `documents[i]`)."""
        try:
            return self._apply(op, now, store, absent)
        except Db4Error as err:
            err.extra_trailers[OP_INDEX_KEY] = str(index)
            raise

    def _apply(self, op: Op, now: int, store: bool = True, absent: bool = False
               ) -> tuple[OpResult, Effect | None]:
        """Apply one op inside the open transaction; return its result and effect. store=False:
        every check, no row written; absent=True: the op's id is known not to be stored."""
        current = None if absent else self._visible(op, self._current(op.collection, op.id))
        self._check_condition(op, current)
        self._check_version(op, current)
        if op.kind == "delete":
            return self._delete(op, current)
        if op.kind == "create" and current is not None:
            raise AlreadyExistsError(f"document {op.id!r} already exists in {op.collection!r}")
        if op.kind in ("update", "replace", "increment") and current is None:
            raise NotFoundError(f"document {op.id!r} not found in {op.collection!r}")
        fields = self._new_fields(op, current)
        if current is None:
            doc = documents.stamp(fields, op.id, 1, now, now)
        else:
            created = current.doc["$createdAt"]
            doc = documents.stamp(fields, op.id, current.version + 1, created, now)
        self._check_partition(op, doc, current)
        body = self._store(op, doc, store)
        before = current.raw if current else None
        effect = Effect("insert" if current is None else "update", op.collection, op.id,
                        op.token, doc["$version"], before, body)
        return OpResult(True, body.encode()), effect

    def _check_condition(self, op: Op, current: Current | None) -> None:
        """The op's where holds on the stored document (as this transaction sees it), else
        FAILED_PRECONDITION condition_failed; a missing document holds no condition."""
        if op.condition is None:
            return
        sql, params = compile_where(op.condition)
        held = current is not None and self.conn.execute(
            f"SELECT 1 FROM docs WHERE collection = ? AND id = ? AND {sql}",
            [op.collection, op.id, *params]).fetchone() is not None
        if not held:
            state = "does not hold" if current is not None else "cannot hold: no such document"
            raise ConditionFailedError(
                f"condition on {op.collection}/{op.id} {state}; nothing was written")

    @staticmethod
    def _visible(op: Op, current: Current | None) -> Current | None:
        """The stored row as the op may see it. A row stored under another token belongs to
        another partition value: for ops on an existing document it is not there (NotFound, not
        a ConflictError that would give its version away). create and upsert cannot pretend so,
        since the id is taken; their errors name neither the other value nor the document."""
        if current is None or current.token == op.token:
            return current
        if op.kind == "create":
            raise AlreadyExistsError(f"document {op.id!r} already exists in {op.collection!r}")
        if op.kind == "upsert":
            raise InvalidArgumentError(
                f"document {op.id!r} exists in {op.collection!r} under another "
                f"{op.partition_key!r} value; a partition key value cannot change")
        return None

    @staticmethod
    def _check_version(op: Op, current: Current | None) -> None:
        """An expected_version must match the stored `$version` (ABORTED otherwise)."""
        if op.expected_version is None:
            return
        if current is None:
            raise NotFoundError(f"document {op.id!r} not found in {op.collection!r}")
        if current.version != op.expected_version:
            raise ConflictError(
                f"version conflict on {op.collection}/{op.id}: expected {op.expected_version}, "
                f"found {current.version}",
                op.expected_version,
                current.version,
            )

    @staticmethod
    def _new_fields(op: Op, current: Current | None) -> documents.Document:
        """The user fields after the op: merged for update, given for create/replace/upsert."""
        if op.kind == "increment":
            assert current is not None
            return increment(documents.user_fields(current.doc), op.body)
        given = documents.decode_object(op.body, "patch" if op.kind == "update" else "document")
        if op.kind == "update":
            documents.check_patch(given)
            assert current is not None
            return documents.merge_patch(documents.user_fields(current.doc), given)
        documents.check_field_names(given)
        return documents.user_fields(given)

    @staticmethod
    def _check_partition(op: Op, doc: documents.Document, current: Current | None) -> None:
        """The new document has a partition value: the stored one, exactly (compared as the
        hash sees it, so 1 and 1.0 differ), or for a new document one hashing to op.token."""
        found, value = documents.get_path(doc, op.partition_key)
        if not found or value is None:
            raise InvalidArgumentError(
                f"document {op.id!r} lacks the partition key field {op.partition_key!r}")
        if current is not None:
            _, before = documents.get_path(current.doc, op.partition_key)
            if canonical_json(value) != canonical_json(before):
                raise InvalidArgumentError(
                    f"document {op.id!r}: {op.partition_key!r} differs from the stored value; a "
                    "partition key value cannot change")
        elif token_for(value) != op.token:
            raise InvalidArgumentError(
                f"document {op.id!r}: its partition key {op.partition_key!r} is not the value "
                "the request names")

    def _store(self, op: Op, doc: documents.Document, store: bool = True) -> str:
        """Write the document row (its partition value checked) after checking its size; the
        body, written or (store=False) not."""
        body = _encode(doc)
        documents.check_size(body.encode())
        if store:
            self.conn.execute(
                "INSERT OR REPLACE INTO docs(collection, id, token, version, body) "
                "VALUES (?,?,?,?,?)", (op.collection, op.id, to_signed(op.token), doc["$version"],
                                       body))
        return body

    def _delete(self, op: Op, current: Current | None) -> tuple[OpResult, Effect | None]:
        if current is None:
            return OpResult(False), None
        self.conn.execute(
            "DELETE FROM docs WHERE collection = ? AND id = ?", (op.collection, op.id)
        )
        return OpResult(True), Effect("delete", op.collection, op.id, current.token, 0,
                                      current.raw, None)

    def truncate(self, upto: int, chunk: int = retention.CHUNK) -> int:
        """Delete the oldest change-log records up to LSN `upto`, at most `chunk` of them, in
        one transaction; how many went (0: nothing left to delete)."""
        with transaction(self.conn):
            gone = retention.delete_through(self.conn, upto, self.last_lsn, chunk)
        if gone:
            self.truncated_through = max(self.truncated_through,
                                         changelog.first_lsn(self.conn) - 1)
        return gone

    # ---- stats -------------------------------------------------------------------------------

    def wal_checkpoint(self) -> int:
        """Copy the WAL into the database file and truncate it (SQLite's TRUNCATE checkpoint);
        the WAL bytes left (some stay while a reader still needs them)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        wal = self.path + "-wal"
        return os.path.getsize(wal) if os.path.exists(wal) else 0

    def stats(self, only: follow.Ranges | None = None) -> dict:
        """Document counts per collection (id claims are no documents; with `only`, rows in
        those token ranges: a shard whose cleanup runs counts what it owns), file size, last
        LSN."""
        per, size = sizes(self.conn, self.path, only)
        return {"documents": sum(per.values()), "bytes": size, "last_lsn": self.last_lsn,
                "collections": per}


def sizes(conn: apsw.Connection, path: str, only: follow.Ranges | None = None
          ) -> tuple[dict[str, int], int]:
    """Documents per collection (id claims are no documents; with `only`, those whose token
    falls in the ranges) and the bytes of the shard's file and WAL, read on any connection to
    the shard at `path`."""
    params: list = []
    if only is None:  # the counts the writes keep (schema.COUNTS_MIGRATION)
        sql = "SELECT collection, n FROM doc_counts WHERE n > 0"
    else:  # a cleanup runs: the rows of those ranges, counted on the token index
        sql, params = keep_to(
            "SELECT collection, COUNT(*) FROM docs WHERE 1 GROUP BY collection", [], only)
    per = {c: n for c, n in conn.execute(sql, params) if not is_claim(c)}
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    return per, size
