"""The router's merged pages are bounded by bytes: fewer items and has_more, never an oversized
page, and the next page (after the last row sent) continues exactly where this one stopped."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from db4core.query import sort_values, values_key
from db4router.merge import merge_page
from tests.unit.test_merge import SORT, FakeShards, gather


def docs_of(sizes: list[tuple[int, int]]) -> dict[str, list[dict]]:
    data: dict[str, list[dict]] = {f"s{i}": [] for i in range(4)}
    for i, (shard, size) in enumerate(sizes):
        data[f"s{shard}"].append({"$id": f"d{i:03d}", "n": i, "pad": "x" * size})
    return data


def page(data, after, limit, max_bytes):
    shards = FakeShards(data)
    return asyncio.run(merge_page(sorted(data), after, limit, SORT, shards.fetch, gather,
                                  max_bytes=max_bytes))


def test_page_stops_before_the_byte_budget_with_has_more():
    data = docs_of([(i % 4, 1000) for i in range(20)])
    rows, more = page(data, None, 20, max_bytes=5000)
    assert 0 < len(rows) < 20 and more
    assert sum(len(doc) for _, doc in rows) <= 5000


def test_one_item_larger_than_the_budget_still_travels_alone():
    data = docs_of([(0, 9000), (1, 10)])
    rows, more = page(data, None, 10, max_bytes=5000)
    assert [json.loads(doc)["$id"] for _, doc in rows] == ["d000"] and more


SIZES = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3000)), min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(sizes=SIZES, limit=st.integers(1, 15), budget=st.integers(1, 8000))
def test_pages_by_bytes_walk_everything_once_in_order(sizes, limit, budget):
    data = docs_of(sizes)
    everything = sorted((d for ds in data.values() for d in ds),
                        key=lambda d: values_key(sort_values(d, SORT), SORT))
    seen: list[str] = []
    after = None
    while True:
        rows, more = page(data, after, limit, budget)
        assert 0 < len(rows) <= limit
        if len(rows) > 1:
            assert sum(len(doc) for _, doc in rows) <= budget
        seen += [json.loads(doc)["$id"] for _, doc in rows]
        if not more:
            break
        after = rows[-1][0]
    assert seen == [d["$id"] for d in everything]
