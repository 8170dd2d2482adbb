"""Cluster administration: `client.admin` (sync) and `AsyncAdmin` (asyncio)."""

from __future__ import annotations

from typing import Any

from db4client import _cdc, _wire
from db4client.collection import _Runs, _RunsAsync


class Admin:
    """Administrative calls of a blocking `Client`."""

    def __init__(self, client: _Runs) -> None:
        self._client = client

    def status(self, with_stats: bool = False, with_ranges: bool = False) -> dict[str, Any]:
        """Cluster name, ring epoch, nodes, and shards: node, share of the ring, documents and
        bytes, and `load` as the node last reported it (reads/s, writes/s, documents, bytes,
        age_s; None before a report). `with_stats` counts documents and bytes now (asks every
        node); `with_ranges` adds each shard's token ranges ([first, last], inclusive)."""
        return self._client._invoke(_wire.status(with_stats, with_ranges))

    def cdc_status(self) -> dict[str, Any]:
        """The change logs and durable consumers: {"shards": [{shard_id, node_id, first_lsn,
        last_lsn, entries, bytes, checkpoint}], "consumers": [{name, lsn: {shard: lsn},
        lag: {shard: records}}]}."""
        return self._client._invoke(_cdc.cdc_status())

    def checkpoint(self) -> list[dict[str, Any]]:
        """Every shard, now: its change log truncated as far as the durable consumers and the
        retention let go, and its SQLite WAL copied into the database file and truncated.
        Safe to repeat. One entry per shard: {shard_id, node_id, truncated (records),
        wal_bytes (left: 0 unless a reader still held part of the WAL)}."""
        return self._client._invoke(_wire.checkpoint())


class AsyncAdmin:
    """Administrative calls of an `AsyncClient`; every method is a coroutine."""

    def __init__(self, client: _RunsAsync) -> None:
        self._client = client

    async def status(self, with_stats: bool = False, with_ranges: bool = False
                     ) -> dict[str, Any]:
        """See `Admin.status`."""
        return await self._client._invoke(_wire.status(with_stats, with_ranges))

    async def cdc_status(self) -> dict[str, Any]:
        """The change logs and durable consumers; see `Admin.cdc_status`."""
        return await self._client._invoke(_cdc.cdc_status())

    async def checkpoint(self) -> list[dict[str, Any]]:
        """Checkpoint every shard; see `Admin.checkpoint`."""
        return await self._client._invoke(_wire.checkpoint())
