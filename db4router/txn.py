"""The `Commit` RPC: validate a buffered transaction, place its reads and ops on their shards,
and commit it (commit.py picks one Write, parallel read-only Writes, or two-phase commit).

Everything is checked before anything is sent: a bad transaction is INVALID_ARGUMENT and
nothing is written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from db4.v1 import node_pb2, router_pb2
from db4core import documents
from db4core.errors import Db4Error, InvalidArgumentError, NotFoundError
from db4core.hashing import token_for
from db4core.ids import validate_id
from db4core.names import validate_collection
from db4core.txn import MAX_TXN_BYTES, MAX_TXN_OPS, validate_txid
from db4router.claims import ClaimPlan, Wanted, claim_error, needs_claim
from db4router.collections import CollectionInfo
from db4router.commit import PlacedOp, PlacedRead
from db4router.docops import DocOps, check_patch_bytes, parse_document, partition_value
from db4router.nodeio import write_op

KINDS = {
    router_pb2.TXN_OP_KIND_CREATE: "create",
    router_pb2.TXN_OP_KIND_UPDATE: "update",
    router_pb2.TXN_OP_KIND_REPLACE: "replace",
    router_pb2.TXN_OP_KIND_UPSERT: "upsert",
    router_pb2.TXN_OP_KIND_DELETE: "delete",
}
CREATING = ("create", "upsert")
WITH_DOCUMENT = ("create", "replace", "upsert")


@dataclass
class Op:
    """A validated TxnOp."""

    index: int
    kind: str
    msg: router_pb2.TxnOp
    doc: documents.Document | None  # the parsed body of create, replace, upsert
    token: int | None = None  # None: not placed (a delete of a missing document)


def _prefixed(err: Db4Error, where: str) -> Db4Error:
    """The same error (class, trailers), its message prefixed with where it happened."""
    err.message = f"{where}: {err.message}"
    err.args = (err.message,)
    return err


def serializable(isolation: int) -> bool:
    """Whether reads are validated: unspecified means serializable."""
    if isolation in (router_pb2.ISOLATION_UNSPECIFIED, router_pb2.ISOLATION_SERIALIZABLE):
        return True
    if isolation == router_pb2.ISOLATION_READ_COMMITTED:
        return False
    raise InvalidArgumentError(f"unknown isolation level {isolation}")


def check_op(index: int, msg: router_pb2.TxnOp) -> Op:
    """One op's kind, names and body, as the point operations check them."""
    try:
        kind = KINDS.get(msg.kind)
        if kind is None:
            raise InvalidArgumentError(f"unknown op kind {msg.kind}")
        validate_collection(msg.collection)
        validate_id(msg.id)
        if msg.HasField("partition"):
            documents.decode(msg.partition, "partition")
        doc = None
        if kind in WITH_DOCUMENT:
            doc = parse_document(msg.body)
            if doc.get("$id", msg.id) != msg.id:
                raise InvalidArgumentError(f"the document's $id {doc['$id']!r} is not the op's "
                                           f"id {msg.id!r}")
        elif kind == "update":
            check_patch_bytes(msg.body)
        elif msg.body:
            raise InvalidArgumentError("a delete carries no body")
        return Op(index, kind, msg, doc)
    except InvalidArgumentError as err:
        raise _prefixed(err, f"ops[{index}]") from None


def check_read(index: int, msg: router_pb2.TxnRead) -> None:
    """A read names a collection, an id and a version (0: no document)."""
    try:
        validate_collection(msg.collection)
        validate_id(msg.id)
        if msg.version < 0:
            raise InvalidArgumentError(f"version must be 0 (no document) or more, got "
                                       f"{msg.version}")
        if msg.HasField("partition"):
            documents.decode(msg.partition, "partition")
    except InvalidArgumentError as err:
        raise _prefixed(err, f"reads[{index}]") from None


def check_limits(ops: list[router_pb2.TxnOp]) -> None:
    """At most MAX_TXN_OPS writes and MAX_TXN_BYTES of documents and patches."""
    if len(ops) > MAX_TXN_OPS:
        raise InvalidArgumentError(f"a transaction holds at most {MAX_TXN_OPS} writes, "
                                   f"got {len(ops)}")
    size = sum(len(op.body) for op in ops)
    if size > MAX_TXN_BYTES:
        raise InvalidArgumentError(f"a transaction holds at most {MAX_TXN_BYTES} bytes of "
                                   f"documents and patches, got {size}")


def _given_token(info: CollectionInfo, msg) -> int | None:
    """The token a read or op states (token, partition value, or the id itself)."""
    if msg.HasField("token"):
        return int(msg.token)
    if msg.HasField("partition"):
        return token_for(documents.decode(msg.partition, "partition"))
    if info.partition_key == "$id":
        return token_for(msg.id)
    return None


class Coordinator:
    """Commits transactions buffered by clients; keeps nothing between requests."""

    def __init__(self, ops: DocOps) -> None:
        self.docops = ops
        self.collections = ops.collections
        self.committer = ops.committer
        self.claims = ops.claims

    async def commit(self, request: router_pb2.CommitRequest) -> router_pb2.CommitResponse:
        """Validate, place, commit; the stored documents per op."""
        txid = validate_txid(request.txid)
        validated = serializable(request.isolation)
        check_limits(list(request.ops))
        ops = [check_op(i, m) for i, m in enumerate(request.ops)]
        reads = list(request.reads) if validated else []
        for i, r in enumerate(reads):
            check_read(i, r)
        infos = await self._infos(ops, reads)
        await self._place_ops(infos, ops)
        placed_reads = await self._place_reads(infos, ops, reads)
        placed, labels = await self._wire_ops(infos, ops)
        outcome = await self.committer.run(txid, placed, placed_reads,
                                           lambda err, slot: _name(err, slot, labels))
        results = [node_pb2.WriteResult(found=False)] * len(ops)
        for slot, (label, _) in enumerate(labels):
            if isinstance(label, int):
                results[label] = outcome.results[slot]
        return router_pb2.CommitResponse(documents=[r.document for r in results],
                                         found=[r.found for r in results],
                                         txid=outcome.txid or txid,
                                         shards=outcome.shards)

    async def _infos(self, ops: list[Op], reads: list[router_pb2.TxnRead]
                     ) -> dict[str, CollectionInfo]:
        """Options per collection: ensured where the transaction may create, else current."""
        creating = {op.msg.collection for op in ops if op.kind in CREATING}
        names = {op.msg.collection for op in ops} | {r.collection for r in reads}
        return {name: await (self.collections.ensure(name) if name in creating
                             else self.collections.current(name)) for name in sorted(names)}

    async def _place_ops(self, infos: dict[str, CollectionInfo], ops: list[Op]) -> None:
        """Set each op's token; an op on a document the transaction does not place is looked
        up on every shard (update/replace of a missing one: NOT_FOUND; delete: not found)."""
        known: dict[tuple[str, str], int] = {}
        unknown: list[Op] = []
        for op in ops:
            info = infos[op.msg.collection]
            op.token = _given_token(info, op.msg)
            if op.token is None and op.kind in WITH_DOCUMENT:
                assert op.doc is not None
                try:
                    op.token = token_for(partition_value(info, op.doc, op.msg.id))
                except InvalidArgumentError as err:
                    raise _prefixed(err, f"ops[{op.index}]") from None
            key = (op.msg.collection, op.msg.id)
            if op.token is None:
                op.token = known.get(key)
            if op.token is None:
                unknown.append(op)
            else:
                known.setdefault(key, op.token)
        found = await self._lookup(infos, [(op.msg.collection, op.msg.id) for op in unknown])
        for op in unknown:
            op.token = found.get((op.msg.collection, op.msg.id))
            if op.token is None and (op.kind != "delete" or op.msg.HasField("expected_version")):
                raise NotFoundError(f"ops[{op.index}]: document {op.msg.id!r} not found in "
                                    f"{op.msg.collection!r}")

    async def _lookup(self, infos: dict[str, CollectionInfo], keys: list[tuple[str, str]]
                      ) -> dict[tuple[str, str], int]:
        """Tokens of documents found by id on any shard."""
        out: dict[tuple[str, str], int] = {}
        for name in sorted({c for c, _ in keys}):
            ids = sorted({i for c, i in keys if c == name})
            hits = await self.docops.lookup_many(infos[name], ids)
            out.update(((name, i), token) for i, (_, token) in hits.items())
        return out

    async def _place_reads(self, infos: dict[str, CollectionInfo], ops: list[Op],
                           reads: list[router_pb2.TxnRead]) -> list[PlacedRead]:
        """Reads to validate, each on its shard. A read with no stated place is looked up;
        found nowhere, there is no shard to validate it on."""
        known = {(op.msg.collection, op.msg.id): op.token for op in ops if op.token is not None}
        placed: list[tuple[int, router_pb2.TxnRead]] = []
        unknown: list[router_pb2.TxnRead] = []
        for r in reads:
            token = _given_token(infos[r.collection], r)
            if token is None:
                token = known.get((r.collection, r.id))
            if token is None:
                unknown.append(r)
            else:
                placed.append((token, r))
        found = await self._lookup(infos, [(r.collection, r.id) for r in unknown])
        placed += [(found[(r.collection, r.id)], r) for r in unknown
                   if (r.collection, r.id) in found]
        return [PlacedRead(t, node_pb2.ReadCheck(collection=r.collection, id=r.id, token=t,
                                                 version=r.version)) for t, r in placed]

    async def _wire_ops(self, infos: dict[str, CollectionInfo], ops: list[Op]
                        ) -> tuple[list[PlacedOp], list[tuple[int | Wanted, CollectionInfo]]]:
        """Wire ops, with the id claims of new documents; per wire op what it stands for (the
        transaction's op index, or the Wanted of a claim)."""
        wanted = self._wanted(infos, ops)
        plans: dict[int, ClaimPlan] = {}
        for name in sorted({infos[op.msg.collection].name for op in wanted}):
            part = [op for op in wanted if op.msg.collection == name]
            got = await self.claims.plan(infos[name], [_want(op) for op in part])
            plans.update((op.index, plan) for op, plan in zip(part, got, strict=True))
        placed: list[PlacedOp] = []
        labels: list[tuple[int | Wanted, CollectionInfo]] = []
        for op in ops:
            if op.token is None:
                continue  # a delete of a missing document: found=false, nothing to send
            info = infos[op.msg.collection]
            plan = plans.get(op.index)
            kind = plan.kind if plan else op.kind
            expected = op.msg.expected_version if op.msg.HasField("expected_version") else None
            placed.append(PlacedOp(op.token, write_op(info, kind, op.msg.id, op.token,
                                                      op.msg.body, expected)))
            labels.append((op.index, info))
            if plan is not None and plan.claim is not None:
                placed.append(plan.claim)
                labels.append((_want(op), info))
        return placed, labels

    @staticmethod
    def _wanted(infos: dict[str, CollectionInfo], ops: list[Op]) -> list[Op]:
        """Creates and upserts that need an id claim: the first of each id whose body names
        its `$id` (an id the client generated for a create is not in the body)."""
        seen: set[tuple[str, str]] = set()
        out = []
        for op in ops:
            key = (op.msg.collection, op.msg.id)
            if op.kind in CREATING and key not in seen and op.doc is not None \
                    and needs_claim(infos[op.msg.collection], "$id" in op.doc):
                out.append(op)
            seen.add(key)
        return out


def _want(op: Op) -> Wanted:
    assert op.token is not None
    return Wanted(op.msg.id, op.token, op.kind)


def _name(err: Db4Error, slot: int | None,
          labels: list[tuple[int | Wanted, CollectionInfo]]) -> Db4Error:
    """A node's error naming the transaction's op it failed on."""
    if slot is None:
        return err
    label, info = labels[slot]
    if isinstance(label, Wanted):
        return claim_error(err, info, label)
    return _prefixed(err, f"ops[{label}]")
