"""Requests and answers, shared by the sync and asyncio clients so they cannot drift.

Each public operation is one function here that validates its input (raising
InvalidArgumentError before anything is sent), builds the protobuf request, and says how to
read the answer and whether the call is idempotent. The clients only execute a `Call`: pick the
stub method, attach deadline and metadata, retry when allowed, map errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from db4.v1 import admin_pb2, router_pb2
from db4client.errors import Db4Error, InvalidArgumentError, NotFoundError
from db4core import documents
from db4core.ids import validate_id
from db4core.names import DEFAULT_PARTITION_KEY, validate_collection, validate_partition_key

T = TypeVar("T")
Document = dict[str, Any]

# Service names as the clients key their stubs.
DB4 = "db4"
ADMIN = "admin"

_RAISE: Any = object()  # Call.absent default: NOT_FOUND is raised, not turned into a value
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class Call(Generic[T]):
    """One unary RPC, ready to send: where, what, how to read the answer, whether to retry."""

    service: str
    method: str
    request: Message
    parse: Callable[[Any], T]
    idempotent: bool = False
    absent: Any = _RAISE  # value to return instead of raising `absent_on`
    absent_on: type[Db4Error] = NotFoundError
    timeout: float | None = None  # a shorter deadline than the client's, when set

    def fail(self, err: Db4Error, cause: BaseException) -> T:
        """Finish a failed call: the `absent` value for an `absent_on` error when set (by
        default NOT_FOUND), else raise."""
        if self.absent is not _RAISE and isinstance(err, self.absent_on):
            return self.absent
        raise err from cause

    def deadline(self, client_timeout: float | None) -> float | None:
        """The gRPC deadline in seconds: the client's, or this call's when shorter."""
        if self.timeout is None:
            return client_timeout
        return self.timeout if client_timeout is None else min(self.timeout, client_timeout)


@dataclass(frozen=True)
class StreamCall(Generic[T]):
    """One server-streaming RPC, ready to send; `parse` reads each message as it arrives.

    `resume(request, item)` makes a stream resumable: it returns the request that continues
    right after `item` (None when `item` was the last), so after UNAVAILABLE the client asks
    again from there and nothing is seen twice. Streams without it are never retried.
    An `endless` stream (a change feed) has no last message: when the server ends it, it is
    asked again as after UNAVAILABLE. `wait_s` is the least time to wait for each message,
    when longer than the client's timeout (a heartbeat interval set above it).
    """

    service: str
    method: str
    request: Message
    parse: Callable[[Any], T]
    resume: Callable[[Any, T], Message | None] | None = None
    endless: bool = False
    wait_s: float | None = None

    def message_timeout(self, client_timeout: float | None) -> float | None:
        """Seconds to wait for each message: the client's timeout, or `wait_s` when longer."""
        if client_timeout is None or self.wait_s is None:
            return client_timeout
        return max(client_timeout, self.wait_s)

    @property
    def idempotent(self) -> bool:
        """Whether the retry policy may send it again (only resumable reads)."""
        return self.resume is not None


# ---- input validation: every check runs before a request exists ----

def _document(doc: Any, where: str = "document") -> bytes:
    """A JSON object with valid field names (and a valid `$id` when present), encoded."""
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"{where} must be a dict, got {type(doc).__name__}")
    encoded = documents.encode(doc, where)  # first: the checks below assume str keys
    _check_size(encoded, where)
    documents.check_field_names(doc, where)
    if "$id" in doc:
        validate_id(doc["$id"])
    return encoded


def _check_size(encoded: bytes, where: str) -> None:
    """The server's size limit, checked before sending (a document past gRPC's message limit
    would fail in the channel with a misleading RESOURCE_EXHAUSTED)."""
    try:
        documents.check_size(encoded)
    except InvalidArgumentError as err:
        raise InvalidArgumentError(f"{where}: {err.message}") from None


def _items(values: Any, what: str) -> list[Any]:
    """A batch argument: any iterable of items except a str, bytes or dict, as a list."""
    if isinstance(values, (str, bytes, bytearray, dict)) or not hasattr(values, "__iter__"):
        raise InvalidArgumentError(f"{what} must be a list, got {type(values).__name__}")
    items = list(values)
    if len(items) > documents.MAX_BATCH_ITEMS:
        # Checked here, before a large batch is split into requests by bytes.
        raise InvalidArgumentError(
            f"a batch holds at most {documents.MAX_BATCH_ITEMS} items, got {len(items)}")
    return items


def _patch(patch: Any) -> bytes:
    """A patch: a JSON object of user fields (and `$type`); None values remove fields."""
    if not isinstance(patch, dict):
        raise InvalidArgumentError(f"patch must be a dict, got {type(patch).__name__}")
    encoded = documents.encode(patch, "patch")  # first: check_patch assumes str keys
    _check_size(encoded, "patch")
    documents.check_patch(patch)
    return encoded


def _partition(value: Any) -> bytes | None:
    """The JSON encoding of a partition key value, None when not given."""
    return None if value is None else documents.encode(value, "partition")


def _version(value: Any) -> int | None:
    """An expected `$version`: an int64 of at least 1 (versions start at 1), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _INT64_MAX:
        raise InvalidArgumentError(
            f"expected_version must be an int of at least 1 (a document's first $version is 1),"
            f" got {value!r}")
    return value


def ring_token(value: Any, what: str) -> int:
    """A token of the 64-bit ring: an int from 0 to 2^64 - 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise InvalidArgumentError(
            f"{what} must be a ring token, an int from 0 to 2^64-1, got {value!r}")
    return value


# ---- answers ----

def _doc(resp: Any) -> Document:
    """The stored document of a DocumentResponse."""
    return documents.decode_stored(resp.document)


def _found(resp: router_pb2.GetResponse) -> Document | None:
    """The document of a GetResponse, None when it does not exist."""
    return documents.decode_stored(resp.document) if resp.found else None


def _documents(resp: Any) -> list[Document]:
    """The documents of an InsertManyResponse, in input order."""
    return [documents.decode_stored(raw) for raw in resp.documents]


def _found_many(resp: router_pb2.GetManyResponse) -> list[Document | None]:
    """One document (None when missing) per requested id, in input order."""
    return [documents.decode_stored(item.document) if item.found else None for item in resp.items]


def _collection_info(msg: router_pb2.Collection) -> dict[str, Any]:
    """A Collection message as a dict."""
    return {"name": msg.name, "partition_key": msg.partition_key or DEFAULT_PARTITION_KEY}


def _created_collection(resp: router_pb2.CreateCollectionResponse) -> dict[str, Any]:
    """A CreateCollectionResponse as a dict: the options and whether this call created it."""
    return {**_collection_info(resp.collection), "created": resp.created}


def _shard_info(resp: router_pb2.ShardForResponse) -> dict[str, Any]:
    """A ShardForResponse as a dict."""
    return {"shard_id": resp.shard_id, "node_id": resp.node_id, "token": resp.token,
            "epoch": resp.epoch}


def _counter(value: int) -> int | None:
    """Stats the server did not compute come as -1; say None instead."""
    return None if value < 0 else value


def _status(resp: admin_pb2.StatusResponse) -> dict[str, Any]:
    """A StatusResponse as a JSON-ready dict."""
    return {
        "cluster": resp.cluster,
        "epoch": resp.epoch,
        "leader": resp.leader or None,
        "nodes": [{"node_id": n.node_id, "address": n.address, "alive": n.alive}
                  for n in resp.nodes],
        "shards": [_shard_status(s) for s in resp.shards],
        "operations": [operation_dict(o) for o in resp.operations],
    }


def checkpoint() -> Call[list[dict]]:
    """Checkpoint every shard: truncate its change log now and its WAL. Idempotent: retried."""
    return Call(ADMIN, "Checkpoint", admin_pb2.CheckpointRequest(), _checkpointed,
                idempotent=True)


def _checkpointed(resp: admin_pb2.CheckpointResponse) -> list[dict]:
    return [{"shard_id": c.shard_id, "node_id": c.node_id, "truncated": c.truncated,
             "wal_bytes": c.wal_bytes} for c in resp.shards]


def _shard_status(s: admin_pb2.ShardStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "shard_id": s.shard_id, "node_id": s.node_id, "vnodes": s.vnodes,
        "ring_share": s.ring_share, "documents": _counter(s.documents),
        "bytes": _counter(s.bytes), "load": None}
    if s.HasField("load"):
        out["load"] = {"reads_per_s": s.load.reads_per_s, "writes_per_s": s.load.writes_per_s,
                       "documents": s.load.documents, "bytes": s.load.bytes,
                       "age_s": s.load.age_s, "prepared": s.load.prepared,
                       "in_doubt": s.load.in_doubt}
    out["hot"] = ({"reason": s.hot.reason, "ops_per_s": s.hot.ops_per_s, "age_s": s.hot.age_s,
                   "split_token": s.hot.split_token or None,
                   "cannot_split": s.hot.cannot_split or None}
                  if s.HasField("hot") else None)
    if s.ranges:
        out["ranges"] = [[r.first, r.last] for r in s.ranges]
    return out


# ---- collections ----

def create_collection(name: str, partition_key: str = DEFAULT_PARTITION_KEY) -> Call[dict]:
    """CreateCollection: idempotent on the server, but a write, so never retried."""
    req = router_pb2.CreateCollectionRequest(
        name=validate_collection(name), partition_key=validate_partition_key(partition_key))
    return Call(DB4, "CreateCollection", req, _created_collection)


def get_collection(name: str) -> Call[dict | None]:
    """GetCollection; None when the collection does not exist."""
    req = router_pb2.GetCollectionRequest(name=validate_collection(name))
    return Call(DB4, "GetCollection", req, _collection_info, idempotent=True, absent=None)


def routing() -> Call[router_pb2.GetRoutingResponse]:
    """GetRouting: ring, placement and node addresses (for `Client(direct=True)`)."""
    return Call(DB4, "GetRouting", router_pb2.GetRoutingRequest(), lambda resp: resp,
                idempotent=True)


# ---- documents ----

def create(collection: str, doc: Document) -> Call[Document]:
    """Create a document; `$id` is generated when absent."""
    req = router_pb2.CreateRequest(collection=validate_collection(collection),
                                   document=_document(doc))
    return Call(DB4, "Create", req, _doc)


def get(collection: str, doc_id: str, partition: Any = None) -> Call[Document | None]:
    """Read one document by id."""
    req = router_pb2.GetRequest(collection=validate_collection(collection),
                                id=validate_id(doc_id), partition=_partition(partition))
    return Call(DB4, "Get", req, _found, idempotent=True)


def update(collection: str, doc_id: str, patch: Document, expected_version: int | None = None,
           partition: Any = None) -> Call[Document]:
    """Shallow-merge a patch into a document."""
    req = router_pb2.UpdateRequest(
        collection=validate_collection(collection), id=validate_id(doc_id), patch=_patch(patch),
        expected_version=_version(expected_version), partition=_partition(partition))
    return Call(DB4, "Update", req, _doc)


def replace(collection: str, doc_id: str, doc: Document, expected_version: int | None = None,
            partition: Any = None) -> Call[Document]:
    """Swap a document's user fields for new ones."""
    req = router_pb2.ReplaceRequest(
        collection=validate_collection(collection), id=validate_id(doc_id),
        document=_document(doc), expected_version=_version(expected_version),
        partition=_partition(partition))
    return Call(DB4, "Replace", req, _doc)


def upsert(collection: str, doc: Document) -> Call[Document]:
    """Create the document or replace the one with the same `$id`."""
    req = router_pb2.UpsertRequest(collection=validate_collection(collection),
                                   document=_document(doc))
    return Call(DB4, "Upsert", req, _doc)


def delete(collection: str, doc_id: str, expected_version: int | None = None,
           partition: Any = None) -> Call[bool]:
    """Remove a document; the answer says whether it existed."""
    req = router_pb2.DeleteRequest(
        collection=validate_collection(collection), id=validate_id(doc_id),
        expected_version=_version(expected_version), partition=_partition(partition))
    return Call(DB4, "Delete", req, lambda resp: resp.deleted)


# ---- batches ----

def insert_many(collection: str, docs: Any) -> Call[list[Document]]:
    """Create every document or none (a taken `$id` anywhere fails the whole batch)."""
    items = _items(docs, "documents")
    req = router_pb2.InsertManyRequest(
        collection=validate_collection(collection),
        documents=[_document(doc, f"documents[{i}]") for i, doc in enumerate(items)])
    return Call(DB4, "InsertMany", req, _documents)


def get_many(collection: str, ids: Any) -> Call[list[Document | None]]:
    """Read documents by id; a read, so retried on UNAVAILABLE like `get`."""
    req = router_pb2.GetManyRequest(collection=validate_collection(collection),
                                    ids=[validate_id(i) for i in _items(ids, "ids")])
    return Call(DB4, "GetMany", req, _found_many, idempotent=True)


def delete_many(collection: str, ids: Any) -> Call[list[bool]]:
    """Delete documents by id; per id, whether it existed."""
    req = router_pb2.DeleteManyRequest(collection=validate_collection(collection),
                                       ids=[validate_id(i) for i in _items(ids, "ids")])
    return Call(DB4, "DeleteMany", req, lambda resp: list(resp.deleted))


# ---- placement and administration ----

def shard_for(collection: str, partition_value: Any) -> Call[dict]:
    """Where a partition key value lives: shard, node, ring token, epoch."""
    if partition_value is None:
        raise InvalidArgumentError("a partition value cannot be null (None): a document "
                                   "without one is refused")
    req = router_pb2.ShardForRequest(collection=validate_collection(collection),
                                     partition=documents.encode(partition_value, "partition"))
    return Call(DB4, "ShardFor", req, _shard_info, idempotent=True)


def status(with_stats: bool = False, with_ranges: bool = False) -> Call[dict]:
    """The cluster's status: epoch, nodes, shards with their load (counters asked now, and
    token ranges, when asked)."""
    req = admin_pb2.StatusRequest(with_stats=bool(with_stats), with_ranges=bool(with_ranges))
    return Call(ADMIN, "Status", req, _status, idempotent=True)


# ---- splits and moves -------------------------------------------------------------------------


def split_shard(shard_id: str, op_id: str, split_token: int | None = None,
                node_id: str = "") -> Call[dict]:
    """Plan a split (answers at once); retried safely: the op_id names the operation."""
    req = admin_pb2.SplitShardRequest(shard_id=shard_id, node_id=node_id or "", op_id=op_id)
    if split_token is not None:
        req.split_token = ring_token(split_token, "split_token")
    return Call(ADMIN, "SplitShard", req, operation_dict, idempotent=True)


def move_shard(shard_id: str, node_id: str, op_id: str) -> Call[dict]:
    """Plan a move (answers at once); retried safely: the op_id names the operation."""
    req = admin_pb2.MoveShardRequest(shard_id=shard_id, node_id=node_id, op_id=op_id)
    return Call(ADMIN, "MoveShard", req, operation_dict, idempotent=True)


def get_operation(op_id: str, wait: bool = False) -> Call[dict]:
    """One operation (waiting for its end, up to the client's timeout, when asked)."""
    return Call(ADMIN, "GetOperation", admin_pb2.GetOperationRequest(op_id=op_id, wait=wait),
                operation_dict, idempotent=True)


def list_operations(all_: bool = False) -> Call[list[dict]]:
    """Splits and moves, unfinished ones unless all_."""
    return Call(ADMIN, "ListOperations", admin_pb2.ListOperationsRequest(all=bool(all_)),
                lambda resp: [operation_dict(o) for o in resp.operations], idempotent=True)


def create_token(role: str, name: str, requests_per_s: float = 0, max_streams: int = 0,
                 bytes_per_s: float = 0) -> Call[dict]:
    """A new bearer token (not retried: a retry would make a second token)."""
    for label, value in (("requests_per_s", requests_per_s), ("max_streams", max_streams),
                         ("bytes_per_s", bytes_per_s)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not \
                0 <= value < float("inf"):
            raise InvalidArgumentError(f"{label} must be a finite number >= 0")
    if not isinstance(max_streams, int) or max_streams >= 2 ** 32:
        raise InvalidArgumentError("max_streams must be an integer below 2**32")
    return Call(ADMIN, "CreateToken", admin_pb2.CreateTokenRequest(
        role=role, name=name, requests_per_s=requests_per_s, max_streams=max_streams,
        bytes_per_s=bytes_per_s), lambda r: {**token_dict(r.info), "token": r.token})


def list_tokens() -> Call[list[dict]]:
    return Call(ADMIN, "ListTokens", admin_pb2.ListTokensRequest(),
                lambda r: [token_dict(t) for t in r.tokens], idempotent=True)


def revoke_token(token_id: str) -> Call[dict]:
    return Call(ADMIN, "RevokeToken", admin_pb2.RevokeTokenRequest(id=token_id), token_dict)


def token_dict(t: admin_pb2.TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "role": t.role, "name": t.name, "created_ms": t.created_ms,
            "limits": {"requests_per_s": t.requests_per_s, "max_streams": t.max_streams,
                       "bytes_per_s": t.bytes_per_s}}


def abort_operation(op_id: str) -> Call[dict]:
    """Ask for an abort (idempotent)."""
    return Call(ADMIN, "AbortOperation", admin_pb2.GetOperationRequest(op_id=op_id),
                operation_dict, idempotent=True)


def operation_dict(o: admin_pb2.OperationStatus) -> dict[str, Any]:
    """An operation as the SDK returns it."""
    return {"op_id": o.op_id, "kind": o.kind, "state": o.state,
            "source_shard": o.source_shard, "source_node": o.source_node,
            "target_shard": o.target_shard, "target_node": o.target_node, "epoch": o.epoch,
            "moving": [[r.first, r.last] for r in o.moving], "documents": o.documents,
            "copied_bytes": o.copied_bytes, "total_bytes": o.total_bytes,
            "snapshot_lsn": o.snapshot_lsn, "applied_lsn": o.applied_lsn,
            "source_lsn": o.source_lsn, "fence_lsn": o.fence_lsn, "error": o.error or None,
            "created_ms": o.created_ms, "updated_ms": o.updated_ms,
            "abort_requested": o.abort_requested, "cutovers": o.cutovers}


def drain_node(node_id: str, plan_id: str, dry_run: bool = False) -> Call[dict]:
    """Plan (and, unless dry_run, start) a drain; retried safely: plan_id names it."""
    req = admin_pb2.DrainNodeRequest(node_id=node_id, dry_run=bool(dry_run), plan_id=plan_id)
    return Call(ADMIN, "DrainNode", req, plan_dict, idempotent=True)


def rebalance(plan_id: str, dry_run: bool = False) -> Call[dict]:
    """Plan (and, unless dry_run, start) a rebalance; retried safely."""
    req = admin_pb2.RebalanceRequest(dry_run=bool(dry_run), plan_id=plan_id)
    return Call(ADMIN, "Rebalance", req, plan_dict, idempotent=True)


def get_plan(plan_id: str) -> Call[dict]:
    """One drain or rebalance."""
    return Call(ADMIN, "GetPlan", admin_pb2.GetPlanRequest(plan_id=plan_id), plan_dict,
                idempotent=True)


def plan_dict(p: admin_pb2.PlanStatus) -> dict[str, Any]:
    """A plan as the SDK returns it."""
    return {"plan_id": p.plan_id or None, "kind": p.kind, "node_id": p.node_id or None,
            "state": p.state,
            "moves": [{"shard_id": m.shard_id, "node_id": m.node_id, "result": m.result,
                       "op_id": m.op_id or None} for m in p.moves]}
