"""Property: SQLite (compile_where, compile_order, keyset pages) agrees with the Python oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from db4core import documents
from db4core.errors import InvalidArgumentError
from db4core.query import (
    compile_count,
    compile_find,
    compile_where,
    matches,
    sort_key,
    sort_values,
)
from db4core.query.paths import MISSING, resolve
from db4core.query.values import INT64_MAX, INT64_MIN, check_literal, is_number

# Small pools make equal values, ties and prefix relations common; the wide strategies find
# the edges (huge and tiny floats, int64 bounds, any Unicode but lone surrogates).
SMALL_INTS = st.sampled_from([-2, -1, 0, 1, 2, 3])
WIDE_INTS = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
EDGE_INTS = st.sampled_from([INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX])
# Documents only (SQLite reads them as rounded doubles, which must not make them equal an edge).
HUGE_INTS = st.integers(min_value=2**63, max_value=2**70) | st.sampled_from(
    [INT64_MIN - 1, INT64_MIN - 2, -(2**64) - 1, 2**64 + 1, INT64_MAX + 1, -(10**300)]
)
FLOATS = st.sampled_from(
    [0.5, 1.0, -0.0, 2.5, 9007199254740992.0, 2.0**63, -(2.0**63), 2.0**64, -(2.0**64), 1e300]
) | st.floats(allow_nan=False, allow_infinity=False)
STRINGS = st.sampled_from(["", "a", "ab", "b", "B", "é", "a\x00", "😀", "a%", "a_", "A"]) | st.text(
    alphabet=st.characters(exclude_categories=("Cs",)), max_size=4
)
# "k\x00" is refused in documents and in literals alike (SQLite's JSON paths stop at U+0000).
KEYS = st.sampled_from(["x", "y", "k", 'q"', "a.b", "\\", "", "é", "k\x00"])


# One mixed-type pool shared by every field: equal values, ties, prefixes and cross-type
# comparisons (1 vs 1.0 vs true, "a" vs "a\x00") are then common across documents.
POOL = st.sampled_from(
    [None, True, False, -1, 0, 1, 2, 1.0, 2.5, -0.0, "", "a", "ab", "B", "é", "a\x00", "😀", "a%"]
)


def json_values(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """Return a strategy of JSON values (nested a little), three times in four from POOL."""
    wide = st.none() | st.booleans() | ints | FLOATS | STRINGS
    scalars = st.sampled_from([POOL, POOL, POOL, wide]).flatmap(lambda strategy: strategy)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
        max_leaves=6,
    )


DOC_VALUES = json_values(SMALL_INTS | WIDE_INTS | EDGE_INTS | HUGE_INTS)
LITERALS = json_values(SMALL_INTS | WIDE_INTS | EDGE_INTS)
RANGE_OPERANDS = SMALL_INTS | WIDE_INTS | FLOATS | STRINGS

DOCS = st.lists(
    st.tuples(
        st.text(alphabet="abAB09._:@-", min_size=1, max_size=4),
        st.fixed_dictionaries(
            {},
            optional={
                "a": DOC_VALUES,
                "b": DOC_VALUES,
                "n": st.dictionaries(st.sampled_from(["x", "y"]), DOC_VALUES, max_size=2)
                | DOC_VALUES,
            },
        ),
    ),
    min_size=4,
    max_size=12,
    unique_by=lambda item: item[0],
)

PATH_NAMES = ["a", "b", "n", "n.x", "n.y", "$id", "zz"]
PATHS = st.sampled_from(PATH_NAMES)
SORTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "n", "n.x", "$id", "zz"]), st.sampled_from(["asc", "desc"])
    ),
    max_size=3,
    unique_by=lambda item: item[0],
)


def values_in(value: Any) -> list[Any]:
    """Return value and everything nested in it that is usable as a filter literal."""
    found = [value] if is_literal(value) else []
    if isinstance(value, dict):
        children = list(value.values())
    else:
        children = value if isinstance(value, list) else []
    for child in children:
        found.extend(values_in(child))
    return found


def is_literal(value: Any) -> bool:
    """Return True if value is accepted as a filter operand (no integers beyond int64)."""
    try:
        check_literal(value, "test")
    except InvalidArgumentError:
        return False
    return True


def pool(values: list[Any], fallback: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Return a strategy that mostly picks one of values, sometimes anything from fallback."""
    return st.sampled_from(values) | fallback if values else fallback


def operator_objects(seen: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Return a strategy of one-operator objects with a well-typed operand."""
    literals = pool(seen, LITERALS)
    ranged = pool([v for v in seen if isinstance(v, str) or is_number(v)], RANGE_OPERANDS)
    prefixes = pool([v[:2] for v in seen if isinstance(v, str)], STRINGS)
    return st.one_of(
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne", "$contains"]), literals),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ranged),
        st.builds(
            lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(literals, max_size=4)
        ),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
        st.builds(lambda v: {"$startsWith": v}, prefixes),
    )


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one object holding every key of parts (later keys win)."""
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


def conditions(seen: list[Any]) -> st.SearchStrategy[Any]:
    """Return a strategy of field conditions: bare values, operator objects, field-level $not."""
    ops = st.lists(operator_objects(seen), min_size=1, max_size=2).map(merged)
    # A bare object literal must not look like an operator object; KEYS never start with '$'.
    return pool(seen, LITERALS) | ops | ops.map(lambda o: {"$not": o})


def wheres(seen: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Return a strategy of where-objects whose operands are often values seen at their path."""
    leaves = PATHS.flatmap(
        lambda path: conditions(seen[path]).map(lambda condition: {path: condition})
    )
    return st.recursive(leaves, combined, max_leaves=5)


def combined(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Return where-objects built from inner ones with $and, $or, $not and shared objects."""
    return st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda ws: {"$and": ws}),
        st.lists(inner, min_size=1, max_size=3).map(lambda ws: {"$or": ws}),
        inner.map(lambda w: {"$not": w}),
        st.lists(inner, min_size=2, max_size=3).map(merged),
    )


Case = tuple[list[tuple[str, dict[str, Any]]], Any, Any, int]  # docs, where, sort, page size


def seen_values(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[Any]]:
    """Return, for each path, the literal-usable values found there and nested in them."""
    seen: dict[str, list[Any]] = {path: [] for path in PATH_NAMES}
    for doc_id, doc in docs:
        for path in PATH_NAMES:
            value = doc_id if path == "$id" else resolve(doc, tuple(path.split(".")))
            seen[path].extend(values_in(value) if value is not MISSING else [])
    return seen


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Draw documents, then a where that mostly reuses values found in them, a sort, a page."""
    docs = draw(DOCS)
    seen = seen_values(docs)
    match_all = draw(st.integers(min_value=0, max_value=19)) == 0
    where = draw(st.sampled_from([None, {}]) if match_all else wheres(seen))
    return docs, where, draw(SORTS), draw(st.integers(min_value=1, max_value=5))


def has_nul_key(value: Any) -> bool:
    """Return True if an object at any depth of value has a key holding U+0000."""
    if isinstance(value, dict):
        return any("\x00" in k or has_nul_key(v) for k, v in value.items())
    return isinstance(value, list) and any(has_nul_key(v) for v in value)


def admitted(docs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Return the documents a write accepts, checking that exactly those with a U+0000 key are
    refused, both when the SDK encodes them and when a server decodes their JSON text."""
    kept = []
    for doc_id, doc in docs:
        if not has_nul_key(doc):
            kept.append((doc_id, doc))
            continue
        with pytest.raises(InvalidArgumentError, match="U\\+0000"):
            documents.encode(doc)
        with pytest.raises(InvalidArgumentError, match="U\\+0000"):
            documents.decode(json.dumps(doc))
    return kept


def refused_where(where: Any) -> bool:
    """Return True (after checking both refuse it) for a where with a U+0000 key in a literal."""
    if not has_nul_key(where):
        return False
    with pytest.raises(InvalidArgumentError, match="U\\+0000"):
        compile_where(where)
    with pytest.raises(InvalidArgumentError, match="U\\+0000"):
        matches({}, where)
    return True


def load(docs: list[tuple[str, dict[str, Any]]]) -> apsw.Connection:
    """Return an in-memory shard table holding docs, plus decoys in another collection."""
    conn = apsw.Connection(":memory:")
    conn.execute(
        "CREATE TABLE docs(collection TEXT NOT NULL, id TEXT NOT NULL, token INTEGER NOT NULL,"
        " version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(collection, id)) WITHOUT ROWID"
    )
    for doc_id, doc in docs:
        body = json.dumps({**doc, "$id": doc_id, "$version": 1})
        conn.execute("INSERT INTO docs VALUES('c', ?, 0, 1, ?)", (doc_id, body))
        conn.execute("INSERT INTO docs VALUES('decoy', ?, 0, 1, ?)", (doc_id, body))
    return conn


def oracle(docs: list[tuple[str, dict[str, Any]]], where: Any, sort: Any) -> list[str]:
    """Return the ids the Python oracle selects, in its order."""
    bodies = [json.dumps({**doc, "$id": doc_id, "$version": 1}) for doc_id, doc in docs]
    decoded = [json.loads(body) for body in bodies]
    chosen = [doc for doc in decoded if matches(doc, where)]
    return [doc["$id"] for doc in sorted(chosen, key=lambda doc: sort_key(doc, sort))]


def paged(conn: apsw.Connection, where: Any, sort: Any, page_size: int, rows: int) -> list[str]:
    """Return every id of the query, fetched page by page with keyset predicates."""
    ids: list[str] = []
    after = None
    for _ in range(rows + 1):  # a page that does not advance must fail the test, not hang it
        sql, params = compile_find("c", where, sort, after=after, fetch=page_size)
        page = list(conn.execute(sql, params))
        ids.extend(doc_id for doc_id, _ in page)
        if len(page) < page_size:
            return ids
        # The router stores the last key in a cursor as JSON: round-trip it the same way.
        after = json.loads(json.dumps(sort_values(json.loads(page[-1][1]), sort)))
    raise AssertionError(f"pagination did not end after {rows + 1} pages: {ids}")


def sub_wheres(where: Any) -> Iterator[dict[str, Any]]:
    """Yield every where-object inside where, down to single operators on one field."""
    for key, value in (where or {}).items():
        if key in ("$and", "$or"):
            for item in value:
                yield item
                yield from sub_wheres(item)
        elif key == "$not":
            yield value
            yield from sub_wheres(value)
        else:
            yield from field_sub_wheres(key, value)


def field_sub_wheres(path: str, condition: Any) -> Iterator[dict[str, Any]]:
    """Yield {path: condition} and, for an operator object, each operator on its own."""
    yield {path: condition}
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        for op, operand in condition.items():
            yield {path: {op: operand}}
            if op == "$not":
                yield from field_sub_wheres(path, operand)


def selected(conn: apsw.Connection, where: Any) -> set[str]:
    """Return the ids SQLite selects for where."""
    sql, params = compile_where(where)
    return {
        i for (i,) in conn.execute(f"SELECT id FROM docs WHERE collection = 'c' AND {sql}", params)
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
@example(
    case=(  # numbers beyond int64 compare as SQLite's doubles
        [("a", {"a": 2**64 + 1}), ("b", {"a": 1.8446744073709552e19}), ("c", {"a": "x"})],
        {"a": {"$gte": 1.8446744073709552e19}},
        [("a", "desc")],
        1,
    )
)
@example(
    case=(  # regression: -2**63 - 1 reads as the double -2**63, which once equalled -2**63
        [("a", {"a": INT64_MIN - 1}), ("b", {"a": INT64_MIN}), ("c", {"a": -(2.0**63)})],
        {"$or": [{"a": INT64_MIN}, {"a": {"$lt": INT64_MIN}}, {"a": {"$in": [INT64_MIN]}}]},
        [("a", "asc")],
        1,
    )
)
@example(
    case=(  # beyond 64 bits, an integer and the double next to it are not equal
        [("a", {"a": 2**64 + 1}), ("b", {"a": 2**64}), ("c", {"a": -(2**64) - 1})],
        {"$or": [{"a": 2.0**64}, {"a": {"$gt": 2.0**64}}, {"a": {"$lte": -(2.0**64)}}]},
        [],
        1,
    )
)
@example(
    case=(  # a U+0000 key: refused in documents and in literals
        [("a", {"a": {"k\x00": 1}}), ("b", {"a": {"k": 1}})],
        {"a": {"k": 1}},
        [],
        1,
    )
)
@example(
    case=(  # awkward keys inside literals, in $eq and in $contains
        [("a", {"a": {'q"': [1, {"": None}]}}), ("b", {"a": [{'q"': [1.0, {"": None}]}]})],
        {"$or": [{"a": {'q"': [1, {"": None}]}}, {"a": {"$contains": {'q"': [1, {"": None}]}}}]},
        [("a", "asc")],
        1,
    )
)
@example(
    case=(  # regression: a null member of an object literal once matched a missing member
        [("0", {"n": {"x": None, "y": None}})],
        {"n": {"x": None, "k": None}},
        [],
        1,
    )
)
@example(
    case=(  # regression: SQLite's substr() of an empty blob is NULL
        [("0", {}), ("9", {}), (":", {}), ("00", {"a": ""})],
        {"a": {"$startsWith": ""}},
        [],
        1,
    )
)
def test_sql_and_oracle_select_the_same_ids_in_the_same_order(case: Case) -> None:
    docs, where, sort, page_size = case
    docs = admitted(docs)
    if refused_where(where):
        return
    conn = load(docs)
    expected = oracle(docs, where, sort)
    sql, params = compile_find("c", where, sort, fetch=len(docs) + 1)
    assert [doc_id for doc_id, _ in conn.execute(sql, params)] == expected
    got = paged(conn, where, sort, page_size, len(docs))
    assert len(got) == len(set(got)), "a row appeared on two pages"
    assert got == expected
    count_sql, count_params = compile_count("c", where)
    assert list(conn.execute(count_sql, count_params)) == [(len(expected),)]


def sweep(path: str, values: list[Any]) -> Iterator[dict[str, Any]]:
    """Yield a where for every operator with every value that suits it, on one path."""
    yield from ({path: {"$exists": flag}} for flag in (True, False))
    for value in {json.dumps(v, sort_keys=True): v for v in values}.values():
        yield from ({path: {op: value}} for op in ("$eq", "$ne", "$contains"))
        yield from ({path: {op: [value, "zz"]}} for op in ("$in", "$nin"))
        if isinstance(value, str) or is_number(value):
            yield from ({path: {op: value}} for op in ("$gt", "$gte", "$lt", "$lte"))
        if isinstance(value, str):
            yield from ({path: {"$startsWith": value[:n]}} for n in (0, 1, len(value)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), path=PATHS)
def test_every_operator_part_and_sort_agree(case: Case, path: str) -> None:
    # A wrong leaf can hide inside an $and that is false anyway, and a random where rarely puts
    # the right operator on the right field: so check each part of the where on its own, then
    # every operator with every value seen at one path, then every sort field both ways over
    # every document.
    docs, where, _, _ = case
    docs = admitted(docs)
    conn = load(docs)
    for part in [*sub_wheres(where), *sweep(path, seen_values(docs)[path][:8])]:
        if not refused_where(part):
            assert selected(conn, part) == set(oracle(docs, part, None)), part
    for sort_path in PATH_NAMES:
        second = "b" if sort_path == "a" else "a"
        for sort in ([(sort_path, "asc")], [(sort_path, "desc"), (second, "desc")]):
            sql, params = compile_find("c", None, sort, fetch=len(docs) + 1)
            assert [row[0] for row in conn.execute(sql, params)] == oracle(docs, None, sort)
