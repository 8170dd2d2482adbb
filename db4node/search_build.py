"""Builds of full-text indexes: one writer-thread job per chunk, progress after each.

The index's triggers are created first, in `begin`, so every write from then on keeps it
current; the chunks then index the documents that were there before, each in its own job, so
the shard's plain writes run between two chunks and the event loop never waits for the build.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator

from db4node import search_index, search_query
from db4node.search_index import SearchDef
from db4node.shard import Shard
from db4node.worker import ShardWorker


class Builds:
    """One build at a time per (shard, index): a second caller waits for the first, then finds
    the index complete (or goes on where it stopped, if the first caller went away)."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def run(self, shard_id: str, worker: ShardWorker, d: SearchDef,
                  deadline: float | None) -> AsyncGenerator[tuple[int, bool], None]:
        """(documents so far, done) after each chunk; the last says done with the index's rows."""
        lock = self._locks.setdefault((shard_id, d.name), asyncio.Lock())
        async with lock:
            async for progress in build(worker, d, deadline):
                yield progress


async def build(worker: ShardWorker, d: SearchDef, deadline: float | None
                ) -> AsyncGenerator[tuple[int, bool], None]:
    """Create the index when absent and index the existing documents chunk by chunk."""
    what = f"search index build {d.name!r}"
    complete = await worker.write(lambda s: search_index.begin(s.conn, d), deadline, what)
    after, seen = "", 0
    while not complete:
        last, n = await worker.write(functools.partial(_backfill, d=d, after=after),
                                     deadline, what)
        if last is None:
            await worker.write(lambda s: search_index.finish(s.conn, d), deadline, what)
            break
        after, seen = last, seen + n
        yield seen, False
    rows, _ = await worker.write(lambda s: search_query.totals(s.conn, d), deadline, what)
    yield rows, True


def _backfill(shard: Shard, d: SearchDef, after: str) -> tuple[str | None, int]:
    return search_index.backfill(shard.conn, d, after)
