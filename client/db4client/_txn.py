"""A transaction's buffer and its wire form, shared by `Transaction` and `AsyncTransaction`.

The SDK keeps the whole transaction: the documents it read (with their `$version` and ring
token, validated at commit under serializable isolation) and its writes in order, with
savepoints as marks in the list of writes. Nothing is sent for a write; `commit` sends
everything in one router `Commit`, and the router keeps nothing between requests. Reads see the
transaction's own writes: the buffered writes of a key are replayed over what was read.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from db4.v1 import router_pb2
from db4client import _query, _wire
from db4client._plan import Plan, RunIn, Sleep
from db4client._retry import full_jitter_s, retry_settings
from db4client._wire import DB4, Call, Document
from db4client.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    TransactionAbortedError,
)
from db4client.results import CommitResult, Page, TransactionResult
from db4core import documents
from db4core.ids import new_id, validate_id
from db4core.names import validate_collection
from db4core.txn import MAX_TXN_BYTES, MAX_TXN_OPS

ISOLATIONS = {
    "serializable": router_pb2.ISOLATION_SERIALIZABLE,
    "read_committed": router_pb2.ISOLATION_READ_COMMITTED,
}
CREATE, UPDATE, REPLACE, UPSERT, DELETE = (
    router_pb2.TXN_OP_KIND_CREATE, router_pb2.TXN_OP_KIND_UPDATE, router_pb2.TXN_OP_KIND_REPLACE,
    router_pb2.TXN_OP_KIND_UPSERT, router_pb2.TXN_OP_KIND_DELETE)
# After one of these the key's value no longer depends on what is stored: no read is needed.
_DETERMINING = (CREATE, UPSERT, DELETE)

ACTIVE, COMMITTED, ROLLED_BACK, FAILED, TIMED_OUT = (
    "active", "committed", "rolled back", "failed", "timed out")

Key = tuple[str, str]  # (collection, id)


@dataclass(frozen=True)
class _Read:
    """A document the transaction read: what `TxnRead` sends, and the document itself."""

    collection: str
    id: str
    partition: bytes | None
    doc: Document | None
    token: int | None

    def message(self) -> router_pb2.TxnRead:
        version = self.doc["$version"] if self.doc is not None else 0
        return router_pb2.TxnRead(collection=self.collection, id=self.id, version=version,
                                  token=self.token, partition=self.partition)


@dataclass(frozen=True)
class _Op:
    """One buffered write: the `TxnOp` to send and its decoded body for the overlay."""

    message: router_pb2.TxnOp
    value: Document | None  # the document or patch; None for delete

    @property
    def key(self) -> Key:
        return (self.message.collection, self.message.id)


def check_isolation(isolation: Any) -> int:
    """The Isolation enum value of "serializable" or "read_committed"."""
    if not isinstance(isolation, str) or isolation not in ISOLATIONS:
        raise InvalidArgumentError(
            f"isolation must be one of {sorted(ISOLATIONS)}, got {isolation!r}")
    return ISOLATIONS[isolation]


def check_timeout(timeout: Any) -> float:
    """A transaction timeout: a finite number of seconds above 0."""
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout) or timeout <= 0):
        raise InvalidArgumentError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


class Mark:
    """An anonymous savepoint (`nested()`): it cannot collide with a name the caller chose."""

    def __repr__(self) -> str:
        return "<nested savepoint>"


def _savepoint_name(name: Any) -> str | Mark:
    if isinstance(name, Mark) or (isinstance(name, str) and name):
        return name
    raise InvalidArgumentError(f"a savepoint name is a non-empty str, got {name!r}")


class TxnBuffer:
    """Reads, writes and savepoints of one transaction, and the state it is in.

    Not thread-safe: one transaction belongs to one thread (or one task).
    """

    def __init__(self, isolation: str = "serializable", timeout: float = 30.0) -> None:
        self.isolation = check_isolation(isolation)
        self.timeout = check_timeout(timeout)
        self.txid = uuid.uuid4().hex
        self.deadline = time.monotonic() + self.timeout
        self.state = ACTIVE
        self.result: CommitResult | None = None
        self._reads: dict[tuple[str, str, bytes | None], _Read] = {}
        self._ops: list[_Op] = []
        self._bytes = 0
        self._savepoints: list[tuple[str | Mark, int]] = []  # (name, number of writes before it)

    # ---- state ----

    def check_active(self) -> float:
        """Seconds left before the timeout; raises once the transaction has ended or timed out."""
        if self.state == ACTIVE and time.monotonic() >= self.deadline:
            self._end(TIMED_OUT)
        if self.state == TIMED_OUT:
            raise TransactionAbortedError(
                f"transaction {self.txid} passed its timeout of {self.timeout:g} s and was "
                "rolled back; nothing was written")
        if self.state != ACTIVE:
            raise FailedPreconditionError(
                f"transaction {self.txid} has ended ({self.state}); start a new one")
        return self.deadline - time.monotonic()

    def _end(self, state: str) -> None:
        self.state = state
        self._ops, self._savepoints = [], []

    def discard(self) -> None:
        """Drop everything (nothing was sent); later use raises. A no-op once ended."""
        if self.state == ACTIVE:
            self._end(ROLLED_BACK)

    @property
    def writes(self) -> int:
        """How many writes are buffered."""
        return len(self._ops)

    # ---- reads ----

    def get(self, collection: str, doc_id: str, partition: Any = None
            ) -> Plan[Document | None]:
        """The document as this transaction sees it: what was read (once per key, so a second
        get repeats the first) with the buffered writes replayed over it."""
        left = self.check_active()
        call = _wire.get(collection, doc_id, partition)  # validates
        collection, doc_id = call.request.collection, call.request.id
        part = call.request.partition if call.request.HasField("partition") else None
        read = self._reads.get((collection, doc_id, part))
        if read is None and not self._determined((collection, doc_id)):
            raw = Call(DB4, "Get", call.request, lambda resp: resp, idempotent=True,
                       timeout=left)
            try:
                resp = yield raw
            except DeadlineExceededError:
                self.check_active()  # TransactionAbortedError when it was our own timeout
                raise
            read = _Read(collection, doc_id, part, _wire._found(resp),
                         resp.token if resp.found else None)
            self._reads[read.collection, read.id, read.partition] = read
        return self._overlay((collection, doc_id), read.doc if read is not None else None)

    def get_many(self, collection: str, ids: Any) -> Plan[list[Document | None]]:
        """Documents by id as this transaction sees them, in input order (None where missing):
        the ids not read before go out in one GetMany (several when the answer is cut short by
        its byte bound), so a transaction reading many documents reads them at one moment and
        its validation window stays short."""
        left = self.check_active()
        call = _wire.get_many(collection, ids)  # validates
        collection, asked = call.request.collection, list(call.request.ids)
        want = [i for i in dict.fromkeys(asked)
                if (collection, i, None) not in self._reads
                and not self._determined((collection, i))]
        got: list[Document | None] = []
        while len(got) < len(want):
            req = router_pb2.GetManyRequest(collection=collection, ids=want[len(got):])
            raw = Call(DB4, "GetMany", req, _wire._found_many, idempotent=True, timeout=left)
            try:
                part = yield raw
            except DeadlineExceededError:
                self.check_active()  # TransactionAbortedError when it was our own timeout
                raise
            if not part:
                raise InternalError(f"the router answered GetMany of {len(want) - len(got)} "
                                    "ids with no item")
            got += part
        for doc_id, doc in zip(want, got, strict=True):
            self._reads[collection, doc_id, None] = _Read(collection, doc_id, None, doc, None)
        out = []
        for doc_id in asked:
            read = self._reads.get((collection, doc_id, None))
            out.append(self._overlay((collection, doc_id), read.doc if read else None))
        return out

    def find(self, collection: str, where: Any = None, sort: Any = None, limit: Any = 100,
             cursor: Any = None) -> Call[Page]:
        """A plain Find (read committed): it does not see this transaction's writes."""
        left = self.check_active()
        call = _query.find(collection, where, sort, limit, cursor)
        return Call(call.service, call.method, call.request, call.parse, idempotent=True,
                    timeout=left)

    def _determined(self, key: Key) -> bool:
        return any(op.key == key and op.message.kind in _DETERMINING for op in self._ops)

    def _overlay(self, key: Key, base: Document | None) -> Document | None:
        doc = base
        now = int(time.time() * 1000)
        for op in self._ops:
            if op.key == key:
                doc = _apply(op, doc, now)
        return copy.deepcopy(doc)

    def _read_of(self, key: Key) -> _Read | None:
        """A read of this key that found the document (its token and partition place writes)."""
        return next((r for r in self._reads.values()
                     if (r.collection, r.id) == key and r.doc is not None), None)

    # ---- writes ----

    def create(self, collection: str, doc: Document) -> str:
        """Buffer a create; the document's `$id` (generated when absent)."""
        self.check_active()
        return self._add_new(CREATE, collection, doc)

    def update(self, collection: str, doc_id: str, patch: Document,
               expected_version: int | None = None, partition: Any = None) -> None:
        """Buffer a shallow-merge patch (None removes a field)."""
        self.check_active()
        self._add(UPDATE, collection, doc_id, _wire._patch(patch), expected_version, partition)

    def replace(self, collection: str, doc_id: str, doc: Document,
                expected_version: int | None = None, partition: Any = None) -> None:
        """Buffer a swap of the document's user fields."""
        self.check_active()
        self._add(REPLACE, collection, doc_id, _wire._document(doc), expected_version, partition)

    def upsert(self, collection: str, doc: Document) -> str:
        """Buffer a create-or-replace; the document's `$id` (generated when absent)."""
        self.check_active()
        return self._add_new(UPSERT, collection, doc)

    def delete(self, collection: str, doc_id: str, expected_version: int | None = None,
               partition: Any = None) -> None:
        """Buffer a delete."""
        self.check_active()
        self._add(DELETE, collection, doc_id, b"", expected_version, partition)

    def _add_new(self, kind: int, collection: str, doc: Document) -> str:
        """Buffer a create or upsert. An id generated here goes in the op, not in the body: the
        router then knows it is fresh and needs no id claim."""
        body = _wire._document(doc)
        doc_id: str = doc["$id"] if "$id" in doc else new_id()
        self._add(kind, collection, doc_id, body, None, None)
        return doc_id

    def _add(self, kind: int, collection: str, doc_id: Any, body: bytes,
             expected_version: Any, partition: Any) -> None:
        """Check and append one write; nothing changes when a check fails."""
        key = (validate_collection(collection), validate_id(doc_id))
        msg = router_pb2.TxnOp(kind=kind, collection=key[0], id=key[1], body=body,
                               expected_version=_wire._version(expected_version),
                               partition=_wire._partition(partition))
        if len(self._ops) + 1 > MAX_TXN_OPS:
            raise InvalidArgumentError(
                f"a transaction holds at most {MAX_TXN_OPS} writes; this would be write "
                f"{len(self._ops) + 1} (nothing was sent)")
        if self._bytes + len(body) > MAX_TXN_BYTES:
            raise InvalidArgumentError(
                f"a transaction holds at most {MAX_TXN_BYTES} bytes of documents and patches; "
                f"this write of {len(body)} bytes would bring it to {self._bytes + len(body)} "
                "(nothing was sent)")
        read = self._read_of(key)
        if read is not None:
            if read.token is not None:
                msg.token = read.token
            if not msg.HasField("partition") and read.partition is not None:
                msg.partition = read.partition
        self._ops.append(_Op(msg, documents.decode(body) if body else None))
        self._bytes += len(body)

    # ---- savepoints ----

    def savepoint(self, name: str | Mark) -> None:
        """Mark the current point; a name given again marks anew (the latest one counts)."""
        self.check_active()
        self._savepoints.append((_savepoint_name(name), len(self._ops)))

    def rollback_to(self, name: str | Mark) -> None:
        """Drop the writes made after the savepoint and the savepoints after it (the savepoint
        itself stays)."""
        self.check_active()
        i = self._find_savepoint(name)
        mark = self._savepoints[i][1]
        for op in self._ops[mark:]:
            self._bytes -= len(op.message.body)
        del self._ops[mark:]
        del self._savepoints[i + 1:]

    def release(self, name: str | Mark) -> None:
        """Forget the savepoint and every later one; the writes stay."""
        self.check_active()
        del self._savepoints[self._find_savepoint(name):]

    def has_savepoint(self, name: str | Mark) -> bool:
        """Whether the savepoint still exists (an outer rollback_to may have dropped it)."""
        return self.state == ACTIVE and any(n == name for n, _ in self._savepoints)

    def _find_savepoint(self, name: str | Mark) -> int:
        name = _savepoint_name(name)
        for i in range(len(self._savepoints) - 1, -1, -1):
            if self._savepoints[i][0] == name:
                return i
        raise InvalidArgumentError(f"no savepoint named {name!r} in this transaction")

    # ---- commit ----

    def commit_request(self) -> router_pb2.CommitRequest:
        """The Commit request: reads only under serializable isolation, writes in order."""
        reads = ([r.message() for r in self._reads.values()]
                 if self.isolation == router_pb2.ISOLATION_SERIALIZABLE else [])
        return router_pb2.CommitRequest(txid=self.txid, isolation=self.isolation, reads=reads,
                                        ops=[op.message for op in self._ops])

    def commit(self) -> Plan[CommitResult]:
        """Send the transaction in one Commit (nothing when there is nothing to send or
        validate). Never retried: after UNAVAILABLE the outcome is unknown."""
        self.check_active()
        req = self.commit_request()
        if not req.reads and not req.ops:
            self.result = CommitResult(self.txid)
        else:
            try:
                self.result = yield Call(DB4, "Commit", req, _commit_result)
            except BaseException:
                self._end(FAILED)
                raise
        self._end(COMMITTED)
        return self.result


def _commit_result(resp: router_pb2.CommitResponse) -> CommitResult:
    return CommitResult(
        resp.txid, [documents.decode_stored(raw) if raw else None for raw in resp.documents],
        list(resp.found), resp.shards)


def _apply(op: _Op, doc: Document | None, now: int) -> Document | None:
    """A document after one buffered write. System fields are provisional: the version it
    would get were nothing else to write first, and this client's clock."""
    kind, value, doc_id = op.message.kind, op.value, op.message.id
    if kind == DELETE:
        return None
    if kind == CREATE or (kind == UPSERT and doc is None):
        assert value is not None
        return documents.stamp(documents.user_fields(value), doc_id, 1, now, now)
    if doc is None:  # update or replace of a missing document: NOT_FOUND at commit
        return None
    assert value is not None
    fields = (documents.merge_patch(documents.user_fields(doc), value) if kind == UPDATE
              else documents.user_fields(value))
    return documents.stamp(fields, doc_id, doc["$version"] + 1, doc["$createdAt"], now)


def run_settings(fn: Any, max_retries: Any, initial_backoff_ms: Any, isolation: Any,
                 timeout: Any) -> tuple[int, float]:
    """Check run_transaction's arguments before the first attempt; (retries, backoff ms)."""
    if not callable(fn):
        raise InvalidArgumentError(f"fn must be callable, got {type(fn).__name__}")
    check_isolation(isolation)
    check_timeout(timeout)
    return retry_settings(max_retries, initial_backoff_ms)


def run_transaction(begin: Callable[[], Any], fn: Callable[[Any], Any], max_retries: int,
                    backoff_ms: float) -> Plan[TransactionResult]:
    """Run fn(tx) in a fresh transaction from `begin()` until one commits; after a
    TransactionAbortedError (ConflictError and LockedError among them) sleep with full jitter
    and start over, at most `max_retries` times, then raise the last error."""
    attempt = 0
    while True:
        attempt += 1
        try:
            value = yield RunIn(begin(), fn)
        except TransactionAbortedError:
            if attempt > max_retries:
                raise
            yield Sleep(full_jitter_s(backoff_ms, attempt - 1))
            continue
        return TransactionResult(value, attempt)
