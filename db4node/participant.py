"""Two-phase commit on this node's shards, seen from the event loop.

Every step runs on the shard's writer thread (`txn.py` holds the SQLite work); this module adds
what needs the loop: requests that meet a key held by a prepared transaction wait here, on an
event per (shard, txid) that is set once this node applied the transaction's decision, so that
no thread is held while they wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from db4core import failpoints
from db4core.txn import COMMIT
from db4node.ops import Op, OpResult, ReadCheck
from db4node.shard import Shard, WriteItem
from db4node.store import ShardStore
from db4node.txn import KeyLockedError

# How long a plain write waits for a prepared transaction's locks before it answers ABORTED
# `locked` (the decision normally follows its prepare within a round trip or two).
WRITE_WAIT_S = 2.0
# How long a point read waits for them: a read of a prepared key must see the decision applied,
# or it could see one half of a committed cross-shard transaction.
READ_WAIT_S = 5.0


def _until(wait_s: float, deadline: float | None) -> float:
    """The monotonic time a wait ends: its own limit or the request's deadline."""
    until = time.monotonic() + wait_s
    return until if deadline is None else min(until, deadline)


class Participant:
    """Prepare, commit and abort on the node's shards; waits for locks to be released."""

    def __init__(self, store: ShardStore, in_doubt_ms: int) -> None:
        self.store = store
        self.in_doubt_ms = in_doubt_ms  # a Prepare that names none gets this timeout
        self._released: dict[tuple[str, str], asyncio.Event] = {}

    async def write(self, shard_id: str, ops: list[Op], txid: str, reads: Sequence[ReadCheck],
                    deadline: float | None) -> tuple[list[OpResult], str, int]:
        """A plain write (or single-shard transaction): results, txid and last LSN. A key held
        by a prepared transaction is waited for, then LockedError."""
        worker = self.store.get(shard_id)
        until = _until(WRITE_WAIT_S, deadline)

        item = WriteItem(ops, txid, reads)
        while True:
            try:
                written = await worker.write_grouped(item, deadline, "write")
                return written.results, written.txid, written.lsn
            except KeyLockedError as err:
                if not await self._wait(shard_id, worker.shard, err.holder, until):
                    raise

    async def wait_readable(self, shard_id: str, collection: str, ids: Sequence[str],
                            deadline: float | None) -> None:
        """Return once no id is held by a prepared transaction; LockedError after the wait."""
        shard = self.store.get(shard_id).shard
        until = _until(READ_WAIT_S, deadline)
        while True:
            holder = next((h for i in ids if (h := shard.locks.get((collection, i)))), None)
            if holder is None:
                return
            if not await self._wait(shard_id, shard, holder, until):
                raise KeyLockedError(
                    f"a document of {collection!r} is held by transaction {holder}, still "
                    "awaiting its decision; retry shortly", holder)

    async def prepare(self, shard_id: str, txid: str, ops: list[Op], reads: Sequence[ReadCheck],
                      participants: list[str], in_doubt_ms: int, deadline: float | None
                      ) -> list[OpResult]:
        """Phase one on one shard: intents persisted (fsynced) before this returns."""
        in_doubt = in_doubt_ms or self.in_doubt_ms
        results = await self.store.get(shard_id).write(
            lambda shard: shard.prepare(txid, ops, reads, participants, in_doubt),
            deadline, f"prepare of {txid}")
        failpoints.hit("participant.after_intent")
        return results

    async def resolve(self, shard_id: str, txid: str, decision: str,
                      deadline: float | None = None) -> tuple[bool, int]:
        """Apply a decision (commit or abort) on one shard: (had intents, last LSN written by a
        commit or 0). Wakes whoever waits for the transaction's keys."""
        def apply(shard: Shard) -> tuple[bool, int]:
            if decision == COMMIT:
                had = shard.commit_prepared(txid)
                return had, shard.last_lsn if had else 0
            return shard.abort_prepared(txid), 0

        try:
            return await self.store.get(shard_id).write(apply, deadline, f"{decision} of {txid}")
        finally:
            # Also on failure or cancellation: a woken waiter looks again and waits again.
            event = self._released.pop((shard_id, txid), None)
            if event is not None:
                event.set()

    async def _wait(self, shard_id: str, shard: Shard, holder: str, until: float) -> bool:
        """Wait for `holder` to be resolved on the shard; False when time ran out first."""
        remaining = until - time.monotonic()
        if remaining <= 0:
            return False
        event = self._released.setdefault((shard_id, holder), asyncio.Event())
        if holder not in shard.prepared:  # resolved since the check that found it
            return True
        try:
            await asyncio.wait_for(event.wait(), remaining)
        except TimeoutError:
            return holder not in shard.prepared
        return True
