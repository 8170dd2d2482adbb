"""K-way merge of per-shard sorted streams, fetching from each shard only what the page needs.

Every shard is first asked for a share of the page (twice its even share, at least 8 rows, at
most the page), not the whole page: with data spread over the ring that is all the merge uses,
and shards send a quarter of the rows they would otherwise. When the merge has taken every row a
shard sent and the shard has more, it asks that shard for the rest of the page (strictly after
the shard's last row) before taking anything else, since that shard's next row may come first.
The result is exactly the first `limit` rows of the merged order; memory stays O(shards x limit).

A page is also bounded by bytes: it stops before the row that would take it past `max_bytes`
(every page holds at least one row, so a document of any valid size gets through) and then says
`has_more`; the next page starts strictly after the last row sent, so nothing is skipped.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from db4.v1 import node_pb2
from db4core.query import values_key
from db4rpc.options import MAX_MESSAGE_BYTES

# fetch(shard, after_position, rows) -> one shard's page
Fetch = Callable[[str, list | None, int], Awaitable[node_pb2.QueryResponse]]
# fetch_first(shards, after_position, rows) -> each shard's page, in order
FetchFirst = Callable[[list[str], list | None, int], Awaitable[list[node_pb2.QueryResponse]]]

ROW_OVERHEAD = 8  # protobuf framing of one document in a response, besides its bytes


@dataclass
class ShardStream:
    """Rows received from one shard, not yet merged."""

    shard: str
    rows: list[tuple[Any, list, bytes]] = field(default_factory=list)
    next: int = 0
    has_more: bool = False
    last: list | None = None

    def take(self, answer: node_pb2.QueryResponse, fields) -> None:
        self.rows = [(values_key(pos, fields), pos, row.document)
                     for row in answer.rows for pos in (json.loads(row.position),)]
        self.next = 0
        self.has_more = answer.has_more
        if self.rows:
            self.last = self.rows[-1][1]

    @property
    def head(self):
        return self.rows[self.next] if self.next < len(self.rows) else None


def first_share(limit: int, shards: int) -> int:
    """Rows to ask each shard for at first."""
    return min(limit, max(8, -(-2 * limit // shards)))


async def merge_page(shards: list[str], after: list | None, limit: int, fields,
                     fetch: Fetch, gather, max_bytes: int = MAX_MESSAGE_BYTES,
                     fetch_first: FetchFirst | None = None
                     ) -> tuple[list[tuple[list, bytes]], bool]:
    """The first `limit` rows after `after` over every shard (fewer when they would pass
    `max_bytes`), and whether more follow. `fetch_first`, when given, asks every shard for its
    first share at once (one request per node); refills go through `fetch`."""
    share = first_share(limit, len(shards))
    streams = [ShardStream(s, last=after) for s in shards]
    if fetch_first is not None:
        answers = await fetch_first(shards, after, share)
    else:
        answers = await gather([fetch(s.shard, after, share) for s in streams])
    heap: list[tuple[Any, int]] = []
    for i, (stream, answer) in enumerate(zip(streams, answers, strict=True)):
        stream.take(answer, fields)
        if stream.head is not None:
            heap.append((stream.head[0], i))
    heapq.heapify(heap)
    out: list[tuple[list, bytes]] = []
    used = 0
    while heap and len(out) <= limit:
        _, i = heapq.heappop(heap)
        stream = streams[i]
        _, pos, doc = stream.head
        used += len(doc) + ROW_OVERHEAD
        if out and used > max_bytes and len(out) < limit:
            return out, True  # this row opens the next page
        out.append((pos, doc))
        stream.next += 1
        if stream.head is None and stream.has_more and len(out) <= limit:
            stream.take(await fetch(stream.shard, stream.last, limit + 1 - len(out)), fields)
        if stream.head is not None:
            heapq.heappush(heap, (stream.head[0], i))
    has_more = len(out) > limit or bool(heap) or any(s.has_more for s in streams)
    return out[:limit], has_more
