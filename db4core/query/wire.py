"""Query parts as they arrive in a request, shared by router and node: JSON filter, sort fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from db4core import documents
from db4core.errors import InvalidArgumentError
from db4core.query.parse import parse_where
from db4core.query.sortkey import validate_sort


class WireField(Protocol):
    """A SortField or IndexField message: a path and a direction."""

    path: str
    descending: bool


def decode_where(raw: bytes) -> dict[str, Any] | None:
    """A request's JSON filter, validated (empty means none)."""
    if not raw:
        return None
    where = documents.decode(raw, "where")
    if not isinstance(where, dict):
        raise InvalidArgumentError(f"where must be a JSON object, got {type(where).__name__}")
    parse_where(where)
    return where


def sort_pairs(fields: Iterable[WireField]) -> list[tuple[str, str]]:
    """Wire sort or index fields as validated (path, 'asc'|'desc') pairs."""
    pairs = [(f.path, "desc" if f.descending else "asc") for f in fields]
    validate_sort(pairs)
    return pairs
