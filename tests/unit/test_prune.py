"""Partition pruning is sound: every document a where matches has a partition value the where
pins (checked against the Python oracle `matches` on generated documents and filters)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from db4core.query import matches
from db4core.query.prune import pinned_values

KEY = "tenant"
VALUES = st.sampled_from(["a", "b", "c", "", True, False, 1, 1.0, 2, None, {"k": 1}, [1]])


@st.composite
def docs(draw) -> list[dict]:
    out = []
    for i in range(draw(st.integers(0, 25))):
        doc = {"$id": f"d{i}", KEY: draw(VALUES), "x": draw(st.integers(0, 3))}
        out.append(doc)
    return out


def leaf():
    on_key = st.one_of(
        VALUES.map(lambda v: {KEY: v}),
        VALUES.map(lambda v: {KEY: {"$eq": v}}),
        st.lists(VALUES, max_size=3).map(lambda vs: {KEY: {"$in": vs}}),
        VALUES.map(lambda v: {KEY: {"$ne": v}}),
        st.just({KEY: {"$gte": "b"}}),
        VALUES.map(lambda v: {KEY: {"$eq": v, "$ne": "c"}}),
    )
    other = st.integers(0, 3).map(lambda n: {"x": n})
    return st.one_of(on_key, other)


wheres = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda ws: {"$and": ws}),
        st.lists(inner, min_size=1, max_size=3).map(lambda ws: {"$or": ws}),
        inner.map(lambda w: {"$not": w}),
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(docs=docs(), where=wheres)
def test_every_match_has_a_pinned_value(docs, where):
    pinned = pinned_values(where, KEY)
    if pinned is None:
        return
    for doc in docs:
        if matches(doc, where):
            value = doc[KEY]
            assert any(type(value) is type(p) and value == p for p in pinned), (doc, where)


def test_what_pins_and_what_scatters():
    assert pinned_values({"tenant": "t7"}, KEY) == ["t7"]
    assert pinned_values({"tenant": {"$in": ["b", "a"]}, "x": 1}, KEY) == ["a", "b"]
    assert pinned_values({"$and": [{"tenant": {"$in": ["a", "b"]}}, {"tenant": "b"}]}, KEY) == [
        "b"]
    assert pinned_values({"$or": [{"tenant": "a"}, {"tenant": "b", "x": 1}]}, KEY) == ["a", "b"]
    assert pinned_values({"tenant": {"$in": []}}, KEY) == []
    assert pinned_values({"$id": "doc-1"}, "$id") == ["doc-1"]
    assert pinned_values({"a.b": "x"}, "a.b") == ["x"]
    for scatter in ({"$or": [{"tenant": "a"}, {"x": 1}]}, {"tenant": 1}, {"tenant": None},
                    {"tenant": {"$ne": "a"}}, {"$not": {"tenant": "a"}}, {"x": 1}, None,
                    {"tenant": {"$in": ["a", 2]}}, {"a": {"b": "x"}}):
        assert pinned_values(scatter, KEY if "a" not in (scatter or {}) else "a.b") is None
