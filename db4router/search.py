"""Search: global BM25 over every shard in two rounds, merged by (score desc, `$id` asc).

Round 1 asks every shard for its statistics of the query's phrases (rows, tokens, rows per
phrase); their sums give N, avgdl and each phrase's IDF exactly as one FTS5 index over the whole
collection would compute them. Round 2 asks the shards whose rows match any phrase for their
best `limit` hits scored with those global figures, after the cursor's (score, id). Every hit
matches at least one phrase (FTS5 has no bare NOT), so a shard where no phrase matches has none.
The cursor is the last hit's (score, id), signed with the cluster's key and bound to the index,
the query and the where. Each round asks every node once for all of its shards
(`SearchStatsShards`, `SearchMerged`: the node merges its shards' hits). A where that pins the
collection's partition key (the rule of `find`, db4core/query/README.md) limits round 2 to the
pinned values' shards; round 1 still asks every shard, since scores use corpus-wide statistics.

Round 1 is skipped when this router kept every shard's statistics of the same phrases from an
earlier search at the same ring epoch: round 2 then carries each shard's kept statistics, and a
shard whose own differ (a write since) answers them instead of hits, so the page is asked for
again with corrected figures (`Search.search`). Scores stay exact either way.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from db4.v1 import node_pb2, router_pb2
from db4core.errors import InvalidArgumentError, NotFoundError
from db4core.query import decode_cursor, decode_where, encode_cursor, query_fingerprint
from db4core.query.limits import validate_limit
from db4core.search import average_size, compile_query, idf, merge_ranked, parse_search_query
from db4core.topology import Topology
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher, gather_all
from db4router.queries import PAGE_BYTES
from db4router.searchdefs import SearchIndexes

DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 1000
DEFAULT_SNIPPET_TOKENS = 32
MAX_SNIPPET_TOKENS = 64
MAX_MARK_CHARS = 64
DEFAULT_MARKS = ("<b>", "</b>")


@dataclass
class SearchPlan:
    """A validated search: what to ask every shard, and how to sign its cursor."""

    index: str
    collection: str
    where: dict | None
    request: router_pb2.SearchRequest
    expression: str
    phrases: list[str]
    limit: int
    snippet_tokens: int
    marks: tuple[str, str]
    fingerprint: str


# One shard's statistics of a query's phrases: rows, tokens, rows per phrase.
ShardStats = tuple[int, int, tuple[int, ...]]

# Statistics kept from earlier searches, by (index, phrases): at most this many queries.
KNOWN_QUERIES = 1024
# Searches with kept statistics asked again after shards answered theirs had changed, before
# the search gathers them afresh.
KNOWN_TRIES = 2


@dataclass
class Stats:
    """Corpus-wide BM25 figures, the shards with at least one matching row, and each shard's
    own statistics they were summed from."""

    rows: int
    avgdl: float
    idf: list[float]
    matching: list[str]
    shards: dict[str, ShardStats]


def summed(shards: dict[str, ShardStats], phrases: int) -> Stats:
    """The corpus-wide figures of every shard's statistics."""
    rows = sum(a[0] for a in shards.values())
    tokens = sum(a[1] for a in shards.values())
    per_phrase = [sum(a[2][i] for a in shards.values()) for i in range(phrases)]
    matching = sorted(s for s, a in shards.items() if any(a[2]))
    avgdl = average_size(tokens, rows) if rows else 0.0
    return Stats(rows, avgdl, [idf(rows, n) for n in per_phrase], matching, shards)


class Search:
    """Plan, gather statistics, score on the shards, merge."""

    def __init__(self, dispatcher: Dispatcher, indexes: SearchIndexes,
                 pruned: Callable[[str, dict | None], Awaitable[list[str] | None]]) -> None:
        self.dispatcher = dispatcher
        self.indexes = indexes
        self.pruned = pruned  # Queries.pruned: the shards a where pins, None for every shard
        # (index, phrases) -> (ring epoch, each shard's statistics), least recently used first
        self._known: OrderedDict[tuple, tuple[int, dict[str, ShardStats]]] = OrderedDict()

    @property
    def secret(self) -> bytes:
        return self.dispatcher.view.cursor_secret

    def plan(self, request: router_pb2.SearchRequest) -> SearchPlan:
        """Validate a SearchRequest (the index first: NOT_FOUND before any other complaint)."""
        record = self.indexes.get(request.index)
        fields = [p for p, _ in record["fields"]]
        query = request.query
        where = decode_where(request.where)
        limit = validate_limit(request.limit or None, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT)
        compiled = compile_query(parse_search_query(query, fields), fields)
        fingerprint = query_fingerprint(record["collection"], where, [],
                                        extra={"search": request.index, "query": query})
        return SearchPlan(request.index, record["collection"], where, request,
                          compiled.expression, list(compiled.phrases),
                          limit, _snippet_tokens(request.snippet_tokens), _marks(request),
                          fingerprint)

    async def search(self, request: router_pb2.SearchRequest) -> router_pb2.SearchResponse:
        """One page of hits, best first.

        Statistics kept from an earlier search of the same phrases at the same ring epoch save
        round 1: round 2 then goes to every shard with the statistics each shard's part of the
        figures came from, and a shard whose own differ answers them instead of hits. The page
        is then asked for again with figures summed from those, and after KNOWN_TRIES such
        answers the statistics are gathered afresh. So the figures are always exactly those of
        the shards' snapshots, as with two rounds. A where that pins the partition key always
        makes two rounds (its round 2 does not reach every shard). When the ring moves under
        the search, it starts again over the new ring's shards (`Dispatcher.scatter`)."""
        plan = self.plan(request)
        after = self._after(plan, request.cursor)
        return await self.dispatcher.scatter(lambda _again: self._page(plan, after))

    async def _page(self, plan: SearchPlan, after: list | None) -> router_pb2.SearchResponse:
        pinned = await self.pruned(plan.collection, plan.where)
        # Both rounds ask the shards of this one ring, at its epoch, even when the view moves
        # on meanwhile: the hits of a newer ring's shards would not add up to the statistics
        # (and a shard that split meanwhile would answer for half its rows).
        topo = self.dispatcher.view.require()
        epoch = topo.epoch
        key = (plan.index, tuple(plan.phrases))
        known = self._recall(key, epoch) if pinned is None else None
        for _ in range(KNOWN_TRIES):
            if known is None:
                break
            stats = summed(known, len(plan.phrases))
            if stats.rows == 0:
                break
            answers = await self._hits(plan, stats, sorted(known), after, topo,
                                       expect=True)
            stale = {s: _shard_stats(a) for answer in answers for s, a in answer.stale.items()}
            if not stale:
                return self._response(plan, answers)
            known = {**known, **stale}
            self._remember(key, epoch, known)
        stats = await self.stats(plan, topo)
        if pinned is None:
            self._remember(key, epoch, stats.shards)
        shards = [s for s in stats.matching if pinned is None or s in pinned]
        if stats.rows == 0 or not shards:
            return router_pb2.SearchResponse()
        return self._response(plan, await self._hits(plan, stats, shards, after, topo))

    def _recall(self, key: tuple, epoch: int) -> dict[str, ShardStats] | None:
        found = self._known.get(key)
        if found is None or found[0] != epoch:
            return None
        self._known.move_to_end(key)
        return found[1]

    def _remember(self, key: tuple, epoch: int, shards: dict[str, ShardStats]) -> None:
        self._known[key] = (epoch, shards)
        self._known.move_to_end(key)
        while len(self._known) > KNOWN_QUERIES:
            self._known.popitem(last=False)

    def _response(self, plan: SearchPlan, answers: list[node_pb2.SearchShardResponse]
                  ) -> router_pb2.SearchResponse:
        hits, has_more = merge_hits(answers, plan.limit)
        cursor = ""
        if has_more:
            cursor = encode_cursor(plan.fingerprint, {"after": [hits[-1].score, hits[-1].id]},
                                   self.secret)
        return router_pb2.SearchResponse(hits=hits, cursor=cursor, has_more=has_more)

    def _after(self, plan: SearchPlan, cursor: str) -> list | None:
        """The (score, id) a cursor resumes after, None for the first page."""
        if not cursor:
            return None
        after = decode_cursor(cursor, plan.fingerprint, self.secret).get("after")
        if (not isinstance(after, list) or len(after) != 2
                or not isinstance(after[0], (int, float)) or not isinstance(after[1], str)):
            raise InvalidArgumentError("cursor is corrupt: not a search position")
        return after

    async def stats(self, plan: SearchPlan, topo: Topology) -> Stats:
        """Round 1: every shard's statistics summed into N, avgdl and IDF per phrase."""

        def stats_request(shard: str, epoch: int) -> node_pb2.SearchStatsRequest:
            return node_pb2.SearchStatsRequest(shard_id=shard, index=plan.index,
                                               phrases=plan.phrases, epoch=epoch)

        async def ask(stub, shard, epoch):
            return await stub.SearchStats(stats_request(shard, epoch), timeout=NODE_TIMEOUT_S)

        async def ask_node(stub, shard_ids, epoch):
            req = node_pb2.SearchStatsShardsRequest(
                requests=[stats_request(s, epoch) for s in shard_ids])
            return list((await stub.SearchStatsShards(req, timeout=NODE_TIMEOUT_S)).results)

        shards = sorted(topo.ring.shards)
        per_node = await self._per_node(plan.index, shards, ask_node, ask, list, topo)
        answers = {s: _shard_stats(a) for part, results in per_node
                   for s, a in zip(part, results, strict=True)}
        return summed(answers, len(plan.phrases))

    async def _hits(self, plan: SearchPlan, stats: Stats, shards: list[str],
                    after: list | None, topo: Topology, expect: bool = False
                    ) -> list[node_pb2.SearchShardResponse]:
        """Round 2: the best hits after the position, scored globally; one answer per node
        (the node merges its shards'). With `expect`, each shard is told the statistics its
        part of the figures came from (and answers its own instead of hits when they differ)."""
        req = plan.request
        after_raw = json.dumps(after).encode() if after is not None else b""

        def shard_request(shard: str, epoch: int) -> node_pb2.SearchShardRequest:
            out = node_pb2.SearchShardRequest(
                shard_id=shard, index=plan.index, expression=plan.expression,
                idf=stats.idf, avgdl=stats.avgdl, limit=plan.limit, after=after_raw,
                where=req.where, highlight_open=plan.marks[0], highlight_close=plan.marks[1],
                snippet_tokens=plan.snippet_tokens, epoch=epoch, phrases=plan.phrases)
            if expect:
                rows, tokens, counts = stats.shards[shard]
                out.expect.CopyFrom(node_pb2.SearchStatsResponse(
                    rows=rows, tokens=tokens, phrase_rows=counts))
            return out

        async def ask(stub, shard, epoch):
            return await stub.SearchShard(shard_request(shard, epoch), timeout=NODE_TIMEOUT_S)

        async def ask_node(stub, shard_ids, epoch):
            merged = node_pb2.SearchMergedRequest(
                requests=[shard_request(s, epoch) for s in shard_ids])
            return await stub.SearchMerged(merged, timeout=NODE_TIMEOUT_S)

        def combine(answers: list[node_pb2.SearchShardResponse]) -> node_pb2.SearchShardResponse:
            stale = {s: a for answer in answers for s, a in answer.stale.items()}
            if stale:
                return node_pb2.SearchShardResponse(stale=stale)
            hits, more = merge_hits(answers, plan.limit)
            return node_pb2.SearchShardResponse(hits=hits, has_more=more)

        return [answer for _, answer in
                await self._per_node(plan.index, shards, ask_node, ask, combine, topo)]

    async def _per_node(self, index: str, shards: list[str], ask_node, ask, combine,
                        topo: Topology) -> list[tuple[list[str], Any]]:
        """(shards of a node, ask_node's answer for them) for every node hosting some of
        `shards`. Against an older node, or when one of its shards lacks the index, that node's
        shards are asked one by one (repairing each) and their answers combined. When the ring
        moved, WrongShardError (the search starts again: `search`)."""
        epoch, groups = self.dispatcher.node_groups(shards, topo)

        async def one_node(node: str, part: list[str]):
            async def one_by_one():
                return combine(await gather_all(self._repairing(index, node, s, epoch, ask)
                                                for s in part))

            try:
                return await self.dispatcher.on_node(node, part, epoch, ask_node, one_by_one)
            except NotFoundError:
                return await one_by_one()

        parts = list(groups.values())
        return list(zip(parts, await gather_all(one_node(n, p) for n, p in groups.items()),
                        strict=True))

    async def _repairing(self, index: str, node: str, shard: str, epoch: int, call):
        """Run call on a shard (on its node at the search's epoch); a shard that lacks the
        index (NOT_FOUND) builds it from the definition, then answers. WrongShardError when
        the ring moved."""
        try:
            return await self.dispatcher.at(node, shard, epoch, call)
        except NotFoundError:
            await self.indexes.ensure_on(shard, index)  # NOT_FOUND here: the index was dropped
        return await self.dispatcher.at(node, shard, epoch, call)


def _shard_stats(a: node_pb2.SearchStatsResponse) -> ShardStats:
    return a.rows, a.tokens, tuple(a.phrase_rows)


def merge_hits(answers: list[node_pb2.SearchShardResponse], limit: int,
               max_bytes: int = PAGE_BYTES) -> tuple[list[router_pb2.SearchHit], bool]:
    """The best `limit` hits of every shard's (or node's) best-first answer, by (score desc,
    id asc), and whether more follow (`merge_ranked`: a page stops before the hit that would
    pass `max_bytes`, and never passes a hit an answer with more may still hold)."""
    return merge_ranked([(list(a.hits), a.has_more) for a in answers], limit,
                        key=lambda h: (-h.score, h.id), size=lambda h: h.ByteSize(),
                        max_bytes=max_bytes)


def _snippet_tokens(requested: int) -> int:
    if requested == 0:
        return DEFAULT_SNIPPET_TOKENS
    if not 1 <= requested <= MAX_SNIPPET_TOKENS:
        raise InvalidArgumentError(
            f"snippet_tokens must be between 1 and {MAX_SNIPPET_TOKENS}, got {requested}")
    return requested


def _marks(request: router_pb2.SearchRequest) -> tuple[str, str]:
    """Highlight marks (each defaults when empty), at most MAX_MARK_CHARS each."""
    marks = (request.highlight_open or DEFAULT_MARKS[0],
             request.highlight_close or DEFAULT_MARKS[1])
    for mark in marks:
        if len(mark) > MAX_MARK_CHARS:
            raise InvalidArgumentError(
                f"highlight marks are at most {MAX_MARK_CHARS} characters, got {len(mark)}")
    return marks

