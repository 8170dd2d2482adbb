"""Filters: every operator through real SQLite (apsw) and the Python oracle, and every error."""

from __future__ import annotations

import json
from typing import Any

import apsw
import pytest

from db4core.errors import InvalidArgumentError
from db4core.query import compile_where, json_path, matches, validate_path
from db4core.query.paths import MISSING, resolve

DOCS: dict[str, dict[str, Any]] = {
    "int1": {"a": 1, "tag": "x"},
    "float1": {"a": 1.0},
    "float25": {"a": 2.5},
    "neg": {"a": -3},
    "big": {"a": 9_007_199_254_740_993},
    "apple": {"a": "apple"},
    "Banana": {"a": "Banana"},
    "eacute": {"a": "é"},
    "emoji": {"a": "😀 smile"},
    "nul": {"a": "a\x00b"},
    "pct": {"a": "50%_off"},
    "empty": {"a": ""},
    "true": {"a": True},
    "false": {"a": False},
    "null": {"a": None},
    "missing": {"b": 1},
    "obj": {"a": {"x": 1, "y": [1, 2]}},
    "obj2": {"a": {"y": [1, 2], "x": 1.0}},
    "emptyobj": {"a": {}},
    "arr": {"a": [1, "two", None, {"k": True}]},
    "arr2": {"a": ["two", 1]},
    "emptyarr": {"a": []},
    "nested": {"a": {"b": {"c": "deep"}}, "$type": "User"},
    "oddkeys": {"a": {'q"uote': 1, "back\\slash": 2, "ctl\x01": 3, "dot.ted": 4, "😀": 5, "": 6}},
}


@pytest.fixture(scope="module")
def db() -> apsw.Connection:
    """An in-memory shard table holding DOCS (plus one document of another collection)."""
    conn = apsw.Connection(":memory:")
    conn.execute(
        "CREATE TABLE docs(collection TEXT NOT NULL, id TEXT NOT NULL, token INTEGER NOT NULL,"
        " version INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(collection, id)) WITHOUT ROWID"
    )
    for doc_id, doc in DOCS.items():
        body = json.dumps({**doc, "$id": doc_id, "$version": len(doc_id)})
        conn.execute("INSERT INTO docs VALUES('c', ?, 0, 1, ?)", (doc_id, body))
    conn.execute("INSERT INTO docs VALUES('other', 'int1', 0, 1, '{\"a\": 1}')")
    return conn


def found(db: apsw.Connection, where: Any) -> set[str]:
    """Return the ids SQLite selects for where, after checking the oracle agrees."""
    sql, params = compile_where(where)
    rows = db.execute(f"SELECT id, body FROM docs WHERE collection = 'c' AND {sql}", params)
    got = {doc_id for doc_id, _ in rows}
    bodies = {
        doc_id: json.loads(body)
        for doc_id, body in db.execute("SELECT id, body FROM docs WHERE collection = 'c'")
    }
    assert got == {doc_id for doc_id, doc in bodies.items() if matches(doc, where)}, where
    return got


ALL = set(DOCS)
NUMBERS = {"int1", "float1", "float25", "neg", "big"}
STRINGS = {"apple", "Banana", "eacute", "emoji", "nul", "pct", "empty"}


# --- paths ----------------------------------------------------------------------------------------


def test_paths_are_quoted_segment_by_segment() -> None:
    assert json_path(validate_path("a.b-c.d_1")) == '$."a"."b-c"."d_1"'
    assert json_path(validate_path("$createdAt")) == '$."$createdAt"'


@pytest.mark.parametrize(
    "path",
    [
        "",
        "a..b",
        ".a",
        "a.",
        "a b",
        'a"b',
        "a'b",
        "a;DROP TABLE docs",
        "$foo",
        "a.$id",
        "$id.x",
        "é",
        "a[0]",
        "a.*",
        "x." * 32 + "x",
        5,
        None,
    ],
)
def test_invalid_paths_are_rejected_naming_the_path(path: Any) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        validate_path(path)
    if isinstance(path, str) and path and len(path) < 40:
        assert repr(path) in str(err.value)


def test_resolve_stops_at_non_objects() -> None:
    doc = {"a": {"b": [1]}, "s": "x"}
    assert resolve(doc, ("a", "b")) == [1]
    assert resolve(doc, ("s", "x")) is MISSING
    assert resolve(doc, ("a", "b", "0")) is MISSING


# --- $eq and bare values --------------------------------------------------------------------------


def test_numbers_compare_across_int_and_float(db: apsw.Connection) -> None:
    assert found(db, {"a": 1}) == {"int1", "float1"}
    assert found(db, {"a": {"$eq": 1.0}}) == {"int1", "float1"}
    assert found(db, {"a": 9_007_199_254_740_993}) == {"big"}  # exact beyond 2**53


def test_booleans_are_not_numbers(db: apsw.Connection) -> None:
    assert found(db, {"a": True}) == {"true"}
    assert found(db, {"a": False}) == {"false"}
    assert "true" not in found(db, {"a": 1})
    assert "false" not in found(db, {"a": 0})


def test_strings_are_exact_and_case_sensitive(db: apsw.Connection) -> None:
    assert found(db, {"a": "apple"}) == {"apple"}
    assert found(db, {"a": "Apple"}) == set()
    assert found(db, {"a": "a\x00b"}) == {"nul"}
    assert found(db, {"a": "a"}) == set()


def test_eq_null_matches_null_and_missing(db: apsw.Connection) -> None:
    assert found(db, {"a": None}) == {"null", "missing"}
    assert found(db, {"a": {"$ne": None}}) == ALL - {"null", "missing"}


def test_object_equality_ignores_key_order_and_number_spelling(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$eq": {"y": [1, 2], "x": 1}}}) == {"obj", "obj2"}
    assert found(db, {"a": {"$eq": {"x": 1}}}) == set()  # every key must match, no more
    assert found(db, {"a": {"$eq": {}}}) == {"emptyobj"}
    assert found(db, {"a.b": {"c": "deep"}}) == {"nested"}  # a plain object is a literal


def test_null_inside_a_literal_must_be_present(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$eq": {"x": 1, "z": None}}}) == set()  # obj has y, not z
    assert found(db, {"a": {"$eq": {"x": 1, "y": None}}}) == set()  # y is [1, 2], not null
    assert found(db, {"a": {"$contains": None}}) == {"arr"}


def test_object_literals_may_have_any_keys(db: apsw.Connection) -> None:
    odd = DOCS["oddkeys"]["a"]
    assert found(db, {"a": {"$eq": dict(reversed(odd.items()))}}) == {"oddkeys"}
    assert found(db, {"a": {"$eq": {**odd, 'q"uote': 0}}}) == set()
    assert found(db, {"a": {"$in": [{"q": 1}, odd]}}) == {"oddkeys"}


def test_object_keys_with_nul_are_refused_in_literals() -> None:
    # SQLite's JSON paths end a key at U+0000, and stored documents cannot hold such keys.
    for where in ({"a": {"k\x00": 1}}, {"a": {"$in": [{"x": {"\x00": 1}}]}},
                  {"a": {"$contains": {"a\x00b": 5}}}):
        with pytest.raises(InvalidArgumentError, match="contains U\\+0000"):
            compile_where(where)


def test_array_equality_is_ordered_and_deep(db: apsw.Connection) -> None:
    assert found(db, {"a": [1, "two", None, {"k": True}]}) == {"arr"}
    assert found(db, {"a": ["two", 1]}) == {"arr2"}
    assert found(db, {"a": [1, "two"]}) == set()
    assert found(db, {"a": []}) == {"emptyarr"}
    assert found(db, {"a": [1, "two", None, {"k": 1}]}) == set()  # true is not 1 in depth too


def test_dotted_paths_and_system_fields(db: apsw.Connection) -> None:
    assert found(db, {"a.b.c": "deep"}) == {"nested"}
    assert found(db, {"a.x": {"$exists": True}}) == {"obj", "obj2"}
    assert found(db, {"$type": "User"}) == {"nested"}
    assert found(db, {"$id": {"$in": ["neg", "nope"]}}) == {"neg"}
    assert found(db, {"$version": {"$gte": 8}}) == {"emptyobj", "emptyarr"}


def test_values_are_bound_never_spliced(db: apsw.Connection) -> None:
    assert found(db, {"a": "'); DROP TABLE docs; --"}) == set()
    assert found(db, {"a": {"$startsWith": "' OR 1=1 --"}}) == set()
    assert len(found(db, {})) == len(DOCS)


# --- $ne, $in, $nin, $exists ----------------------------------------------------------------------


def test_ne_and_nin_match_missing_fields(db: apsw.Connection) -> None:
    assert "missing" in found(db, {"a": {"$ne": 1}})
    assert found(db, {"a": {"$ne": 1}}) == ALL - {"int1", "float1"}
    assert found(db, {"a": {"$nin": [1, "apple"]}}) == ALL - {"int1", "float1", "apple"}


def test_in_mixes_types_exactly(db: apsw.Connection) -> None:
    where = {"a": {"$in": [2.5, "é", True, None, {"x": 1, "y": [1, 2]}, []]}}
    expected = {"float25", "eacute", "true", "null", "missing", "obj", "obj2", "emptyarr"}
    assert found(db, where) == expected
    assert found(db, {"a": {"$in": []}}) == set()
    assert found(db, {"a": {"$nin": []}}) == ALL


def test_exists_treats_null_as_present(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$exists": False}}) == {"missing"}
    assert found(db, {"a": {"$exists": True}}) == ALL - {"missing"}
    assert found(db, {"tag": {"$exists": True}}) == {"int1"}


# --- ranges ---------------------------------------------------------------------------------------


def test_ranges_on_numbers_skip_other_types(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$gt": 1}}) == {"float25", "big"}
    assert found(db, {"a": {"$gte": 1}}) == {"int1", "float1", "float25", "big"}
    assert found(db, {"a": {"$lt": 1}}) == {"neg"}
    assert found(db, {"a": {"$lte": 1.0}}) == {"neg", "int1", "float1"}
    assert found(db, {"a": {"$gt": -100, "$lt": 100}}) == {"int1", "float1", "float25", "neg"}
    assert found(db, {"a": {"$gt": 9_007_199_254_740_992}}) == {"big"}


def test_ranges_on_strings_use_codepoint_order(db: apsw.Connection) -> None:
    # "B" (66) < "a" (97) < "é" (233) < "😀" (128512): codepoints, not a locale.
    assert found(db, {"a": {"$gt": "a"}}) == {"apple", "eacute", "emoji", "nul"}
    assert found(db, {"a": {"$lt": "a"}}) == {"Banana", "pct", "empty"}
    assert found(db, {"a": {"$gte": "é", "$lte": "😀"}}) == {"eacute"}
    assert found(db, {"a": {"$gt": "é"}}) == {"emoji"}


# --- $contains, $startsWith -----------------------------------------------------------------------


def test_contains_on_strings_is_an_exact_substring(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$contains": "pp"}}) == {"apple"}
    assert found(db, {"a": {"$contains": "PP"}}) == set()
    assert found(db, {"a": {"$contains": "%_"}}) == {"pct"}
    assert found(db, {"a": {"$contains": "\x00b"}}) == {"nul"}
    assert found(db, {"a": {"$contains": ""}}) == STRINGS


def test_contains_on_arrays_is_deep_membership(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$contains": "two"}}) == {"arr", "arr2"}
    assert found(db, {"a": {"$contains": 1.0}}) == {"arr", "arr2"}
    assert found(db, {"a": {"$contains": None}}) == {"arr"}
    assert found(db, {"a": {"$contains": {"k": True}}}) == {"arr"}
    assert found(db, {"a": {"$contains": True}}) == set()
    assert found(db, {"a.y": {"$contains": 2}}) == {"obj", "obj2"}


def test_starts_with_is_exact_and_case_sensitive(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$startsWith": "app"}}) == {"apple"}
    assert found(db, {"a": {"$startsWith": "APP"}}) == set()
    assert found(db, {"a": {"$startsWith": "50%_"}}) == {"pct"}
    assert found(db, {"a": {"$startsWith": "5_%"}}) == set()  # no LIKE wildcards
    assert found(db, {"a": {"$startsWith": "a\x00"}}) == {"nul"}
    assert found(db, {"a": {"$startsWith": "😀"}}) == {"emoji"}
    assert found(db, {"a": {"$startsWith": ""}}) == STRINGS
    assert found(db, {"a": {"$not": {"$startsWith": "x"}}}) >= {"empty"}


# --- logic ----------------------------------------------------------------------------------------


def test_and_or_not(db: apsw.Connection) -> None:
    assert found(db, {"$or": [{"a": 1}, {"a": "apple"}]}) == {"int1", "float1", "apple"}
    assert found(db, {"$and": [{"a": 1}, {"tag": "x"}]}) == {"int1"}
    assert found(db, {"a": 1, "tag": "x"}) == {"int1"}
    assert found(db, {"$not": {"a": {"$exists": True}}}) == {"missing"}
    assert found(db, {"$not": {"a": 1, "tag": "x"}}) == ALL - {"int1"}


def test_field_level_not_negates_an_operator_object_or_value(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$not": {"$gt": 1}}}) == ALL - {"float25", "big"}
    assert found(db, {"a": {"$not": 1}}) == found(db, {"a": {"$ne": 1}})


def test_match_all(db: apsw.Connection) -> None:
    assert compile_where(None) == ("1", [])
    assert found(db, {}) == ALL
    assert found(db, {"$and": [{}]}) == ALL


def test_column_may_be_table_qualified(db: apsw.Connection) -> None:
    sql, params = compile_where({"a": "apple"}, column="d.body")
    rows = list(db.execute(f"SELECT d.id FROM docs AS d WHERE {sql}", params))
    assert rows == [("apple",)]
    with pytest.raises(ValueError):
        compile_where({"a": 1}, column="body; DROP TABLE docs")


# --- limits of size and depth ---------------------------------------------------------------------


def nest(depth: int) -> Any:
    """Return a literal of `depth` nested objects."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def test_nesting_up_to_32_levels_is_accepted_and_runs(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$eq": nest(30)}}) == set()  # 32 levels counting where and $eq
    with pytest.raises(InvalidArgumentError, match="deeper than 32"):
        compile_where({"a": {"$eq": nest(31)}})


def test_deep_literals_run_inside_contains_and_in(db: apsw.Connection) -> None:
    assert found(db, {"a": {"$contains": nest(29)}}) == set()
    assert found(db, {"a": {"$in": [[nest(28)], {"k": 1}]}}) == set()


def test_pathological_nesting_is_rejected_without_recursion() -> None:
    where: Any = {"a": 1}
    for _ in range(100_000):
        where = {"$not": where}
    with pytest.raises(InvalidArgumentError, match="deeper than 32"):
        compile_where(where)


def test_large_filters_stay_within_sqlite_limits(db: apsw.Connection) -> None:
    many_in = {"a": {"$in": [f"s{i}" for i in range(4990)] + ["apple"]}}
    assert found(db, many_in) == {"apple"}
    many_and = {"$and": [{"a": {"$ne": f"s{i}"}} for i in range(1600)]}
    assert found(db, many_and) == ALL
    with pytest.raises(InvalidArgumentError, match="too large"):
        compile_where({"a": {"$in": list(range(5001))}})


# --- errors ---------------------------------------------------------------------------------------

BAD_WHERES: list[tuple[Any, str]] = [
    ([{"a": 1}], "where must be an object"),
    ({"a": {"$foo": 1}}, "unknown operator '$foo' on field 'a'"),
    ({"a": {"$gt": 1, "$bogus": 2}}, "unknown operator '$bogus'"),
    ({"a": {"$gt": 1, "b": 2}}, "mixes operators"),
    ({"$nor": [{"a": 1}]}, "unknown operator '$nor' at the top level"),
    ({"a": {"$or": [{"a": 1}]}}, "only valid at the top level"),
    ({"$or": {"a": 1}}, "'$or' takes a non-empty list"),
    ({"$and": []}, "'$and' takes a non-empty list"),
    ({"$or": [1]}, "'$or' takes where-objects"),
    ({"$not": [{"a": 1}]}, "'$not' takes a where-object"),
    ({"a": {"$in": "abc"}}, "'$in' on field 'a' takes a list"),
    ({"a": {"$nin": {"x": 1}}}, "'$nin' on field 'a' takes a list"),
    ({"a": {"$exists": 1}}, "'$exists' on field 'a' takes true or false"),
    ({"a": {"$startsWith": 5}}, "'$startsWith' on field 'a' takes a string"),
    ({"a": {"$gt": True}}, "'$gt' on field 'a' takes a number or a string"),
    ({"a": {"$lte": None}}, "'$lte' on field 'a' takes a number or a string"),
    ({"a": {"$lt": [1]}}, "takes a number or a string"),
    ({"a": float("nan")}, "not a finite number"),
    ({"a": {"$gt": float("inf")}}, "not a finite number"),
    ({"a": {"$in": [1, float("-inf")]}}, "not a finite number"),
    ({"a": 2**63}, "outside the 64-bit range"),
    ({"a": {"$eq": {1: "x"}}}, "object keys must be strings"),
    ({"a": (1, 2)}, "tuple is not a JSON value"),
    ({"a": {"$contains": {1, 2}}}, "set is not a JSON value"),
    ({"a": "\ud800"}, "lone surrogate"),
    ({"a b": 1}, "invalid field path 'a b'"),
    ({"a..b": 1}, "an empty segment"),
    ({"$secret": 1}, "unknown operator '$secret'"),
    ({"x.$id": 1}, "not a system field"),
]


@pytest.mark.parametrize(("where", "message"), BAD_WHERES)
def test_bad_where_is_invalid_argument(where: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        compile_where(where)
    assert message in str(err.value)
    with pytest.raises(InvalidArgumentError):
        matches({"a": 1}, where)
