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

from db4core.errors import InternalError
from db4core.hashing import to_signed
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

_compact = json.JSONEncoder(separators=(",", ":")).encode  # once, not a json.dumps a row

Ranges = list[tuple[int, int]]

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
         index: str = "", only: Ranges | None = None) -> Page:
    """Up to `limit` rows after the position `after` in sort order.

    With `index` (a range index whose keys are `sort`), the statements are shaped to seek in it,
    and `until` bounds the range. With `only`, rows of other token ranges are left out.
    """
    limit = validate_limit(limit)
    statements = _statements(collection, where, sort, limit, after, until, index, only)
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
                index: str = "", only: list[Ranges | None] | None = None) -> Page:
    """Up to `limit` rows after `after` over several shards (a connection each, and with
    `only` the token ranges each keeps to), in their merged sort order, and whether more follow
    on any of them.

    Every shard's statement runs lazily, all at once on this thread: the merge steps a shard's
    statement only when its last row was taken, so about limit + shards rows are read and
    decoded however many shards there are, and no shard is asked twice.
    """
    limit = validate_limit(limit)
    fields = validate_sort(sort)
    scopes = only if only is not None else [None] * len(conns)
    streams = [_shard_rows(conn, _statements(collection, where, fields, limit, after, until,
                                             index, scope), limit, fields)
               for conn, scope in zip(conns, scopes, strict=True)]
    rows: list[tuple[str, str]] = []
    size = 0
    try:
        for _key, body, values in heapq.merge(*streams, key=lambda row: row[0]):
            if len(rows) == limit:
                return Page(rows, True)
            row = (body, _compact(values))
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


def count_each(conns: list[apsw.Connection], collection: str, where: dict | None,
               only: list[Ranges | None] | None = None) -> list[int]:
    """Matching documents of a collection on each of several shards, in turn (with `only`, in
    the token ranges each keeps to)."""
    sql, params = compile_count(collection, where)
    scopes = only if only is not None else [None] * len(conns)
    return [int(scalar(conn, *keep_to(sql, params, scope)))
            for conn, scope in zip(conns, scopes, strict=True)]


def plan(conn: apsw.Connection, collection: str, where: dict | None, sort: list, limit: int,
         after: list | None = None, until: list | None = None, index: str = "") -> list[str]:
    """EXPLAIN QUERY PLAN lines of the statements `find` would run, statement after statement."""
    statements = _statements(collection, where, sort, validate_limit(limit), after, until, index)
    # EXPLAIN starts no transaction, so it plans with the schema this connection last loaded,
    # which may predate an index: reading sqlite_schema checks the schema cookie and reloads it.
    scalar(conn, "SELECT count(*) FROM sqlite_schema")
    return [line for sql, params in statements for line in explain(conn, sql, params)]


def _statements(collection: str, where: dict | None, sort: list, limit: int,
                after: list | None, until: list | None, index: str,
                only: Ranges | None = None) -> list[tuple[str, list]]:
    """The statements of one page: one, or two seeking in a range index."""
    if index:
        found = compile_index_page(collection, sort, after, until, limit + 1, where)
    else:
        found = [compile_find(collection, where, sort, after, fetch=limit + 1)]
    return [keep_to(sql, params, only) for sql, params in found]


def keep_to(sql: str, params: list, only: Ranges | None) -> tuple[str, list]:
    """A statement over `docs` narrowed to rows whose token falls in `only` (unsigned ranges;
    None: unchanged). A shard keeps to the ranges it owns while it deletes those it gave away
    (keeper.py), so that a query never reads a row from two shards."""
    if only is None:
        return sql, params
    head, sep, rest = sql.partition("FROM docs WHERE ")
    if not sep or "?" in head:
        raise InternalError(f"cannot narrow a statement not shaped SELECT ... FROM docs WHERE: "
                            f"{sql[:200]!r}")
    spans = [(to_signed(a), to_signed(b)) for a, b in only]  # as the `token` column holds
    test = " OR ".join("token BETWEEN ? AND ?" for _ in spans) or "0"
    return f"{head}{sep}({test}) AND {rest}", [*(v for span in spans for v in span), *params]


def count(conn: apsw.Connection, collection: str, where: dict | None,
          only: Ranges | None = None) -> int:
    """Matching documents of a collection (with `only`, in those token ranges)."""
    sql, params = compile_count(collection, where)
    return int(scalar(conn, *keep_to(sql, params, only)))


def _position(body: str, sort: list) -> str:
    doc: Any = json.loads(body)
    return _compact(sort_values(doc, sort))


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
