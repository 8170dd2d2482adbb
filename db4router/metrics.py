"""Prometheus figures of a router (served with --metrics-port; see db4rpc/observe.py).

Refreshed every REFRESH_S by one task, from the same sources as `db4 cdc status` and
`db4 operations`: every durable change-feed consumer's lag per shard (records it has yet to
acknowledge), every shard's change-log size, and every split or move in progress with its copy
progress. Read when scraped: the ring's epoch and the nodes registered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from db4.v1 import node_pb2
from db4core.errors import Db4Error
from db4core.periodic import Periodic
from db4router.consumers import lag
from db4router.operations import Operation, Operations
from db4router.topology import ClusterView

REFRESH_S = 10.0
log = logging.getLogger("db4.router.metrics")

CONSUMER_LAG = Gauge("db4_cdc_consumer_lag",
                     "Change-log records a durable consumer has yet to acknowledge",
                     ["consumer", "shard"])
LOG_ENTRIES = Gauge("db4_changelog_entries", "Records kept in a shard's change log", ["shard"])
LOG_BYTES = Gauge("db4_changelog_bytes", "Bytes kept in a shard's change log", ["shard"])
OP_COPIED = Gauge("db4_operation_copied_bytes", "Bytes a split or move in progress has copied",
                  ["op_id", "kind", "state"])
OP_TOTAL = Gauge("db4_operation_total_bytes", "Bytes a split or move in progress will copy",
                 ["op_id", "kind", "state"])
OPS_RUNNING = Gauge("db4_operations_running", "Splits and moves in progress", ["kind"])


class RouterMetrics:
    """The refreshing task and the scrape-time collector."""

    def __init__(self, view: ClusterView, operations: Operations,
                 logs: Callable[[dict], Awaitable[list[tuple[str, node_pb2.LogStat]]]],
                 consumers: Callable[[], Awaitable[dict[str, dict[str, int]]]]) -> None:
        self.view = view
        self.operations = operations
        self.logs = logs
        self.consumers = consumers
        self._rounds = Periodic("metrics", self.refresh, REFRESH_S, log, (Db4Error,),
                                wait_first=False)
        REGISTRY.register(_ViewCollector(view))

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def refresh(self) -> None:
        logs = await self.logs({})  # a node that is down leaves its shards out, not the rest
        consumers = await self.consumers()
        ops: list[Operation] = [op for op in await self.operations.listing() if not op.finished]
        last = {st.shard_id: st.last_lsn for _, st in logs}
        for gauge in (CONSUMER_LAG, LOG_ENTRIES, LOG_BYTES, OP_COPIED, OP_TOTAL, OPS_RUNNING):
            gauge.clear()
        for _, st in logs:
            LOG_ENTRIES.labels(st.shard_id).set(st.entries)
            LOG_BYTES.labels(st.shard_id).set(st.bytes)
        for name, lsn in consumers.items():
            for shard, behind in lag(last, lsn).items():
                CONSUMER_LAG.labels(name, shard).set(behind)
        for kind in ("split", "move"):
            OPS_RUNNING.labels(kind).set(sum(1 for op in ops if op.kind == kind))
        for op in ops:
            OP_COPIED.labels(op.id, op.kind, op.state).set(op.copied_bytes)
            OP_TOTAL.labels(op.id, op.kind, op.state).set(op.total_bytes)


class _ViewCollector(Collector):
    def __init__(self, view: ClusterView) -> None:
        self.view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        epoch = GaugeMetricFamily("db4_ring_epoch", "The ring's epoch this router routes by")
        epoch.add_metric([], self.view.epoch)
        nodes = GaugeMetricFamily("db4_nodes_registered", "Nodes registered in etcd")
        nodes.add_metric([], len(self.view.nodes))
        yield from (epoch, nodes)
