"""One node TailChanges stream per shard, reopened where it broke, feeding a bounded queue.

A stream that breaks (node killed or restarting, shard moved) is opened again from the last
LSN received, on whichever node the view places the shard, with backoff and without end while
the subscriber is there: nothing is skipped or repeated. OUT_OF_RANGE and DATA_LOSS (and bad
input, which no retry mends) are put in the queue and end the subscription with that status.
The queue holds a few node messages: when the subscriber is slow the tail stops reading, gRPC
flow control stops the node, and memory stays flat.
"""

from __future__ import annotations

import asyncio
import logging
import random

import grpc

from db4.v1 import node_pb2
from db4core.errors import (
    DataLossError,
    Db4Error,
    InvalidArgumentError,
    OutOfRangeError,
    UnimplementedError,
    WrongShardError,
)
from db4router.dispatch import Dispatcher
from db4router.routing import node_for
from db4rpc.status import to_domain

log = logging.getLogger("db4.router.cdc")

QUEUE_MESSAGES = 2  # node messages (up to MAX_RECORDS records or 4 MiB each) buffered per shard
MAX_RECORDS = 100  # records per node message: small enough that few are in flight per shard
FATAL = (OutOfRangeError, DataLossError, InvalidArgumentError, UnimplementedError)
BACKOFF_S = (0.05, 2.0)


class Tail:
    """Keeps one shard's TailChanges stream open and its messages in `queue`."""

    def __init__(self, dispatcher: Dispatcher, shard: str, after_lsn: int, heartbeat_ms: int,
                 arrived: asyncio.Event) -> None:
        self.dispatcher = dispatcher
        self.shard = shard
        self.after = after_lsn
        self.heartbeat_ms = heartbeat_ms
        self.queue: asyncio.Queue[node_pb2.TailChangesResponse | Db4Error] = asyncio.Queue(
            QUEUE_MESSAGES)
        self.arrived = arrived
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"tail {self.shard}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _put(self, item: node_pb2.TailChangesResponse | Db4Error) -> None:
        await self.queue.put(item)
        self.arrived.set()

    async def _run(self) -> None:
        delay = BACKOFF_S[0]
        while True:
            try:
                if await self._stream():
                    delay = BACKOFF_S[0]
            except grpc.RpcError as err:
                error = to_domain(err)
                if isinstance(error, FATAL):
                    await self._put(error)
                    return
                if isinstance(error, WrongShardError):
                    await self.dispatcher.view.refresh_to(error.epoch)
                log.info("tail of %s broke (%s: %s); reopening after %d", self.shard,
                         error.code, error.message, self.after)
            except FATAL as error:
                await self._put(error)
                return
            except Db4Error as error:  # no node for the shard right now, etcd trouble
                log.info("tail of %s waits: %s", self.shard, error.message)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_S[1])

    async def _stream(self) -> bool:
        """Read one stream until it ends; True when it delivered anything."""
        view = self.dispatcher.view
        stub = self.dispatcher.pool.stub(node_for(view.require(), self.shard), view.nodes,
                                         tail=True)
        call = stub.TailChanges(node_pb2.TailChangesRequest(
            shard_id=self.shard, after_lsn=self.after, max_records=MAX_RECORDS,
            heartbeat_ms=self.heartbeat_ms))
        got = False
        try:
            async for response in call:
                got = True
                if response.records:
                    self.after = response.records[-1].lsn
                await self._put(response)
        finally:
            call.cancel()
        return got
