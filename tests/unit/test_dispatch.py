"""The router follows wrong-shard answers: refresh to the node's epoch, route again, once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from db4core.errors import ConflictError, UnavailableError
from db4core.ring import Ring
from db4core.topology import Topology
from db4router.dispatch import MAX_ROUTE_ATTEMPTS, Dispatcher
from db4router.routing import RoutingCache
from tests.support.fakes import FakeRpcError


class FakeView:
    """Epoch 1 places s0 on n1; a refresh reveals epoch 2 with s0 on n2."""

    def __init__(self):
        ring = Ring.build(["s0"], 4)
        self.topology = Topology(1, ring, {"s0": "n1"})
        self.next = Topology(2, ring, {"s0": "n2"})
        self.nodes = {"n1": "a", "n2": "b"}
        self.refreshed_to: list[int] = []

    def require(self):
        return self.topology

    async def refresh_to(self, epoch: int, timeout: float = 5.0):
        self.refreshed_to.append(epoch)
        self.topology = self.next


class FakePool:
    def stub(self, node_id, nodes):
        return node_id


def wrong_shard(epoch: int) -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "moved",
                        {"db4-reason": "wrong_shard", "db4-epoch": str(epoch)})


def test_wrong_shard_refreshes_and_retries_on_the_new_owner():
    view = FakeView()
    calls = []

    async def call(stub, shard, epoch):
        calls.append((stub, shard, epoch))
        if stub == "n1":
            raise wrong_shard(2)
        return "ok"

    d = Dispatcher(view, FakePool(), RoutingCache())
    assert asyncio.run(d.by_token(123, call)) == "ok"
    assert calls == [("n1", "s0", 1), ("n2", "s0", 2)]
    assert view.refreshed_to == [2]


def test_other_errors_pass_through_untouched():
    async def call(stub, shard, epoch):
        raise FakeRpcError(grpc.StatusCode.ABORTED, "conflict",
                           {"db4-reason": "conflict", "db4-expected-version": "1",
                            "db4-actual-version": "2"})

    d = Dispatcher(FakeView(), FakePool(), RoutingCache())
    with pytest.raises(ConflictError) as info:
        asyncio.run(d.by_token(1, call))
    assert (info.value.expected_version, info.value.actual_version) == (1, 2)


def test_endless_wrong_shard_gives_up_as_unavailable():
    attempts = []

    async def call(stub, shard, epoch):
        attempts.append(stub)
        raise wrong_shard(9)

    d = Dispatcher(FakeView(), FakePool(), RoutingCache())
    with pytest.raises(UnavailableError):
        asyncio.run(d.by_token(1, call))
    assert len(attempts) == MAX_ROUTE_ATTEMPTS


def test_routing_cache_drops_entries_on_epoch_change():
    view = FakeView()
    cache = RoutingCache(capacity=2)
    assert cache.shard_for(view.topology, 5) == "s0"
    cache.shard_for(view.topology, 6)
    cache.shard_for(view.topology, 7)
    assert len(cache._entries) == 2
    cache.shard_for(view.next, 5)
    assert len(cache._entries) == 1
