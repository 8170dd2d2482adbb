"""Planning splits, moves, drains and rebalances on a ring (no cluster)."""

from __future__ import annotations

import pytest

from db4core.errors import FailedPreconditionError
from db4core.ring import Ring
from db4core.topology import Topology
from db4router.operations import move_ring, next_shard_id, split_ring
from db4router.plans import drain_moves, rebalance_moves

SHARDS = ["s000", "s001", "s002", "s003"]


def topo(placement: dict[str, str]) -> Topology:
    return Topology(1, Ring.build(SHARDS, vnodes=16), placement)


def test_a_split_halves_the_share_and_keeps_every_other_shard():
    t = topo({s: "n1" for s in SHARDS})
    new = split_ring(t.ring, "s001", "s004", None)
    assert abs(new.share("s001") - new.share("s004")) < 1e-3
    assert abs(new.share("s001") + new.share("s004") - t.ring.share("s001")) < 1e-12
    for s in ("s000", "s002", "s003"):
        assert new.ranges(s) == t.ring.ranges(s)


def test_a_split_at_a_token_inside_an_arc_shares_that_arc():
    t = topo({s: "n1" for s in SHARDS})
    first, last = t.ring.ranges("s002")[0]
    middle = (first + last) // 2
    new = split_ring(t.ring, "s002", "s009", middle)
    assert new.shard_for_token(middle) == "s002" and new.shard_for_token(middle + 1) == "s009"
    with pytest.raises(FailedPreconditionError, match="nothing would"):
        split_ring(t.ring, "s002", "s009", max(t.ring.tokens))


def test_a_move_gives_every_token_to_the_new_shard():
    t = topo({s: "n1" for s in SHARDS})
    new = move_ring(t.ring, "s003", "s004")
    assert new.ranges("s004") == t.ring.ranges("s003") and "s003" not in new.shards
    assert next_shard_id(t, {"s004"}) == "s005"


def test_a_drain_spreads_the_node_s_shards_over_the_others():
    t = topo({"s000": "n1", "s001": "n1", "s002": "n2", "s003": "n3"})
    moves = drain_moves(t, "n1", ["n1", "n2", "n3"])
    assert sorted(s for s, _ in moves) == ["s000", "s001"]
    assert {n for _, n in moves} == {"n2", "n3"}
    with pytest.raises(FailedPreconditionError):
        drain_moves(t, "n1", ["n1"])


def test_a_rebalance_fills_a_joined_node_and_stops_when_even():
    t = topo({s: "n1" if s < "s002" else "n2" for s in SHARDS})
    nodes = ["n1", "n2", "n3"]
    moves = rebalance_moves(t, nodes)
    assert "n3" in {n for _, n in moves}
    after = dict(t.placement)
    after.update(dict(moves))
    moved = Topology(2, t.ring, after)

    def spread(x: Topology) -> float:
        per = {n: sum(x.ring.share(s) for s in SHARDS if x.node_of(s) == n) for n in nodes}
        return max(per.values()) - min(per.values())

    assert spread(moved) < spread(t)
    assert rebalance_moves(moved, nodes) == []  # a second plan finds nothing to do
    even = topo({"s000": "n1", "s001": "n2", "s002": "n1", "s003": "n2"})
    assert rebalance_moves(even, ["n1", "n2"]) == []
