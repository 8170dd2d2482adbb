"""Prometheus figures of a node (served with --metrics-port; see db4rpc/observe.py).

Per shard: the load the node reports to etcd every --load-report-seconds (the same figures
`db4 status` shows: reads/s, writes/s, documents, bytes, and the reads and writes counted),
and, read when scraped, its change log's last LSN and the truncation checkpoint, and its
prepared transactions: all of them, and those past their in-doubt timeout (waiting for etcd to
tell their fate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from db4node import txn
from db4node.store import ShardStore

READS = Counter("db4_shard_reads", "Documents read, per shard", ["shard"])
WRITES = Counter("db4_shard_writes", "Documents written, per shard", ["shard"])
READS_PER_S = Gauge("db4_shard_reads_per_second", "Reads/s over the last load report",
                    ["shard"])
WRITES_PER_S = Gauge("db4_shard_writes_per_second", "Writes/s over the last load report",
                     ["shard"])
DOCUMENTS = Gauge("db4_shard_documents", "Documents in the shard (its owned ranges)", ["shard"])
BYTES = Gauge("db4_shard_bytes", "Bytes of the shard's database file and WAL", ["shard"])
_PER_SHARD = (READS, WRITES, READS_PER_S, WRITES_PER_S, DOCUMENTS, BYTES)
_shown: set[str] = set()


def record_load(shards: dict[str, dict], reads: dict[str, int], writes: dict[str, int]) -> None:
    """Set the per-shard figures of one load report; shards gone since are removed."""
    for shard_id, figures in shards.items():
        READS.labels(shard_id).inc(reads.get(shard_id, 0))
        WRITES.labels(shard_id).inc(writes.get(shard_id, 0))
        READS_PER_S.labels(shard_id).set(figures["reads_per_s"])
        WRITES_PER_S.labels(shard_id).set(figures["writes_per_s"])
        DOCUMENTS.labels(shard_id).set(figures["documents"])
        BYTES.labels(shard_id).set(figures["bytes"])
    for gone in _shown - set(shards):
        for metric in _PER_SHARD:
            try:
                metric.remove(gone)
            except KeyError:
                pass
    _shown.clear()
    _shown.update(shards)


class NodeCollector(Collector):
    """Figures read from the open shards when scraped."""

    def __init__(self, store: ShardStore, checkpoints: Callable[[], dict[str, int]]) -> None:
        self.store = store
        self.checkpoints = checkpoints

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = GaugeMetricFamily("db4_changelog_last_lsn", "The change log's last LSN",
                                 labels=["shard"])
        checkpoint = GaugeMetricFamily(
            "db4_changelog_checkpoint_lsn",
            "LSN every durable consumer has acknowledged (truncation point)", labels=["shard"])
        prepared = GaugeMetricFamily("db4_txn_prepared",
                                     "Prepared transactions waiting for their decision",
                                     labels=["shard"])
        in_doubt = GaugeMetricFamily(
            "db4_txn_in_doubt", "Prepared transactions past their in-doubt timeout",
            labels=["shard"])
        now_ms = int(time.time() * 1000)
        cps = self.checkpoints()
        for shard_id, worker in self.store.open_shards():
            shard = worker.shard
            last.add_metric([shard_id], shard.last_lsn)
            checkpoint.add_metric([shard_id], cps.get(shard_id, 0))
            prepared.add_metric([shard_id], len(shard.prepared))
            in_doubt.add_metric([shard_id], len(txn.in_doubt(shard, now_ms)))
        yield from (last, checkpoint, prepared, in_doubt)


def register(store: ShardStore, checkpoints: Callable[[], dict[str, int]]) -> None:
    REGISTRY.register(NodeCollector(store, checkpoints))
