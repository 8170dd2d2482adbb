"""Parse and validate a where-object into a small tree shared by the SQL compiler and the oracle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from db4core.errors import InvalidArgumentError
from db4core.query.paths import SYSTEM_FIELDS, Path, validate_path
from db4core.query.values import (
    MAX_VALUES,
    check_literal,
    check_shape,
    check_text,
    count_values,
    is_number,
)

FIELD_OPERATORS: Final = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$contains",
    "$startsWith",
    "$not",
)
LOGICAL_OPERATORS: Final = ("$and", "$or", "$not")
RANGE_OPERATORS: Final = frozenset({"$gt", "$gte", "$lt", "$lte"})


@dataclass(frozen=True, slots=True)
class Cond:
    """One primitive test: op is $eq, $gt, $gte, $lt, $lte, $in, $exists, $contains, $startsWith."""

    path: Path
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Not:
    """Negation of a subtree."""

    node: Node


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction; And(()) matches every document."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of at least one subtree."""

    nodes: tuple[Node, ...]


Node: TypeAlias = "Cond | Not | And | Or"
MATCH_ALL: Final = And(())


def parse_where(where: Any) -> Node:
    """Validate a where-object (None means everything) and return its tree."""
    if where is None:
        return MATCH_ALL
    if not isinstance(where, dict):
        raise InvalidArgumentError(f"where must be an object, got {_kind(where)}")
    check_shape(where)
    tree = _parse_object(where)
    values = _operand_values(tree)
    if values > MAX_VALUES:
        raise InvalidArgumentError(
            f"where is too large: {values} values in its operands, at most {MAX_VALUES}")
    return tree


def _operand_values(tree: Node) -> int:
    """Values in the operands of a parsed where; the lists of $in and $nin are not values."""
    stack, total = [tree], 0
    while stack:
        node = stack.pop()
        if isinstance(node, Cond):
            operands = node.value if node.op == "$in" else (node.value,)
            total += sum(count_values(item) for item in operands)
        elif isinstance(node, Not):
            stack.append(node.node)
        else:
            stack.extend(node.nodes)
    return total


def _parse_object(obj: dict[str, Any]) -> Node:
    """Parse a where-object: its entries are ANDed."""
    terms = tuple(_parse_entry(key, value) for key, value in obj.items())
    return terms[0] if len(terms) == 1 else And(terms)


def _parse_entry(key: Any, value: Any) -> Node:
    """Parse one top-level entry: a logical operator or a field condition."""
    if key in ("$and", "$or"):
        return _parse_logical(key, value)
    if key == "$not":
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"'$not' takes a where-object, got {_kind(value)}")
        return Not(_parse_object(value))
    if isinstance(key, str) and key.startswith("$") and key not in SYSTEM_FIELDS:
        raise InvalidArgumentError(
            f"unknown operator {key!r} at the top level of where; "
            f"top-level operators are {', '.join(LOGICAL_OPERATORS)}"
        )
    return _parse_field(key, validate_path(key), value)


def _parse_logical(op: str, value: Any) -> Node:
    """Parse $and / $or: a non-empty list of where-objects."""
    if not isinstance(value, list) or not value:
        raise InvalidArgumentError(f"{op!r} takes a non-empty list of where-objects")
    for item in value:
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"{op!r} takes where-objects, got {_kind(item)} in the list")
    terms = tuple(_parse_object(item) for item in value)
    return And(terms) if op == "$and" else Or(terms)


def _parse_field(name: str, path: Path, value: Any) -> Node:
    """Parse the condition on one field: an operator object or a bare value ($eq)."""
    if not _is_operator_object(name, value):
        check_literal(value, f"value of field {name!r}")
        return Cond(path, "$eq", value)
    terms = tuple(_parse_operator(name, path, op, operand) for op, operand in value.items())
    return terms[0] if len(terms) == 1 else And(terms)


def _is_operator_object(name: str, value: Any) -> bool:
    """Return True for {'$op': ...} objects; raise when operators and plain keys are mixed."""
    if not isinstance(value, dict):
        return False
    dollar = [key for key in value if isinstance(key, str) and key.startswith("$")]
    if dollar and len(dollar) != len(value):
        raise InvalidArgumentError(
            f"condition on field {name!r} mixes operators ({', '.join(dollar)}) with plain keys; "
            "to match an object literally use {'$eq': {...}}"
        )
    return bool(dollar)


def _parse_operator(name: str, path: Path, op: str, operand: Any) -> Node:
    """Parse one operator of an operator object."""
    parser = _OPERATOR_PARSERS.get(op)
    if parser is None:
        if op in ("$and", "$or"):
            raise InvalidArgumentError(
                f"{op!r} is only valid at the top level, not on field {name!r}"
            )
        raise InvalidArgumentError(
            f"unknown operator {op!r} on field {name!r}; operators are {', '.join(FIELD_OPERATORS)}"
        )
    return parser(name, path, op, operand)


def _any_value(name: str, path: Path, op: str, operand: Any) -> Node:
    """$eq, $ne, $contains: any JSON value."""
    check_literal(operand, _context(op, name))
    cond = Cond(path, "$eq" if op == "$ne" else op, operand)
    return Not(cond) if op == "$ne" else cond


def _range_value(name: str, path: Path, op: str, operand: Any) -> Node:
    """$gt, $gte, $lt, $lte: a number or a string."""
    if not (is_number(operand) or isinstance(operand, str)):
        raise InvalidArgumentError(
            f"{_context(op, name)} takes a number or a string, got {_kind(operand)}"
        )
    check_literal(operand, _context(op, name))
    return Cond(path, op, operand)


def _list_value(name: str, path: Path, op: str, operand: Any) -> Node:
    """$in, $nin: a list of JSON values."""
    if not isinstance(operand, list):
        raise InvalidArgumentError(f"{_context(op, name)} takes a list, got {_kind(operand)}")
    check_literal(operand, _context(op, name))
    cond = Cond(path, "$in", tuple(operand))
    return Not(cond) if op == "$nin" else cond


def _exists_value(name: str, path: Path, op: str, operand: Any) -> Node:
    """$exists: a boolean."""
    if not isinstance(operand, bool):
        raise InvalidArgumentError(
            f"{_context(op, name)} takes true or false, got {_kind(operand)}"
        )
    return Cond(path, op, operand)


def _prefix_value(name: str, path: Path, op: str, operand: Any) -> Node:
    """$startsWith: a string."""
    if not isinstance(operand, str):
        raise InvalidArgumentError(f"{_context(op, name)} takes a string, got {_kind(operand)}")
    check_text(operand, _context(op, name))
    return Cond(path, op, operand)


def _not_value(name: str, path: Path, op: str, operand: Any) -> Node:
    """Field-level $not: negates an operator object or a bare value."""
    return Not(_parse_field(name, path, operand))


_OPERATOR_PARSERS: Final[dict[str, Callable[[str, Path, str, Any], Node]]] = {
    "$eq": _any_value,
    "$ne": _any_value,
    "$contains": _any_value,
    "$gt": _range_value,
    "$gte": _range_value,
    "$lt": _range_value,
    "$lte": _range_value,
    "$in": _list_value,
    "$nin": _list_value,
    "$exists": _exists_value,
    "$startsWith": _prefix_value,
    "$not": _not_value,
}


def _context(op: str, name: str) -> str:
    """Return the phrase that starts error messages about one operator."""
    return f"operator {op!r} on field {name!r}"


def _kind(value: Any) -> str:
    """Return the JSON kind of a Python value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__
