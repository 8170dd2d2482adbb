"""Whole statements over the shard table docs(collection, id, token, version, body)."""

from __future__ import annotations

from typing import Any

from db4core.query.filters import compile_where
from db4core.query.sortkey import SortSpec, SortValues, compile_order, keyset_predicate


def compile_find(
    collection: str,
    where: dict[str, Any] | None,
    sort: SortSpec,
    after: SortValues | None = None,
    fetch: int = 100,
) -> tuple[str, list[Any]]:
    """Return (sql, params) selecting (id, body) of up to `fetch` rows after `after`, in order."""
    if not isinstance(fetch, int) or isinstance(fetch, bool) or fetch < 1:
        raise ValueError(f"fetch must be a positive int, got {fetch!r}")  # caller's own number
    where_sql, params = compile_where(where)
    conditions = ["collection = ?", where_sql]
    params = [collection, *params]
    if after is not None:
        after_sql, after_params = keyset_predicate(sort, after)
        conditions.append(after_sql)
        params.extend(after_params)
    order_sql, order_params = compile_order(sort)
    sql = f"SELECT id, body FROM docs WHERE {' AND '.join(conditions)} ORDER BY {order_sql} LIMIT ?"
    return sql, [*params, *order_params, fetch]


def compile_count(collection: str, where: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """Return (sql, params) counting the documents of a collection that match where."""
    where_sql, params = compile_where(where)
    return f"SELECT count(*) FROM docs WHERE collection = ? AND {where_sql}", [collection, *params]
