"""A range query with one open end stays within the type of its other bound, as `$gte` does in a
filter: numbers from 30 up are not followed by strings, objects and booleans."""

from __future__ import annotations

MIXED = [5, 30, 31, 99.5, "30", "abc", {"k": 1}, [1], True, False, None]


def test_open_ends_stay_within_the_bounds_type(client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"v": v, "i": i} for i, v in enumerate(MIXED)])
    coll.insert_many([{"i": 100}])  # no "v" at all
    name = f"{coll_name}_by_v"[:60]
    client.create_index(name, collection=coll_name, fields=[("v", "asc")])

    def values(**bounds):
        return [d.get("v") for d in client.query_range(name, limit=100, **bounds).items]

    assert values(start=(30, True)) == [30, 31, 99.5]
    assert values(start=(30, True)) == [
        d["v"] for d in coll.find(where={"v": {"$gte": 30}}, sort=[("v", "asc")]).items]
    assert values(end=(30, False)) == [5]
    assert values(start=("a", False)) == ["abc"]
    assert values(end=("30", True)) == ["30"]
    assert values(start=(True, True)) == [True]
    # both ends given: exactly the range, whatever lies between in the type order
    assert values(start=(31, True), end=("30", True)) == [31, 99.5, "30"]
    assert len(values()) == len(MIXED) + 1  # no bounds: the whole index


def test_open_ends_of_a_descending_index(client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"v": v} for v in MIXED])
    name = f"{coll_name}_by_v_desc"[:60]
    client.create_index(name, collection=coll_name, fields=[("v", "desc")])
    got = [d["v"] for d in client.query_range(name, start=(31, True), limit=100).items]
    assert got == [31, 30, 5]
    got = [d["v"] for d in client.query_range(name, end=(31, False), limit=100).items]
    assert got == [99.5]
