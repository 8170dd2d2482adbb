"""The Node gRPC servicer: validate, call the shard, translate. No SQL here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from db4.v1 import node_pb2, node_pb2_grpc, router_pb2
from db4core import documents, failpoints
from db4core.errors import (
    Db4Error,
    InvalidArgumentError,
    WrongShardError,
    most_severe,
)
from db4core.query import decode_where, sort_pairs, validate_limit
from db4core.txn import ABORT, COMMIT, validate_txid
from db4node import applied, changelog, queries, search_index, search_query, tail
from db4node.membership import Membership
from db4node.participant import Participant
from db4node.queries import READ_BYTES
from db4node.reshard_service import ReshardHandlers, encode_change
from db4node.search_build import Builds
from db4node.shard import Op, ReadCheck, Shard, read_rows
from db4node.store import ShardStore
from db4rpc.status import servicer_method, servicer_stream

T = TypeVar("T")


_KINDS = {
    node_pb2.OP_KIND_CREATE: "create",
    node_pb2.OP_KIND_UPDATE: "update",
    node_pb2.OP_KIND_REPLACE: "replace",
    node_pb2.OP_KIND_UPSERT: "upsert",
    node_pb2.OP_KIND_DELETE: "delete",
    node_pb2.OP_KIND_INCREMENT: "increment",
}


def decode_op(op: node_pb2.WriteOp) -> Op:
    """A wire op as a storage op."""
    kind = _KINDS.get(op.kind)
    if kind is None:
        raise InvalidArgumentError(f"unknown op kind {op.kind}")
    expected = op.expected_version if op.HasField("expected_version") else None
    return Op(kind, op.collection, op.id, op.token, op.body, expected, op.partition_key or "$id",
              decode_where(op.condition))


def decode_read(read: node_pb2.ReadCheck) -> ReadCheck:
    """A wire read check as a storage one."""
    if read.version < 0:
        raise InvalidArgumentError(f"read of {read.collection}/{read.id}: negative version")
    return ReadCheck(read.collection, read.id, read.token, read.version)


def write_results(results: list) -> list[node_pb2.WriteResult]:
    """Op results on the wire."""
    return [node_pb2.WriteResult(found=r.found, document=r.document) for r in results]


def decode_position(raw: bytes, what: str) -> list | None:
    """A JSON sort position, or None when empty."""
    if not raw:
        return None
    position = documents.decode(raw, what)
    if not isinstance(position, list):
        raise InvalidArgumentError(f"{what} must be a JSON array")
    return position


# Reads of this many ids or fewer are bounded (a primary-key seek each) and run on the event loop
# (ShardWorker.point_read); larger ones on a reader thread.
INLINE_READ_IDS = 8


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The caller's deadline as a time.monotonic() value (None when it set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def bounded_items(rows: list[tuple[str, int] | None]) -> list[node_pb2.ReadItem]:
    """ReadItems for a prefix of rows that fits READ_BYTES (at least one item)."""
    items: list[node_pb2.ReadItem] = []
    size = 0
    for row in rows:
        if row is None:
            items.append(node_pb2.ReadItem(found=False))
            continue
        body = row[0].encode()
        size += len(body)
        if items and size > READ_BYTES:
            break  # the router asks again for the ids after this prefix
        items.append(node_pb2.ReadItem(found=True, document=body, token=row[1]))
    return items


def same_but_shard(requests: list[Message],
                   per_shard: tuple[str, ...] = ("shard_id", "epoch")) -> bool:
    """Whether requests differ only in their `per_shard` fields (what a node-level request over
    several shards must be: one query, many shards)."""
    def shape(r: Message) -> bytes:
        copy = type(r)()
        copy.CopyFrom(r)
        for name in per_shard:
            copy.ClearField(name)
        return copy.SerializeToString(deterministic=True)

    first = shape(requests[0])
    return all(shape(r) == first for r in requests[1:])


def query_response(page: queries.Page) -> node_pb2.QueryResponse:
    """A shard's page on the wire."""
    rows = [node_pb2.QueryRow(document=b.encode(), position=p.encode()) for b, p in page.rows]
    return node_pb2.QueryResponse(rows=rows, has_more=page.has_more)


async def all_or_error(work: list[Awaitable[T]]) -> list[T]:
    """Every result in order, each shard's query on its own threads; when any failed, the
    others are cancelled (their statements stop at the next progress check) and the most
    severe error is raised."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
    except Exception:
        for task in tasks:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [r for r in done if isinstance(r, Db4Error)]
        if failures:
            raise most_severe(failures) from None
        raise


def decode_search_index(ix: router_pb2.SearchIndex) -> search_index.SearchDef:
    """A wire full-text index definition, validated."""
    fields = [(f.path, f.weight) for f in ix.fields]
    return search_index.define(ix.name, ix.collection, fields, ix.tokenizer)


def decode_search_after(raw: bytes) -> tuple[float, str] | None:
    """A search position: JSON [score, id], or None when empty."""
    position = decode_position(raw, "after")
    if position is None:
        return None
    if (len(position) != 2 or isinstance(position[0], bool)
            or not isinstance(position[0], int | float) or not isinstance(position[1], str)):
        raise InvalidArgumentError("after must be the JSON array [score, id]")
    return float(position[0]), position[1]


def decode_search(request: node_pb2.SearchShardRequest) -> search_query.SearchArgs:
    """A shard's part of a search page as storage arguments."""
    tokens = request.snippet_tokens or search_query.DEFAULT_SNIPPET_TOKENS
    return search_query.SearchArgs(
        search_index.validate_name(request.index), request.expression, tuple(request.idf),
        request.avgdl, validate_limit(request.limit), decode_search_after(request.after),
        decode_where(request.where), (request.highlight_open, request.highlight_close), tokens,
        tuple(request.phrases))


def stats_message(rows: int, tokens: int, counts: Sequence[int]) -> node_pb2.SearchStatsResponse:
    """A shard's search statistics on the wire."""
    return node_pb2.SearchStatsResponse(rows=rows, tokens=tokens, phrase_rows=counts)


def decode_expect(request: node_pb2.SearchShardRequest) -> search_query.LocalStats | None:
    """The statistics a shard's figures were summed from, when the request names them."""
    if not request.HasField("expect"):
        return None
    e = request.expect
    return e.rows, e.tokens, tuple(e.phrase_rows)


def search_hits(page: search_query.SearchPage,
                shard_ids: list[str]) -> node_pb2.SearchShardResponse:
    """A page on the wire (`shard_ids`: the shards searched, in order)."""
    if page.stale:
        return node_pb2.SearchShardResponse(stale={
            shard_ids[i]: stats_message(*own) for i, own in page.stale.items()})
    hits = [router_pb2.SearchHit(id=h.id, score=h.score, document=h.body.encode(),
                                 highlights=h.highlights, snippet=h.snippet) for h in page.hits]
    return node_pb2.SearchShardResponse(hits=hits, has_more=page.has_more)


def _insecure_channel(address: str, options: Any) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=options)


class NodeService(ReshardHandlers, node_pb2_grpc.NodeServicer):
    """Serves the shards placed on this node; SQLite work runs on each shard's own threads."""

    def __init__(self, store: ShardStore, membership: Membership,
                 participant: Participant,
                 checkpoints: Callable[[], dict[str, int]] = dict,
                 truncate: Callable[[set[str] | None], Awaitable[dict[str, int]]] | None = None,
                 open_channel: Callable[[str, Any], grpc.aio.Channel] | None = None
                 ) -> None:
        self.store = store
        self.open_channel = open_channel or _insecure_channel
        self.membership = membership
        self.participant = participant
        self.checkpoints = checkpoints  # shard -> checkpoint last read from etcd
        self.truncate = truncate  # truncate change logs now (Checkpointer.truncate_now)
        self.search_builds = Builds()

    @servicer_method
    async def Write(self, request: node_pb2.WriteRequest, context: grpc.aio.ServicerContext):
        ops = [decode_op(op) for op in request.ops]
        reads = [decode_read(r) for r in request.reads]
        tokens = [op.token for op in ops] + [r.token for r in reads]
        try:
            await self.membership.check_owner(request.shard_id, tokens, request.epoch)
        except WrongShardError:
            # Sent again after a broken connection, a write this shard applied before its
            # ranges moved is answered here, not applied again on their new shard.
            again = await self._applied_here(request, ops, reads, deadline_of(context))
            if again is None:
                raise
            return again
        self.store.load.write(request.shard_id, len(ops), [op.token for op in ops])
        results, txid, last_lsn = await self.participant.write(
            request.shard_id, ops, request.txid, reads, deadline_of(context))
        return node_pb2.WriteResponse(results=write_results(results), last_lsn=last_lsn,
                                      txid=txid)

    async def _applied_here(self, request: node_pb2.WriteRequest, ops: list, reads: list,
                            deadline: float | None) -> node_pb2.WriteResponse | None:
        """The answer of a write the shard noted under the request's txid, if it is here."""
        if not request.txid or not ops or not self.store.has(request.shard_id):
            return None
        request_digest = applied.digest(ops, reads)
        found = await self.store.get(request.shard_id).read(
            lambda conn: applied.lookup(conn, request.txid, ops, request_digest), deadline,
            "lookup of a write sent again")
        if found is None:
            return None
        results, last_lsn = found
        return node_pb2.WriteResponse(results=write_results(results), last_lsn=last_lsn,
                                      txid=request.txid)

    @servicer_method
    async def Prepare(self, request: node_pb2.PrepareRequest, context: grpc.aio.ServicerContext):
        txid = validate_txid(request.txid)
        ops = [decode_op(op) for op in request.ops]
        reads = [decode_read(r) for r in request.reads]
        if request.in_doubt_ms < 0:
            raise InvalidArgumentError("in_doubt_ms must not be negative")
        tokens = [op.token for op in ops] + [r.token for r in reads]
        await self.membership.check_owner(request.shard_id, tokens, request.epoch)
        self.store.load.write(request.shard_id, len(ops), [op.token for op in ops])
        results = await self.participant.prepare(
            request.shard_id, txid, ops, reads, list(request.participants), request.in_doubt_ms,
            deadline_of(context))
        return node_pb2.PrepareResponse(results=write_results(results))

    @servicer_method
    async def CommitPrepared(self, request: node_pb2.ResolveRequest,
                             context: grpc.aio.ServicerContext):
        had, last_lsn = await self._resolve(request, COMMIT, context)
        failpoints.hit("participant.after_commit")
        return node_pb2.ResolveResponse(had_intents=had, last_lsn=last_lsn)

    @servicer_method
    async def AbortPrepared(self, request: node_pb2.ResolveRequest,
                            context: grpc.aio.ServicerContext):
        had, _ = await self._resolve(request, ABORT, context)
        return node_pb2.ResolveResponse(had_intents=had)

    async def _resolve(self, request: node_pb2.ResolveRequest, decision: str,
                       context: grpc.aio.ServicerContext) -> tuple[bool, int]:
        """Apply a decision. No ownership check: a decision must reach the intents wherever
        the ring has moved since; only a shard this node holds a file of is touched."""
        txid = validate_txid(request.txid)
        if not self.store.has(request.shard_id):
            return False, 0
        return await self.participant.resolve(request.shard_id, txid, decision,
                                              deadline_of(context))

    @servicer_method
    async def Read(self, request: node_pb2.ReadRequest, context: grpc.aio.ServicerContext):
        if request.tokens and len(request.tokens) != len(request.ids):
            raise InvalidArgumentError("tokens must be empty or one per id")
        await self.membership.check_owner(request.shard_id, list(request.tokens), request.epoch)
        ids, tokens = list(request.ids), list(request.tokens)
        self.store.load.read(request.shard_id, len(ids), tokens)
        deadline = deadline_of(context)
        await self.participant.wait_readable(request.shard_id, request.collection, ids, deadline)
        worker = self.store.get(request.shard_id)
        run = worker.point_read if len(ids) <= INLINE_READ_IDS else worker.read
        rows = await run(lambda conn: read_rows(conn, request.collection, ids, tokens),
                         deadline, "read")
        self.membership.recheck([(request.shard_id, request.epoch)])
        return node_pb2.ReadResponse(items=bounded_items(rows))

    @servicer_method
    async def ShardStats(
        self, request: node_pb2.ShardStatsRequest, context: grpc.aio.ServicerContext
    ):
        topo = await self.membership.at_least(request.epoch)
        hosted = topo.shards_on(self.membership.node_id) if topo else []
        if request.epoch and topo is not None:  # a router's question: a moved shard is rerouted
            for shard_id in request.shard_ids:
                if shard_id not in hosted:
                    raise WrongShardError(f"shard {shard_id} is not hosted on node "
                                          f"{self.membership.node_id} at epoch {topo.epoch}",
                                          topo.epoch)
        # Only hosted shards: asking about others must not create their files.
        wanted = [s for s in request.shard_ids if s in hosted] if request.shard_ids else hosted
        stats = []
        for shard_id in wanted:
            only = await self.membership.scope_of(shard_id, request.epoch)
            s = await self.store.get(shard_id).write(
                functools.partial(Shard.stats, only=only), deadline_of(context),
                "shard statistics")
            self.membership.recheck([(shard_id, request.epoch)])
            stats.append(node_pb2.ShardStat(shard_id=shard_id, documents=s["documents"],
                                             bytes=s["bytes"], last_lsn=s["last_lsn"],
                                             collections=s["collections"]))
        return node_pb2.ShardStatsResponse(node_id=self.membership.node_id, shards=stats)

    @servicer_method
    async def Query(self, request: node_pb2.QueryRequest, context: grpc.aio.ServicerContext):
        return await self._query(request, deadline_of(context))

    @servicer_method
    async def Count(self, request: node_pb2.NodeCountRequest, context: grpc.aio.ServicerContext):
        return node_pb2.NodeCountResponse(count=await self._count(request, deadline_of(context)))

    @servicer_method
    async def QueryShards(self, request: node_pb2.QueryShardsRequest,
                          context: grpc.aio.ServicerContext):
        deadline = deadline_of(context)
        results = await all_or_error([self._query(q, deadline) for q in request.queries])
        return node_pb2.QueryShardsResponse(results=results)

    @servicer_method
    async def QueryMerged(self, request: node_pb2.QueryShardsRequest,
                          context: grpc.aio.ServicerContext):
        queries_ = list(request.queries)
        if not queries_:
            raise InvalidArgumentError("QueryMerged needs at least one query")
        first = queries_[0]
        if first.explain or not same_but_shard(queries_):
            raise InvalidArgumentError(
                "QueryMerged queries must differ only in their shard and epoch, without explain")
        workers, only = await self._scoped_workers([(q.shard_id, q.epoch) for q in queries_])
        args = (decode_where(first.where), sort_pairs(first.sort), first.limit,
                decode_position(first.after, "after"), decode_position(first.until, "until"),
                first.index)
        page = await self.store.scatter.run(
            workers, lambda conns: queries.find_merged(conns, first.collection, *args, only),
            deadline_of(context), f"query on {first.collection!r} over {len(workers)} shards")
        self.membership.recheck((q.shard_id, q.epoch) for q in queries_)
        return query_response(page)

    @servicer_method
    async def CountShards(self, request: node_pb2.CountShardsRequest,
                          context: grpc.aio.ServicerContext):
        counts_ = list(request.counts)
        if not counts_:
            return node_pb2.CountShardsResponse()
        first = counts_[0]
        if not same_but_shard(counts_):
            # Not what the router sends, but allowed: each shard counted on its own.
            deadline = deadline_of(context)
            counts = await all_or_error([self._count(c, deadline) for c in counts_])
            return node_pb2.CountShardsResponse(counts=counts)
        workers, only = await self._scoped_workers([(c.shard_id, c.epoch) for c in counts_])
        where = decode_where(first.where)
        counts = await self.store.scatter.run(
            workers, lambda conns: queries.count_each(conns, first.collection, where, only),
            deadline_of(context), f"count on {first.collection!r} over {len(workers)} shards")
        self.membership.recheck((c.shard_id, c.epoch) for c in counts_)
        return node_pb2.CountShardsResponse(counts=counts)

    async def _query(self, request: node_pb2.QueryRequest, deadline: float | None
                     ) -> node_pb2.QueryResponse:
        """One shard's page (or, with `explain`, its SQLite plan)."""
        only = await self.membership.scope_of(request.shard_id, request.epoch)
        self.store.load.read(request.shard_id)
        args = (decode_where(request.where), sort_pairs(request.sort), request.limit,
                decode_position(request.after, "after"), decode_position(request.until, "until"),
                request.index)
        worker, what = self.store.get(request.shard_id), f"query on {request.collection!r}"
        if request.explain:
            lines = await worker.read(lambda conn: queries.plan(conn, request.collection, *args),
                                      deadline, f"plan of a {what}")
            return node_pb2.QueryResponse(plan=lines)
        page = await worker.query(
            lambda conn: queries.find(conn, request.collection, *args, only=only), deadline, what)
        self.membership.recheck([(request.shard_id, request.epoch)])
        return query_response(page)

    async def _count(self, request: node_pb2.NodeCountRequest, deadline: float | None) -> int:
        """One shard's count."""
        only = await self.membership.scope_of(request.shard_id, request.epoch)
        self.store.load.read(request.shard_id)
        where = decode_where(request.where)
        count = await self.store.get(request.shard_id).query(
            lambda conn: queries.count(conn, request.collection, where, only),
            deadline, f"count on {request.collection!r}")
        self.membership.recheck([(request.shard_id, request.epoch)])
        return count

    @servicer_method
    async def EnsureIndex(self, request: node_pb2.EnsureIndexRequest,
                          context: grpc.aio.ServicerContext):
        await self.membership.check_owner(request.shard_id, [], 0)
        ix = request.index
        fields = sort_pairs(ix.fields)
        created, docs = await self.store.get(request.shard_id).write(
            lambda shard: queries.ensure_index(shard.conn, ix.name, ix.collection, fields),
            deadline_of(context), f"index build {ix.name!r}")
        return node_pb2.EnsureIndexResponse(documents=docs, created=created)

    @servicer_method
    async def DropShardIndex(self, request: node_pb2.DropShardIndexRequest,
                             context: grpc.aio.ServicerContext):
        await self.membership.check_owner(request.shard_id, [], 0)
        dropped = await self.store.get(request.shard_id).write(
            lambda shard: queries.drop_index(shard.conn, request.name),
            deadline_of(context), f"index drop {request.name!r}")
        return node_pb2.DropShardIndexResponse(dropped=dropped)

    @servicer_stream
    async def TailChanges(self, request: node_pb2.TailChangesRequest,
                          context: grpc.aio.ServicerContext):
        max_records, heartbeat_s = tail.limits(request.max_records, request.heartbeat_ms)
        await self.membership.check_owner(request.shard_id, [], 0)
        worker = self.store.get(request.shard_id)
        async with contextlib.aclosing(
                tail.batches(worker, request.after_lsn, max_records, heartbeat_s)) as batches:
            async for batch in batches:
                # The next batch is read only once the transport took this one.
                await context.write(node_pb2.TailChangesResponse(
                    records=[encode_change(c) for c in batch.records], last_lsn=batch.last_lsn))
        return
        yield  # a server-stream handler is an async generator; messages go by context.write

    @servicer_method
    async def LogStats(self, request: node_pb2.LogStatsRequest,
                       context: grpc.aio.ServicerContext):
        topo = self.membership.topology
        hosted = topo.shards_on(self.membership.node_id) if topo else []
        # Only hosted shards: asking about others must not create their files.
        wanted = sorted(s for s in request.shard_ids if s in hosted) if request.shard_ids \
            else sorted(hosted)
        checkpoints = self.checkpoints()
        stats = []
        for shard_id in wanted:
            s = await self.store.get(shard_id).read(changelog.stats, deadline_of(context),
                                                    "change-log statistics")
            stats.append(node_pb2.LogStat(
                shard_id=shard_id, first_lsn=s.first_lsn, last_lsn=s.last_lsn,
                entries=s.entries, bytes=s.bytes, checkpoint=checkpoints.get(shard_id, 0)))
        return node_pb2.LogStatsResponse(node_id=self.membership.node_id, shards=stats)

    @servicer_stream
    async def EnsureSearchIndex(self, request: node_pb2.EnsureSearchIndexRequest,
                                context: grpc.aio.ServicerContext):
        d = decode_search_index(request.index)
        await self.membership.check_owner(request.shard_id, [], 0)
        worker = self.store.get(request.shard_id)
        async with contextlib.aclosing(self.search_builds.run(
                request.shard_id, worker, d, deadline_of(context))) as progress:
            async for documents, done in progress:
                await context.write(node_pb2.ShardSearchProgress(documents=documents, done=done))
        return
        yield  # a server-stream handler is an async generator; messages go by context.write

    @servicer_method
    async def DropShardSearchIndex(self, request: node_pb2.DropShardSearchIndexRequest,
                                   context: grpc.aio.ServicerContext):
        name = search_index.validate_name(request.name)
        await self.membership.check_owner(request.shard_id, [], 0)
        dropped = await self.store.get(request.shard_id).write(
            lambda shard: search_index.drop(shard.conn, name),
            deadline_of(context), f"search index drop {name!r}")
        return node_pb2.DropShardIndexResponse(dropped=dropped)

    @servicer_method
    async def SearchStats(self, request: node_pb2.SearchStatsRequest,
                          context: grpc.aio.ServicerContext):
        name, phrases = search_index.validate_name(request.index), list(request.phrases)
        await self.membership.check_owner(request.shard_id, [], request.epoch)
        rows, tokens, counts = await self.store.get(request.shard_id).query(
            lambda conn: search_query.stats(conn, name, phrases),
            deadline_of(context), f"search statistics of {name!r}")
        self.membership.recheck([(request.shard_id, request.epoch)])
        return stats_message(rows, tokens, counts)

    @servicer_method
    async def CheckpointShards(self, request: node_pb2.CheckpointShardsRequest,
                               context: grpc.aio.ServicerContext):
        open_ = dict(self.store.open_shards())
        wanted = sorted(s for s in request.shard_ids if s in open_) if request.shard_ids \
            else sorted(open_)
        truncated = await self.truncate(set(wanted)) if self.truncate is not None else {}
        out = []
        for shard_id in wanted:
            wal = await open_[shard_id].write(Shard.wal_checkpoint, deadline_of(context),
                                              f"checkpoint of shard {shard_id}")
            out.append(node_pb2.ShardCheckpoint(
                shard_id=shard_id, node_id=self.membership.node_id,
                truncated=truncated.get(shard_id, 0), wal_bytes=wal))
        return node_pb2.CheckpointShardsResponse(shards=out)

    @servicer_method
    async def SearchStatsShards(self, request: node_pb2.SearchStatsShardsRequest,
                                context: grpc.aio.ServicerContext):
        reqs = list(request.requests)
        if not reqs:
            return node_pb2.SearchStatsShardsResponse()
        first = reqs[0]
        if not same_but_shard(reqs):
            raise InvalidArgumentError(
                "SearchStatsShards requests must differ only in their shard and epoch")
        name, phrases = search_index.validate_name(first.index), list(first.phrases)
        workers = await self._scatter_workers([(r.shard_id, r.epoch) for r in reqs],
                                              reads=False)  # the search's own read counts
        found = await self.store.scatter.run(
            workers, lambda conns: [search_query.stats(c, name, phrases) for c in conns],
            deadline_of(context), f"search statistics of {name!r} over {len(reqs)} shards")
        self.membership.recheck((r.shard_id, r.epoch) for r in reqs)
        return node_pb2.SearchStatsShardsResponse(results=[stats_message(*f) for f in found])

    @servicer_method
    async def SearchMerged(self, request: node_pb2.SearchMergedRequest,
                           context: grpc.aio.ServicerContext):
        reqs = list(request.requests)
        if not reqs:
            raise InvalidArgumentError("SearchMerged needs at least one request")
        if not same_but_shard(reqs, ("shard_id", "epoch", "expect")):
            raise InvalidArgumentError("SearchMerged requests must differ only in their shard, "
                                       "epoch and expected statistics")
        args = decode_search(reqs[0])
        expect = [decode_expect(r) for r in reqs]
        workers = await self._scatter_workers([(r.shard_id, r.epoch) for r in reqs])
        page = await self.store.scatter.run(
            workers, lambda conns: search_query.search_merged(conns, args, expect),
            deadline_of(context), f"search of {args.index!r} over {len(reqs)} shards")
        self.membership.recheck((r.shard_id, r.epoch) for r in reqs)
        return search_hits(page, [r.shard_id for r in reqs])

    async def _scoped_workers(self, shards: list[tuple[str, int]]) -> tuple[list, list]:
        """The workers of distinct shards this node owns at the callers' epochs (each counted
        as one read), and the token ranges a query of each keeps to (None: all of its rows);
        no wait for a cleanup in progress."""
        if len({s for s, _ in shards}) != len(shards):
            raise InvalidArgumentError("the request names a shard more than once")
        only = [await self.membership.scope_of(shard_id, epoch) for shard_id, epoch in shards]
        for shard_id, _ in shards:
            self.store.load.read(shard_id)
        return [self.store.get(shard_id) for shard_id, _ in shards], only

    async def _scatter_workers(self, shards: list[tuple[str, int]], reads: bool = True
                               ) -> list:
        """The workers of distinct shards this node owns at the callers' epochs (each counted
        as one read, unless `reads` is False)."""
        if len({s for s, _ in shards}) != len(shards):
            raise InvalidArgumentError("the request names a shard more than once")
        for shard_id, epoch in shards:
            await self.membership.check_owner(shard_id, [], epoch)
        if reads:
            for shard_id, _ in shards:
                self.store.load.read(shard_id)
        return [self.store.get(shard_id) for shard_id, _ in shards]

    @servicer_method
    async def SearchShard(self, request: node_pb2.SearchShardRequest,
                          context: grpc.aio.ServicerContext):
        args = decode_search(request)
        await self.membership.check_owner(request.shard_id, [], request.epoch)
        self.store.load.read(request.shard_id)
        expect = decode_expect(request)
        page = await self.store.get(request.shard_id).query(
            lambda conn: search_query.search(conn, args, expect),
            deadline_of(context), f"search of {args.index!r}")
        self.membership.recheck([(request.shard_id, request.epoch)])
        return search_hits(page, [request.shard_id])
