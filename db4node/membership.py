"""A node's life in etcd: its leased registration and its view of the topology.

The registration key lives only as long as the lease, which a background task keeps alive; if the
lease is lost (etcd restarted, a long pause) the node grants a new one and registers again. The
topology comes from one range read of topo/ and is refreshed by a watch, and on demand when a
request carries a newer epoch than ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable

import aetcd

from db4core.errors import UnavailableError, WrongShardError
from db4core.topology import Keys, Topology

log = logging.getLogger("db4.node.membership")

LEASE_TTL = 10


class Membership:
    """Registration under a lease, plus the current topology."""

    def __init__(self, etcd: aetcd.Client, keys: Keys, node_id: str, address: str) -> None:
        self.etcd = etcd
        self.keys = keys
        self.node_id = node_id
        self.address = address
        self.topology: Topology | None = None
        self.lease: aetcd.Lease | None = None  # the registration's, for records that go with it
        self._tasks: list[asyncio.Task] = []
        self._refresh_lock = asyncio.Lock()
        # Called with each newly adopted topology, before any request can act on it.
        self.on_adopt: list[Callable[[Topology], None]] = []
        # Awaited before a scatter read of a shard at an epoch (RangeKeeper.gate).
        self.gate: Callable[[str, int], Awaitable[None]] | None = None
        # Told whether the node holds its lease: after each registration and keep-alive
        # (the node's health service goes NOT_SERVING while it does not).
        self.on_lease: Callable[[bool], Awaitable[None]] | None = None
        # The ranges a query of a shard keeps to during its cleanup (RangeKeeper.scope).
        self.scope: Callable[[str, int], list[tuple[int, int]] | None] | None = None
        # wrong_shard when a shard's ranges shrank after an epoch (RangeKeeper.check_epoch).
        self.epoch_check: Callable[[str, int], None] | None = None

    async def start(self) -> None:
        """Register, load the topology, and start the keep-alive and watch tasks."""
        lease = await self._register()
        await self.refresh()
        self._tasks = [
            asyncio.create_task(self._keep_alive(lease)),
            asyncio.create_task(self._watch_topology()),
        ]

    async def stop(self) -> None:
        """Cancel background tasks (the lease then expires on its own, or is revoked)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def release(self) -> None:
        """Revoke the registration's lease (a graceful stop): the node's key and its load
        record go now, not when the lease would have expired. etcd trouble is logged: the
        lease then expires on its own."""
        lease, self.lease = self.lease, None
        if lease is None:
            return
        try:
            await lease.revoke()
            log.info("released lease %x of node %s", lease.id, self.node_id)
        except Exception as err:  # noqa: BLE001 - stopping anyway
            log.warning("could not release lease %x (%s); it expires in %d s", lease.id, err,
                        LEASE_TTL)

    async def _register(self) -> aetcd.Lease:
        lease = await self.etcd.lease(LEASE_TTL)
        record = json.dumps({"address": self.address}).encode()
        await self.etcd.put(self.keys.node(self.node_id), record, lease=lease)
        self.lease = lease
        log.info("registered node %s at %s (lease %x)", self.node_id, self.address, lease.id)
        return lease

    async def _keep_alive(self, lease: aetcd.Lease) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                reply = await lease.refresh()
                if reply is None or reply.TTL <= 0:
                    log.warning("lease %x expired; registering again", lease.id)
                    await self._lease_held(False)
                    lease = await self._register()
                await self._lease_held(True)
            except Exception as err:  # noqa: BLE001 - etcd down: keep trying, never die
                log.warning("lease keep-alive failed: %s", err)
                await self._lease_held(False)

    async def _lease_held(self, held: bool) -> None:
        if self.on_lease is not None:
            await self.on_lease(held)

    async def refresh(self) -> Topology | None:
        """Read the topo/ prefix and adopt it when its epoch is not older than ours."""
        async with self._refresh_lock:
            result = await self.etcd.get_prefix(self.keys.topo)
            topo = Topology.from_kvs(self.keys, {kv.key: kv.value for kv in result})
            if topo is not None and (self.topology is None or topo.epoch >= self.topology.epoch):
                new = self.topology is None or topo.epoch > self.topology.epoch
                self.topology = topo
                if new:
                    for listener in self.on_adopt:
                        listener(topo)
            return self.topology

    async def _watch_topology(self) -> None:
        while True:
            try:
                watch = await self.etcd.watch_prefix(self.keys.topo)
                await self.refresh()  # nothing missed between the last read and the watch
                async for _event in watch:
                    await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - reconnect after etcd trouble
                log.warning("topology watch failed (%s); retrying", err)
                await asyncio.sleep(1)

    async def check_owner(self, shard_id: str, tokens: list[int], epoch: int) -> None:
        """Raise WrongShardError unless this node owns every token via shard_id; a read of the
        whole shard (no tokens) waits for a cleanup in progress (`gate`)."""
        await self._check_placed(shard_id, tokens, epoch)
        if not tokens and self.gate is not None:
            await self.gate(shard_id, epoch)

    def recheck(self, shards: Iterable[tuple[str, int]]) -> None:
        """After a read of (shard, epoch) pairs, before its answer leaves: wrong_shard when one
        gave tokens away after its epoch meanwhile (the node adopted a ring and its cleanup may
        have deleted rows the read should have seen), so that the router reads again."""
        if self.epoch_check is not None:
            for shard_id, epoch in shards:
                self.epoch_check(shard_id, epoch)

    async def scope_of(self, shard_id: str, epoch: int) -> list[tuple[int, int]] | None:
        """check_owner for a query or count of the whole shard that does not wait for a
        cleanup: the token ranges its statements must keep to while one runs (None: all)."""
        await self._check_placed(shard_id, [], epoch)
        return self.scope(shard_id, epoch) if self.scope is not None else None

    async def at_least(self, epoch: int) -> Topology | None:
        """The topology, read again first when a request carries a newer epoch than ours;
        etcd trouble meanwhile is UNAVAILABLE."""
        topo = self.topology
        if topo is None or epoch > topo.epoch:
            try:
                topo = await self.refresh()
            except Exception as err:  # noqa: BLE001
                raise UnavailableError(
                    f"node {self.node_id} cannot read the topology: {err}"
                ) from err
        return topo

    async def _check_placed(self, shard_id: str, tokens: list[int], epoch: int) -> None:
        topo = await self.at_least(epoch)
        if topo is None:
            raise UnavailableError("the cluster has not been created yet")
        if topo.node_of(shard_id) != self.node_id:
            raise WrongShardError(
                f"shard {shard_id} is not hosted on node {self.node_id} at epoch {topo.epoch}",
                topo.epoch,
            )
        for token in tokens:
            if topo.shard_for_token(token) != shard_id:
                raise WrongShardError(
                    f"token {token} is not owned by shard {shard_id} at epoch {topo.epoch}",
                    topo.epoch,
                )
