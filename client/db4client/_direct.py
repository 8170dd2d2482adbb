"""Token-aware routing for `Client(direct=True)`: point reads and writes go straight to the node
that owns the document, skipping the router hop.

The client asks a router for the ring, the placement and the nodes' addresses (`GetRouting`)
and for each collection's partition key (`GetCollection`), hashes the partition key value
itself (`db4core.hashing`, the router's own code) and sends the node the very Read or Write
the router would. Anything it cannot place alone goes through the router as before: calls other
than get/create/upsert/update/replace/delete, a collection not created yet, a collection
partitioned by a field when the call does not give the value (the router looks the id up
everywhere), a create with a chosen id in such a collection (its id claim is a cross-shard
transaction), a conditional update, a node without a known address. A node that no longer
owns the key (FAILED_PRECONDITION wrong_shard) or cannot be reached before the call was sent
sends the call to the router and the ring is read again. A write whose connection broke after
it was sent is sent again to the same node under the same txid for up to RESEND_FOR_S (the
node answers a write it applied already from its notes), as a router does; then UNAVAILABLE.
A router without GetRouting (an older one) turns direct mode off.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from db4.v1 import node_pb2, router_pb2
from db4client import _wire
from db4client._channel import split_address
from db4core import documents
from db4core.errors import Db4Error, InvalidArgumentError, UnavailableError, WrongShardError
from db4core.hashing import token_for
from db4core.ids import new_id
from db4core.ring import Ring
from db4core.topology import Topology

METHODS = frozenset({"Get", "Create", "Upsert", "Update", "Replace", "Delete"})
KINDS = {"Create": node_pb2.OP_KIND_CREATE, "Upsert": node_pb2.OP_KIND_UPSERT,
         "Update": node_pb2.OP_KIND_UPDATE, "Replace": node_pb2.OP_KIND_REPLACE,
         "Delete": node_pb2.OP_KIND_DELETE}
UNKNOWN_FOR_S = 2.0  # a collection the router did not know is asked about again after this
UNKNOWN = object()  # partition key not asked yet
RESEND_FOR_S = 5.0  # a write whose connection broke is sent again for this long (the router's)


@dataclass
class NodeCall:
    """A router call turned into the node call that does the same."""

    address: str
    method: str  # "Read" or "Write"
    request: Any
    answer: Any  # node response -> the router's response message
    topology: Topology  # the ring it was planned on
    writes: bool


@dataclass
class Routes:
    """The routing state a direct client holds, and the plans it makes from it."""

    topology: Topology | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # collection -> partition key
    unknown: dict[str, float] = field(default_factory=dict)  # collection -> when asked
    sent: int = 0  # calls a node answered (results and errors)
    fell_back: int = 0  # calls sent to the router instead
    secure: bool = False  # TLS on: nodes beyond loopback may be reached

    def adopt(self, resp: router_pb2.GetRoutingResponse) -> Topology:
        """Hold a GetRouting answer unless a newer one is held (calls on several threads or
        tasks may each have asked); the topology to plan with."""
        held = self.topology
        if held is not None and held.epoch > resp.epoch:
            return held
        topo = Topology(resp.epoch, Ring.from_json(resp.ring), dict(resp.placement))
        self.addresses = {node: address for node, address in resp.nodes.items()
                          if _reachable(address, self.secure)}
        self.topology = topo
        return topo

    def forget(self, topo: Topology) -> None:
        """Read the ring again before the next direct call (it moved, or a node is gone),
        unless another call already did since `topo` was planned with."""
        if self.topology is topo:
            self.topology = None

    def partition_key(self, collection: str) -> Any:
        """The collection's partition key; None when the router does not know the collection
        (for a while); UNKNOWN when it must be asked."""
        if collection in self.keys:
            return self.keys[collection]
        asked = self.unknown.get(collection)
        if asked is not None and time.monotonic() - asked < UNKNOWN_FOR_S:
            return None
        return UNKNOWN

    def learn(self, collection: str, info: dict[str, Any] | None) -> None:
        """What GetCollection said about a collection (None: it does not exist yet)."""
        if info is None:
            self.unknown[collection] = time.monotonic()
        else:
            self.unknown.pop(collection, None)
            self.keys[collection] = info["partition_key"]

    def plan(self, call: _wire.Call, key: str, topo: Topology) -> NodeCall | None:
        """The node call doing what `call` asks of the router on ring `topo`, None when only
        the router can place it. Raises the errors the router would raise before sending
        anything."""
        req = call.request
        method = call.method
        if method in ("Create", "Upsert"):
            documents.check_size(req.document)
            doc = documents.decode_stored(req.document)  # encoded and checked by the SDK
            chosen = "$id" in doc
            if chosen and key != "$id":
                return None  # an id claim: a transaction the router runs
            doc_id = doc["$id"] if chosen else new_id()
            value = _value(doc, key, doc_id)
            if value is None:
                return None  # the router names the missing field
            return self._write(topo, method, req.collection, doc_id, token_for(value), key,
                               req.document, None)
        if method == "Update" and req.condition:
            return None
        token = self._token(req, key)
        if token is None:
            return None
        if method == "Get":
            return self._read(topo, req.collection, req.id, token)
        expected = req.expected_version if req.HasField("expected_version") else None
        if method == "Update":
            documents.check_size(req.patch)
            documents.check_patch(documents.decode_object(req.patch, "patch"))
            return self._write(topo, method, req.collection, req.id, token, key, req.patch,
                               expected)
        if method == "Replace":
            documents.check_size(req.document)
            doc = documents.decode_stored(req.document)
            if doc.get("$id", req.id) != req.id:
                raise InvalidArgumentError(f"replace of {req.id!r} with a document whose $id is "
                                           f"{doc['$id']!r}")
            return self._write(topo, method, req.collection, req.id, token, key, req.document,
                               expected)
        return self._write(topo, method, req.collection, req.id, token, key, b"", expected)

    @staticmethod
    def _token(req: Any, key: str) -> int | None:
        """As the router's locate: a partition value given first (a boundary), then the id."""
        if req.HasField("partition"):
            return token_for(documents.decode(req.partition, "partition"))
        if key == "$id":
            return token_for(req.id)
        return None

    def _owner(self, topo: Topology, token: int) -> tuple[str, str, int] | None:
        """(shard, node address, epoch) owning a token, None when the node's address is not
        known."""
        shard = topo.shard_for_token(token)
        address = self.addresses.get(topo.node_of(shard) or "")
        return (shard, address, topo.epoch) if address else None

    def _read(self, topo: Topology, collection: str, doc_id: str, token: int
              ) -> NodeCall | None:
        owner = self._owner(topo, token)
        if owner is None:
            return None
        shard, address, epoch = owner
        req = node_pb2.ReadRequest(epoch=epoch, shard_id=shard, collection=collection,
                                   ids=[doc_id], tokens=[token])

        def answer(resp: node_pb2.ReadResponse) -> router_pb2.GetResponse:
            item = resp.items[0]
            if not item.found:
                return router_pb2.GetResponse(found=False)
            return router_pb2.GetResponse(found=True, document=item.document,
                                          token=item.token or token)

        return NodeCall(address, "Read", req, answer, topo, writes=False)

    def _write(self, topo: Topology, method: str, collection: str, doc_id: str, token: int,
               key: str, body: bytes, expected: int | None) -> NodeCall | None:
        owner = self._owner(topo, token)
        if owner is None:
            return None
        shard, address, epoch = owner
        op = node_pb2.WriteOp(kind=KINDS[method], collection=collection, id=doc_id, token=token,
                              body=body, expected_version=expected, partition_key=key)
        req = node_pb2.WriteRequest(epoch=epoch, shard_id=shard, ops=[op],
                                    txid=uuid.uuid4().hex)

        def answer(resp: node_pb2.WriteResponse) -> Any:
            result = resp.results[0]
            if method == "Delete":
                return router_pb2.DeleteResponse(deleted=result.found)
            return router_pb2.DocumentResponse(document=result.document)

        return NodeCall(address, "Write", req, answer, topo, writes=True)


ROUTER, RESEND, FAIL = "router", "resend", "fail"


def after_failure(domain: Db4Error, unsent: bool, plan: NodeCall, maybe_applied: bool,
                  since: float) -> str:
    """What a direct call does when its node answered `domain`: ROUTER (the node does not own
    the key any more, or could not be reached before a call that cannot have applied left),
    RESEND (a write whose connection broke: the same request and txid to the same node, for
    up to RESEND_FOR_S since `since`), or FAIL (the error is the answer)."""
    if isinstance(domain, WrongShardError):
        return ROUTER  # answered before any note or fence: nothing was applied
    if not isinstance(domain, UnavailableError):
        return FAIL
    if not plan.writes or (unsent and not maybe_applied):
        return ROUTER
    return RESEND if time.monotonic() - since < RESEND_FOR_S else FAIL


def _reachable(address: str, secure: bool = False) -> bool:
    """Whether the SDK may connect to a node's address (loopback only, unless over TLS)."""
    try:
        split_address(address, secure)
    except ValueError:
        return False
    return True


def _value(doc: dict, key: str, doc_id: str) -> Any:
    """The partition key value of a new document, None when it lacks one."""
    if key == "$id":
        return doc_id
    found, value = documents.get_path(doc, key)
    return value if found else None
