"""Dispatcher.on_node: a call to one node for several shards falls back to asking shard by shard
when the node does not know the call (an older node); a ring change refreshes the view and is
raised, so that the read starts again over the new ring's shards (Dispatcher.scatter), which
gives up after MAX_ROUTE_ATTEMPTS; every other error is passed on. A read of several shards
asks each at the epoch it planned with, even when the view moved on meanwhile."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import grpc
import pytest

from db4.v1 import node_pb2, router_pb2
from db4core.errors import InternalError, UnavailableError, WrongShardError
from db4core.hashing import token_for
from db4core.query.sortkey import sort_values
from db4router import dispatch
from db4router.dispatch import MAX_ROUTE_ATTEMPTS, Dispatcher
from db4router.queries import Plan, Queries
from db4router.search import Search, SearchPlan
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


# ---- a read keeps to the epoch it planned with -----------------------------------------------

class Topo:
    def __init__(self, epoch: int, placement: dict[str, str], owner_of_c: str) -> None:
        self.epoch = epoch
        self.placement = placement
        self.ring = type("Ring", (), {"shards": set(placement)})()
        self.owner_of_c = owner_of_c

    def shard_for_token(self, token: int) -> str:
        assert token == token_for("c")  # the one value the tests pin
        return self.owner_of_c

    def node_of(self, shard: str) -> str | None:
        return self.placement.get(shard)


# Epoch 7: s1 on n1, s2 on n2. Epoch 8: s2 split, its upper half (ids c, d) went to s3 on n3.
ROWS = {7: {"s1": ["a"], "s2": ["b", "c", "d"]}, 8: {"s1": ["a"], "s2": ["b"], "s3": ["c", "d"]}}
SPLIT_AT = {"s2": 8}


class SplittingView(View):
    """The cluster view; the ring moves to epoch 8 while a read runs (another request learnt
    of the split, or the router's watch saw it)."""

    def __init__(self) -> None:
        super().__init__()
        self.topos = {7: Topo(7, {"s1": "n1", "s2": "n2"}, "s2"),
                      8: Topo(8, {"s1": "n1", "s2": "n2", "s3": "n3"}, "s3")}
        self.current = self.topos[7]

    def require(self) -> Topo:
        return self.current

    async def refresh_to(self, epoch: int) -> None:
        await super().refresh_to(epoch)
        self.current = self.topos[max(epoch, self.current.epoch)]


class Node:
    """A node's answer to a whole-shard read: wrong_shard when the shard gave tokens away
    after the request's epoch (db4node Membership.recheck), else its rows at that epoch."""

    def __init__(self, view: SplittingView, asked: list) -> None:
        self.view, self.asked = view, asked

    async def rows(self, shard: str, epoch: int) -> list[str]:
        self.asked.append((shard, epoch))
        self.view.current = self.view.topos[8]  # the split lands while the first calls run
        await asyncio.sleep(0)
        if epoch < SPLIT_AT.get(shard, 0) <= self.view.current.epoch:
            moved = WrongShardError(f"shard {shard} gave tokens away", epoch=8)
            raise FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, moved.message,
                               moved.trailers())
        return ROWS[epoch][shard]


def test_every_shard_asks_each_shard_at_the_epoch_it_planned_with():
    """Asked at epoch 8, s2 would answer for its lower half alone and c, d (now on s3, which
    the read did not plan) would be missing; asked at 7 it says the ring moved and the read
    starts again over epoch 8's three shards."""
    view, asked = SplittingView(), []
    node = Node(view, asked)
    dispatcher = Dispatcher(view, Pool(), None)  # type: ignore[arg-type]

    async def call(stub, shard, epoch):
        return await node.rows(shard, epoch)

    got = asyncio.run(dispatcher.every_shard(call))
    assert sorted(r for rows in got.values() for r in rows) == ["a", "b", "c", "d"]
    assert sorted(got) == ["s1", "s2", "s3"]
    assert {e for s, e in asked[:2]} == {7} and set(view.refreshed) == {8}


def _queries(view: SplittingView, asked: list) -> Queries:
    """Queries over fake nodes answering Query for one shard from ROWS (a where pins $id)."""
    node = Node(view, asked)

    class Stub:
        async def Query(self, req, timeout=None):  # noqa: N802 - the gRPC method's name
            where = json.loads(req.where) if req.where else {}
            ids = [i for i in await node.rows(req.shard_id, req.epoch)
                   if (not req.after or i > json.loads(req.after)[-1])
                   and where.get("$id", i) == i]
            return node_pb2.QueryResponse(has_more=len(ids) > req.limit, rows=[
                node_pb2.QueryRow(document=json.dumps({"$id": i}).encode(), position=json.dumps(
                    sort_values({"$id": i}, SORT)).encode()) for i in ids[:req.limit]])

    class StubPool:
        def stub(self, node_id, nodes):
            return Stub()

    class Collections:
        async def current(self, name):
            return SimpleNamespace(partition_key="$id")

    return Queries(Dispatcher(view, StubPool(), None), Collections())  # type: ignore[arg-type]


SORT = [("$id", "asc")]


def test_a_merged_page_asks_each_shard_at_the_epoch_it_planned_with():
    """The same for a find page over shards that are alone on their node (one Query each)."""
    view, asked = SplittingView(), []
    page = asyncio.run(_queries(view, asked).page(Plan("c", b"", SORT, 10, None, "fp"), None))
    assert [json.loads(d)["$id"] for d in page.documents] == ["a", "b", "c", "d"]
    assert {e for s, e in asked[:2]} == {7} and set(view.refreshed) == {8}


def test_the_pages_of_a_pruned_query_follow_the_ring_that_moved_between_them():
    """A where pinning $id "c" chose s2 at epoch 7 (an iterate's first page); the ring moved
    to epoch 8 before the next page, and the split gave "c" to s3. The page asks s3: s2 asked
    at epoch 8 answers without "c", which is no longer its."""
    view, asked = SplittingView(), []
    queries = _queries(view, asked)
    plan = Plan("c", b'{"$id": "c"}', SORT, 10, ["s2"], "fp", epoch=7)
    view.current = view.topos[8]
    page = asyncio.run(queries.page(plan, None))
    assert [json.loads(d)["$id"] for d in page.documents] == ["c"]
    assert asked == [("s3", 8)] and plan.shards == ["s3"] and plan.epoch == 8


def test_a_search_asks_its_hits_round_on_the_ring_of_its_statistics_round():
    """Round 1 gathered every shard's statistics at epoch 7; the ring moved to epoch 8 before
    round 2. Asked at 8, s2 would give the hits of its lower half alone and s3's ("c", "d")
    would be missing from a page whose statistics counted them; asked at 7 it says the ring
    moved and the search starts again on epoch 8's shards."""
    view, asked = SplittingView(), []
    node = Node(view, asked)
    answered = []

    class Stub:
        async def SearchStatsShards(self, req, timeout=None):  # noqa: N802
            out = []
            for r in req.requests:
                if r.epoch < SPLIT_AT.get(r.shard_id, 0) <= view.current.epoch:
                    await node.rows(r.shard_id, r.epoch)  # raises wrong_shard
                rows = len(ROWS[r.epoch][r.shard_id])
                out.append(node_pb2.SearchStatsResponse(rows=rows, tokens=rows,
                                                        phrase_rows=[rows]))
            answered.append(req)
            if len(answered) == 2:  # every node answered round 1 at epoch 7: the split lands
                view.current = view.topos[8]
            return node_pb2.SearchStatsShardsResponse(results=out)

        async def SearchMerged(self, req, timeout=None):  # noqa: N802
            hits = [router_pb2.SearchHit(id=i, score=1.0) for r in req.requests
                    for i in await node.rows(r.shard_id, r.epoch)]  # moves the view to 8
            return node_pb2.SearchShardResponse(hits=sorted(hits, key=lambda h: h.id))

    class StubPool:
        def stub(self, node_id, nodes):
            return Stub()

    async def pruned(collection, where):
        return None

    search = Search(Dispatcher(view, StubPool(), None), None, pruned)  # type: ignore[arg-type]
    plan = SearchPlan("idx", "c", None, router_pb2.SearchRequest(), "x", ["x"], 10, 8,
                      ("<b>", "</b>"), "fp")
    page = asyncio.run(search.dispatcher.scatter(lambda _again: search._page(plan, None)))
    assert sorted(h.id for h in page.hits) == ["a", "b", "c", "d"]
    assert [r.requests[0].epoch for r in answered[:2]] == [7, 7]
    assert {e for s, e in asked[:2]} == {7} and set(view.refreshed) == {8}


# ---- a node that cannot be reached -----------------------------------------------------------

def _down_node(monkeypatch, registered: bool):
    """A dispatcher whose node n1 refuses connections until up[0]; 0.3 s waits, 0.6 s down."""
    monkeypatch.setattr(dispatch, "NODE_RESTART_WAIT_S", 0.3)
    monkeypatch.setattr(dispatch, "NODE_DOWN_AFTER_S", 0.6)
    view = View()
    view.nodes = {"n1": "127.0.0.1:1"} if registered else {}
    dispatcher = Dispatcher(view, Pool(), None)  # type: ignore[arg-type]
    sent: list[str] = []
    up = [False]

    async def call(stub, shard, epoch):
        sent.append(stub)
        if not up[0]:
            raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses")
        return "answer"

    async def tries() -> int | str:
        """What a call to n1 did: its answer, or how many times it was sent before failing."""
        before = len(sent)
        try:
            return await dispatcher.at("n1", "s1", 7, call)
        except UnavailableError as err:
            assert "node n1 cannot be reached: failed to connect" in err.message
            return len(sent) - before

    return dispatcher, up, tries


def test_a_node_down_for_good_is_waited_out_then_fails_calls_at_once(monkeypatch):
    """A node that refuses connections is waited out by each call (a restart); once it has
    failed for NODE_DOWN_AFTER_S with its registration gone (down, not restarting), a call
    fails at once, UNAVAILABLE naming the node. Once it answers, it is waited out again."""
    _, up, tries = _down_node(monkeypatch, registered=False)

    async def run() -> list:
        out = [await tries(), await tries(), await tries()]  # 0.3 s each: then past 0.6 s
        up[0] = True
        out.append(await tries())
        up[0] = False
        out.append(await tries())
        return out

    first, second, third, answered, again = asyncio.run(run())
    assert first >= 3 and second >= 3 and third == 1  # waited out, then at once
    assert answered == "answer" and again >= 3


def test_a_registered_node_is_always_waited_out(monkeypatch):
    """A node that registered again (restarting, however long it takes) is waited for."""
    _, _, tries = _down_node(monkeypatch, registered=True)

    async def run() -> list:
        return [await tries() for _ in range(4)]

    assert all(n >= 3 for n in asyncio.run(run()))


def test_a_call_waits_no_longer_than_its_own_share_when_others_reach_the_node(monkeypatch):
    """Another call's answer ends the node's outage record; a waiting call still gives up
    after NODE_RESTART_WAIT_S of its own (it must not wait forever while others succeed)."""
    dispatcher, _, tries = _down_node(monkeypatch, registered=True)

    async def answers_meanwhile() -> None:
        for _ in range(10):
            dispatcher.outages.answered("n1")
            await asyncio.sleep(0.05)

    async def run():
        return await asyncio.wait_for(asyncio.gather(tries(), answers_meanwhile()), 2.0)

    sent, _ = asyncio.run(run())
    assert 3 <= sent <= 5
