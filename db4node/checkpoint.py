"""The checkpoint task: read the consumers' positions from etcd, truncate every shard's log.

Every `interval_s` the node reads `consumers/` (JSON {"token", "lsn": {shard: lsn}, "ts"}). A
shard's checkpoint is the lowest LSN any consumer acknowledged for it (a consumer that names no
LSN for the shard holds it at 0; no consumer at all: no constraint). Each open shard then loses
the records at or below min(checkpoint, retention cut) (`retention.py`), a chunk per writer
transaction. While etcd cannot be read nothing is truncated: an unknown consumer might still
need the records.
"""

from __future__ import annotations

import json
import logging

import aetcd
import aetcd.exceptions
import apsw

from db4core.periodic import Periodic
from db4core.topology import Keys
from db4node import retention
from db4node.retention import Retention
from db4node.store import ShardStore
from db4node.worker import ShardWorker

log = logging.getLogger("db4.node.checkpoint")

DEFAULT_INTERVAL_S = 5.0


def checkpoints(values: list[bytes], shards: list[str]) -> dict[str, int] | None:
    """The checkpoint of each shard over the consumer records (None: no consumer). A record
    that cannot be read holds every shard at 0: nothing it may need is deleted. A pin (a split
    or move's, {"pin": true}) holds only the shards it names."""
    if not values:
        return None
    out = dict.fromkeys(shards)
    for value in values:
        pin = False
        try:
            record = json.loads(value)
            lsn = record["lsn"]
            pin = record.get("pin") is True
            if not isinstance(lsn, dict):
                raise ValueError("lsn is not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("unreadable change-feed consumer record (%s); keeping every log", err)
            lsn, pin = {}, False
        for shard in shards:
            if pin and shard not in lsn:
                continue  # a split's pin holds only the shard it names
            acked = lsn.get(shard, 0)
            acked = acked if type(acked) is int and acked >= 0 else 0
            current = out[shard]
            out[shard] = acked if current is None else min(current, acked)
    return {s: v or 0 for s, v in out.items()}


class Checkpointer:
    """One task per node that truncates the change logs of its open shards."""

    def __init__(self, store: ShardStore, etcd: aetcd.Client, keys: Keys, limits: Retention,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.store = store
        self.etcd = etcd
        self.keys = keys
        self.limits = limits
        self.interval_s = interval_s
        self.checkpoint: dict[str, int] = {}  # last known; absent or 0: none registered
        self._loop = Periodic("change-log truncation", self.run_once, interval_s, log,
                              (aetcd.exceptions.ClientError,))

    def start(self) -> None:
        """Run in the background until stop()."""
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int:
        """One round: read the consumers, truncate every open shard; records deleted."""
        return sum((await self.truncate_now()).values())

    async def truncate_now(self, only: set[str] | None = None) -> dict[str, int]:
        """Read the consumers and truncate every open shard (or those in `only`) now; records
        deleted per shard."""
        found = await self.etcd.get_prefix(self.keys.consumers)
        shards = self.store.open_shards()
        cps = checkpoints([kv.value for kv in found], [s for s, _ in shards])
        self.checkpoint = dict(cps) if cps is not None else {}
        gone: dict[str, int] = {}
        for shard_id, worker in shards:
            if only is not None and shard_id not in only:
                continue
            checkpoint = None if cps is None else cps[shard_id]
            gone[shard_id] = await self._truncate(shard_id, worker, checkpoint)
        return gone

    async def _truncate(self, shard_id: str, worker: ShardWorker, checkpoint: int | None
                        ) -> int:
        """Delete what the shard's checkpoint and the retention limits let go, a chunk per
        writer job (the shard's writes interleave); records deleted."""
        def point(conn: apsw.Connection) -> int:
            return retention.truncation_point(conn, self.limits, checkpoint)

        upto = await worker.read(point, None, f"truncation point of shard {shard_id}")
        gone = 0
        while n := await worker.write(lambda shard: shard.truncate(upto), None,
                                      f"truncation of shard {shard_id}"):
            gone += n
        if gone:
            log.info("shard %s: %d change-log records truncated (through LSN %d)",
                     shard_id, gone, upto)
        return gone
