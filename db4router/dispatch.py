"""Sending a request to the shard that owns a key, invisibly following ring changes.

A node that no longer owns a key answers FAILED_PRECONDITION (wrong_shard) with its epoch; we
refresh our view to at least that epoch and route again. The client never sees it. A read of
several shards the ring names (every shard, or those a where pins) is not routed shard by shard
again: asking the same shards at the new epoch would miss the rows a split or a move put on a
new one. It starts again whole, over the new ring's shards (`scatter`).

Every call sent through here must be safe to send twice: a node that restarts is waited out and
a call whose connection broke before the answer is sent again. Reads are; writes carry a txid
the shard notes (db4node/applied.py); prepares, decisions and index builds are idempotent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from db4.v1 import node_pb2_grpc
from db4core.errors import Db4Error, UnavailableError, WrongShardError, most_severe
from db4core.topology import Topology
from db4router.nodes import NodePool
from db4router.routing import RoutingCache, node_for
from db4router.topology import ClusterView
from db4rpc.status import broke, to_domain

T = TypeVar("T")
MAX_ROUTE_ATTEMPTS = 5
# How long a point call waits for a node that refuses connections (a restart) before it
# answers UNAVAILABLE; under the SDK's default call timeout.
NODE_RESTART_WAIT_S = 5.0
# A node failing this long whose registration is gone from etcd (its lease expired: down, not
# restarting) fails calls at once, without the wait above.
NODE_DOWN_AFTER_S = 10.0
NODE_TIMEOUT_S = 30.0

ShardCall = Callable[[node_pb2_grpc.NodeStub, str, int], Awaitable[T]]
# call(stub, shard ids of one node, epoch) -> one result per shard, in order
NodeCall = Callable[[node_pb2_grpc.NodeStub, list[str], int], Awaitable[list[T]]]


class Dispatcher:
    """Routes node calls by token or shard id, retrying after wrong-shard answers."""

    def __init__(self, view: ClusterView, pool: NodePool, cache: RoutingCache) -> None:
        self.view = view
        self.pool = pool
        self.cache = cache
        self.outages = Outages()

    async def by_token(self, token: int, call: ShardCall[T]) -> T:
        """Run call(stub, shard_id, epoch) on the shard owning token."""
        return await self._routed(lambda topo: self.cache.shard_for(topo, token), call)

    async def by_shard(self, shard_id: str, call: ShardCall[T]) -> T:
        """Run call on a named shard, wherever it is placed now."""
        return await self._routed(lambda topo: shard_id, call)

    async def once(self, shard_id: str, call: ShardCall[T]) -> T:
        """Run call on a named shard without routing again: when its node says the ring moved
        (wrong_shard), refresh the view to that epoch and raise WrongShardError, so that the
        caller can place its keys again (a write grouped by shard must be split again). It is
        sent at the view's epoch now: a read of several shards uses `at` instead."""
        return await self._routed(lambda topo: shard_id, call, attempts=1)

    async def scatter(self, read: Callable[[bool], Awaitable[T]]) -> T:
        """read(again) asks several shards it takes from the view (every shard of the ring,
        or those a where pins), each with `once`/`on_node`, which raise WrongShardError when
        a node says the ring moved. The view is then at that epoch, and the read starts again
        whole with again=True, so that it takes its shards anew: the same shards at the new
        epoch would miss the rows a split or a move put on another. MAX_ROUTE_ATTEMPTS in
        all, then UNAVAILABLE."""
        last: WrongShardError | None = None
        for attempt in range(MAX_ROUTE_ATTEMPTS):
            try:
                return await read(attempt > 0)
            except WrongShardError as err:
                last = err
                await self.view.refresh_to(err.epoch)
        raise UnavailableError(f"the ring kept changing under a read of several shards "
                               f"({MAX_ROUTE_ATTEMPTS} tries): {last}")

    async def every_shard(self, call: ShardCall[T],
                          unreachable: dict[str, UnavailableError] | None = None
                          ) -> dict[str, T]:
        """Run call on every shard of the ring in parallel (again over the new ring's shards
        when it moves meanwhile: `scatter`); one error reduced from all failures. Given
        `unreachable` (emptied first), a shard answering UNAVAILABLE (its node down) is noted
        there instead, and left out of the answer."""
        async def read(_again: bool) -> dict[str, T]:
            topo = self.view.require()
            shards = sorted(topo.ring.shards)
            if unreachable is not None:
                unreachable.clear()
            results = await gather_all(
                _noting(unreachable, [s], self.at(node_for(topo, s), s, topo.epoch, call))
                for s in shards)
            return {s: r for s, r in zip(shards, results, strict=True) if r is not _UNREACHED}

        return await self.scatter(read)

    async def by_node(self, shards: list[str], call: NodeCall[T], single: ShardCall[T],
                      unreachable: dict[str, UnavailableError] | None = None) -> list[T]:
        """Results for `shards`, in order, asking each node once for all of its shards:
        call(stub, shards_of_that_node, epoch) -> one result per shard (a node of an older
        version, without the call, has its shards asked one by one). WrongShardError when the
        ring moved under them: run it inside `scatter`, taking the shards there. Given
        `unreachable` (emptied first), the shards of a node answering UNAVAILABLE (down) are
        noted there instead, and left out of the results."""
        epoch, groups = self.node_groups(shards)
        out: dict[str, T] = {}
        if unreachable is not None:
            unreachable.clear()

        async def ask(node: str, part: list[str]) -> None:
            async def one_by_one() -> list[T]:
                return await gather_all(self.at(node, s, epoch, single) for s in part)

            results = await _noting(unreachable, part,
                                    self.on_node(node, part, epoch, call, one_by_one))
            if results is not _UNREACHED:
                out.update(zip(part, results, strict=True))

        await gather_all(ask(node, part) for node, part in groups.items())
        return [out[s] for s in shards if s in out]

    def node_groups(self, shards: list[str], topo: Topology | None = None
                    ) -> tuple[int, dict[str, list[str]]]:
        """(epoch, the given shards grouped by the node hosting them now, or at `topo`), each
        group in the given order."""
        topo = topo if topo is not None else self.view.require()
        groups: dict[str, list[str]] = {}
        for shard in shards:
            groups.setdefault(node_for(topo, shard), []).append(shard)
        return topo.epoch, groups

    async def at(self, node: str, shard: str, epoch: int, call: ShardCall[T]) -> T:
        """call(stub, shard, epoch) on the node that hosted `shard` at `epoch`: the epoch a
        read of several shards planned with, not the view's (which may have moved on since).
        Asked at a newer epoch, a shard that split meanwhile answers for the tokens it kept,
        and the rows of the new shard, which the read did not plan, would be missed; asked at
        its own epoch it says wrong_shard. The view is then refreshed to that epoch and
        WrongShardError raised (see `scatter`)."""
        return await self._pinned(node, lambda stub: call(stub, shard, epoch), None)

    async def on_node(self, node: str, shards: list[str], epoch: int,
                      call: Callable[[node_pb2_grpc.NodeStub, list[str], int], Awaitable[T]],
                      fallback: Callable[[], Awaitable[T]]) -> T:
        """call(stub, shards, epoch) on the node that hosted `shards` at `epoch`; fallback()
        when it does not know the call (a node of an older version). When it no longer hosts
        one of them, or one gave rows away since `epoch` (the ring moved: wrong_shard), the
        view is refreshed to that epoch and WrongShardError raised (see `scatter`)."""
        return await self._pinned(node, lambda stub: call(stub, shards, epoch), fallback)

    async def _pinned(self, node: str, send: Callable[[node_pb2_grpc.NodeStub], Awaitable[T]],
                      fallback: Callable[[], Awaitable[T]] | None) -> T:
        """send(stub) to `node`, the node waited for (`Waited`); UNIMPLEMENTED is fallback()
        when there is one; wrong_shard refreshes the view and is raised."""
        waited = Waited(self.outages, self._registered)
        while True:
            try:
                answer = await send(self.pool.stub(node, self.view.nodes))
            except grpc.RpcError as err:
                if await waited.again(err, node):
                    continue
                if fallback is not None and err.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return await fallback()
                domain = self._failure(err, node)
                if isinstance(domain, WrongShardError):
                    await self.view.refresh_to(domain.epoch)
                raise domain from None
            self.outages.answered(node)
            return answer

    async def _routed(self, pick, call: ShardCall[T], attempts: int = MAX_ROUTE_ATTEMPTS) -> T:
        """call on the shard pick(topology) names; after wrong_shard, refresh and pick again,
        `attempts` times in all (once: the WrongShardError itself is raised). A node that
        cannot be connected to, or whose connection broke, is waited for (`Waited`) without
        counting an attempt."""
        last: Db4Error | None = None
        waited = Waited(self.outages, self._registered)
        attempt = 0
        shard: str | None = None
        while attempt < attempts:
            topo = self.view.require()
            if shard is None:  # sent again, a call goes to the same shard: a write it applied
                shard = pick(topo)  # is answered there, even after its ranges moved
            node = node_for(topo, shard)
            stub = self.pool.stub(node, self.view.nodes)
            try:
                answer = await call(stub, shard, topo.epoch)
            except grpc.RpcError as err:
                if await waited.again(err, node):
                    continue
                attempt += 1
                last = self._failure(err, node)
                if not isinstance(last, WrongShardError):
                    raise last from None
                await self.view.refresh_to(last.epoch)
                shard = None
                continue
            self.outages.answered(node)
            return answer
        if attempts == 1 and last is not None:
            raise last
        raise UnavailableError(f"could not route after {attempts} attempts: {last}")

    def _registered(self, node: str) -> bool:
        """Whether the node holds a registration in etcd now (up, or restarting)."""
        return node in self.view.nodes

    def _failure(self, err: grpc.RpcError, node: str) -> Db4Error:
        """The error a node call ended with. A node that answered is reachable; one that could
        not be reached is UNAVAILABLE naming it (gRPC's own words name only an address)."""
        if not broke(err):
            self.outages.answered(node)
            return to_domain(err)
        return UnavailableError(f"node {node} cannot be reached: {err.details()}")


class Outages:
    """Since when each node has failed to answer (a refused connection, or one that broke):
    until it answers again, or no call met a failure for NODE_RESTART_WAIT_S."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, float]] = {}  # node -> (outage start, last failure)

    def failing(self, node: str) -> float:
        """Note a failure of the node; when its outage began."""
        now = time.monotonic()
        since, last = self._seen.get(node, (now, now))
        if now - last >= NODE_RESTART_WAIT_S:  # calls have not failed for a while: a new one
            since = now
        self._seen[node] = (since, now)
        return since

    def answered(self, node: str) -> None:
        self._seen.pop(node, None)


class Waited:
    """Waiting out a node, for up to NODE_RESTART_WAIT_S a call: one that cannot be connected to
    (restarting: the request never left) or whose connection broke while it had the request
    (killed: every call sent here is one the node answers the same when it comes again). A
    node failing for NODE_DOWN_AFTER_S whose registration is gone (its lease expired: down,
    not restarting) is not waited for: each call to it fails at once instead of holding the
    caller 5 s (three times over, as the SDK tries an UNAVAILABLE read again). It is waited
    for again once it registers (a restart taking longer)."""

    def __init__(self, outages: Outages, registered: Callable[[str], bool]) -> None:
        self.outages = outages
        self.registered = registered
        self.first: float | None = None  # this call's first failure

    async def again(self, err: grpc.RpcError, node: str) -> bool:
        """Whether to send the call to `node` again (after a short pause)."""
        if not broke(err):
            return False
        now = time.monotonic()
        self.first = self.first if self.first is not None else now
        since = self.outages.failing(node)
        if now - self.first >= NODE_RESTART_WAIT_S:
            return False
        if now - since >= NODE_DOWN_AFTER_S and not self.registered(node):
            return False
        await asyncio.sleep(0.1)
        return True


_UNREACHED = object()  # what _noting answers for a call whose node is down


async def _noting(unreachable: dict[str, UnavailableError] | None, keys: list[str],
                  call: Awaitable[T]) -> Any:
    """call's result; given `unreachable`, its UnavailableError (a node down) is noted there
    for each of `keys` instead, and _UNREACHED answered."""
    try:
        return await call
    except UnavailableError as err:
        if unreachable is None:
            raise
        unreachable.update((k, err) for k in keys)
        return _UNREACHED


async def gather_all(coros) -> list:
    """Run coroutines in parallel; if any failed, raise the most severe error once all ended
    (bad input before transient trouble, as vitess reduces scatter errors)."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise_most_severe(failures)
    return results


def raise_most_severe(failures: list[BaseException]) -> NoReturn:
    """Raise one error for several: anything unexpected first, then bad input before transient
    trouble."""
    domain = [f for f in failures if isinstance(f, Db4Error)]
    if len(domain) != len(failures):
        raise next(f for f in failures if not isinstance(f, Db4Error))
    raise most_severe(domain)
