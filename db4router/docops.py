"""Point operations on documents: validate, locate the shard, send one Write or Read."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from db4.v1 import node_pb2
from db4core import documents
from db4core.errors import (
    ConditionFailedError,
    Db4Error,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
    WrongShardError,
)
from db4core.hashing import token_for
from db4core.ids import new_id, validate_id
from db4core.query import decode_where, validate_path
from db4router.claims import Claims, Wanted, claim_error, needs_claim
from db4router.collections import CollectionInfo, Collections
from db4router.commit import Committer, PlacedOp
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4router.nodeio import LOOKUP_CHUNK, read_all, write_op
from db4rpc.status import to_domain, trailers_of

OP_INDEX_KEY = "db4-op-index"  # trailer: 0-based index of the op a node Write failed on
UPSERT_ATTEMPTS = 3  # an upsert of an existing document whose document vanished meanwhile


def new_txid() -> str:
    """A transaction id for a write the router commits on its own (a document and its claim)."""
    return uuid.uuid4().hex


@dataclass
class Located:
    """A document's id and ring token; token None means "not known, look it up"."""

    id: str
    token: int | None


def parse_document(raw: bytes) -> documents.Document:
    """A client's document: strict JSON object, allowed field names, within the size limit."""
    documents.check_size(raw)
    doc = documents.decode_object(raw)
    documents.check_field_names(doc)
    return doc


def placement_view(raw: bytes) -> documents.Document:
    """A batch document read for placement only (its `$id` and partition value), at the C
    parser's speed: the node that writes it decodes it strictly (duplicate keys, NaN, depth,
    numbers) and fails the whole batch, naming the document, when it is not valid. What the C
    parser refuses gets parse_document's error."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        return parse_document(raw)
    documents.check_size(raw)
    documents.check_field_names(doc)
    return doc


def partition_value(info: CollectionInfo, doc: documents.Document, doc_id: str) -> object:
    """The document's partition key value; missing is INVALID_ARGUMENT."""
    if info.partition_key == "$id":
        return doc_id
    found, value = documents.get_path(doc, info.partition_key)
    if not found or value is None:
        raise InvalidArgumentError(
            f"document lacks the partition key field {info.partition_key!r} of collection "
            f"{info.name!r}"
        )
    return value


def check_patch_bytes(patch: bytes) -> None:
    """A patch: a JSON object within the size limit that names no system field but `$type`."""
    documents.check_size(patch)
    documents.check_patch(documents.decode_object(patch, "patch"))


def check_condition(condition: bytes) -> None:
    """A condition is a where of the query language."""
    try:
        decode_where(condition)
    except InvalidArgumentError as err:
        raise InvalidArgumentError(f"condition: {err.message}") from None


def check_deltas(raw: bytes) -> None:
    """Increment deltas: a non-empty JSON object {user field path: number}."""
    documents.check_size(raw)
    deltas = documents.decode_object(raw, "deltas")
    if not deltas:
        raise InvalidArgumentError("deltas must name at least one field")
    for path, delta in deltas.items():
        if path.startswith("$") or path in ("",):
            raise InvalidArgumentError(f"deltas: {path!r} is not a user field; only user "
                                       "fields can be incremented")
        try:
            validate_path(path)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(f"deltas: {err.message}") from None
        if isinstance(delta, bool) or not isinstance(delta, (int, float)):
            raise InvalidArgumentError(f"deltas: {path!r} must map to a number, got "
                                       f"{type(delta).__name__}")


def name_failed_op(err: grpc.RpcError, name_op: Callable[[int], str]) -> None:
    """Raise a failed Write's error naming the op it failed on (the node's `db4-op-index`
    trailer), e.g. `documents[7]: ...`; return when there is nothing to name."""
    index = trailers_of(err).get(OP_INDEX_KEY, "")
    if not index.isdigit():
        return
    domain = to_domain(err)
    if isinstance(domain, WrongShardError):
        return  # the dispatcher must see it to reroute
    domain.message = f"{name_op(int(index))}: {domain.message}"
    domain.args = (domain.message,)
    raise domain from None


class DocOps:
    """create/get/update/replace/upsert/delete through the dispatcher."""

    def __init__(self, dispatcher: Dispatcher, collections: Collections) -> None:
        self.dispatcher = dispatcher
        self.collections = collections
        self.committer = Committer(dispatcher)
        self.claims = Claims(dispatcher)

    # ---- locating ----------------------------------------------------------------------------

    def locate(self, info: CollectionInfo, doc_id: str, partition: bytes | None) -> Located:
        """Token from the given partition value, else the id in a collection partitioned by
        `$id`; None when a lookup is needed. A value given is a boundary whatever the key: in a
        collection partitioned by `$id` a document's value is its id, so naming another finds
        nothing (the node sees another token)."""
        validate_id(doc_id)
        if partition is not None:
            return Located(doc_id, token_for(documents.decode(partition, "partition")))
        if info.partition_key == "$id":
            return Located(doc_id, token_for(doc_id))
        return Located(doc_id, None)

    async def lookup(self, info: CollectionInfo, doc_id: str) -> tuple[bytes, int] | None:
        """Find a document on every shard by id: (body, token), None when nowhere."""
        return (await self.lookup_many(info, [doc_id])).get(doc_id)

    async def lookup_many(self, info: CollectionInfo, ids: list[str]
                          ) -> dict[str, tuple[bytes, int]]:
        """Find documents by id on every shard, LOOKUP_CHUNK ids per request: id -> (body,
        token) for those found (for collections not partitioned by `$id`). With a node down,
        an id found on a shard that answered is found (ids are unique in a collection); an id
        found nowhere is UNAVAILABLE, naming a shard that could not be asked and how many."""
        found: dict[str, tuple[bytes, int]] = {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            part = ids[start:start + LOOKUP_CHUNK]

            async def read(stub, shard, epoch, part=part):
                return await read_all(stub, shard, epoch, info.name, part)

            unreachable: dict[str, UnavailableError] = {}
            for items in (await self.dispatcher.every_shard(read, unreachable)).values():
                found.update((i, (it.document, it.token))
                             for i, it in zip(part, items, strict=True) if it.found)
            missing = [i for i in part if i not in found]
            if missing and unreachable:
                shard, err = min(unreachable.items())
                raise UnavailableError(
                    f"document {missing[0]!r} of {info.name!r} is on no shard that answered, "
                    f"and {len(unreachable)} shard(s) could not be asked ({shard}: "
                    f"{err.message}); give the partition value, or retry once they are back")
        return found

    async def _token(self, info: CollectionInfo, loc: Located) -> int | None:
        if loc.token is not None:
            return loc.token
        hit = await self.lookup(info, loc.id)
        return hit[1] if hit else None

    # ---- operations --------------------------------------------------------------------------

    async def send_ops(self, token: int, ops: list[node_pb2.WriteOp],
                       name_op: Callable[[int], str] | None = None
                       ) -> list[node_pb2.WriteResult]:
        """Ops of one shard (the owner of `token`) in one Write: one SQLite transaction.
        `name_op(i)` names op i in an error the node raised while applying it."""

        txid = new_txid()  # the node notes it: sent again after a broken connection, the
        # write is answered, not applied twice

        async def send(stub, shard, epoch):
            req = node_pb2.WriteRequest(epoch=epoch, shard_id=shard, ops=ops, txid=txid)
            try:
                return (await stub.Write(req, timeout=NODE_TIMEOUT_S)).results
            except grpc.RpcError as err:
                if name_op is not None:
                    name_failed_op(err, name_op)
                raise

        return list(await self.dispatcher.by_token(token, send))

    async def write(self, info: CollectionInfo, kind: str, doc_id: str, token: int,
                    body: bytes = b"", expected: int | None = None) -> node_pb2.WriteResult:
        """One op in one Write request to the owning shard."""
        op = write_op(info, kind, doc_id, token, body, expected)
        return (await self.send_ops(token, [op]))[0]

    async def create(self, collection: str, raw: bytes, kind: str = "create") -> bytes:
        """Insert (or upsert) a document; `$id` is generated when absent."""
        info = await self.collections.ensure(collection)
        doc = parse_document(raw)
        doc_id = validate_id(doc["$id"]) if "$id" in doc else new_id()
        token = token_for(partition_value(info, doc, doc_id))
        if not needs_claim(info, "$id" in doc):
            return (await self.write(info, kind, doc_id, token, raw)).document
        for attempt in range(UPSERT_ATTEMPTS):
            try:
                return await self._create_claimed(info, Wanted(doc_id, token, kind), raw)
            except NotFoundError:  # an upsert's document was deleted after we saw it
                if attempt == UPSERT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _create_claimed(self, info: CollectionInfo, want: Wanted, raw: bytes) -> bytes:
        """The document and its id claim in one transaction (see claims.py)."""
        plan = (await self.claims.plan(info, [want]))[0]
        ops = [PlacedOp(want.token, write_op(info, plan.kind, want.id, want.token, raw))]
        if plan.claim is not None:
            ops.append(plan.claim)

        def name(err: Db4Error, slot: int | None) -> Db4Error:
            return err if slot == 0 else claim_error(err, info, want)

        outcome = await self.committer.run(new_txid(), ops, [], name)
        return outcome.results[0].document

    async def get(self, collection: str, doc_id: str, partition: bytes | None
                  ) -> tuple[bytes | None, int]:
        """The stored document (None when missing) and its ring token (the stored one, else
        the one the id or partition value computes, 0 when unknown)."""
        info = await self.collections.current(collection)
        loc = self.locate(info, doc_id, partition)
        if loc.token is None:
            hit = await self.lookup(info, doc_id)
            return (hit[0], hit[1]) if hit else (None, 0)

        async def read(stub, shard, epoch):
            req = node_pb2.ReadRequest(epoch=epoch, shard_id=shard, collection=info.name,
                                       ids=[doc_id], tokens=[loc.token])
            return (await stub.Read(req, timeout=NODE_TIMEOUT_S)).items[0]

        item = await self.dispatcher.by_token(loc.token, read)
        if not item.found:
            return None, loc.token
        return item.document, item.token or loc.token

    async def update(self, collection: str, doc_id: str, patch: bytes, expected: int | None,
                     partition: bytes | None, condition: bytes = b"") -> bytes:
        """Shallow-merge a patch; NOT_FOUND when missing. With a condition (a where), it
        applies only when the stored document matches, checked in the write's transaction."""
        info = await self.collections.current(collection)
        check_patch_bytes(patch)
        if condition:
            check_condition(condition)
        token = await self._token(info, self.locate(info, doc_id, partition))
        if token is None:
            if condition:
                raise ConditionFailedError(f"document {doc_id!r} not found in {collection!r}; "
                                           "the condition does not hold")
            raise NotFoundError(f"document {doc_id!r} not found in {collection!r}")
        op = write_op(info, "update", doc_id, token, patch, expected, condition)
        return (await self.send_ops(token, [op]))[0].document

    async def increment(self, collection: str, doc_id: str, deltas: bytes,
                        partition: bytes | None) -> bytes:
        """Add numbers to fields in one Write; NOT_FOUND when missing."""
        info = await self.collections.current(collection)
        check_deltas(deltas)
        token = await self._token(info, self.locate(info, doc_id, partition))
        if token is None:
            raise NotFoundError(f"document {doc_id!r} not found in {collection!r}")
        return (await self.write(info, "increment", doc_id, token, deltas)).document

    async def replace(self, collection: str, doc_id: str, raw: bytes, expected: int | None,
                      partition: bytes | None) -> bytes:
        """Replace user fields; the body's `$id`, when given, must be doc_id."""
        info = await self.collections.current(collection)
        doc = parse_document(raw)
        if doc.get("$id", doc_id) != doc_id:
            raise InvalidArgumentError(f"replace of {doc_id!r} with a document whose $id is "
                                       f"{doc['$id']!r}")
        token: int | None = self.locate(info, doc_id, partition).token
        if token is not None:
            return (await self.write(info, "replace", doc_id, token, raw, expected)).document
        # Partitioned by a field and no value given: route by the new body. Not found there
        # may mean the document lives under another value, which a replace cannot change.
        token = token_for(partition_value(info, doc, doc_id))
        try:
            return (await self.write(info, "replace", doc_id, token, raw, expected)).document
        except NotFoundError:
            hit = await self.lookup(info, doc_id)
            if hit is not None and hit[1] != token:
                raise InvalidArgumentError(
                    f"document {doc_id!r} exists in {info.name!r} under another "
                    f"{info.partition_key!r} value; a partition key value cannot change") from None
            raise

    async def delete(self, collection: str, doc_id: str, expected: int | None,
                     partition: bytes | None) -> bool:
        """Remove a document; False when it did not exist."""
        info = await self.collections.current(collection)
        token = await self._token(info, self.locate(info, doc_id, partition))
        if token is None:
            if expected is not None:
                raise NotFoundError(f"document {doc_id!r} not found in {collection!r}")
            return False
        return (await self.write(info, "delete", doc_id, token, b"", expected)).found
