"""Point operations on documents: validate, locate the shard, send one Write or Read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from db4.v1 import node_pb2, node_pb2_grpc
from db4core import documents
from db4core.errors import (
    AlreadyExistsError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    WrongShardError,
)
from db4core.hashing import token_for
from db4core.ids import new_id, validate_id
from db4router.collections import CollectionInfo, Collections
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4rpc.status import to_domain, trailers_of

LOOKUP_CHUNK = 50  # ids per Read request; the node answers a byte-bounded prefix of them
OP_INDEX_KEY = "db4-op-index"  # trailer: 0-based index of the op a node Write failed on

KINDS = {
    "create": node_pb2.OP_KIND_CREATE,
    "update": node_pb2.OP_KIND_UPDATE,
    "replace": node_pb2.OP_KIND_REPLACE,
    "upsert": node_pb2.OP_KIND_UPSERT,
    "delete": node_pb2.OP_KIND_DELETE,
}


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


def write_op(info: CollectionInfo, kind: str, doc_id: str, token: int, body: bytes = b"",
             expected: int | None = None) -> node_pb2.WriteOp:
    """One wire op; the node checks the result still hashes to `token` under the partition key."""
    return node_pb2.WriteOp(kind=KINDS[kind], collection=info.name, id=doc_id, token=token,
                            body=body, expected_version=expected,
                            partition_key=info.partition_key)


async def read_all(stub: node_pb2_grpc.NodeStub, shard: str, epoch: int, collection: str,
                   ids: Sequence[str], tokens: Sequence[int] = ()) -> list[node_pb2.ReadItem]:
    """One item per id. A node answers a prefix of the ids when the rest would pass its byte
    budget, so ask again for the ids after that prefix until every id has its item."""
    items: list[node_pb2.ReadItem] = []
    while len(items) < len(ids):
        done = len(items)
        req = node_pb2.ReadRequest(epoch=epoch, shard_id=shard, collection=collection,
                                   ids=ids[done:], tokens=tokens[done:] if tokens else ())
        got = (await stub.Read(req, timeout=NODE_TIMEOUT_S)).items
        if not got:  # a node must make progress, or this would loop forever
            raise InternalError(f"shard {shard} answered a Read of {len(ids) - done} ids "
                                "with no item")
        items.extend(got[:len(ids) - done])
    return items


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

    # ---- locating ----------------------------------------------------------------------------

    def locate(self, info: CollectionInfo, doc_id: str, partition: bytes | None) -> Located:
        """Token from the id or the given partition value; None when a lookup is needed."""
        validate_id(doc_id)
        if info.partition_key == "$id":
            return Located(doc_id, token_for(doc_id))
        if partition is None:
            return Located(doc_id, None)
        return Located(doc_id, token_for(documents.decode(partition, "partition")))

    async def lookup(self, info: CollectionInfo, doc_id: str) -> tuple[bytes, int] | None:
        """Find a document on every shard by id: (body, token), None when nowhere."""
        return (await self.lookup_many(info, [doc_id])).get(doc_id)

    async def lookup_many(self, info: CollectionInfo, ids: list[str]
                          ) -> dict[str, tuple[bytes, int]]:
        """Find documents by id on every shard, LOOKUP_CHUNK ids per request: id -> (body,
        token) for those found (for collections not partitioned by `$id`)."""
        found: dict[str, tuple[bytes, int]] = {}
        for start in range(0, len(ids), LOOKUP_CHUNK):
            part = ids[start:start + LOOKUP_CHUNK]

            async def read(stub, shard, epoch, part=part):
                return await read_all(stub, shard, epoch, info.name, part)

            for items in (await self.dispatcher.every_shard(read)).values():
                found.update((i, (it.document, it.token))
                             for i, it in zip(part, items, strict=True) if it.found)
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

        async def send(stub, shard, epoch):
            req = node_pb2.WriteRequest(epoch=epoch, shard_id=shard, ops=ops)
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
        if "$id" in doc:
            await self.check_id_elsewhere(info, doc_id, token, kind)
        return (await self.write(info, kind, doc_id, token, raw)).document

    async def check_id_elsewhere(self, info: CollectionInfo, doc_id: str, token: int,
                                 kind: str) -> None:
        """`$id` is unique in a collection. Partitioned by `$id`, the owning shard enforces it;
        partitioned by another field, a caller-chosen id may already live under another
        partition value on another shard, so every shard is asked first (generated ids are
        unique by construction and skip this)."""
        if info.partition_key == "$id":
            return
        hit = await self.lookup(info, doc_id)
        if hit is None or (kind == "upsert" and hit[1] == token):
            return
        if kind == "create" or hit[1] == token:
            raise AlreadyExistsError(f"document {doc_id!r} already exists in {info.name!r}")
        raise InvalidArgumentError(
            f"document {doc_id!r} exists in {info.name!r} under another {info.partition_key!r} "
            "value; a partition key value cannot change")

    async def get(self, collection: str, doc_id: str, partition: bytes | None) -> bytes | None:
        """The stored document, None when missing."""
        info = await self.collections.current(collection)
        loc = self.locate(info, doc_id, partition)
        if loc.token is None:
            hit = await self.lookup(info, doc_id)
            return hit[0] if hit else None

        async def read(stub, shard, epoch):
            req = node_pb2.ReadRequest(epoch=epoch, shard_id=shard, collection=info.name,
                                       ids=[doc_id], tokens=[loc.token])
            return (await stub.Read(req, timeout=NODE_TIMEOUT_S)).items[0]

        item = await self.dispatcher.by_token(loc.token, read)
        return item.document if item.found else None

    async def update(self, collection: str, doc_id: str, patch: bytes, expected: int | None,
                     partition: bytes | None) -> bytes:
        """Shallow-merge a patch; NOT_FOUND when missing."""
        info = await self.collections.current(collection)
        documents.check_size(patch)
        documents.check_patch(documents.decode_object(patch, "patch"))
        token = await self._token(info, self.locate(info, doc_id, partition))
        if token is None:
            raise NotFoundError(f"document {doc_id!r} not found in {collection!r}")
        return (await self.write(info, "update", doc_id, token, patch, expected)).document

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
