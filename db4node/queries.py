"""Reads of many documents on one shard: filtered, sorted, keyset-paged pages and counts.

The SQL comes from db4core.query (every value bound, every path validated); this module only runs
it and attaches to each row its sort position, which the router merges across shards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import apsw

from db4core.query import compile_count, compile_find, sort_values, validate_limit


@dataclass
class Page:
    """One shard's rows (body, JSON position) and whether more follow."""

    rows: list[tuple[str, str]]
    has_more: bool


def find(conn: apsw.Connection, collection: str, where: dict | None, sort: list,
         limit: int, after: list | None = None) -> Page:
    """Up to `limit` rows after the position `after`, in sort order."""
    limit = validate_limit(limit)
    sql, params = compile_find(collection, where, sort, after, fetch=limit + 1)
    rows = [(body, _position(body, sort)) for _id, body in conn.execute(sql, params)]
    return Page(rows[:limit], len(rows) > limit)


def count(conn: apsw.Connection, collection: str, where: dict | None) -> int:
    """Matching documents of a collection."""
    sql, params = compile_count(collection, where)
    return conn.execute(sql, params).fetchone()[0]


def _position(body: str, sort: list) -> str:
    doc: Any = json.loads(body)
    return json.dumps(sort_values(doc, sort), separators=(",", ":"))
