"""Cluster administration: `client.admin` (sync) and `AsyncAdmin` (asyncio)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from db4client import _cdc, _wire
from db4client.collection import _Runs, _RunsAsync

Progress = Callable[[dict[str, Any]], None]
POLL_S = 0.2


def _new_op_id() -> str:
    return uuid.uuid4().hex[:16]


def _finished(op: dict[str, Any]) -> bool:
    return op["state"] in ("done", "aborted")


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
        lag: {shard: records}}]}. A shard whose node is down has "unreachable" (why), zero
        figures, and no lag."""
        return self._client._invoke(_cdc.cdc_status())

    def checkpoint(self) -> list[dict[str, Any]]:
        """Every shard, now: its change log truncated as far as the durable consumers and the
        retention let go, and its SQLite WAL copied into the database file and truncated.
        Safe to repeat. One entry per shard: {shard_id, node_id, truncated (records),
        wal_bytes (left: 0 unless a reader still held part of the WAL)}."""
        return self._client._invoke(_wire.checkpoint())

    def split_shard(self, shard_id: str, wait: bool = True, split_token: int | None = None,
                    node_id: str = "", progress: Progress | None = None) -> dict[str, Any]:
        """Split a shard: a new shard (on the same node, or `node_id`) takes its tokens above
        `split_token` (default: the point halving its share of the ring). Returns the
        operation ({op_id, kind, state, source_shard, target_shard, ..., error}); with `wait`
        (default) once it is done or aborted, calling `progress(operation)` as it goes. Safe
        to repeat: one call plans one operation however often it is retried."""
        op = self._client._invoke(_wire.split_shard(shard_id, _new_op_id(), split_token,
                                                    node_id))
        return self._follow(op, progress) if wait else op

    def move_shard(self, shard_id: str, node_id: str, wait: bool = True,
                   progress: Progress | None = None) -> dict[str, Any]:
        """Move a shard's tokens to a new shard on `node_id`; see `split_shard`."""
        op = self._client._invoke(_wire.move_shard(shard_id, node_id, _new_op_id()))
        return self._follow(op, progress) if wait else op

    def operation(self, op_id: str, wait: bool = False) -> dict[str, Any]:
        """One split or move (with `wait`, once it is done or aborted)."""
        op = self._client._invoke(_wire.get_operation(op_id))
        return self._follow(op, None) if wait else op

    def operations(self, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002
        """Splits and moves in progress (every one recorded with `all`), oldest first."""
        return self._client._invoke(_wire.list_operations(all))

    def abort_operation(self, op_id: str) -> dict[str, Any]:
        """Abort a split or move that has not reached its commit point (safe to repeat)."""
        return self._client._invoke(_wire.abort_operation(op_id))

    def create_token(self, role: str, name: str = "", requests_per_s: float = 0,
                     max_streams: int = 0, bytes_per_s: float = 0) -> dict[str, Any]:
        """A new bearer token with `role` (read, write, admin or node): {id, role, name,
        created_ms, limits, token}. `token` is shown only here; etcd keeps its hash. The
        limits (0: none) hold on each router and node: past them a call raises
        ResourceExhaustedError with `retry_after_ms`."""
        return self._client._invoke(_wire.create_token(role, name, requests_per_s, max_streams,
                                                       bytes_per_s))

    def tokens(self) -> list[dict[str, Any]]:
        """Every token, oldest first: {id, role, name, created_ms} (never the secret)."""
        return self._client._invoke(_wire.list_tokens())

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Delete a token (NotFoundError when there is none); every process refuses it
        within a second."""
        return self._client._invoke(_wire.revoke_token(token_id))

    def _follow(self, op: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
        while True:
            if progress is not None:
                progress(op)
            if _finished(op):
                return op
            time.sleep(POLL_S)
            op = self._client._invoke(_wire.get_operation(op["op_id"]))

    def drain_node(self, node_id: str, wait: bool = True, dry_run: bool = False,
                   progress: Progress | None = None) -> dict[str, Any]:
        """Move every shard off a node, one move after another (each to the node owning the
        least of the ring then). Returns the plan {plan_id, kind, node_id, state, moves:
        [{shard_id, node_id, result, op_id}]}; `dry_run` only shows it; with `wait`
        (default) returns once every move finished, calling `progress(plan)` as it goes."""
        plan = self._client._invoke(_wire.drain_node(node_id, _new_op_id(), dry_run))
        return self._follow_plan(plan, progress) if wait and not dry_run else plan

    def rebalance(self, wait: bool = True, dry_run: bool = False,
                  progress: Progress | None = None) -> dict[str, Any]:
        """Move shards from the nodes owning the most of the ring to those owning the least
        (a node that joined owns none); see `drain_node`."""
        plan = self._client._invoke(_wire.rebalance(_new_op_id(), dry_run))
        return self._follow_plan(plan, progress) if wait and not dry_run else plan

    def plan(self, plan_id: str) -> dict[str, Any]:
        """One drain or rebalance."""
        return self._client._invoke(_wire.get_plan(plan_id))

    def _follow_plan(self, plan: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
        while True:
            if progress is not None:
                progress(plan)
            if plan["state"] != "running":
                return plan
            time.sleep(POLL_S)
            plan = self._client._invoke(_wire.get_plan(plan["plan_id"]))


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

    async def split_shard(self, shard_id: str, wait: bool = True, split_token: int | None = None,
                          node_id: str = "", progress: Progress | None = None
                          ) -> dict[str, Any]:
        """See `Admin.split_shard`."""
        op = await self._client._invoke(_wire.split_shard(shard_id, _new_op_id(), split_token,
                                                          node_id))
        return await self._follow(op, progress) if wait else op

    async def move_shard(self, shard_id: str, node_id: str, wait: bool = True,
                         progress: Progress | None = None) -> dict[str, Any]:
        """See `Admin.move_shard`."""
        op = await self._client._invoke(_wire.move_shard(shard_id, node_id, _new_op_id()))
        return await self._follow(op, progress) if wait else op

    async def operation(self, op_id: str, wait: bool = False) -> dict[str, Any]:
        """See `Admin.operation`."""
        op = await self._client._invoke(_wire.get_operation(op_id))
        return await self._follow(op, None) if wait else op

    async def operations(self, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002
        """See `Admin.operations`."""
        return await self._client._invoke(_wire.list_operations(all))

    async def abort_operation(self, op_id: str) -> dict[str, Any]:
        """See `Admin.abort_operation`."""
        return await self._client._invoke(_wire.abort_operation(op_id))

    async def create_token(self, role: str, name: str = "", requests_per_s: float = 0,
                           max_streams: int = 0, bytes_per_s: float = 0) -> dict[str, Any]:
        """See `Admin.create_token`."""
        return await self._client._invoke(_wire.create_token(role, name, requests_per_s,
                                                             max_streams, bytes_per_s))

    async def tokens(self) -> list[dict[str, Any]]:
        """See `Admin.tokens`."""
        return await self._client._invoke(_wire.list_tokens())

    async def revoke_token(self, token_id: str) -> dict[str, Any]:
        """See `Admin.revoke_token`."""
        return await self._client._invoke(_wire.revoke_token(token_id))

    async def _follow(self, op: dict[str, Any], progress: Progress | None) -> dict[str, Any]:
        while True:
            if progress is not None:
                progress(op)
            if _finished(op):
                return op
            await asyncio.sleep(POLL_S)
            op = await self._client._invoke(_wire.get_operation(op["op_id"]))

    async def drain_node(self, node_id: str, wait: bool = True, dry_run: bool = False,
                         progress: Progress | None = None) -> dict[str, Any]:
        """See `Admin.drain_node`."""
        plan = await self._client._invoke(_wire.drain_node(node_id, _new_op_id(), dry_run))
        return await self._follow_plan(plan, progress) if wait and not dry_run else plan

    async def rebalance(self, wait: bool = True, dry_run: bool = False,
                        progress: Progress | None = None) -> dict[str, Any]:
        """See `Admin.rebalance`."""
        plan = await self._client._invoke(_wire.rebalance(_new_op_id(), dry_run))
        return await self._follow_plan(plan, progress) if wait and not dry_run else plan

    async def plan(self, plan_id: str) -> dict[str, Any]:
        """See `Admin.plan`."""
        return await self._client._invoke(_wire.get_plan(plan_id))

    async def _follow_plan(self, plan: dict[str, Any], progress: Progress | None
                           ) -> dict[str, Any]:
        while True:
            if progress is not None:
                progress(plan)
            if plan["state"] != "running":
                return plan
            await asyncio.sleep(POLL_S)
            plan = await self._client._invoke(_wire.get_plan(plan["plan_id"]))
