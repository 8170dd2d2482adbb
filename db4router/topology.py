"""The router's view of etcd: topology, node addresses and collections, kept fresh by watches.

The first router to find no cluster creates it (ring, placement, epoch 1) in one create-only etcd
transaction, so two routers starting together cannot create two different rings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aetcd
import aetcd.exceptions

from db4core.errors import UnavailableError
from db4core.ring import DEFAULT_VNODES, Ring
from db4core.topology import Keys, Topology, parse_node_record, shard_name

log = logging.getLogger("db4.router.topology")

T = TypeVar("T")


class EtcdUnavailableError(UnavailableError):
    """etcd could not be reached: UNAVAILABLE to callers, and what start-up waits out.
    `sent` is False only when the request certainly never reached etcd."""

    def __init__(self, message: str, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


# A call that could not reach etcd (the channel is still reconnecting after an outage) is retried
# for this long before it is UNAVAILABLE to our caller. Only calls that never left this process
# are retried, so a create-only transaction is never sent twice.
RECONNECT_GRACE_S = 2.0


async def etcd_call(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run one etcd call; etcd trouble is UNAVAILABLE to our callers (retriable), never an
    internal error."""
    deadline = time.monotonic() + RECONNECT_GRACE_S
    while True:
        try:
            return await call()
        except aetcd.exceptions.ClientError as err:
            if _never_sent(err) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            raise EtcdUnavailableError(f"etcd is unavailable ({what}): {err}",
                                       sent=not _never_sent(err)) from err


def _never_sent(err: aetcd.exceptions.ClientError) -> bool:
    """True when gRPC could not connect at all, so etcd never saw the request."""
    return (isinstance(err, aetcd.exceptions.ConnectionFailedError)
            and "failed to connect" in str(err).lower())


class ClusterView:
    """Topology, live nodes, collections and index definitions, as last read from etcd."""

    def __init__(self, etcd: aetcd.Client, keys: Keys) -> None:
        self.etcd = etcd
        self.keys = keys
        self.topology: Topology | None = None
        self.nodes: dict[str, str] = {}
        self.collections: dict[str, dict] = {}
        self.indexes: dict[str, dict] = {}
        self.search_indexes: dict[str, dict] = {}
        # shard made by a split or move -> {"parent", "ranges", "fence_lsn", "epoch", "op"}
        self.lineage: dict[str, dict] = {}
        self.cursor_secret = b""
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()
        self.changed = asyncio.Event()

    @property
    def epoch(self) -> int:
        return self.topology.epoch if self.topology else 0

    def require(self) -> Topology:
        """The topology, or UNAVAILABLE when the cluster does not exist yet."""
        if self.topology is None:
            raise UnavailableError("the cluster has not been created yet")
        return self.topology

    async def refresh(self) -> None:
        """Re-read everything under the cluster's root in one consistent range read."""
        async with self._lock:
            found = await etcd_call("reading the cluster",
                                    lambda: self.etcd.get_prefix(self.keys.root))
            # Transaction decisions and consumer positions share the root but are no part of
            # the view.
            kvs = {kv.key: kv.value for kv in found if not self._outside_view(kv.key)}
            topo = Topology.from_kvs(self.keys, kvs)
            if topo is not None and (self.topology is None or topo.epoch >= self.topology.epoch):
                self.topology = topo
            self.nodes = {
                k[len(self.keys.nodes):].decode(): parse_node_record(v)
                for k, v in kvs.items() if k.startswith(self.keys.nodes)
            }
            self.collections = _under(kvs, self.keys.collections)
            self.indexes = _under(kvs, self.keys.indexes)
            self.search_indexes = _under(kvs, self.keys.search_indexes)
            self.lineage = _under(kvs, self.keys.lineages)
            if self.keys.cursor_secret in kvs:
                self.cursor_secret = bytes.fromhex(kvs[self.keys.cursor_secret].decode())
            self.changed.set()
            self.changed = asyncio.Event()

    def _outside_view(self, key: bytes) -> bool:
        """Keys that change often and mean nothing to routing: transaction decisions,
        change-feed consumers' positions (every Acknowledge writes one), nodes' load reports
        (every few seconds), hot marks, the leader's key and split/move records (their
        progress; the ring changes they make are in topo/)."""
        return key.startswith((self.keys.txns, self.keys.consumers, self.keys.loads,
                               self.keys.hot_marks, self.keys.leader, self.keys.operations,
                               self.keys.root + b"plans/"))

    async def refresh_to(self, epoch: int, timeout: float = 5.0) -> None:
        """Refresh until our epoch is at least `epoch` (a node told us it moved on)."""
        deadline = time.monotonic() + timeout
        await self.refresh()
        while self.epoch < epoch and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            await self.refresh()

    async def start_watch(self) -> None:
        """Keep the view fresh: any change under the root but outside txns/, consumers/ and
        load/ triggers a full re-read (a commit's decision record, an acknowledgement or a load
        report must not make every router re-read the cluster)."""
        self._tasks.append(asyncio.create_task(self._watch()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            try:
                watch = await self.etcd.watch_prefix(self.keys.root)
                await self.refresh()
                async for event in watch:
                    if not self._outside_view(event.kv.key):
                        await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - etcd trouble: retry, never die
                log.warning("etcd watch failed (%s); retrying", err)
                await asyncio.sleep(1)

    async def ensure_cluster(self, shards: int, min_nodes: int, wait_s: float = 60.0) -> None:
        """Create the cluster when etcd has none, once `min_nodes` nodes have registered."""
        deadline = time.monotonic() + wait_s
        await self.refresh()
        while self.topology is None:
            if len(self.nodes) >= min_nodes:
                await self._create(shards)
            elif time.monotonic() > deadline:
                raise UnavailableError(
                    f"no cluster in etcd and only {len(self.nodes)} of {min_nodes} nodes registered"
                )
            else:
                log.info("waiting for nodes: %d of %d registered", len(self.nodes), min_nodes)
                await asyncio.sleep(0.2)
            await self.refresh()

    async def create_only(self, key: bytes, value: bytes) -> bool:
        """Put key unless it exists (one etcd transaction); True when this call created it."""
        tx = self.etcd.transactions
        created, _ = await etcd_call("create-only write", lambda: self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, value)], failure=[]))
        await self.refresh()
        return bool(created)

    async def create_or_get(self, key: bytes, value: bytes) -> tuple[bool, bytes]:
        """Put key unless it exists, in one etcd transaction that reads the existing value
        otherwise: (True, value) when this call created it, else (False, what etcd holds)."""
        tx = self.etcd.transactions
        created, responses = await etcd_call("create-only write", lambda: self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, value)],
            failure=[tx.get(key)]))
        await self.refresh()
        if created:
            return True, value
        return False, responses[0][0][0]  # [first op][first kv][value]

    # ---- transaction decisions (txns/): never followed by a refresh ---------------------------

    async def record_decision(self, txid: str, value: bytes) -> tuple[bool, bytes]:
        """Create txns/<txid> unless it exists, in one etcd transaction that reads it otherwise:
        (True, value) when this call recorded it, else (False, the record that won)."""
        key, tx = self.keys.txn(txid), self.etcd.transactions
        created, responses = await etcd_call("recording a decision", lambda: self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, value)], failure=[tx.get(key)]))
        if created:
            return True, value
        return False, responses[0][0][0]

    async def decisions(self) -> list[tuple[str, bytes, int]]:
        """Every decision record: (txid, value, mod_revision)."""
        found = await etcd_call("reading decisions", lambda: self.etcd.get_prefix(self.keys.txns))
        return [(kv.key[len(self.keys.txns):].decode(), kv.value, kv.mod_revision)
                for kv in found]

    async def forget_decision(self, txid: str, mod_revision: int | None = None) -> None:
        """Delete txns/<txid> (only if unchanged since `mod_revision`, when given)."""
        key, tx = self.keys.txn(txid), self.etcd.transactions
        compare = [tx.mod(key) == mod_revision] if mod_revision is not None else []
        await etcd_call("deleting a decision", lambda: self.etcd.transaction(
            compare=compare, success=[tx.delete(key)], failure=[]))

    async def get(self, key: bytes) -> bytes | None:
        """One key's value straight from etcd (not the view), None when absent."""
        found = await etcd_call("read", lambda: self.etcd.get(key))
        return found.value if found is not None else None

    async def put(self, key: bytes, value: bytes) -> None:
        """Put key, then re-read the view."""
        await etcd_call("write", lambda: self.etcd.put(key, value))
        await self.refresh()

    async def delete(self, key: bytes) -> None:
        """Delete key, then re-read the view."""
        await etcd_call("delete", lambda: self.etcd.delete(key))
        await self.refresh()

    async def ensure_secret(self) -> None:
        """Create the cluster's cursor-signing key once; every router then reads the same one."""
        await self.create_only(self.keys.cursor_secret, os.urandom(32).hex().encode())

    async def _create(self, shards: int) -> None:
        node_ids = sorted(self.nodes)
        shard_ids = [shard_name(i) for i in range(shards)]
        placement = {s: node_ids[i % len(node_ids)] for i, s in enumerate(shard_ids)}
        topo = Topology(1, Ring.build(shard_ids, DEFAULT_VNODES), placement)
        tx = self.etcd.transactions
        ok, _ = await etcd_call("creating the cluster", lambda: self.etcd.transaction(
            compare=[tx.version(self.keys.epoch) == 0],
            success=[tx.put(k, v) for k, v in topo.to_kvs(self.keys).items()],
            failure=[],
        ))
        if ok:
            log.info("created cluster %s: %d shards over %d nodes", self.keys.cluster, shards,
                     len(node_ids))


def _under(kvs: dict[bytes, bytes], prefix: bytes) -> dict[str, dict]:
    """JSON records under a prefix, by the rest of their key."""
    return {k[len(prefix):].decode(): json.loads(v) for k, v in kvs.items() if k.startswith(prefix)}
