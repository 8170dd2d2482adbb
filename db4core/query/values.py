"""JSON values as the query layer sees them: validation of literals and SQLite-compatible typing."""

from __future__ import annotations

import math
from typing import Any, Final

from db4core.errors import InvalidArgumentError
from db4core.query.paths import MISSING

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_DEPTH: Final = 32
MAX_VALUES: Final = 5000  # values inside operands; see count_values
# A where's own structure (where-objects, operator objects, lists of $in/$and/$or) is not a
# value, but is bounded too, before parsing: a hostile where must not cost much to refuse.
MAX_NODES: Final = 4 * MAX_VALUES


def json_type(value: Any) -> str | None:
    """Return the name SQLite's json_type() gives this decoded value (None when MISSING)."""
    if value is MISSING:
        return None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "text"
    return "array" if isinstance(value, list) else "object"


def is_number(value: Any) -> bool:
    """Return True for ints and floats but not booleans."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_number(value: int | float) -> int | float:
    """Return a number as SQLite's json_extract yields it: ints beyond int64 become floats."""
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return float(value)
    return value


def check_shape(where: Any) -> None:
    """Raise InvalidArgumentError if a structure nests deeper than MAX_DEPTH or is too large."""
    # Iterative, so a hostile input cannot exhaust the Python stack before it is rejected.
    stack: list[tuple[Any, int]] = [(where, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InvalidArgumentError(
                f"where is too large: more than {MAX_NODES} JSON values and operators in all")
        children = _children(value)
        if children and depth + 1 > MAX_DEPTH:
            raise InvalidArgumentError(f"where nests deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def count_values(value: Any) -> int:
    """Count the JSON values in an operand: every scalar, list and object, at any depth."""
    stack, count = [value], 0
    while stack:
        item = stack.pop()
        count += 1
        stack.extend(_children(item))
    return count


def _children(value: Any) -> list[Any]:
    """Return the direct children of a container, or [] for a scalar."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def check_literal(value: Any, context: str) -> None:
    """Raise InvalidArgumentError unless value is a JSON value the database can compare."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidArgumentError(f"{context}: integer {value} is outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{context}: {value} is not a finite number")
    elif isinstance(value, str):
        check_text(value, context)
    elif isinstance(value, list):
        for item in value:
            check_literal(item, context)
    elif isinstance(value, dict):
        _check_object(value, context)
    else:
        raise InvalidArgumentError(f"{context}: {type(value).__name__} is not a JSON value")


def _check_object(value: dict[Any, Any], context: str) -> None:
    """Raise InvalidArgumentError unless every key is text and every value a JSON value."""
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{context}: object keys must be strings, got {key!r}")
        check_text(key, context)
        if "\x00" in key:  # refused in stored documents too: SQLite's JSON paths stop at it
            raise InvalidArgumentError(f"{context}: object key {key!r} contains U+0000")
        check_literal(item, context)


def check_text(value: str, context: str) -> None:
    """Raise InvalidArgumentError for text that is not valid Unicode (lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{context}: text contains a lone surrogate") from None
