"""Dispatcher.on_node: a call to one node for several shards falls back to asking shard by shard
when the node no longer hosts them (a ring change) or does not know the call (an older node),
and passes every other error on."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from db4core.errors import InternalError, WrongShardError
from db4router.dispatch import Dispatcher
from tests.support.fakes import FakeRpcError


class View:
    nodes: dict = {}

    def __init__(self) -> None:
        self.refreshed: list[int] = []

    async def refresh_to(self, epoch: int) -> None:
        self.refreshed.append(epoch)


class Pool:
    def stub(self, node, nodes):
        return node


def _run(error: BaseException | None) -> tuple[str, View]:
    view = View()
    dispatcher = Dispatcher(view, Pool(), None)  # type: ignore[arg-type]

    async def call(stub, shards, epoch):
        assert (stub, shards, epoch) == ("n1", ["s1", "s2"], 7)
        if error is not None:
            raise error
        return "merged"

    async def fallback():
        return "one by one"

    return asyncio.run(dispatcher.on_node("n1", ["s1", "s2"], 7, call, fallback)), view


def test_the_node_answers():
    result, view = _run(None)
    assert result == "merged" and view.refreshed == []


def test_an_older_node_that_lacks_the_call_is_asked_shard_by_shard():
    result, view = _run(FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"))
    assert result == "one by one" and view.refreshed == []


def test_a_ring_change_refreshes_the_view_then_asks_shard_by_shard():
    moved = WrongShardError("shard s2 is not on this node", epoch=9)
    result, view = _run(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, moved.message,
                                     moved.trailers()))
    assert result == "one by one" and view.refreshed == [9]


def test_any_other_error_is_passed_on():
    with pytest.raises(InternalError, match="boom"):
        _run(FakeRpcError(grpc.StatusCode.INTERNAL, "boom"))
