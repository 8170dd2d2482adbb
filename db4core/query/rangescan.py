"""Range indexes: the index DDL, range bounds as sort positions, and index-seeking page queries.

An index on fields f1..fn is `CREATE INDEX ix_<name> ON docs(collection, rank(f1), value(f1),
..., rank(fn), value(fn), id) WHERE collection = '<collection>'` over the very sort expressions
compile_order emits (paths inlined, see sortkey), so an ORDER BY on those fields reads the index
in order, and the index holds only its own collection's rows.

A page after a position p = [[r1, v1], ..., id] runs as two statements, because SQLite seeks on
`rank(f1) = ? AND value(f1) >= ?` only when rank(f1) is not also in the ORDER BY:
  A. rows with rank(f1) = r1, ordered by value(f1), rank(f2), ..., id, seeking from v1;
  B. rows with rank(f1) beyond r1, in the full order.
The full keyset predicate stays in A for correctness; the extra terms only give SQLite its seek.
"""

from __future__ import annotations

import sys
from typing import Any

from db4core.errors import InvalidArgumentError
from db4core.names import validate_collection
from db4core.query.filters import compile_where
from db4core.query.sortkey import (
    NUMBER_RANK,
    STRING_RANK,
    TYPE_ORDER,
    SortField,
    SortValues,
    check_sort_values,
    keyset_predicate,
    rank_sql,
    rank_value,
    validate_sort,
    value_sql,
)
from db4core.query.sqlfrag import Frag
from db4core.query.values import check_literal

# Ids are [A-Za-z0-9._:@-]: "" sorts before every id and "~" after every id, so a bound position
# with one of them includes or excludes every document equal to the bound's values.
BEFORE_EVERY_ID = ""
AFTER_EVERY_ID = "~"


def index_sql_name(name: str) -> str:
    """The SQLite name of a range index (the name itself was validated by the router)."""
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise InvalidArgumentError(f"invalid index name {name!r}")
    return f"ix_{name}"


def index_ddl(name: str, collection: str, sort: Any) -> str:
    """CREATE INDEX over the collection's sort expressions, holding that collection's rows only.

    The index is partial (`WHERE collection = '<name>'`, a validated literal), so building it and
    keeping it current costs in proportion to its own collection, not to every collection on the
    shard. `collection` stays the first key: SQLite then prefers the index over the primary key's
    `collection = ?` prefix, and matches the bound `collection = ?` of a query to the literal.
    """
    literal = validate_collection(collection)  # [A-Za-z0-9_-]: safe inside single quotes
    terms = ["collection"]
    for field in validate_sort(sort):
        direction = "DESC" if field.descending else "ASC"
        terms += [f"{rank_sql('body', field)[0]} {direction}",
                  f"{value_sql('body', field)[0]} {direction}"]
    terms.append("id")
    return (f'CREATE INDEX IF NOT EXISTS "{index_sql_name(name)}" ON docs({", ".join(terms)}) '
            f"WHERE collection = '{literal}'")


def bound_position(sort: Any, values: list[Any], inclusive: bool, side: str) -> SortValues:
    """A range bound as a sort position over the first len(values) fields.

    `start` gives the position rows must be strictly after; `end` the one they must be at or
    before. The sentinel id decides whether rows equal to the bound's values are in.
    """
    fields = validate_sort(sort)
    if not 1 <= len(values) <= len(fields):
        raise InvalidArgumentError(f"a bound holds 1 to {len(fields)} values, got {len(values)}")
    pairs: SortValues = []
    for value in values:
        if isinstance(value, (dict, list)):
            raise InvalidArgumentError(
                f"{side} bound: a bound is a scalar or a list of scalars (a key prefix), "
                f"got {type(value).__name__}")
        check_literal(value, f"{side} bound")
        pairs.append(list(rank_value(value)))
    if side == "start":
        sentinel = BEFORE_EVERY_ID if inclusive else AFTER_EVERY_ID
    else:
        sentinel = AFTER_EVERY_ID if inclusive else BEFORE_EVERY_ID
    return [*pairs, sentinel]


# The outermost comparable values of the types that have one: no finite number lies beyond
# these, and no string sorts before "".
_FIRST_VALUE = {NUMBER_RANK: -sys.float_info.max, STRING_RANK: ""}
_LAST_VALUE = {NUMBER_RANK: sys.float_info.max}
_LAST_RANK = len(TYPE_ORDER) - 1


def within_type(sort: Any, start: SortValues | None, end: SortValues | None
                ) -> tuple[SortValues | None, SortValues | None]:
    """Close a range with one open end at the edge of the other bound's type.

    `start=(30, True)` alone means numbers from 30 up, as `$gte: 30` does in a filter, not every
    string, object and boolean that sorts after the numbers. The missing end becomes the position
    just before the neighbouring type in index order (rank r + 1 ascending, r - 1 descending).
    """
    if (start is None) == (end is None):
        return start, end
    fields = validate_sort(sort)
    descending = fields[0].descending
    if end is None:
        assert start is not None
        edge = _next_type_position(start[0][0], -1 if descending else 1, BEFORE_EVERY_ID)
        return start, edge
    edge = _next_type_position(end[0][0], 1 if descending else -1, AFTER_EVERY_ID)
    return edge, end


def _next_type_position(rank: int, step: int, sentinel: str) -> SortValues | None:
    """The position at the near edge of type rank + step (None past either end of the order).

    Walking up (step 1) the near edge is the type's first value, walking down its last one; with
    the sentinel id the position lies outside every row of that type.
    """
    neighbour = rank + step
    if not 0 <= neighbour <= _LAST_RANK:
        return None
    edge = (_FIRST_VALUE if step > 0 else _LAST_VALUE).get(neighbour)
    if edge is None and neighbour in (NUMBER_RANK, STRING_RANK):
        return None  # strings have no last value: nothing to close a descending range with
    return [[neighbour, edge], sentinel]


def _prefix(fields: list[SortField], position: SortValues) -> list[SortField]:
    """The sort fields a (possibly shorter) position covers; the position is checked."""
    covered = fields[: len(position) - 1]
    check_sort_values(position, covered)
    return covered


def _order(fields: list[SortField], skip_first_rank: bool = False) -> str:
    terms = []
    for i, field in enumerate(fields):
        direction = "DESC" if field.descending else "ASC"
        if not (skip_first_rank and i == 0):
            terms.append(f"{rank_sql('body', field)[0]} {direction}")
        terms.append(f"{value_sql('body', field)[0]} {direction}")
    return ", ".join([*terms, "id ASC"])


def _until(fields: list[SortField], until: SortValues | None) -> tuple[list[str], list[Any]]:
    """Conditions keeping rows at or before `until` (with a seek end on the first field)."""
    if until is None:
        return [], []
    covered = _prefix(fields, until)
    beyond, params = keyset_predicate(covered, until)
    first = fields[0]
    op = ">=" if first.descending else "<="
    return [f"{rank_sql('body', first)[0]} {op} ?", f"NOT {beyond}"], [until[0][0], *params]


def compile_index_page(
    collection: str, sort: Any, after: SortValues | None, until: SortValues | None, fetch: int,
    where: dict[str, Any] | None = None,
) -> list[tuple[str, list[Any]]]:
    """Statements whose rows, concatenated, are the first `fetch` rows after `after`."""
    fields = validate_sort(sort)
    base: list[Frag] = [("collection = ?", [collection])]
    if where:
        base.append(compile_where(where))
    until_sql, until_params = _until(fields, until)
    if until_sql:
        base.append((" AND ".join(until_sql), until_params))
    if after is None:
        return [_statement(base, _order(fields), fetch)]
    covered = _prefix(fields, after)
    first, (rank, value) = fields[0], after[0]
    same: list[Frag] = [(f"{rank_sql('body', first)[0]} = ?", [rank])]
    if value is not None:
        op = "<=" if first.descending else ">="
        same.append((f"{value_sql('body', first)[0]} {op} ?", [value]))
    same.append(keyset_predicate(covered, after))
    beyond = (f"{rank_sql('body', first)[0]} {'<' if first.descending else '>'} ?", [rank])
    return [
        _statement([*base, *same], _order(fields, skip_first_rank=True), fetch),
        _statement([*base, beyond], _order(fields), fetch),
    ]


def _statement(conditions: list[Frag], order: str, fetch: int) -> tuple[str, list[Any]]:
    """SELECT id, body WHERE every condition ORDER BY order LIMIT fetch."""
    where = " AND ".join(f"({sql})" for sql, _ in conditions)
    params = [p for _, frag_params in conditions for p in frag_params]
    return f"SELECT id, body FROM docs WHERE {where} ORDER BY {order} LIMIT ?", [*params, fetch]
