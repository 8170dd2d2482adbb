"""Sort orders: the type order, ties, SQL against sort_key, keyset pages, validation."""

from __future__ import annotations

import heapq
import json
from typing import Any

import apsw
import pytest

from db4core.errors import InvalidArgumentError
from db4core.query import (
    TYPE_ORDER,
    check_sort_values,
    compile_count,
    compile_find,
    compile_order,
    keyset_predicate,
    sort_key,
    sort_values,
    validate_sort,
    values_key,
)

# One document per JSON type (and a few ties), ids chosen so that id order differs from value order.
DOCS: dict[str, dict[str, Any]] = {
    "z-missing": {"w": 1},
    "y-null": {"v": None, "w": 2},
    "x-neg": {"v": -5, "w": 1},
    "w-real": {"v": 1.5, "w": 2},
    "v-two": {"v": 2, "w": 1},
    "u-two-real": {"v": 2.0, "w": 2},
    "t-upper": {"v": "A", "w": 1},
    "s-lower": {"v": "a", "w": 2},
    "r-obj": {"v": {"k": 1}, "w": 1},
    "q-obj": {"v": {"a": [2]}, "w": 2},
    "p-arr": {"v": [1], "w": 1},
    "o-false": {"v": False, "w": 2},
    "n-true": {"v": True, "w": 1},
    "m-true": {"v": True, "w": 2},
    "l-nested": {"v": "a", "n": {"x": 3}, "w": 1},
}
ASC = [
    "z-missing",
    "y-null",
    "x-neg",
    "w-real",
    "u-two-real",
    "v-two",
    "t-upper",
    "l-nested",
    "s-lower",
    "q-obj",
    "r-obj",
    "p-arr",
    "o-false",
    "m-true",
    "n-true",
]


@pytest.fixture(scope="module")
def db() -> apsw.Connection:
    """An in-memory shard table holding DOCS."""
    conn = apsw.Connection(":memory:")
    conn.execute(
        "CREATE TABLE docs(collection TEXT NOT NULL, id TEXT NOT NULL, token INTEGER NOT NULL,"
        " version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(collection, id)) WITHOUT ROWID"
    )
    for doc_id, doc in DOCS.items():
        conn.execute(
            "INSERT INTO docs VALUES('c', ?, 0, 1, ?)", (doc_id, json.dumps({**doc, "$id": doc_id}))
        )
    return conn


def sql_order(db: apsw.Connection, sort: Any, after: Any = None) -> list[str]:
    """Return the ids SQLite yields for a sort, optionally strictly after some sort values."""
    order_sql, order_params = compile_order(sort)
    where_sql, where_params = keyset_predicate(sort, after) if after is not None else ("1", [])
    sql = f"SELECT id FROM docs WHERE {where_sql} ORDER BY {order_sql}"
    return [doc_id for (doc_id,) in db.execute(sql, [*where_params, *order_params])]


def oracle_order(sort: Any) -> list[str]:
    """Return the ids in sort_key order."""
    docs = [{**doc, "$id": doc_id} for doc_id, doc in DOCS.items()]
    return [doc["$id"] for doc in sorted(docs, key=lambda doc: sort_key(doc, sort))]


SORTS: list[Any] = [
    None,
    [],
    [("v", "asc")],
    [("v", "desc")],
    [("w", "asc"), ("v", "desc")],
    [("w", "desc"), ("v", "asc")],
    [("n.x", "desc"), ("w", "asc")],
    [("$id", "desc")],
    [["v", "desc"], ["w", "desc"], ["n", "asc"]],
]


def test_type_order_ascending_puts_missing_first(db: apsw.Connection) -> None:
    assert TYPE_ORDER == ("missing", "null", "number", "string", "object", "array", "false", "true")
    assert sql_order(db, [("v", "asc")]) == ASC


def test_descending_reverses_types_and_values_but_not_id_ties(db: apsw.Connection) -> None:
    got = sql_order(db, [("v", "desc")])
    assert got[-1] == "z-missing"
    assert got[:2] == ["m-true", "n-true"]  # equal values: id ascending even in a desc sort
    assert got.index("v-two") < got.index("w-real")
    assert got.index("u-two-real") < got.index("v-two")  # 2 == 2.0: a tie, broken by id


def test_containers_of_one_type_tie_and_fall_back_to_id(db: apsw.Connection) -> None:
    got = sql_order(db, [("v", "desc")])
    assert got.index("q-obj") + 1 == got.index("r-obj")


@pytest.mark.parametrize("sort", SORTS)
def test_sql_order_equals_sort_key(db: apsw.Connection, sort: Any) -> None:
    assert sql_order(db, sort) == oracle_order(sort)


@pytest.mark.parametrize("sort", SORTS)
def test_keyset_after_every_row_gives_exactly_the_rest(db: apsw.Connection, sort: Any) -> None:
    expected = oracle_order(sort)
    for i, doc_id in enumerate(expected):
        after = sort_values({**DOCS[doc_id], "$id": doc_id}, sort)
        after = json.loads(json.dumps(after))  # as it comes back out of a cursor
        assert sql_order(db, sort, after) == expected[i + 1 :], (sort, doc_id)


def test_values_key_merges_shards_into_the_global_order() -> None:
    sort = [("v", "desc"), ("w", "asc")]
    docs = [{**doc, "$id": doc_id} for doc_id, doc in DOCS.items()]
    shards = [sorted(docs[i::3], key=lambda d: sort_key(d, sort)) for i in range(3)]
    merged = heapq.merge(*shards, key=lambda d: values_key(sort_values(d, sort), sort))
    assert [d["$id"] for d in merged] == oracle_order(sort)


def test_sort_values_are_plain_json() -> None:
    doc = {"$id": "d1", "v": 2, "n": {"x": "s"}, "o": {"a": 1}}
    values = sort_values(doc, [("v", "desc"), ("n.x", "asc"), ("o", "asc"), ("gone", "asc")])
    assert values == [[2, 2], [3, "s"], [4, None], [0, None], "d1"]
    assert json.loads(json.dumps(values)) == values


def test_compile_find_pages_without_offset(db: apsw.Connection) -> None:
    sort = [("w", "desc"), ("v", "asc")]
    expected = [doc_id for doc_id in oracle_order(sort) if DOCS[doc_id].get("w") == 1]
    seen: list[str] = []
    after = None
    while True:
        sql, params = compile_find("c", {"w": 1}, sort, after=after, fetch=3)
        page = list(db.execute(sql, params))
        if not page:
            break
        seen.extend(doc_id for doc_id, _ in page)
        after = sort_values(json.loads(page[-1][1]), sort)
    assert seen == expected
    count_sql, count_params = compile_count("c", {"w": 1})
    assert list(db.execute(count_sql, count_params)) == [(len(expected),)]


BAD_SORTS: list[tuple[Any, str]] = [
    ("v", "sort must be a list"),
    ([("v",)], "is not a (field, direction) pair"),
    ([("v", "up")], "must be 'asc' or 'desc'"),
    ([("v", "ASC")], "must be 'asc' or 'desc'"),
    ([("a b", "asc")], "invalid field path 'a b'"),
    ([("$nope", "asc")], "not a system field"),
    ([("v", "asc"), ("v", "desc")], "more than once"),
    ([(f"f{i}", "asc") for i in range(9)], "at most 8"),
]


@pytest.mark.parametrize(("sort", "message"), BAD_SORTS)
def test_bad_sort_is_invalid_argument(sort: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        compile_order(sort)
    assert message in str(err.value)


def test_eight_sort_fields_are_accepted() -> None:
    assert len(validate_sort([(f"f{i}", "asc") for i in range(8)])) == 8


BAD_VALUES: list[Any] = [
    None,
    "d1",
    [[2, 1]],
    [[2, 1], [3, "x"], "d1"],
    [[2, 1], 5],
    [[9, None], "d1"],
    [[True, None], "d1"],
    [[2, "1"], "d1"],
    [[2, float("nan")], "d1"],
    [[2, 2**64], "d1"],
    [[3, 5], "d1"],
    [[4, {"k": 1}], "d1"],
    [[1, None, 0], "d1"],
    [[3, "\ud800"], "d1"],
]


@pytest.mark.parametrize("values", BAD_VALUES)
def test_bad_sort_values_are_invalid_argument(values: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        check_sort_values(values, [("v", "asc")])
    with pytest.raises(InvalidArgumentError):
        keyset_predicate([("v", "asc")], values)


def test_sort_values_need_a_string_id() -> None:
    with pytest.raises(ValueError, match=r"\$id"):
        sort_values({"v": 1}, [("v", "asc")])
