"""Partition pruning: the partition key values a where pins, so a query asks only their shards.

A document lives on the shard owning `token_for(value)` of its partition key value. When every
document a where can match has its partition key equal to one of a few known values, only those
values' shards can hold a match, and the others need not be asked at all.

What pins (the rule, also in README.md):
- `{key: v}` or `{key: {"$eq": v, ...}}` pins v; `{key: {"$in": [v1, v2]}}` pins v1 and v2;
- at the top level or inside a top-level `$and` (several pinning conjuncts: their intersection);
- an `$or` whose every branch pins, pins the union of its branches;
- only strings and booleans pin. A number does not: `$eq: 1` also matches `1.0`, which is
  another partition value with another token. Neither do null (a partition key value is never
  null), objects nor arrays (equality ignores key order, the token does not).
Anything else (`$ne`, ranges, `$not`, an `$or` with a branch that does not pin) scatters.
"""

from __future__ import annotations

from typing import Any

from db4core.query.parse import And, Cond, Node, Or, parse_where
from db4core.query.paths import validate_path


def pinned_values(where: dict[str, Any] | None, partition_key: str) -> list[Any] | None:
    """The partition key values a where pins (sorted, deduplicated), None when it pins none."""
    found = _pinned(parse_where(where), validate_path(partition_key))
    return None if found is None else sorted(found, key=lambda v: (type(v).__name__, v))


def _pinned(node: Node, key: tuple[str, ...]) -> set[Any] | None:
    if isinstance(node, Cond):
        return _pinned_by(node, key)
    if isinstance(node, And):
        sets = [s for s in (_pinned(child, key) for child in node.nodes) if s is not None]
        return set.intersection(*sets) if sets else None
    if isinstance(node, Or):
        branches = [_pinned(child, key) for child in node.nodes]
        if any(b is None for b in branches):
            return None
        return set().union(*branches)  # type: ignore[arg-type]
    return None  # Not: matches everything but something, anywhere


def _pinned_by(cond: Cond, key: tuple[str, ...]) -> set[Any] | None:
    if cond.path != key:
        return None
    values = cond.value if cond.op == "$in" else (cond.value,) if cond.op == "$eq" else None
    if values is None or not all(isinstance(v, (str, bool)) for v in values):
        return None
    return set(values)
