"""Node requests shared by point operations, batches, claims and transactions: wire ops and
reads by id."""

from __future__ import annotations

from collections.abc import Sequence

from db4.v1 import node_pb2, node_pb2_grpc
from db4core.errors import InternalError
from db4router.collections import CollectionInfo
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher, gather_all

LOOKUP_CHUNK = 50  # ids per Read request; the node answers a byte-bounded prefix of them

KINDS = {
    "create": node_pb2.OP_KIND_CREATE,
    "update": node_pb2.OP_KIND_UPDATE,
    "replace": node_pb2.OP_KIND_REPLACE,
    "upsert": node_pb2.OP_KIND_UPSERT,
    "delete": node_pb2.OP_KIND_DELETE,
    "increment": node_pb2.OP_KIND_INCREMENT,
}

def write_op(info: CollectionInfo, kind: str, doc_id: str, token: int, body: bytes = b"",
             expected: int | None = None, condition: bytes = b"") -> node_pb2.WriteOp:
    """One wire op; the node checks the result still hashes to `token` under the partition key."""
    return node_pb2.WriteOp(kind=KINDS[kind], collection=info.name, id=doc_id, token=token,
                            body=body, expected_version=expected,
                            partition_key=info.partition_key, condition=condition)


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


async def read_placed(dispatcher: Dispatcher, collection: str, ids: Sequence[str],
                      tokens: Sequence[int]) -> list[node_pb2.ReadItem]:
    """One item per (id, token), reading each owning shard in parallel, LOOKUP_CHUNK ids per
    request."""
    topo = dispatcher.view.require()
    groups: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        groups.setdefault(dispatcher.cache.shard_for(topo, token), []).append(i)
    out: list[node_pb2.ReadItem] = [node_pb2.ReadItem()] * len(ids)

    async def read(chunk: list[int]) -> None:
        async def send(stub, shard, epoch):
            return await read_all(stub, shard, epoch, collection, [ids[i] for i in chunk],
                                  [tokens[i] for i in chunk])

        for i, item in zip(chunk, await dispatcher.by_token(tokens[chunk[0]], send),
                           strict=True):
            out[i] = item

    await gather_all(read(g[n:n + LOOKUP_CHUNK]) for g in groups.values()
                     for n in range(0, len(g), LOOKUP_CHUNK))
    return out
