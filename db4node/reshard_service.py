"""The Node RPCs of splits and moves (follow.py has the SQL; the leading router drives them)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, TypeVar

import grpc

from db4.v1 import node_pb2, node_pb2_grpc
from db4core import failpoints
from db4core.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from db4node import changelog, follow
from db4node.membership import Membership
from db4node.store import ShardStore
from db4node.worker import idle_priority
from db4rpc.options import CHANNEL_OPTIONS
from db4rpc.status import servicer_method, servicer_stream

T = TypeVar("T")

CHUNK_BYTES = 1 << 20  # snapshot bytes per message
# Snapshots and installs run here, only on CPU time nothing else wants (SCHED_IDLE), so that
# the node's other shards keep their latency while a copy runs.
_COPY_POOL = ThreadPoolExecutor(2, thread_name_prefix="db4-copy", initializer=idle_priority)


async def _on_copy_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_COPY_POOL, fn, *args)
READ_LOG_DEFAULT = 1000
READ_LOG_MAX = 10_000
READ_LOG_BYTES = 4 << 20


def _close(f: BinaryIO) -> None:
    f.flush()  # no fsync: follow.install fsyncs the whole file once it has changed it
    f.close()


def ranges_of(raw) -> follow.Ranges:
    """TokenRange messages as checked ranges (at least one)."""
    ranges = follow.check_ranges([(r.first, r.last) for r in raw])
    if not ranges:
        raise InvalidArgumentError("at least one token range is needed")
    return ranges


def decode_change(r: node_pb2.ChangeRecord) -> changelog.Change:
    """A record sent by the parent's node (documents: empty means none)."""
    return changelog.Change(
        r.lsn, r.txid, r.op, r.collection, r.id, r.before.decode() or None,
        r.after.decode() or None, r.ts, 0, tuple(r.participants) or None,
        r.token if r.HasField("token") else None)


def encode_change(c: changelog.Change) -> node_pb2.ChangeRecord:
    """A verified change-log record on the wire, with its token when it has one."""
    rec = node_pb2.ChangeRecord(
        lsn=c.lsn, txid=c.txid, op=c.op, collection=c.collection, id=c.id,
        before=(c.before or "").encode(), after=(c.after or "").encode(), ts=c.ts,
        participants=list(c.participants or ()))
    if c.token is not None:
        rec.token = c.token
    return rec


class ReshardHandlers:
    """Mixed into NodeService."""

    store: ShardStore
    membership: Membership
    # opens a channel to another node (TLS and token as configured); set by NodeService
    open_channel: Callable[[str, Any], grpc.aio.Channel]

    @servicer_stream
    async def SnapshotShard(self, request: node_pb2.SnapshotShardRequest,
                            context: grpc.aio.ServicerContext):
        await self.membership.check_owner(request.shard_id, [], 0)
        worker = self.store.get(request.shard_id)
        tmp = self.store.tmp_path(f"{request.shard_id}.snapshot-{uuid.uuid4().hex[:8]}")
        try:
            if request.ranges:
                lsn = await _on_copy_thread(follow.snapshot_ranges, worker.shard.path, tmp,
                                            ranges_of(request.ranges))
            else:
                lsn = await _on_copy_thread(follow.snapshot, worker.shard.path, tmp)
            size = os.path.getsize(tmp)
            with open(tmp, "rb") as f:
                first = True
                while True:
                    data = await _on_copy_thread(f.read, CHUNK_BYTES)
                    if not data and not first:
                        break
                    chunk = node_pb2.FileChunk(data=data)
                    if first:
                        chunk.lsn, chunk.size, first = lsn, size, False
                    await context.write(chunk)
                    failpoints.hit("source.mid_snapshot")
                    if not data:
                        break
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
        yield  # messages go by context.write

    @servicer_method
    async def InstallShard(self, request_iterator, context: grpc.aio.ServicerContext):
        header = None
        part = ""
        f: BinaryIO | None = None
        try:
            async for msg in request_iterator:
                if header is None:
                    header = msg
                    target, parent = header.shard_id, header.parent
                    ranges = ranges_of(header.ranges)
                    if not header.op:
                        raise InvalidArgumentError("op is required")
                    self.store.path_of(target)  # validates the ids
                    self.store.path_of(parent)
                    if target == parent:
                        raise InvalidArgumentError("a shard cannot follow itself")
                    self._check_replaceable(target, header.op)
                    part = self.store.tmp_path(f"{target}.install-{uuid.uuid4().hex[:8]}")
                    f = open(part, "wb")  # noqa: SIM115 - closed in finally
                if msg.data:
                    assert f is not None
                    await _on_copy_thread(f.write, msg.data)
            if header is None or f is None:
                raise InvalidArgumentError("InstallShard needs a header message")
            if header.source_address:
                await self._fetch(header.source_address, header.parent, header.ranges, f)
            await _on_copy_thread(_close, f)
            f = None
            size = os.path.getsize(part)
            applied, kept = await _on_copy_thread(follow.install, part, parent, ranges,
                                                  header.op)
            self._check_replaceable(target, header.op)  # nothing took the id meanwhile
            self.store.adopt_file(target, part)
            failpoints.hit("follower.after_install")
            return node_pb2.InstallShardResponse(applied=applied, documents=kept, bytes=size)
        finally:
            if f is not None:
                f.close()
            if part and os.path.exists(part):
                os.remove(part)

    async def _fetch(self, address: str, parent: str, ranges, f: BinaryIO) -> None:
        """Stream the parent's snapshot of the ranges from its node into f; UNAVAILABLE when
        it breaks off."""
        async with self.open_channel(address, CHANNEL_OPTIONS) as channel:
            stream = node_pb2_grpc.NodeStub(channel).SnapshotShard(
                node_pb2.SnapshotShardRequest(shard_id=parent, ranges=ranges))
            copied = total = 0
            async for chunk in stream:
                total = chunk.size or total
                copied += len(chunk.data)
                await _on_copy_thread(f.write, chunk.data)
        if copied != total:
            raise UnavailableError(f"the snapshot of {parent} from {address} ended after "
                                   f"{copied} of {total} bytes")

    def _check_replaceable(self, shard_id: str, op: str) -> None:
        """A follower of operation `op` may be replaced; any other existing shard may not."""
        if not self.store.has(shard_id):
            return
        following = self.store.get(shard_id).shard.follow
        if following is None or following.op != op:
            raise AlreadyExistsError(
                f"shard {shard_id} exists on node {self.membership.node_id}"
                + (f" (a follower of operation {following.op})" if following else ""))

    @servicer_method
    async def FollowerStatus(self, request: node_pb2.FollowerStatusRequest,
                             context: grpc.aio.ServicerContext):
        if not self.store.has(request.shard_id):
            return node_pb2.FollowerStatusResponse(exists=False)
        f = self.store.get(request.shard_id).shard.follow
        if f is None:
            return node_pb2.FollowerStatusResponse(exists=True)
        return node_pb2.FollowerStatusResponse(exists=True, following=True, op=f.op,
                                               parent=f.parent, applied=f.applied)

    @servicer_method
    async def ReadLog(self, request: node_pb2.ReadLogRequest, context: grpc.aio.ServicerContext):
        if request.max_records > READ_LOG_MAX:
            raise InvalidArgumentError(f"max_records is at most {READ_LOG_MAX}")
        await self.membership.check_owner(request.shard_id, [], 0)
        worker = self.store.get(request.shard_id)
        batch = await worker.read(
            lambda conn: changelog.read_batch(conn, request.after_lsn,
                                              request.max_records or READ_LOG_DEFAULT,
                                              READ_LOG_BYTES, request.shard_id),
            None, "change-log read")
        return node_pb2.ReadLogResponse(records=[encode_change(c) for c in batch.records],
                                        last_lsn=batch.last_lsn)

    @servicer_method
    async def ApplyParent(self, request: node_pb2.ApplyParentRequest,
                          context: grpc.aio.ServicerContext):
        worker = self._follower(request.shard_id)
        records = [decode_change(r) for r in request.records]
        applied = await worker.write(lambda s: s.apply_parent(records), None,
                                     f"catch-up of follower {request.shard_id}")
        if records:
            failpoints.hit("follower.after_apply")
        return node_pb2.ApplyParentResponse(applied=applied)

    def _follower(self, shard_id: str):
        self.store.path_of(shard_id)
        if not self.store.has(shard_id):
            raise NotFoundError(f"no follower {shard_id} on node {self.membership.node_id}")
        worker = self.store.get(shard_id)
        if worker.shard.follow is None:
            raise FailedPreconditionError(f"shard {shard_id} follows no parent")
        return worker

    @servicer_method
    async def Fence(self, request: node_pb2.FenceRequest, context: grpc.aio.ServicerContext):
        ranges = ranges_of(request.ranges)
        if not request.op:
            raise InvalidArgumentError("op is required")
        await self.membership.check_owner(request.shard_id, [], 0)
        fence = follow.Fence(request.op, ranges, request.epoch)
        prepared, last = await self.store.get(request.shard_id).write(
            lambda s: s.set_fence(fence), None, f"fence of shard {request.shard_id}")
        failpoints.hit("source.after_fence")
        return node_pb2.FenceResponse(prepared=prepared, last_lsn=last)

    @servicer_method
    async def Unfence(self, request: node_pb2.UnfenceRequest, context: grpc.aio.ServicerContext):
        self.store.path_of(request.shard_id)
        if not request.op:
            raise InvalidArgumentError("op is required")
        if not self.store.has(request.shard_id):
            return node_pb2.UnfenceResponse(lifted=False)
        lifted = await self.store.get(request.shard_id).write(
            lambda s: s.lift_fence(request.op), None, f"unfence of shard {request.shard_id}")
        return node_pb2.UnfenceResponse(lifted=lifted)

    @servicer_method
    async def DropFollower(self, request: node_pb2.DropFollowerRequest,
                           context: grpc.aio.ServicerContext):
        self.store.path_of(request.shard_id)
        if not request.op:
            raise InvalidArgumentError("op is required")
        if not self.store.has(request.shard_id):
            return node_pb2.DropFollowerResponse(dropped=False)
        f = self.store.get(request.shard_id).shard.follow
        topo = self.membership.topology
        if f is None or f.op != request.op or (topo and request.shard_id in topo.ring.shards):
            raise FailedPreconditionError(
                f"shard {request.shard_id} is not a follower of operation {request.op}; "
                "it is not dropped")
        return node_pb2.DropFollowerResponse(dropped=self.store.drop(request.shard_id))
