"""Sort orders: SQL ORDER BY, the same total order in Python, and keyset ("seek") predicates.

Every sort field contributes a pair (rank, value): rank is the position of the value's JSON type
in TYPE_ORDER, value is the number or string itself (None for every other type). Ties are broken
by the document id ascending, whatever the directions, so the order is total.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from db4core.errors import InvalidArgumentError
from db4core.query.paths import Path, json_path, resolve, validate_path
from db4core.query.sqlfrag import Frag, all_of, any_of, check_column, render
from db4core.query.values import (
    INT64_MAX,
    INT64_MIN,
    as_number,
    check_text,
    is_number,
    json_type,
)

MAX_SORT_FIELDS: Final = 8
DIRECTIONS: Final = ("asc", "desc")
TYPE_ORDER: Final = ("missing", "null", "number", "string", "object", "array", "false", "true")
_RANK_OF_JSON_TYPE: Final = {
    None: 0,
    "null": 1,
    "integer": 2,
    "real": 2,
    "text": 3,
    "object": 4,
    "array": 5,
    "false": 6,
    "true": 7,
}
NUMBER_RANK: Final = 2
STRING_RANK: Final = 3

SortSpec = Sequence[Sequence[str]] | list["SortField"] | None  # validated lists pass through
SortValues = list[Any]  # [[rank, value], ..., id]: JSON-serialisable, stored in cursors


class SortField(NamedTuple):
    """A validated sort field."""

    path: str
    segments: Path
    descending: bool


def validate_sort(sort: Any) -> list[SortField]:
    """Return validated sort fields from [(path, 'asc'|'desc'), ...] (None means by id only)."""
    if sort is None:
        return []
    if _is_validated(sort):
        return list(sort)
    if not isinstance(sort, (list, tuple)):
        raise InvalidArgumentError("sort must be a list of (field, 'asc'|'desc') pairs")
    if len(sort) > MAX_SORT_FIELDS:
        raise InvalidArgumentError(f"sort has {len(sort)} fields; at most {MAX_SORT_FIELDS}")
    fields = [_sort_field(item) for item in sort]
    paths = [field.path for field in fields]
    for path in paths:
        if paths.count(path) > 1:
            raise InvalidArgumentError(f"sort names field {path!r} more than once")
    return fields


def _is_validated(sort: Any) -> bool:
    """Return True for a list that validate_sort already produced."""
    return isinstance(sort, list) and all(isinstance(item, SortField) for item in sort)


def _sort_field(item: Any) -> SortField:
    """Validate one (path, direction) pair."""
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        raise InvalidArgumentError(f"sort entry {item!r} is not a (field, direction) pair")
    path, direction = item
    segments = validate_path(path)
    if direction not in DIRECTIONS:
        raise InvalidArgumentError(
            f"sort direction for field {path!r} must be 'asc' or 'desc', got {direction!r}"
        )
    return SortField(path, segments, direction == "desc")


# --- SQL ------------------------------------------------------------------------------------------


def compile_order(
    sort: SortSpec, column: str = "body", id_column: str = "id"
) -> tuple[str, list[Any]]:
    """Return (sql, params) to put after ORDER BY; the id column breaks every tie ascending."""
    column, id_column = check_column(column), check_column(id_column)
    terms: list[str] = []
    params: list[Any] = []
    for field in validate_sort(sort):
        direction = "DESC" if field.descending else "ASC"
        for sql, field_params in (_rank_sql(column, field), _value_sql(column, field)):
            terms.append(f"{sql} {direction}")
            params.extend(field_params)
    terms.append(f"{id_column} ASC")
    return ", ".join(terms), params


_RANK_CASES: Final = " ".join(
    f"WHEN '{name}' THEN {rank}" for name, rank in _RANK_OF_JSON_TYPE.items() if name is not None
)


# Sort expressions carry their JSON path as a literal, not a bound parameter, so that they are
# the very expressions a range index is built on and SQLite can read the index instead of
# sorting. That is safe: a validated path is ASCII letters, digits, '_', '-', '$', '.' and '"'.


def _path_literal(field: SortField) -> str:
    """The field's JSON path as an SQL string literal."""
    path = json_path(field.segments)
    assert "'" not in path, path  # validate_path guarantees it
    return f"'{path}'"


def _rank_sql(column: str, field: SortField) -> Frag:
    """SQL for the type rank of a field (0 when missing)."""
    return f"(CASE json_type({column}, {_path_literal(field)}) {_RANK_CASES} ELSE 0 END)", []


def _value_sql(column: str, field: SortField) -> Frag:
    """SQL for the comparable value of a field: numbers and strings, NULL for other types."""
    path = _path_literal(field)
    sql = (
        f"(CASE WHEN json_type({column}, {path}) IN ('integer', 'real', 'text') "
        f"THEN json_extract({column}, {path}) END)"
    )
    return sql, []


rank_sql = _rank_sql
value_sql = _value_sql


def keyset_predicate(
    sort: SortSpec, after: SortValues, column: str = "body", id_column: str = "id"
) -> tuple[str, list[Any]]:
    """Return (sql, params) selecting rows strictly after the sort values `after`."""
    column, id_column = check_column(column), check_column(id_column)
    fields = validate_sort(sort)
    check_sort_values(after, fields)
    # Nested form: after_0 OR (equal_0 AND (after_1 OR (equal_1 AND ... id > last))).
    frag: Frag = render(f"{id_column} > ?", None, after[-1])
    for field, (rank, value) in reversed(list(zip(fields, after[:-1], strict=True))):
        rank_sql, value_sql = _rank_sql(column, field), _value_sql(column, field)
        equal = _equal_sql(rank_sql, value_sql, rank, value)
        beyond = _beyond_sql(rank_sql, value_sql, rank, value, field.descending)
        frag = any_of([beyond, all_of([equal, frag])])
    return frag


def _equal_sql(rank_sql: Frag, value_sql: Frag, rank: int, value: Any) -> Frag:
    """SQL: the field sorts equal to (rank, value)."""
    same_rank = render("{F} = ?", None, rank_sql, rank)
    if value is None:  # ranks without a value hold one sort position each
        return same_rank
    return all_of([same_rank, render("{F} = ?", None, value_sql, value)])


def _beyond_sql(rank_sql: Frag, value_sql: Frag, rank: int, value: Any, desc: bool) -> Frag:
    """SQL: the field sorts strictly after (rank, value) in its direction."""
    op = "<" if desc else ">"
    later_rank = render(f"{{F}} {op} ?", None, rank_sql, rank)
    if value is None:
        return later_rank
    same_rank = render("{F} = ?", None, rank_sql, rank)
    later_value = render(f"{{F}} {op} ?", None, value_sql, value)
    return any_of([later_rank, all_of([same_rank, later_value])])


# --- Python ---------------------------------------------------------------------------------------


def sort_values(doc: dict[str, Any], sort: SortSpec) -> SortValues:
    """Return the JSON-serialisable sort values of a decoded document, its id last."""
    values: SortValues = [list(rank_value(resolve(doc, f.segments))) for f in validate_sort(sort)]
    doc_id = doc.get("$id")
    if not isinstance(doc_id, str):
        raise ValueError("document has no string $id")
    values.append(doc_id)
    return values


def rank_value(value: Any) -> tuple[int, Any]:
    """Return (rank, comparable value) of one field value (MISSING allowed)."""
    rank = _RANK_OF_JSON_TYPE[json_type(value)]
    return rank, (as_number(value) if rank in (NUMBER_RANK, STRING_RANK) else None)


def values_key(values: SortValues, sort: SortSpec) -> tuple[Any, ...]:
    """Return a Python sort key for sort values: equal order to the SQL ORDER BY."""
    fields = validate_sort(sort)
    key: list[Any] = []
    for field, (rank, value) in zip(fields, values[:-1], strict=True):
        pair = (rank, value)
        key.append(_Descending(pair) if field.descending else pair)
    key.append(values[-1])
    return tuple(key)


def sort_key(doc: dict[str, Any], sort: SortSpec) -> tuple[Any, ...]:
    """Return a key for sorted(): the exact order compile_order gives in SQLite."""
    fields = validate_sort(sort)
    return values_key(sort_values(doc, fields), fields)


@functools.total_ordering
class _Descending:
    """Wraps a comparable value and reverses its order."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.inner == other.inner

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.inner < self.inner)

    __hash__ = None  # type: ignore[assignment]


def check_sort_values(values: Any, sort: SortSpec) -> None:
    """Raise InvalidArgumentError unless values has the shape sort_values gives for this sort."""
    fields = validate_sort(sort)
    if not isinstance(values, list) or len(values) != len(fields) + 1:
        raise InvalidArgumentError("cursor position does not match the sort")
    if not isinstance(values[-1], str):
        raise InvalidArgumentError("cursor position has no document id")
    check_text(values[-1], "cursor position")
    for pair in values[:-1]:
        if not _valid_pair(pair):
            raise InvalidArgumentError(f"cursor position holds an invalid sort value {pair!r}")


def _valid_pair(pair: Any) -> bool:
    """Return True for a [rank, value] pair as _rank_value produces it."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        return False
    rank, value = pair
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank < len(TYPE_ORDER):
        return False
    if rank == NUMBER_RANK:
        return is_number(value) and _bindable(value)
    if rank == STRING_RANK:
        return isinstance(value, str) and _encodable(value)
    return value is None


def _encodable(value: str) -> bool:
    """Return True for text that is valid Unicode (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bindable(value: int | float) -> bool:
    """Return True for a number SQLite can bind and compare (int64, finite float)."""
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    return math.isfinite(value)
