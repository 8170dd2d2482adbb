"""Dispatcher.on_node: a call to one node for several shards falls back to asking shard by shard
when the node does not know the call (an older node); a ring change refreshes the view and is
raised, so that the read starts again over the new ring's shards (Dispatcher.scatter), which
gives up after MAX_ROUTE_ATTEMPTS; every other error is passed on."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from db4core.errors import InternalError, UnavailableError, WrongShardError
from db4router.dispatch import MAX_ROUTE_ATTEMPTS, Dispatcher
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


def _run(error: BaseException | None, view: View | None = None) -> tuple[str, View]:
    view = view if view is not None else View()
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


def test_a_ring_change_refreshes_the_view_and_is_raised_not_asked_shard_by_shard():
    """The same shards asked again at the new epoch would miss the rows a split or a move put
    on a new shard: the whole read must start again."""
    moved = WrongShardError("shard s2 is not on this node", epoch=9)
    view = View()
    with pytest.raises(WrongShardError):
        _run(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, moved.message,
                          moved.trailers()), view)
    assert view.refreshed == [9]


def test_a_scatter_read_starts_again_whole_after_the_ring_moved():
    view = View()
    dispatcher = Dispatcher(view, Pool(), None)  # type: ignore[arg-type]
    calls: list[bool] = []

    async def read(again: bool) -> str:
        calls.append(again)
        if len(calls) < 3:
            raise WrongShardError("shard s1 gave tokens away", epoch=10 + len(calls))
        return "answer"

    assert asyncio.run(dispatcher.scatter(read)) == "answer"
    assert calls == [False, True, True] and view.refreshed == [11, 12]


def test_a_scatter_read_gives_up_when_the_ring_keeps_moving():
    view = View()
    dispatcher = Dispatcher(view, Pool(), None)  # type: ignore[arg-type]

    async def read(again: bool) -> str:
        raise WrongShardError("shard s1 gave tokens away", epoch=len(view.refreshed) + 1)

    with pytest.raises(UnavailableError, match="ring kept changing"):
        asyncio.run(dispatcher.scatter(read))
    assert len(view.refreshed) == MAX_ROUTE_ATTEMPTS


def test_any_other_error_is_passed_on():
    with pytest.raises(InternalError, match="boom"):
        _run(FakeRpcError(grpc.StatusCode.INTERNAL, "boom"))
