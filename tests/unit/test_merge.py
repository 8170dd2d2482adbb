"""The router's k-way merge returns exactly the first rows of the merged order, fetching little."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from db4.v1 import node_pb2
from db4core.query import sort_values, validate_sort, values_key
from db4router.merge import first_share, merge_page

SORT = validate_sort([("n", "asc")])


def shard_rows(docs: list[dict]) -> list[tuple[list, bytes]]:
    rows = [(sort_values(d, SORT), json.dumps(d).encode()) for d in docs]
    return sorted(rows, key=lambda r: values_key(r[0], SORT))


class FakeShards:
    """Shards answering Query as a node does: rows strictly after a position, has_more."""

    def __init__(self, data: dict[str, list[dict]]):
        self.rows = {s: shard_rows(d) for s, d in data.items()}
        self.calls: list[tuple[str, int]] = []
        self.answered = 0
        self.answered_before: list[int] = []  # per call: answers given when it was made

    async def fetch(self, shard: str, after, rows: int) -> node_pb2.QueryResponse:
        self.calls.append((shard, rows))
        self.answered_before.append(self.answered)
        await asyncio.sleep(0)  # calls made together are all in flight before any answers
        self.answered += 1
        mine = self.rows[shard]
        if after is not None:
            mine = [r for r in mine if values_key(r[0], SORT) > values_key(after, SORT)]
        page = mine[: rows + 1]
        return node_pb2.QueryResponse(
            rows=[node_pb2.QueryRow(document=doc, position=json.dumps(pos).encode())
                  for pos, doc in page[:rows]],
            has_more=len(page) > rows)


async def gather(coros):
    return await asyncio.gather(*coros)


def run(data, after, limit):
    shards = FakeShards(data)
    rows, more = asyncio.run(merge_page(sorted(data), after, limit, SORT, shards.fetch, gather))
    return [json.loads(doc)["$id"] for _, doc in rows], more, shards


DOCS = st.lists(st.tuples(st.integers(0, 7), st.integers(-5, 5)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(docs=DOCS, limit=st.integers(1, 30), start=st.none() | st.integers(-6, 6))
def test_merge_equals_sorting_everything(docs, limit, start):
    data: dict[str, list[dict]] = {f"s{i}": [] for i in range(8)}
    for i, (shard, n) in enumerate(docs):
        data[f"s{shard}"].append({"$id": f"d{i:03d}", "n": n})
    after = None if start is None else [[2, start], "~"]
    everything = sorted((d for ds in data.values() for d in ds),
                        key=lambda d: values_key(sort_values(d, SORT), SORT))
    if after is not None:
        everything = [d for d in everything
                      if values_key(sort_values(d, SORT), SORT) > values_key(after, SORT)]
    ids, more, _ = run(data, after, limit)
    assert ids == [d["$id"] for d in everything[:limit]]
    assert more == (len(everything) > limit)


def test_even_data_is_not_fetched_whole_from_every_shard():
    data = {f"s{i}": [{"$id": f"d{i}-{k:03d}", "n": k * 8 + i} for k in range(200)]
            for i in range(8)}
    ids, more, shards = run(data, None, 100)
    assert len(ids) == 100 and more
    assert sum(rows for _, rows in shards.calls) < 8 * 100 / 2


def test_skewed_data_refills_the_one_shard():
    data = {f"s{i}": [] for i in range(8)}
    data["s3"] = [{"$id": f"d{k:03d}", "n": k} for k in range(300)]
    ids, more, shards = run(data, None, 100)
    assert ids == [f"d{k:03d}" for k in range(100)] and more
    refills = shards.calls[8:]
    assert refills and all(shard == "s3" for shard, _ in refills)


def test_first_share():
    assert first_share(100, 8) == 25
    assert first_share(3, 8) == 3
    assert first_share(10_000, 8) == 2500


def test_hot_shards_are_refilled_in_one_round_not_one_by_one():
    """Three shards hold every small value: after the first round they are all asked for the
    rest of the page together, and the merge needs no refill after that."""
    data = {f"s{i}": [{"$id": f"d{i}-{k:03d}", "n": 1000 + k} for k in range(50)]
            for i in range(8)}
    for i in range(3):
        data[f"s{i}"] = [{"$id": f"h{i}-{k:03d}", "n": k * 3 + i} for k in range(50)]
    ids, more, shards = run(data, None, 100)
    assert ids == [f"h{k % 3}-{k // 3:03d}" for k in range(100)] and more
    assert len(shards.calls) == 8 + 3
    assert sorted(shard for shard, _ in shards.calls[8:]) == ["s0", "s1", "s2"]
    assert shards.answered_before[8:] == [8, 8, 8], "refills were made one after another"
