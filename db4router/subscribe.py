"""Subscribe and Acknowledge: where a change stream starts, and the loop that sends it.

Start: the request's token; else a durable consumer's acknowledged token (registering it at the
start position when new); else "oldest" (every record kept: each shard's first LSN - 1) or
"now" (each shard's last LSN), both from the nodes' LogStats. Then one Tail per shard of the
ring feeds the Merge (`cdcmerge.py`), and responses go out through the StreamGate: at most
MAX_EVENTS events or about MAX_BYTES each, a heartbeat with the current token after
heartbeat_ms without events, each written only once the transport took the previous one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from db4.v1 import node_pb2, router_pb2
from db4core.changefeed import START_NOW, START_OLDEST, STARTS, Token
from db4core.errors import InvalidArgumentError, UnavailableError
from db4core.names import validate_collection
from db4router.cdcmerge import Merge
from db4router.consumers import Consumers, validate_consumer
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4router.tailing import Tail

MAX_EVENTS = 500
MAX_BYTES = 4 << 20
HEARTBEAT_MS = 1000
HEARTBEAT_RANGE_MS = (10, 60_000)


class Subscriptions:
    """Change streams and consumer acknowledgements of one router."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.consumers = Consumers(dispatcher.view)

    async def open(self, request: router_pb2.SubscribeRequest) -> Subscription:
        """Validate a request and settle where its stream starts."""
        collections = [validate_collection(c) for c in request.collections]
        if request.start and request.start not in STARTS:
            raise InvalidArgumentError(f"start must be 'oldest' or 'now', got {request.start!r}")
        token = Token.decode(request.from_token) if request.from_token else None
        consumer = validate_consumer(request.consumer) if request.consumer else ""
        heartbeat_ms = request.heartbeat_ms or HEARTBEAT_MS
        low, high = HEARTBEAT_RANGE_MS
        if not low <= heartbeat_ms <= high:
            raise InvalidArgumentError(f"heartbeat_ms must be between {low} and {high}, "
                                       f"got {heartbeat_ms}")
        shards = feed_shards(self.dispatcher)
        if token is None or consumer:
            start = token or await self.position(request.start or START_OLDEST, shards)
            if consumer:
                start = await self.consumers.start_token(consumer, start)
            token = start if token is None else token
        return Subscription(self.dispatcher, token, shards, collections, heartbeat_ms)

    async def position(self, start: str, shards: list[str]) -> Token:
        """Every shard's position for "oldest" (before its first record kept) or "now". For
        "now", a shard a move left without tokens is at its log's end, the move's fence, known
        without asking its node (which may be gone: a drained node taken away)."""
        ended = ended_logs(self.dispatcher) if start == START_NOW else {}
        asked = [s for s in shards if s not in ended]
        token = await self._log_position(start, asked) if asked else Token({})
        token.lsn.update((s, ended[s]) for s in shards if s in ended)
        return token

    async def _log_position(self, start: str, shards: list[str]) -> Token:

        async def ask_node(stub, shard_ids, epoch):
            resp = await stub.LogStats(node_pb2.LogStatsRequest(shard_ids=shard_ids),
                                       timeout=NODE_TIMEOUT_S)
            by_id = {s.shard_id: s for s in resp.shards}
            missing = [s for s in shard_ids if s not in by_id]
            if missing:
                raise UnavailableError(f"node {resp.node_id} does not report shards {missing}")
            return [by_id[s] for s in shard_ids]

        async def ask_one(stub, shard_id, epoch):
            return (await ask_node(stub, [shard_id], epoch))[0]

        stats = await self.dispatcher.by_node(shards, ask_node, ask_one)
        if start == START_NOW:
            return Token({s.shard_id: s.last_lsn for s in stats})
        return Token({s.shard_id: max(s.first_lsn, 1) - 1 for s in stats})

    async def acknowledge(self, request: router_pb2.AcknowledgeRequest) -> None:
        """Move a registered consumer forward to the token it processed."""
        name = validate_consumer(request.consumer)
        if not request.token:
            raise InvalidArgumentError("acknowledge needs the token of a processed event")
        await self.consumers.acknowledge(name, Token.decode(request.token))


def feed_shards(dispatcher: Dispatcher) -> list[str]:
    """The shards a feed reads: every placed shard, those of the ring and those a move left
    without tokens (their logs still hold changes from before it)."""
    return sorted(dispatcher.view.require().placement)


def ended_logs(dispatcher: Dispatcher) -> dict[str, int]:
    """Placed shards that own no token of the ring -> the LSN their change log ends at: the
    fence of the last operation that took their tokens (a shard without tokens takes no write;
    fences only grow)."""
    view = dispatcher.view
    topo = view.require()
    in_ring = topo.ring.shards
    ends: dict[str, int] = {}
    for rec in view.lineage.values():
        parent = str(rec["parent"])
        if parent not in in_ring and parent in topo.placement:
            ends[parent] = max(ends.get(parent, 0), int(rec["fence_lsn"]))
    return ends


def to_tail(dispatcher: Dispatcher, shards: list[str], token: Token) -> list[str]:
    """The shards a feed at `token` must read: not one whose log ended at or before the
    token's position in it (nothing left there, so its node is not needed)."""
    ends = ended_logs(dispatcher)
    return [s for s in shards if s not in ends or token.lsn.get(s, 0) < ends[s]]


def lineage_of(dispatcher: Dispatcher) -> dict[str, tuple[str, int]]:
    """Shard -> (parent, the parent's fence LSN) for shards made by splits and moves."""
    return {child: (str(rec["parent"]), int(rec["fence_lsn"]))
            for child, rec in dispatcher.view.lineage.items()}


class Subscription:
    """One subscriber's stream: tails per shard, the merge, batching and heartbeats."""

    def __init__(self, dispatcher: Dispatcher, token: Token, shards: list[str],
                 collections: list[str], heartbeat_ms: int) -> None:
        self.dispatcher = dispatcher
        self.arrived = asyncio.Event()
        shards = to_tail(dispatcher, shards, token)
        self.merge = Merge(token, shards, collections, lineage=lineage_of(dispatcher))
        self.heartbeat_s = heartbeat_ms / 1000
        self.heartbeat_ms = heartbeat_ms
        self.tails = {s: Tail(dispatcher, s, self.merge.token.lsn[s], heartbeat_ms,
                              self.arrived) for s in shards}
        self.epoch = dispatcher.view.epoch

    def _follow_ring(self) -> None:
        """Tail the shards a split or move added since the feed opened."""
        view = self.dispatcher.view
        if view.epoch == self.epoch:
            return
        self.epoch = view.epoch
        lineage = lineage_of(self.dispatcher)
        for shard in to_tail(self.dispatcher, feed_shards(self.dispatcher), self.merge.token):
            if shard not in self.tails:
                self.merge.add_shard(shard, lineage.get(shard))
                tail = Tail(self.dispatcher, shard, self.merge.token.lsn[shard],
                            self.heartbeat_ms, self.arrived)
                self.tails[shard] = tail
                tail.start()

    async def responses(self) -> AsyncGenerator[router_pb2.SubscribeResponse, None]:
        """Batches of events, and heartbeats while nothing happens, until cancelled or a
        shard's log fails (OUT_OF_RANGE, DATA_LOSS)."""
        for tail in self.tails.values():
            tail.start()
        try:
            last_sent = time.monotonic()
            while True:
                self._follow_ring()
                self._pull()
                events = self.merge.drain(MAX_EVENTS, MAX_BYTES, time.monotonic())
                if events:
                    # Not the merge's token: it may have moved past events still queued.
                    yield router_pb2.SubscribeResponse(events=events, token=events[-1].token)
                    last_sent = time.monotonic()
                    continue
                wait = last_sent + self.heartbeat_s - time.monotonic()
                if wait <= 0:
                    yield router_pb2.SubscribeResponse(token=self.merge.encoded_token())
                    last_sent = time.monotonic()
                    continue
                self.arrived.clear()
                if not self._ready():
                    # Held parts are looked at again every second (cycles, parts that never come).
                    try:
                        await asyncio.wait_for(self.arrived.wait(), min(wait, 1.0))
                    except TimeoutError:
                        pass
        finally:
            for tail in self.tails.values():
                await tail.stop()

    def _ready(self) -> bool:
        """Whether a queue holds a message the merge would take now."""
        return any(not t.queue.empty() and self.merge.wants(s) for s, t in self.tails.items())

    def _pull(self) -> None:
        """Move queued node messages into the merge, for every shard that takes them."""
        for shard, tail in self.tails.items():
            while self.merge.wants(shard) and not tail.queue.empty():
                item = tail.queue.get_nowait()
                if isinstance(item, Exception):
                    raise item
                self.merge.offer(shard, item.records, item.last_lsn)
