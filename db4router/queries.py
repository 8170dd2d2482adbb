"""Find, Iterate and Count across shards: validate once, fan out, k-way merge by sort position.

Shards return rows strictly after the global position of the previous page (keyset pagination,
no OFFSET), each with its sort position; `merge.py` merges them and keeps the first `limit`. The
cursor carries only the last position, signed with the cluster's key and bound to the query's
fingerprint. Every page is bounded by bytes as well as by count (see merge.py).

Streams (Iterate, IterateRange) go through a StreamGate: at most `per_connection` open streams
per client connection (grpc's peer string, "ipv4:HOST:PORT", names one connection) and `total`
per router, RESOURCE_EXHAUSTED beyond. A page is computed only after the transport has taken the
previous one, and at most `concurrency` stream pages are merged at once, so streams cannot
crowd out point operations. A stream whose client takes nothing for `idle_s` seconds ends with
DEADLINE_EXCEEDED and frees its slot. The limits are `db4 router` flags:
--max-streams-per-connection, --max-streams and --stream-idle-seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from db4.v1 import node_pb2, router_pb2
from db4core.errors import (
    InvalidArgumentError,
    ResourceExhaustedError,
    StreamIdleError,
    UnavailableError,
)
from db4core.hashing import token_for
from db4core.names import validate_collection
from db4core.query import (
    check_sort_values,
    decode_cursor,
    decode_where,
    encode_cursor,
    query_fingerprint,
    sort_pairs,
    validate_limit,
    validate_sort,
)
from db4core.query.prune import pinned_values
from db4router.collections import Collections
from db4router.dispatch import MAX_ROUTE_ATTEMPTS, NODE_TIMEOUT_S, Dispatcher, gather_all
from db4router.merge import merge_page
from db4rpc.options import MAX_MESSAGE_BYTES

PAGE_BYTES = MAX_MESSAGE_BYTES  # a Find or QueryRange page; the transport allows 4x as much
STREAM_PAGE_BYTES = 4 << 20  # a streamed page: each open stream may hold about two of them


@dataclass
class Plan:
    """A validated query: what to ask every shard, and how to merge and sign the answers."""

    collection: str
    where_raw: bytes
    sort: list[tuple[str, str]]
    limit: int
    shards: list[str] | None  # None: every shard of the ring
    fingerprint: str
    index: str = ""
    shard: str | None = None  # the one shard a find_in_shard names
    until: list | None = None
    # A where equivalent to the range for partition pruning (query_range), None when none
    pin: dict | None = None
    epoch: int = 0  # the ring epoch `shards` were pruned on (when a where pins them)
    sort_fields: list = field(init=False)

    def __post_init__(self) -> None:
        self.sort_fields = validate_sort(self.sort)

    def wire_sort(self) -> list[router_pb2.SortField]:
        return [router_pb2.SortField(path=p, descending=d == "desc") for p, d in self.sort]


@dataclass
class Page:
    """One merged page."""

    documents: list[bytes]
    last: list | None
    has_more: bool


class Queries:
    """Scatter-gather reads over every shard."""

    def __init__(self, dispatcher: Dispatcher, collections: Collections) -> None:
        self.dispatcher = dispatcher
        self.collections = collections

    @property
    def secret(self) -> bytes:
        return self.dispatcher.view.cursor_secret

    async def plan(self, request: router_pb2.FindRequest) -> Plan:
        """Validate a FindRequest into a Plan, asking only the shards the where can match."""
        validate_collection(request.collection)
        where = decode_where(request.where)
        sort = sort_pairs(request.sort)
        limit = validate_limit(request.limit or None)
        shard = request.shard_id if request.HasField("shard_id") else None
        shards = [self._check_shard(shard)] if shard is not None else None
        fp = query_fingerprint(request.collection, where, sort, extra={"shard": shard})
        plan = Plan(request.collection, request.where, sort, limit, shards, fp,
                    index=self.index_for(request.collection, sort), shard=shard)
        if shard is None:
            await self.prune(plan, where)
        return plan

    async def pruned(self, collection: str, where: dict | None) -> list[str] | None:
        """The shards owning the partition values the where pins; None (every shard) when it
        pins none. The options come from etcd when this router has not seen the collection:
        pruning by a default `$id` key would miss documents placed by another key."""
        return (await self._pruned_at(collection, where))[0]

    async def _pruned_at(self, collection: str, where: dict | None
                         ) -> tuple[list[str] | None, int]:
        """pruned(), and the epoch of the ring it pruned on."""
        info = await self.collections.current(collection)
        values = pinned_values(where, info.partition_key)
        topo = self.dispatcher.view.require()
        if values is None:
            return None, topo.epoch
        return sorted({topo.shard_for_token(token_for(v)) for v in values}), topo.epoch

    async def prune(self, plan: Plan, where: dict | None) -> None:
        """Set the shards a plan asks to those `where` pins on the current ring."""
        plan.shards, plan.epoch = await self._pruned_at(plan.collection, where)

    def index_for(self, collection: str, sort: list[tuple[str, str]]) -> str:
        """A range index whose keys are exactly this sort, so shards seek instead of sorting."""
        wanted = [list(pair) for pair in sort]
        for name, record in sorted(self.dispatcher.view.indexes.items()):
            if record["collection"] == collection and record["fields"] == wanted:
                return name
        return ""

    def _check_shard(self, shard_id: str) -> str:
        if shard_id not in self.dispatcher.view.require().ring.shards:
            raise InvalidArgumentError(f"no shard {shard_id!r} in the cluster")
        return shard_id

    def start_position(self, plan: Plan, cursor: str) -> list | None:
        """The position a cursor resumes after (None for the first page)."""
        if not cursor:
            return None
        position = decode_cursor(cursor, plan.fingerprint, self.secret).get("after")
        check_sort_values(position, plan.sort_fields)
        return position

    def cursor_for(self, plan: Plan, page: Page) -> str:
        """The signed cursor of the page after this one ("" when none)."""
        if not page.has_more or page.last is None:
            return ""
        return encode_cursor(plan.fingerprint, {"after": page.last}, self.secret)

    async def page(self, plan: Plan, after: list | None, max_bytes: int = PAGE_BYTES) -> Page:
        """One merged page after `after`, at most `max_bytes` of documents (at least one). When
        the ring moves under it, the page is asked for again over the shards the new ring
        gives the plan (`Dispatcher.scatter`)."""
        async def read(again: bool) -> Page:
            await self._replan(plan, again)
            return await self._page(plan, after, max_bytes)

        return await self.dispatcher.scatter(read)

    async def _page(self, plan: Plan, after: list | None, max_bytes: int) -> Page:
        until_raw = json.dumps(plan.until).encode() if plan.until is not None else b""
        wire_sort = plan.wire_sort()

        def request(shard_id: str, epoch: int, position: list | None, rows: int
                    ) -> node_pb2.QueryRequest:
            return node_pb2.QueryRequest(
                epoch=epoch, shard_id=shard_id, collection=plan.collection,
                where=plan.where_raw, sort=wire_sort, limit=rows,
                after=json.dumps(position).encode() if position is not None else b"",
                until=until_raw, index=plan.index)

        def ask_one(position: list | None, rows: int):
            async def ask(stub, shard_id, epoch):
                return await stub.Query(request(shard_id, epoch, position, rows),
                                        timeout=NODE_TIMEOUT_S)
            return ask

        shards = self._or_every(plan.shards)
        if not shards:  # the where pins no value at all (an empty $in)
            return Page([], None, False)
        epoch, groups = self.dispatcher.node_groups(shards)

        async def fetch(node: str, position: list | None, rows: int) -> node_pb2.QueryResponse:
            """The next rows of one node's shards, merged by the node. Every round of the
            page asks at the epoch it planned with (`Dispatcher.at`)."""
            part = groups[node]

            async def fetch_shard(shard: str, position: list | None, rows: int):
                return await self.dispatcher.at(node, shard, epoch, ask_one(position, rows))

            if len(part) == 1:
                return await fetch_shard(part[0], position, rows)

            async def merged(stub, shard_ids, epoch_):
                req = node_pb2.QueryShardsRequest(
                    queries=[request(s, epoch_, position, rows) for s in shard_ids])
                return await stub.QueryMerged(req, timeout=NODE_TIMEOUT_S)

            async def shard_by_shard() -> node_pb2.QueryResponse:
                got, more = await merge_page(part, position, rows, plan.sort_fields,
                                             fetch_shard, gather_all, max_bytes)
                return node_pb2.QueryResponse(has_more=more, rows=[
                    node_pb2.QueryRow(document=doc, position=json.dumps(pos).encode())
                    for pos, doc in got])

            return await self.dispatcher.on_node(node, part, epoch, merged, shard_by_shard)

        rows, has_more = await merge_page(sorted(groups), after, plan.limit, plan.sort_fields,
                                          fetch, gather_all, max_bytes)
        last = rows[-1][0] if rows else None
        return Page([doc for _, doc in rows], last, has_more)

    async def find(self, request: router_pb2.FindRequest) -> router_pb2.FindResponse:
        """One page of a Find (or, with `explain`, how it would run)."""
        plan = await self.plan(request)
        if request.explain:
            return router_pb2.FindResponse(plan=json.dumps(await self.explain(request, plan)))
        page = await self.page(plan, self.start_position(plan, request.cursor))
        return router_pb2.FindResponse(documents=page.documents, cursor=self.cursor_for(plan, page),
                                       has_more=page.has_more)

    async def explain(self, request: router_pb2.FindRequest, plan: Plan) -> dict:
        """How a Find would run, read from the plan and each shard's SQLite query plan."""
        key = (await self.collections.current(plan.collection)).partition_key
        where_raw, wire_sort = plan.where_raw, plan.wire_sort()

        async def ask_node(stub, shard_ids, epoch):
            req = node_pb2.QueryShardsRequest(queries=[node_pb2.QueryRequest(
                epoch=epoch, shard_id=s, collection=plan.collection, where=where_raw,
                sort=wire_sort, limit=plan.limit, index=plan.index, explain=True)
                for s in shard_ids])
            return list((await stub.QueryShards(req, timeout=NODE_TIMEOUT_S)).results)

        async def ask_one(stub, shard_id, epoch):
            return (await ask_node(stub, [shard_id], epoch))[0]

        async def read(again: bool) -> tuple:
            await self._replan(plan, again)
            shards = self._or_every(plan.shards)
            topo = self.dispatcher.view.require()
            return topo, shards, await self.dispatcher.by_node(shards, ask_node, ask_one)

        topo, shards, answers = await self.dispatcher.scatter(read)
        return {
            "collection": plan.collection,
            "partition_key": key,
            "pruning": self._pruning(request, plan, key),
            "index": plan.index or None,
            "nodes": sorted({topo.node_of(s) or "" for s in shards}),
            "shards": [{"shard": s, "node": topo.node_of(s), "sort": _sort_by(a.plan, plan.index),
                        "sqlite": list(a.plan)} for s, a in zip(shards, answers, strict=True)],
        }

    @staticmethod
    def _pruning(request: router_pb2.FindRequest, plan: Plan, key: str) -> dict:
        """Whether partition pruning applied, and why not when it did not."""
        if request.HasField("shard_id"):
            return {"applied": False, "reason": "find_in_shard names its one shard"}
        if plan.shards is None:
            return {"applied": False, "reason": (
                f"the where does not pin the partition key {key!r} with $eq or $in of strings "
                "or booleans, at the top level, in a top-level $and, or in every $or branch")}
        pinned = pinned_values(decode_where(plan.where_raw), key)
        return {"applied": True, "pinned": pinned, "shards": len(plan.shards)}

    async def iterate(self, plan: Plan, cursor: str, start: list | None = None
                      ) -> AsyncIterator[router_pb2.FindResponse]:
        """Every page of a query, each with the cursor that resumes after it."""
        after = self.start_position(plan, cursor) or start
        while True:
            page = await self.page(plan, after, STREAM_PAGE_BYTES)
            yield router_pb2.FindResponse(documents=page.documents,
                                          cursor=self.cursor_for(plan, page),
                                          has_more=page.has_more)
            if not page.has_more:
                return
            after = page.last

    async def count(self, request: router_pb2.CountRequest) -> int:
        """Matching documents over every shard, the pinned ones, or one."""
        validate_collection(request.collection)
        where = decode_where(request.where)

        def count_request(shard: str, epoch: int) -> node_pb2.NodeCountRequest:
            return node_pb2.NodeCountRequest(epoch=epoch, shard_id=shard,
                                             collection=request.collection, where=request.where)

        async def ask(stub, shard, epoch):
            return (await stub.Count(count_request(shard, epoch), timeout=NODE_TIMEOUT_S)).count

        async def ask_node(stub, shard_ids, epoch):
            req = node_pb2.CountShardsRequest(counts=[count_request(s, epoch) for s in shard_ids])
            return list((await stub.CountShards(req, timeout=NODE_TIMEOUT_S)).counts)

        if request.HasField("shard_id"):
            return await self.dispatcher.by_shard(self._check_shard(request.shard_id), ask)

        async def read(_again: bool) -> int:
            shards = self._or_every(await self.pruned(request.collection, where))
            return sum(await self.dispatcher.by_node(shards, ask_node, ask))

        return await self.dispatcher.scatter(read)

    async def _replan(self, plan: Plan, again: bool) -> None:
        """When the ring moved since a pruned plan's shards were chosen (a node said so:
        `again`; or the view is newer, as between the pages of an iterate), they become those
        its where (or range pin) pins on the current ring: asked at the new epoch, the old
        shards would answer without the rows a split or a move gave another. Every shard
        (None) and a named shard stay as they are."""
        if plan.shard is not None or plan.shards is None:
            return
        for _ in range(MAX_ROUTE_ATTEMPTS):
            if not again and plan.epoch == self.dispatcher.view.require().epoch:
                return
            again = False
            await self.prune(plan, plan.pin if plan.pin is not None
                             else decode_where(plan.where_raw))
        raise UnavailableError(f"the ring kept changing while a query of {plan.collection!r} "
                               "chose its shards")

    def _or_every(self, shards: list[str] | None) -> list[str]:
        """The given shards, or every shard of the ring for None."""
        return sorted(self.dispatcher.view.require().ring.shards) if shards is None else shards


def _sort_by(lines: list[str], index: str) -> str:
    """How a shard orders its rows, from its EXPLAIN QUERY PLAN lines."""
    if any("TEMP B-TREE" in line for line in lines):
        return "sorted after reading the matching rows (no index serves this sort)"
    if index and any(f"INDEX ix_{index}" in line for line in lines):
        return f"read in order from the range index {index!r}"
    return "read in order (primary key)"


def _malloc_trim() -> None:
    """Give freed heap pages back to the OS (glibc only). Pages of many closed streams are
    freed in small pieces that malloc would otherwise keep, leaving RSS at its peak."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim(0)


MAX_STREAMS_PER_CONNECTION = 64
MAX_STREAMS = 1024
STREAM_IDLE_S = 60.0


class StreamGate:
    """Admission, pacing and idle timeout for server streams of pages."""

    def __init__(self, per_connection: int = MAX_STREAMS_PER_CONNECTION,
                 total: int = MAX_STREAMS, idle_s: float = STREAM_IDLE_S,
                 concurrency: int = 8) -> None:
        if min(per_connection, total, idle_s) <= 0:
            raise ValueError("stream limits and the idle timeout must be positive")
        self.per_connection = per_connection
        self.total = total
        self.idle_s = idle_s
        self.open: Counter[str] = Counter()
        self.merging = asyncio.Semaphore(concurrency)
        self.trim_pending = False

    @contextlib.contextmanager
    def admit(self, peer: str) -> Iterator[None]:
        """Hold a stream slot for `peer` (one client connection) while the stream runs."""
        if sum(self.open.values()) >= self.total:
            raise ResourceExhaustedError(
                f"this router serves at most {self.total} streams at once; retry later")
        if self.open[peer] >= self.per_connection:
            raise ResourceExhaustedError(
                f"at most {self.per_connection} open streams per connection; close one first")
        self.open[peer] += 1
        try:
            yield
        finally:
            self.open[peer] -= 1
            if not self.open[peer]:
                del self.open[peer]
            self._trim_soon()

    def _trim_soon(self) -> None:
        """One malloc_trim a second after streams close (one for a burst of closes)."""
        if not self.trim_pending:
            self.trim_pending = True
            asyncio.get_running_loop().call_later(1.0, self._trim)

    def _trim(self) -> None:
        self.trim_pending = False
        _malloc_trim()

    async def run(self, context: grpc.aio.ServicerContext,
                  pages: AsyncIterator[router_pb2.FindResponse]) -> None:
        """Send every page, computing each only once the transport took the one before."""
        async with contextlib.aclosing(pages):  # type: ignore[type-var]  # an async generator
            with self.admit(context.peer()):
                await self._pump(context, pages)

    async def _pump(self, context: grpc.aio.ServicerContext,
                    pages: AsyncIterator[router_pb2.FindResponse]) -> None:
        while True:
            async with self.merging:
                page = await anext(pages, None)
            if page is None:
                return
            await self.send(context, page)

    async def send(self, context: grpc.aio.ServicerContext, page: Message) -> None:
        """Write one page (or change batch); DEADLINE_EXCEEDED when the client takes nothing
        for idle_s."""
        write = asyncio.ensure_future(context.write(page))
        done, _ = await asyncio.wait({write}, timeout=self.idle_s)
        if not done:
            # Left to finish or fail with the call; its outcome no longer matters.
            write.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise StreamIdleError(
                f"stream idle: the client took no page for {self.idle_s:g} s")
        write.result()
