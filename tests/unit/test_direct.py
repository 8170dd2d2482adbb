"""The routing state of a direct client (client/db4client/_direct.py): a call plans on the ring
it read once, whatever other threads do to the shared state meanwhile."""

from __future__ import annotations

from db4.v1 import node_pb2, router_pb2
from db4client import _direct, _wire
from db4core.hashing import token_for
from db4core.ring import Ring


def routing(epoch: int, nodes: dict[str, str] | None = None) -> router_pb2.GetRoutingResponse:
    ring = Ring.build(["s0", "s1"], vnodes=8)
    return router_pb2.GetRoutingResponse(
        epoch=epoch, ring=ring.to_json(), placement={"s0": "n1", "s1": "n2"},
        nodes=nodes if nodes is not None else {"n1": "127.0.0.1:7001", "n2": "127.0.0.1:7002"})


def test_a_plan_keeps_its_ring_when_another_thread_forgets_it():
    routes = _direct.Routes()
    topo = routes.adopt(routing(3))
    routes.forget(topo)  # another thread saw wrong_shard
    assert routes.topology is None
    plan = routes.plan(_wire.get("users", "u1"), "$id", topo)
    assert plan is not None and plan.method == "Read" and plan.topology is topo
    assert isinstance(plan.request, node_pb2.ReadRequest)
    assert list(plan.request.tokens) == [token_for("u1")] and plan.request.epoch == 3


def test_the_ring_never_goes_back_and_only_the_failed_ring_is_forgotten():
    routes = _direct.Routes()
    old = routes.adopt(routing(3))
    new = routes.adopt(routing(5))
    assert routes.adopt(routing(4)) is new and routes.topology is new  # a late, older answer
    routes.forget(old)  # a call planned on the old ring failed: the newer one stays
    assert routes.topology is new


def test_nodes_the_sdk_may_not_reach_are_left_to_the_router():
    routes = _direct.Routes()
    topo = routes.adopt(routing(1, {"n1": "10.1.2.3:7001", "n2": "127.0.0.1:7002"}))
    owners = {topo.node_of(topo.shard_for_token(token_for(f"u{i}"))): f"u{i}"
              for i in range(50)}
    assert routes.plan(_wire.get("users", owners["n1"]), "$id", topo) is None
    assert routes.plan(_wire.get("users", owners["n2"]), "$id", topo) is not None
