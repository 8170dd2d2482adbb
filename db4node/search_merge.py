"""The segment merger: full-text indexes of quiet shards merged into one segment each.

FTS5 adds a segment (b-tree) to an index at every transaction that writes to it, and merges
them only when a level holds `automerge` (4) of them: a shard loaded by many small transactions
keeps a dozen or more segments, and every query reads each of them (a rare term on a 12k-row
shard: 0.25 ms with them, 0.06 ms with one). This is Lucene's forced merge done when the shard
is quiet: once a shard's change log has not moved for a whole interval since its last write,
its indexes are merged in steps of `pages` pages, one short writer transaction each (so writes
that arrive meanwhile wait for at most one step), until FTS5 reports nothing left to merge.
A shard under steady writes is left to FTS5's own incremental merging.
"""

from __future__ import annotations

import logging
import time

from db4core.errors import UnavailableError
from db4core.periodic import Periodic
from db4node import search_index
from db4node.store import ShardStore

log = logging.getLogger("db4.node.search_merge")

DEFAULT_INTERVAL_S = 2.0
MERGE_PAGES = 100  # about 10-20 ms of writer time a step
# The start of the line logged for each shard merged (bench/search.py waits for them).
MERGED_LOG = "merged the full-text index segments of shard"


class SearchMerger:
    """One task per node that merges the full-text index segments of its quiet shards."""

    def __init__(self, store: ShardStore, interval_s: float = DEFAULT_INTERVAL_S,
                 pages: int = MERGE_PAGES) -> None:
        self.store = store
        self.pages = pages
        self._seen: dict[str, int] = {}    # shard -> last LSN seen at the previous round
        self._merged: dict[str, int] = {}  # shard -> LSN its indexes were merged at
        self._loop = Periodic("full-text index merge", self.run_once, interval_s, log)

    def start(self) -> None:
        """Run in the background until stop()."""
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int:
        """Merge the indexes of every shard quiet since the last round and written since its
        last merge; the number of merge steps that did work."""
        steps = 0
        shards = self.store.open_shards()
        open_ids = {shard_id for shard_id, _ in shards}
        for state in (self._seen, self._merged):  # forget shards closed since (moved away)
            for gone in state.keys() - open_ids:
                del state[gone]
        for shard_id, worker in shards:
            lsn = worker.shard.last_lsn
            quiet = self._seen.get(shard_id) == lsn
            self._seen[shard_id] = lsn
            if not quiet or self._merged.get(shard_id) == lsn:
                continue
            start, done = time.monotonic(), 0
            try:
                while await worker.write(lambda s: search_index.merge_step(s.conn, self.pages),
                                         None, f"full-text index merge of shard {shard_id}"):
                    done += 1
                    if worker.shard.last_lsn != lsn:
                        break  # written meanwhile: merged once it is quiet again
                else:
                    self._merged[shard_id] = lsn
            except UnavailableError:
                continue  # closed meanwhile (moved away, or the node is stopping)
            finally:
                steps += done
            if done:
                log.info("%s %s in %d steps (%.2f s)", MERGED_LOG, shard_id, done,
                         time.monotonic() - start)
        return steps
