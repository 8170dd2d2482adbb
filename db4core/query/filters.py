"""Where-objects: compile to a SQLite WHERE fragment, or evaluate in Python with the same meaning.

Each operator has its SQL form and its Python form next to each other so they stay in step;
README.md in this package states the semantics both implement.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from db4core.errors import InvalidArgumentError
from db4core.query.parse import And, Cond, Node, Not, Or, parse_where
from db4core.query.paths import MISSING, json_path, resolve
from db4core.query.sqlfrag import (
    FALSE,
    Frag,
    Loc,
    all_of,
    any_of,
    check_column,
    column_loc,
    each_loc,
    negate,
    render,
)
from db4core.query.values import INT64_MAX, is_number

NUMBER_TYPES: Final = "('integer', 'real')"
_ALIAS: Final = "qj"  # the one json_each alias; $contains is the only operator that iterates
MAX_PARAMETERS: Final = 32766  # SQLite's SQLITE_MAX_VARIABLE_NUMBER
# An integer beyond 64 bits: json_type says 'integer' but SQLite reads it as a (rounded) double.
_BIG: Final = "({T} = 'integer' AND typeof({V}) = 'real')"
_REVERSED: Final = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}


def compile_where(where: dict[str, Any] | None, column: str = "body") -> tuple[str, list[Any]]:
    """Return (sql, params): a boolean SQL expression over the JSON text column `column`."""
    sql, params = compile_node(parse_where(where), check_column(column))
    if len(params) > MAX_PARAMETERS:
        raise InvalidArgumentError(
            f"where is too large: it needs {len(params)} SQL parameters, SQLite allows "
            f"{MAX_PARAMETERS}; split it into several queries")
    return sql, params


def matches(doc: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Return True if the decoded document satisfies where (the oracle for compile_where)."""
    return evaluate(parse_where(where), doc)


def compile_node(node: Node, column: str = "body") -> Frag:
    """Compile a parsed where tree; the result is always 0 or 1, never NULL."""
    if isinstance(node, Cond):
        loc = column_loc(column, json_path(node.path))
        # coalesce: a missing field yields NULL inside the test, and NOT NULL would drop the row.
        return render("coalesce({F}, 0)", None, _SQL[node.op](loc, node.value))
    if isinstance(node, Not):
        return negate(compile_node(node.node, column))
    parts = [compile_node(child, column) for child in node.nodes]
    return all_of(parts) if isinstance(node, And) else any_of(parts)


def evaluate(node: Node, doc: dict[str, Any]) -> bool:
    """Evaluate a parsed where tree against a decoded document."""
    if isinstance(node, Cond):
        return _PY[node.op](resolve(doc, node.path), node.value)
    if isinstance(node, Not):
        return not evaluate(node.node, doc)
    if isinstance(node, Or):
        return any(evaluate(child, doc) for child in node.nodes)
    return all(evaluate(child, doc) for child in node.nodes)


# --- $eq: JSON equality; null also matches a missing field -------------------------------------


def _sql_eq(loc: Loc, x: Any) -> Frag:
    """SQL for the field $eq x: JSON equality, and null also matches a missing field."""
    if x is None:
        return render("({T} IS NULL OR {T} = 'null')", loc)
    return _sql_same(loc, x)


def _sql_same(loc: Loc, x: Any) -> Frag:
    """SQL for JSON equality with x; inside containers a null member must be present."""
    if x is None:
        return render("{T} = 'null'", loc)
    if isinstance(x, bool):
        return render("{T} = ?", loc, "true" if x else "false")
    if is_number(x):
        return _sql_number(loc, "=", x)
    if isinstance(x, str):
        return render("({T} = 'text' AND {V} = ?)", loc, x)
    if isinstance(x, list):
        return _sql_container_eq(loc, "array", list(enumerate(x)))
    return _sql_container_eq(loc, "object", list(x.items()))


def _sql_container_eq(loc: Loc, kind: str, items: list[tuple[Any, Any]]) -> Frag:
    """SQL for an array/object equal to items: same kind, same size, every member equal."""
    # Members are addressed by path, so a deep literal stays one flat AND: nested subqueries
    # would hit SQLite's expression depth limit (1000) long before MAX_DEPTH.
    size = "json_array_length({S})" if kind == "array" else "(SELECT count(*) FROM json_each({S}))"
    parts = [render("{T} = ?", loc, kind), render(f"{size} = ?", loc, len(items))]
    parts.extend(_sql_same(loc.member(key), item) for key, item in items)
    return all_of(parts)


def _py_eq(v: Any, x: Any) -> bool:
    """Python for the field $eq x: JSON equality, and null also matches a missing field."""
    if x is None and v is MISSING:
        return True
    return _py_same(v, x)


def _py_same(v: Any, x: Any) -> bool:
    """Python for JSON equality with x (MISSING equals nothing)."""
    if x is None:
        return v is None
    if isinstance(x, bool):
        return isinstance(v, bool) and v == x
    if is_number(x):
        return is_number(v) and v == x  # Python compares int and float exactly, as _sql_number
    if isinstance(x, str):
        return isinstance(v, str) and v == x
    if isinstance(x, list):
        return isinstance(v, list) and len(v) == len(x) and all(map(_py_same, v, x))
    return (
        isinstance(v, dict)
        and len(v) == len(x)
        and all(key in v and _py_same(v[key], item) for key, item in x.items())
    )


# --- $gt $gte $lt $lte: numbers with numbers, strings with strings, nothing else ---------------


def _sql_range(op_sql: str) -> Callable[[Loc, Any], Frag]:
    """Return the SQL compiler of one range operator."""

    def compile_range(loc: Loc, x: Any) -> Frag:
        if isinstance(x, str):
            return render(f"({{T}} = 'text' AND {{V}} {op_sql} ?)", loc, x)
        return _sql_number(loc, op_sql, x)

    return compile_range


def _py_range(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Return the Python test of one range operator."""

    def test(v: Any, x: Any) -> bool:
        if isinstance(x, str):
            return isinstance(v, str) and compare(v, x)
        return is_number(v) and compare(v, x)

    return test


# --- numbers: exact, even for document integers beyond 64 bits ---------------------------------


@dataclass(frozen=True, slots=True)
class _EachLoc(Loc):
    """A json_each row over JSON text `outer`: an element's exact text is `outer -> fullkey`."""

    outer: str = ""


def _raw(loc: Loc) -> Frag:
    """SQL for the JSON text of the value at loc (a big integer's exact digits)."""
    if isinstance(loc, _EachLoc):
        return f"({loc.outer} -> {loc.row}.fullkey)", []
    return f"({loc.base} -> ?)", [loc.path]


def _sql_number(loc: Loc, op_sql: str, x: int | float) -> Frag:
    """SQL: the field is a number and compares to x exactly by op_sql (=, <, <=, >, >=).

    SQLite compares integers with doubles exactly, but reads an integer beyond 64 bits as a
    rounded double, so -2**63 - 1 would equal -2**63: such integers are compared by _sql_big."""
    template = f"({{T}} IN {NUMBER_TYPES} AND CASE WHEN {_BIG} THEN {{F}} " \
               f"ELSE {{V}} {op_sql} ? END)"
    return render(template, loc, _sql_big(loc, op_sql, x), x)


def _sql_big(loc: Loc, op_sql: str, x: int | float) -> Frag:
    """SQL comparing a document integer v beyond 64 bits with x, exactly."""
    exact = isinstance(x, float) and abs(x) > INT64_MAX  # then x is integral: compare digits
    if op_sql == "=":
        return render("{F} = ?", None, _raw(loc), str(int(x))) if exact else FALSE
    # v > x exactly when v is positive, unless x is also beyond 64 bits and of v's sign.
    by_sign = render("{V} > 0" if op_sql in (">", ">=") else "{V} < 0", loc)
    if not exact:
        return by_sign
    digits = str(int(x))
    op = op_sql if x > 0 else _REVERSED[op_sql]  # both negative: the larger magnitude is less
    raw = _raw(loc)
    magnitude = render(f"(length({{F}}), {{F}}) {op} (?, ?)", None, raw, raw, len(digits), digits)
    other_sign = "{V} < 0" if x > 0 else "{V} > 0"
    return render(f"CASE WHEN {other_sign} THEN {{F}} ELSE {{F}} END", loc, by_sign, magnitude)


# --- $in: equal to any listed value -------------------------------------------------------------


def _sql_in(loc: Loc, values: tuple[Any, ...]) -> Frag:
    """SQL for value in values: scalars grouped into IN lists, the rest as $eq each."""
    strings = [x for x in values if isinstance(x, str)]
    numbers = [x for x in values if is_number(x)]
    parts = [_sql_eq(loc, x) for x in values if not (isinstance(x, str) or is_number(x))]
    if strings:
        parts.append(render(f"({{T}} = 'text' AND {{V}} IN ({_marks(strings)}))", loc, *strings))
    if numbers:
        # Beyond 64 bits only an integral double can be equal, and only to the exact digits.
        digits = [str(int(x)) for x in numbers if isinstance(x, float) and abs(x) > INT64_MAX]
        big = render(f"{{F}} IN ({_marks(digits)})", None, _raw(loc), *digits) if digits else FALSE
        template = f"({{T}} IN {NUMBER_TYPES} AND CASE WHEN {_BIG} THEN {{F}} " \
                   f"ELSE {{V}} IN ({_marks(numbers)}) END)"
        parts.append(render(template, loc, big, *numbers))
    return any_of(parts)


def _py_in(v: Any, values: tuple[Any, ...]) -> bool:
    """Python for value in values."""
    return any(_py_eq(v, x) for x in values)


# --- $exists, $contains, $startsWith ------------------------------------------------------------


def _sql_exists(loc: Loc, x: bool) -> Frag:
    """SQL for the field being present (x) or absent (not x); JSON null is present."""
    return render("{T} IS NOT NULL" if x else "{T} IS NULL", loc)


def _py_exists(v: Any, x: bool) -> bool:
    """Python for the field being present (x) or absent (not x)."""
    return (v is not MISSING) == x


def _sql_contains(loc: Loc, x: Any) -> Frag:
    """SQL for: an array with an element equal to x, or a string containing the string x."""
    row = each_loc(_ALIAS)
    element = _sql_same(_EachLoc(row.base, row.path, row.row, loc.base), x)
    exists = f"EXISTS (SELECT 1 FROM json_each({{S}}) AS {_ALIAS} WHERE {{F}})"
    member = render(exists, loc, element)
    in_array = render("({T} = 'array' AND {F})", loc, member)
    if not isinstance(x, str):
        return in_array
    # Byte search on UTF-8 is exact codepoint search (UTF-8 is self-synchronising), and unlike
    # LIKE it has no wildcards and is case-sensitive.
    in_text = render("({T} = 'text' AND instr(CAST({V} AS BLOB), ?) > 0)", loc, x.encode())
    return any_of([in_text, in_array])


def _py_contains(v: Any, x: Any) -> bool:
    """Python for $contains."""
    if isinstance(v, str):
        return isinstance(x, str) and x in v
    return isinstance(v, list) and any(_py_same(item, x) for item in v)


def _sql_starts_with(loc: Loc, x: str) -> Frag:
    """SQL for a string starting with x (exact bytes, so no wildcard escaping is needed)."""
    prefix = x.encode()
    if not prefix:  # SQLite's substr() of an empty blob is NULL, not x''
        return render("{T} = 'text'", loc)
    return render(
        "({T} = 'text' AND substr(CAST({V} AS BLOB), 1, ?) = ?)", loc, len(prefix), prefix
    )


def _py_starts_with(v: Any, x: str) -> bool:
    """Python for $startsWith."""
    return isinstance(v, str) and v.startswith(x)


# --- helpers and tables -------------------------------------------------------------------------


def _marks(values: list[Any]) -> str:
    """Return '?, ?, ...' for values."""
    return ", ".join("?" for _ in values)


_SQL: Final[dict[str, Callable[[Loc, Any], Frag]]] = {
    "$eq": _sql_eq,
    "$in": _sql_in,
    "$exists": _sql_exists,
    "$contains": _sql_contains,
    "$startsWith": _sql_starts_with,
    "$gt": _sql_range(">"),
    "$gte": _sql_range(">="),
    "$lt": _sql_range("<"),
    "$lte": _sql_range("<="),
}
_PY: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$eq": _py_eq,
    "$in": _py_in,
    "$exists": _py_exists,
    "$contains": _py_contains,
    "$startsWith": _py_starts_with,
    "$gt": _py_range(operator.gt),
    "$gte": _py_range(operator.ge),
    "$lt": _py_range(operator.lt),
    "$lte": _py_range(operator.le),
}
