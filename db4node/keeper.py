"""Keeps each shard's rows to the token ranges the ring gives it (follow.py's cleanup).

When the node adopts a topology in which one of its shards owns fewer tokens (a split or move
committed), the shard is marked at once, before any request can see the new epoch. Until the
rows it gave away are deleted, queries and counts of it keep to the ranges it owns (`scope`: a
token filter in their statements, never a wait), and the scatter reads that cannot filter by
token (searches, whose statistics come from the full-text index, and shard stats) wait
(`gate`). A scatter read at an older epoch than the change answers wrong_shard so that the router
re-reads the ring (it would otherwise miss the rows' new shard): checked before the read and
again once it ran (`check_epoch`), since the node may adopt the ring and delete rows in between.
The deletes run in chunks on the shard's writer thread, without change-log records, and end by
lifting the fence. A follower
(a shard being built by a split or move) is never cleaned; once the ring places it, it stops
following. At start every open shard is checked, so a cleanup cut short by a crash finishes.
"""

from __future__ import annotations

import asyncio
import logging

from db4core.errors import WrongShardError
from db4core.topology import Topology
from db4node import follow
from db4node.store import ShardStore

log = logging.getLogger("db4.node.keeper")


class RangeKeeper:
    """Deletes rows of token ranges a shard no longer owns, and gates scatter reads meanwhile."""

    def __init__(self, store: ShardStore, node_id: str) -> None:
        self.store = store
        self.node_id = node_id
        self.topology: Topology | None = None
        self._pending: dict[str, asyncio.Event] = {}  # shard -> set when its cleanup ended
        self._changed_at: dict[str, int] = {}  # shard -> epoch its ranges last shrank at
        self._task: asyncio.Task | None = None
        self._again = False

    def owned(self, topo: Topology, shard_id: str) -> follow.Ranges:
        """The tokens the ring gives a shard on this node (none when placed elsewhere)."""
        if topo.node_of(shard_id) != self.node_id or shard_id not in topo.ring.shards:
            return []
        return topo.ring.ranges(shard_id)

    def adopt(self, topo: Topology) -> None:
        """Called (synchronously) whenever the node adopts a topology: mark every shard whose
        ranges shrank (every open shard on the first call), then clean them in the background."""
        old, self.topology = self.topology, topo
        for shard_id, worker in self.store.open_shards():
            if worker.shard.follow is not None and not self.owned(topo, shard_id):
                continue  # a follower: not placed yet
            mine_now = self.owned(topo, shard_id)
            if old is not None and mine_now == self.owned(old, shard_id) \
                    and worker.shard.fence is None:
                continue
            if old is not None:
                self._changed_at[shard_id] = topo.epoch
            if shard_id not in self._pending:
                self._pending[shard_id] = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sweep())
        else:
            self._again = True

    def scope(self, shard_id: str, epoch: int) -> follow.Ranges | None:
        """For a query or count of a shard at `epoch`: wrong_shard as for gate; then, while
        its cleanup runs, the token ranges it owns (the statement keeps to them, so that rows
        it gave away are not read twice), else None (no filter). Never waits."""
        self.check_epoch(shard_id, epoch)
        if shard_id not in self._pending or self.topology is None:
            return None
        return self.owned(self.topology, shard_id)

    def check_epoch(self, shard_id: str, epoch: int) -> None:
        """wrong_shard when the shard's ranges shrank after `epoch` (0: internal, any epoch).
        Checked before a read of the shard, and again once it is made: the node may adopt a
        new ring and commit a chunk of its cleanup between the first check and the read's
        snapshot, and a read at the old epoch would then miss rows that moved."""
        changed = self._changed_at.get(shard_id, 0)
        if epoch and epoch < changed and self.topology is not None:
            raise WrongShardError(
                f"shard {shard_id} gave tokens away at epoch {changed}; the request's epoch "
                f"{epoch} is older", self.topology.epoch)

    async def gate(self, shard_id: str, epoch: int) -> None:
        """Before a scatter read of a shard at `epoch` (0: internal, any epoch): wrong_shard
        when its ranges shrank after that epoch, else wait for a cleanup in progress (reads
        whose statements cannot keep to ranges: search statistics, shard stats)."""
        self.check_epoch(shard_id, epoch)
        pending = self._pending.get(shard_id)
        if pending is not None:
            await pending.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            self._again = False
            topo = self.topology
            if topo is None:
                return
            for shard_id in list(self._pending):
                try:
                    await self._clean(topo, shard_id)
                except Exception as err:  # noqa: BLE001 - keep the gate shut, retry soon
                    log.warning("cleanup of shard %s failed (%s); retrying", shard_id, err)
                    self._again = True
                    await asyncio.sleep(1)
                    continue
                event = self._pending.pop(shard_id, None)
                if event is not None and not self._again:
                    event.set()
                elif event is not None:
                    self._pending[shard_id] = event
            if not self._again:
                return

    async def _clean(self, topo: Topology, shard_id: str) -> None:
        worker = self.store.get(shard_id)
        shard = worker.shard
        owned = self.owned(topo, shard_id)
        if shard.follow is not None:
            if owned:
                await worker.write(lambda s: s.end_follow(), None, "end of following")
                log.info("shard %s is placed here at epoch %d; it no longer follows",
                         shard_id, topo.epoch)
            return
        total = 0
        while True:
            gone = await worker.write(lambda s: s.cleanup_step(owned), None,
                                      "cleanup of moved rows")
            total += gone
            if gone == 0:
                break
        if total:
            log.info("shard %s: deleted %d rows of tokens it gave away (epoch %d)",
                     shard_id, total, topo.epoch)
