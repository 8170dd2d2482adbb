"""Ring.ranges: the tokens each shard owns, as inclusive ranges that cover the circle once."""

from __future__ import annotations

import random

from db4core.ring import TOKEN_MAX, Ring


def test_ranges_cover_every_token_once_and_agree_with_shard_for_token():
    ring = Ring.build([f"s{i}" for i in range(5)], vnodes=16)
    ranges = sorted((first, last, s) for s in ring.shards for first, last in ring.ranges(s))
    assert ranges[0][0] == 0 and ranges[-1][1] == TOKEN_MAX
    for (_, last, _), (first, _, _) in zip(ranges, ranges[1:], strict=False):
        assert first == last + 1
    rng = random.Random(3)
    for first, last, shard in ranges:
        for token in (first, last, rng.randint(first, last)):
            assert ring.shard_for_token(token) == shard
    assert abs(sum(ring.share(s) for s in ring.shards) - 1.0) < 1e-12


def test_neighbouring_virtual_nodes_and_the_wrap_make_one_range():
    ring = Ring((10, 20, 30, 40), ("a", "a", "b", "a"))
    assert ring.ranges("a") == [(0, 20), (31, TOKEN_MAX)]
    assert ring.ranges("b") == [(21, 30)]
    lone = Ring((10, 20), ("a", "b"))
    assert lone.ranges("a") == [(0, 10), (21, TOKEN_MAX)]
    assert lone.ranges("b") == [(11, 20)]
