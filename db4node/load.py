"""Per-shard load: operations counted as requests arrive, reported to etcd on an interval.

Every `--load-report-seconds` the node puts one record under `load/<node id>`, attached to its
registration lease (so it goes when the node goes): the report time, the interval, and per open
shard the reads and writes per second since the previous report, its documents and its file
bytes (data and WAL), and a summary of a sample of the tokens its point operations touched
(`loadmeter.py`: the median token, where a split would halve the load, and the share of the
most frequent token). Routers read these records for `Admin.Status` and the leader's hot-shard
controller. A read is a document read by id, a query, a count or a search on the shard;
a write is a document operation of a write or of a prepared transaction.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass

import aetcd
import apsw

from db4core.periodic import Periodic
from db4core.topology import Keys
from db4node import metrics, txn
from db4node.follow import Ranges
from db4node.loadmeter import LoadMeter
from db4node.membership import Membership
from db4node.shard import sizes
from db4node.store import ShardStore

log = logging.getLogger("db4.node.load")

DEFAULT_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Size:
    """A shard's documents and file bytes."""

    documents: int
    bytes: int


def shard_size(conn: apsw.Connection, path: str, only: Ranges | None = None) -> Size:
    """Documents (id claims are none; with `only`, in those token ranges) and bytes of the
    shard's file and WAL."""
    per, size = sizes(conn, path, only)
    return Size(sum(per.values()), size)


class LoadReporter:
    """Puts the node's load record every interval."""

    def __init__(self, store: ShardStore, meter: LoadMeter, membership: Membership,
                 etcd: aetcd.Client, keys: Keys, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.store = store
        self.meter = meter
        self.membership = membership
        self.etcd = etcd
        self.keys = keys
        self.interval_s = interval_s
        self._rounds = Periodic("load report", self.report, interval_s, log,
                                transient=(aetcd.exceptions.ClientError,), wait_first=False)

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def record(self) -> dict:
        """This round's record (the counters start afresh)."""
        reads, writes, samples, elapsed = self.meter.take()
        now_ms = int(time.time() * 1000)
        shards = {}
        for shard_id, worker in sorted(self.store.open_shards()):
            scope = self.membership.scope
            only = scope(shard_id, 0) if scope is not None else None  # a cleanup may run
            size = await worker.query(
                functools.partial(shard_size, path=worker.shard.path, only=only), None,
                "shard size")
            shards[shard_id] = {
                "reads_per_s": round(reads[shard_id] / elapsed, 3),
                "writes_per_s": round(writes[shard_id] / elapsed, 3),
                "documents": size.documents,
                "bytes": size.bytes,
                "sample": samples[shard_id].summary() if shard_id in samples else None,
                "prepared": len(worker.shard.prepared),
                "in_doubt": len(txn.in_doubt(worker.shard, now_ms)),
            }
        metrics.record_load(shards, reads, writes)
        return {"at": time.time(), "interval_s": self.interval_s, "shards": shards}

    async def report(self) -> None:
        lease = self.membership.lease
        if lease is None:  # not registered (yet): nothing to attach the record to
            return
        record = await self.record()
        await self.etcd.put(self.keys.load(self.membership.node_id),
                            json.dumps(record).encode(), lease=lease)
