"""Reads of many documents on one shard: filtered, sorted, keyset-paged pages and counts.

The SQL comes from db4core.query (every value bound, every path validated); this module only runs
it and attaches to each row its sort position, which the router merges across shards.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import apsw

from db4core.query import (
    compile_count,
    compile_find,
    compile_index_page,
    index_ddl,
    index_sql_name,
    sort_values,
    validate_limit,
    validate_sort,
    values_key,
)
from db4node.sql import scalar, transaction
from db4rpc.options import MAX_MESSAGE_BYTES

# A node's answer stays far below the 64 MiB transport limit: a page or a point read stops
# before its documents pass this many bytes (always holding at least one document) and says so,
# with has_more or a shorter prefix of the ids, so the router asks again for the rest.
PAGE_BYTES = READ_BYTES = MAX_MESSAGE_BYTES


@dataclass
class Page:
    """One shard's rows (body, JSON position) and whether more follow."""

    rows: list[tuple[str, str]]
    has_more: bool


def find(conn: apsw.Connection, collection: str, where: dict | None, sort: list,
         limit: int, after: list | None = None, until: list | None = None,
         index: str = "") -> Page:
    """Up to `limit` rows after the position `after` in sort order.

    With `index` (a range index whose keys are `sort`), the statements are shaped to seek in it,
    and `until` bounds the range.
    """
    limit = validate_limit(limit)
    statements = _statements(collection, where, sort, limit, after, until, index)
    rows: list[tuple[str, str]] = []
    size = 0
    for sql, params in statements:
        params[-1] = limit + 1 - len(rows)  # the LIMIT: what is still missing
        if params[-1] <= 0:
            break
        for _id, body in conn.execute(sql, params):
            row = (body, _position(body, sort))
            size += len(row[0]) + len(row[1])
            if rows and size > PAGE_BYTES:
                return Page(rows, True)  # the next row would not fit: the router asks again
            rows.append(row)
    return Page(rows[:limit], len(rows) > limit)


def find_merged(conns: list[apsw.Connection], collection: str, where: dict | None, sort: list,
                limit: int, after: list | None = None, until: list | None = None,
                index: str = "") -> Page:
    """Up to `limit` rows after `after` over several shards (a connection each), in their
    merged sort order, and whether more follow on any of them.

    Every shard's statement runs lazily, all at once on this thread: the merge steps a shard's
    statement only when its last row was taken, so about limit + shards rows are read and
    decoded however many shards there are, and no shard is asked twice.
    """
    limit = validate_limit(limit)
    fields = validate_sort(sort)
    statements = _statements(collection, where, fields, limit, after, until, index)
    streams = [_shard_rows(conn, statements, limit, fields) for conn in conns]
    rows: list[tuple[str, str]] = []
    size = 0
    try:
        for _key, body, values in heapq.merge(*streams, key=lambda row: row[0]):
            if len(rows) == limit:
                return Page(rows, True)
            row = (body, json.dumps(values, separators=(",", ":")))
            size += len(row[0]) + len(row[1])
            if rows and size > PAGE_BYTES:
                return Page(rows, True)  # the next row would not fit: the router asks again
            rows.append(row)
        return Page(rows, False)
    finally:
        for stream in streams:
            stream.close()  # ends each shard's statement and its read transaction


def _shard_rows(conn: apsw.Connection, statements: list[tuple[str, list]], limit: int,
                fields: list) -> Generator[tuple[tuple, str, list], None, None]:
    """One shard's rows (sort key, body, sort values) in sort order, read as they are taken."""
    sent = 0
    for sql, params in statements:
        missing = limit + 1 - sent
        if missing <= 0:
            return
        cursor = conn.execute(sql, [*params[:-1], missing])
        try:
            for _id, body in cursor:
                values = sort_values(json.loads(body), fields)
                yield values_key(values, fields), body, values
                sent += 1
        finally:
            cursor.close()


def count_each(conns: list[apsw.Connection], collection: str, where: dict | None) -> list[int]:
    """Matching documents of a collection on each of several shards, in turn."""
    sql, params = compile_count(collection, where)
    return [int(scalar(conn, sql, params)) for conn in conns]


def plan(conn: apsw.Connection, collection: str, where: dict | None, sort: list, limit: int,
         after: list | None = None, until: list | None = None, index: str = "") -> list[str]:
    """EXPLAIN QUERY PLAN lines of the statements `find` would run, statement after statement."""
    statements = _statements(collection, where, sort, validate_limit(limit), after, until, index)
    # EXPLAIN starts no transaction, so it plans with the schema this connection last loaded,
    # which may predate an index: reading sqlite_schema checks the schema cookie and reloads it.
    scalar(conn, "SELECT count(*) FROM sqlite_schema")
    return [line for sql, params in statements for line in explain(conn, sql, params)]


def _statements(collection: str, where: dict | None, sort: list, limit: int,
                after: list | None, until: list | None, index: str) -> list[tuple[str, list]]:
    """The statements of one page: one, or two seeking in a range index."""
    if index:
        return compile_index_page(collection, sort, after, until, limit + 1, where)
    return [compile_find(collection, where, sort, after, fetch=limit + 1)]


def count(conn: apsw.Connection, collection: str, where: dict | None) -> int:
    """Matching documents of a collection."""
    sql, params = compile_count(collection, where)
    return int(scalar(conn, sql, params))


def _position(body: str, sort: list) -> str:
    doc: Any = json.loads(body)
    return json.dumps(sort_values(doc, sort), separators=(",", ":"))


def ensure_index(conn: apsw.Connection, name: str, collection: str,
                 fields: list[tuple[str, str]]) -> tuple[bool, int]:
    """Build a range index when absent (over existing rows); (created, documents covered)."""
    existed = _index_exists(conn, name)
    if not existed:
        with transaction(conn):
            conn.execute(index_ddl(name, collection, fields))
    docs = scalar(conn, "SELECT COUNT(*) FROM docs WHERE collection = ?", (collection,))
    return not existed, int(docs)


def drop_index(conn: apsw.Connection, name: str) -> bool:
    """Drop a range index; False when the shard had none."""
    existed = _index_exists(conn, name)
    if existed:
        with transaction(conn):
            conn.execute(f'DROP INDEX "{index_sql_name(name)}"')
    return existed


def _index_exists(conn: apsw.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?",
                        (index_sql_name(name),)).fetchone() is not None


def explain(conn: apsw.Connection, sql: str, params: list) -> list[str]:
    """EXPLAIN QUERY PLAN details of a statement (tests assert which index is used)."""
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
