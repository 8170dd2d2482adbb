"""Range-index internals: bound positions, and index pages on an in-memory shard schema against
the Python oracle (sort_key, matches), with SQLite seeking in the index, never sorting."""

from __future__ import annotations

import json
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db4core.errors import InvalidArgumentError
from db4core.ids import validate_id
from db4core.query import (
    bound_position,
    compile_index_page,
    index_ddl,
    index_sql_name,
    matches,
    sort_key,
    sort_values,
    validate_sort,
    values_key,
)
from db4core.query.rangescan import AFTER_EVERY_ID, BEFORE_EVERY_ID, within_type
from db4node.schema import migrate

ID_ALPHABET = "ABCXYZabcxyz0189._:@-"

# ---- bound_position ----------------------------------------------------------------------------


@pytest.mark.parametrize(("inclusive", "side", "sentinel"), [
    (True, "start", ""), (False, "start", "~"), (True, "end", "~"), (False, "end", "")])
def test_bound_position_sentinels(inclusive, side, sentinel):
    assert bound_position([("n", "asc")], [5], inclusive, side) == [[2, 5], sentinel]


def test_sentinels_sort_around_every_id():
    assert (BEFORE_EVERY_ID, AFTER_EVERY_ID) == ("", "~")
    for ch in ID_ALPHABET:
        assert validate_id(ch) == ch
        assert BEFORE_EVERY_ID < ch < AFTER_EVERY_ID
    assert AFTER_EVERY_ID > "z" * 256
    with pytest.raises(InvalidArgumentError):
        validate_id("~")


def test_bound_position_values_become_rank_value_pairs():
    sort = [("a", "asc"), ("b", "desc"), ("c", "asc")]
    assert bound_position(sort, ["x", 2.5], True, "start") == [[3, "x"], [2, 2.5], ""]
    assert bound_position(sort, [None, True, False], False, "end") == [
        [1, None], [7, None], [6, None], ""]


@pytest.mark.parametrize("values", [[], [1, 2, 3]])
def test_bound_position_length(values):
    with pytest.raises(InvalidArgumentError):
        bound_position([("a", "asc"), ("b", "asc")], values, True, "start")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**64])
def test_bound_position_rejects_bad_values(value):
    with pytest.raises(InvalidArgumentError):
        bound_position([("a", "asc")], [value], True, "end")


def test_index_names():
    assert index_sql_name("by_age2") == "ix_by_age2"
    for bad in ('x"; DROP TABLE docs; --', "a b", "é", ""):
        with pytest.raises(InvalidArgumentError):
            index_sql_name(bad)
    with pytest.raises(InvalidArgumentError):
        index_ddl("ok", "c", [('a"b', "asc")])


# ---- pages against the oracle ------------------------------------------------------------------

VALUES = st.sampled_from([None, True, False, -1, 0, 1, 2, 1.0, 2.5, -0.5, 2**53 + 1,
                          "", "a", "ab", "B", "é", "a\x00", "😀"])
DOC_VALUES = VALUES | st.just({"k": 1}) | st.just([1, 2]) | st.just("MISSING")
PATHS = ["a", "b", "o.p"]


def _set_path(doc: dict, path: str, value: Any) -> None:
    if value == "MISSING":
        return
    *parents, leaf = path.split(".")
    for seg in parents:
        doc = doc.setdefault(seg, {})
    doc[leaf] = value


@st.composite
def documents(draw) -> list[dict]:
    n = draw(st.integers(min_value=0, max_value=30))
    docs = []
    for i in range(n):
        doc: dict = {"$id": f"d{draw(st.sampled_from(ID_ALPHABET))}{i}"}
        for path in PATHS:
            _set_path(doc, path, draw(DOC_VALUES))
        docs.append(doc)
    return docs


@st.composite
def sorts(draw) -> list[tuple[str, str]]:
    paths = draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True))
    return [(p, draw(st.sampled_from(["asc", "desc"]))) for p in paths]


@st.composite
def bounds(draw, width: int) -> tuple[list, bool] | None:
    if draw(st.booleans()):
        return None
    values = draw(st.lists(VALUES, min_size=1, max_size=width))
    return values, draw(st.booleans())


def _db(docs: list[dict], name: str, sort) -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    migrate(conn)
    conn.execute(index_ddl(name, "c", sort))
    with conn:
        for doc in docs:
            conn.execute("INSERT INTO docs(collection, id, token, version, body) "
                         "VALUES ('c', ?, 0, 1, ?)", (doc["$id"], json.dumps(doc)))
            # the same id in another collection must never show up
            conn.execute("INSERT INTO docs(collection, id, token, version, body) "
                         "VALUES ('other', ?, 0, 1, ?)", (doc["$id"], json.dumps(doc)))
    return conn


def _prefix_key(doc: dict, fields, width: int) -> tuple:
    covered = fields[:width]
    return values_key(sort_values(doc, covered), covered)


def oracle(docs, sort, start, end) -> list[str]:
    """Ids in index order strictly after `start` and at or before `end` (positions)."""
    fields = validate_sort(sort)
    chosen = []
    for doc in sorted(docs, key=lambda d: sort_key(d, sort)):
        if start is not None:
            width = len(start) - 1
            if not _prefix_key(doc, fields, width) > values_key(start, fields[:width]):
                continue
        if end is not None:
            width = len(end) - 1
            if not _prefix_key(doc, fields, width) <= values_key(end, fields[:width]):
                continue
        chosen.append(doc["$id"])
    return chosen


def run_pages(conn, sort, after, until, fetch: int, name: str) -> list[str]:
    """Every page of an index range, each read with compile_index_page's statements."""
    got: list[str] = []
    for _ in range(100):
        rows: list[dict] = []
        # one row more than the page tells whether anything follows (as the node asks)
        for sql, params in compile_index_page("c", sort, after, until, fetch + 1):
            plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert f"INDEX {index_sql_name(name)}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            rows += [json.loads(body) for _id, body in conn.execute(sql, params)]
        page = rows[:fetch]
        got += [d["$id"] for d in page]
        if len(rows) <= fetch:  # nothing beyond this page
            return got
        after = sort_values(page[-1], sort)
    raise AssertionError("paging did not end")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_index_pages_equal_oracle(data):
    docs = data.draw(documents())
    sort = data.draw(sorts())
    start = data.draw(bounds(len(sort)))
    end = data.draw(bounds(len(sort)))
    fetch = data.draw(st.integers(min_value=1, max_value=7))
    after = None if start is None else bound_position(sort, start[0], start[1], "start")
    until = None if end is None else bound_position(sort, end[0], end[1], "end")
    conn = _db(docs, "rs", sort)
    try:
        assert run_pages(conn, sort, after, until, fetch, "rs") == oracle(docs, sort, after, until)
    finally:
        conn.close()


@settings(max_examples=50, deadline=None)
@given(docs=documents(), low=st.integers(-1, 2), high=st.integers(-1, 3),
       low_inc=st.booleans(), high_inc=st.booleans(), desc=st.booleans())
def test_numeric_range_equals_filter(docs, low, high, low_inc, high_inc, desc):
    """Two numeric bounds on a one-field index select what the where-filter does."""
    sort = [("a", "desc" if desc else "asc")]
    lo_op, hi_op = ("$gte" if low_inc else "$gt"), ("$lte" if high_inc else "$lt")
    if desc:  # index order runs from high to low values
        start = bound_position(sort, [high], high_inc, "start")
        end = bound_position(sort, [low], low_inc, "end")
    else:
        start = bound_position(sort, [low], low_inc, "start")
        end = bound_position(sort, [high], high_inc, "end")
    where = {"a": {lo_op: low, hi_op: high}}
    expected = [d["$id"] for d in sorted(docs, key=lambda d: sort_key(d, sort))
                if matches(d, where)]
    conn = _db(docs, "num", sort)
    try:
        assert run_pages(conn, sort, start, end, 3, "num") == expected
    finally:
        conn.close()


def _fixed_docs() -> list[dict]:
    return [{"$id": f"f{i:03}", "a": [i % 4, str(i % 3), None, True][i % 4], "b": i % 5,
             "o": {"p": f"v{i % 6}"}} for i in range(300)]


@pytest.mark.parametrize("sort", [
    [("a", "asc")], [("a", "desc")], [("a", "asc"), ("b", "desc")],
    [("b", "desc"), ("o.p", "asc"), ("a", "desc")]])
def test_explain_uses_index_without_temp_btree(sort):
    docs = _fixed_docs()
    conn = _db(docs, "ex", sort)
    try:
        width = len(sort)
        mid = sort_values(docs[150], sort)
        afters = [None, bound_position(sort, [1], True, "start"),
                  bound_position(sort, ["1"] * width, False, "start"), mid]
        untils = [None, bound_position(sort, [2], False, "end"),
                  bound_position(sort, [True] * width, True, "end")]
        for after in afters:
            for until in untils:
                statements = compile_index_page("c", sort, after, until, 20)
                assert len(statements) == (1 if after is None else 2)
                for sql, params in statements:
                    plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                    assert any("USING INDEX ix_ex" in line for line in plan), plan
                    assert not any("TEMP B-TREE" in line for line in plan), plan
                assert run_pages(conn, sort, after, until, 20, "ex") == oracle(
                    docs, sort, after, until)
    finally:
        conn.close()


@settings(max_examples=80, deadline=None)
@given(docs=documents(), value=st.sampled_from([-1, 0, 1, 2.5, "", "a", "B", None, True, False]),
       inclusive=st.booleans(), desc=st.booleans(), side=st.sampled_from(["start", "end"]))
def test_one_open_end_stays_within_the_bounds_type(docs, value, inclusive, desc, side):
    """start=(v, inc) alone selects what {"a": {"$gte"/"$gt": v}} does (ascending), and so on:
    an open end runs to the edge of the bound's type, not into the types after it."""
    sort = [("a", "desc" if desc else "asc")]
    bound = bound_position(sort, [value], inclusive, side)
    start, end = within_type(sort, bound if side == "start" else None,
                             bound if side == "end" else None)
    upward = (side == "start") != desc  # the selected values lie above the bound
    op = ("$gte" if inclusive else "$gt") if upward else ("$lte" if inclusive else "$lt")
    if value is None or isinstance(value, bool):  # types of one value: equality, or nothing
        where = {"a": value} if inclusive else {"a": {"$in": []}}
        where = {"$and": [where, {"a": {"$exists": True}}]} if value is None else where
    else:
        where = {"a": {op: value}}
    expected = [d["$id"] for d in sorted(docs, key=lambda d: sort_key(d, sort))
                if matches(d, where)]
    conn = _db(docs, "open", sort)
    try:
        assert run_pages(conn, sort, start, end, 3, "open") == expected
    finally:
        conn.close()
