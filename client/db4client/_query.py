"""Queries and range indexes, as `_wire` does it: validate, build the request, say how to parse.

find / iterate / count (optionally on one shard), create_index / drop_index / list_indexes,
query_range / iterate_range. Everything a user passes is checked here with the same
`db4core.query` rules the router applies, so bad input raises InvalidArgumentError before any
request exists.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from db4.v1 import router_pb2
from db4client._wire import DB4, Call, StreamCall
from db4client.errors import InternalError, InvalidArgumentError
from db4client.results import Page
from db4core import documents
from db4core.names import validate_collection
from db4core.query import parse_where, validate_limit, validate_sort

DIRECTIONS = ("asc", "desc")
INDEX_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MAX_INDEX_FIELDS = 8
DEFAULT_INDEX_FIELDS = (("createdAt", "asc"),)
_INT64 = (-(1 << 63), (1 << 63) - 1)

SortPairs = list[tuple[str, str]]


# ---- input validation ----

def where_bytes(where: Any) -> bytes:
    """A where-object as JSON bytes; None and {} both mean "everything" and travel as empty
    bytes, so their cursors are interchangeable."""
    if where is None or where == {}:
        return b""
    if not isinstance(where, dict):
        raise InvalidArgumentError(f"where must be a dict, got {type(where).__name__}")
    encoded = documents.encode(where, "where")  # first: plain JSON, string keys
    parse_where(where)
    return encoded


def sort_pairs(sort: Any, what: str = "sort") -> SortPairs:
    """[(path, "asc"|"desc"), ...] from a sort spec; a bare path (alone or as an item) is asc."""
    if sort is None:
        return []
    if isinstance(sort, str):
        sort = [sort]
    if not isinstance(sort, (list, tuple)):
        raise InvalidArgumentError(
            f"{what} must be a list of (field, 'asc'|'desc') pairs, got {type(sort).__name__}")
    if len(sort) == 2 and all(isinstance(s, str) for s in sort) and sort[1] in DIRECTIONS:
        # ["age", "desc"]: one pair, or the fields "age" and "desc"? Refuse to guess.
        raise InvalidArgumentError(
            f"{what} {list(sort)!r} is ambiguous: write [({sort[0]!r}, {sort[1]!r})] for one "
            f"field, or [({sort[0]!r}, 'asc'), ({sort[1]!r}, 'asc')] for two")
    pairs = [(item, "asc") if isinstance(item, str) else item for item in sort]
    return [(f.path, "desc" if f.descending else "asc") for f in validate_sort(pairs)]


def limit_value(limit: Any, what: str = "limit") -> int:
    """A page size: an int in [1, 10000] (None means the default, 100)."""
    try:
        return validate_limit(limit)
    except InvalidArgumentError as err:
        raise InvalidArgumentError(err.message.replace("limit", what, 1)) from None


def cursor_value(cursor: Any) -> str:
    """A cursor from a previous page ("" for the first page)."""
    if cursor is None:
        return ""
    if not isinstance(cursor, str) or not cursor:
        raise InvalidArgumentError(f"cursor must be a non-empty str or None, got {cursor!r}")
    return cursor


def shard_value(shard_id: Any) -> str:
    """A shard id as the cluster names it (`client.shard_for`, `admin.status`)."""
    if not isinstance(shard_id, str) or not shard_id:
        raise InvalidArgumentError(f"shard_id must be a non-empty str, got {shard_id!r}")
    return shard_id


def index_name(name: Any) -> str:
    """An index name: 1-64 chars of [A-Za-z0-9_] starting with a letter."""
    if not isinstance(name, str) or not INDEX_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"index name must be 1-64 characters of [A-Za-z0-9_] starting with a letter, "
            f"got {name!r}")
    return name


def _scalar(value: Any, what: str) -> Any:
    """A key value of a range bound: null, a bool, a finite 64-bit number or a string."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InvalidArgumentError(f"{what}: integer {value} is outside the 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{what}: {value} is not a finite number")
        return value
    raise InvalidArgumentError(
        f"{what}: a bound value is a str, number, bool or None (or a list of them for a "
        f"composite index), got {type(value).__name__}")


def range_bound(bound: Any, what: str) -> router_pb2.RangeBound | None:
    """`(value, inclusive)` as a RangeBound (value JSON-encoded), None for an open end.

    A list or tuple value is a prefix of a composite key: `(["acme", 2024], True)`.
    """
    if bound is None:
        return None
    if not isinstance(bound, (tuple, list)) or len(bound) != 2:
        raise InvalidArgumentError(
            f"{what} must be a (value, inclusive) pair or None, got {bound!r}")
    value, inclusive = bound
    if not isinstance(inclusive, bool):
        raise InvalidArgumentError(
            f"{what}: inclusive must be True or False, got {inclusive!r}")
    if isinstance(value, (list, tuple)):
        if not 1 <= len(value) <= MAX_INDEX_FIELDS:
            raise InvalidArgumentError(
                f"{what}: a key prefix holds 1 to {MAX_INDEX_FIELDS} values, got {len(value)} "
                f"(use None for an open end)")
        value = [_scalar(v, f"{what}[{i}]") for i, v in enumerate(value)]
    else:
        value = _scalar(value, what)
    return router_pb2.RangeBound(value=documents.encode(value, what), inclusive=inclusive)


# ---- answers ----

def page(resp: router_pb2.FindResponse) -> Page:
    """A FindResponse as a Page (an empty cursor means no next page)."""
    return Page([documents.decode_stored(raw) for raw in resp.documents], resp.cursor or None,
                resp.has_more)


def after_page(request: Any, item: Page) -> Any:
    """The request that continues a paged stream after `item`; None when it was the last."""
    if not item.has_more or not item.cursor:
        return None
    following = type(request)()
    following.CopyFrom(request)
    following.cursor = item.cursor
    return following


def index_info(msg: router_pb2.Index) -> dict[str, Any]:
    """An Index message as a dict: name, collection, fields [(path, "asc"|"desc"), ...]."""
    return {"name": msg.name, "collection": msg.collection,
            "fields": [(f.path, "desc" if f.descending else "asc") for f in msg.fields]}


def progress(msg: router_pb2.IndexProgress) -> dict[str, Any]:
    """An IndexProgress message as the dict `on_progress` receives."""
    return {"shards_done": msg.shards_done, "shards_total": msg.shards_total,
            "documents": msg.documents, "done": msg.done,
            "index": index_info(msg.index) if msg.HasField("index") else None}


class IndexBuild:
    """Follows a CreateIndex (or CreateSearchIndex) stream: reports progress, then gives the
    index as stored (`describe` turns the wire definition into the dict returned)."""

    def __init__(self, requested: Any,
                 on_progress: Callable[[dict[str, Any]], Any] | None,
                 describe: Callable[[Any], dict[str, Any]] = index_info,
                 operation: str = "create_index") -> None:
        if on_progress is not None and not callable(on_progress):
            raise InvalidArgumentError(f"on_progress must be callable, got {on_progress!r}")
        self.index = describe(requested)
        self.on_progress = on_progress
        self.done = False
        self.operation = operation

    def add(self, item: dict[str, Any]) -> None:
        """One progress message arrived."""
        if item["index"] is not None:
            self.index = item["index"]
        self.done = self.done or item["done"]
        if self.on_progress is not None:
            self.on_progress(item)

    def result(self) -> dict[str, Any]:
        """The index, once the stream said done."""
        if not self.done:
            raise InternalError(
                f"the router ended the build of index {self.index['name']!r} before it was "
                f"done; {self.operation} is idempotent: call it again")
        return self.index


# ---- queries ----

def _find_request(collection: str, where: Any, sort: Any, limit: Any, cursor: Any,
                  shard_id: str | None, what: str = "limit") -> router_pb2.FindRequest:
    return router_pb2.FindRequest(
        collection=validate_collection(collection), where=where_bytes(where),
        sort=[router_pb2.SortField(path=p, descending=d == "desc") for p, d in sort_pairs(sort)],
        limit=limit_value(limit, what), cursor=cursor_value(cursor),
        shard_id=None if shard_id is None else shard_value(shard_id))


def find(collection: str, where: Any = None, sort: Any = None, limit: Any = 100,
         cursor: Any = None) -> Call[Page]:
    """One page of the matching documents, merged from every shard."""
    req = _find_request(collection, where, sort, limit, cursor, None)
    return Call(DB4, "Find", req, page, idempotent=True)


def explain_find(collection: str, where: Any = None, sort: Any = None, limit: Any = 100,
                 shard_id: str | None = None) -> Call[dict[str, Any]]:
    """How a find would run (shards, nodes, pruning, index use per shard); nothing is read."""
    req = _find_request(collection, where, sort, limit, None,
                        None if shard_id is None else shard_value(shard_id))
    req.explain = True
    return Call(DB4, "Find", req, lambda resp: json.loads(resp.plan), idempotent=True)


def find_in_shard(collection: str, shard_id: str, where: Any = None, sort: Any = None,
                  limit: Any = 100, cursor: Any = None) -> Call[Page]:
    """One page of the matching documents of one shard."""
    req = _find_request(collection, where, sort, limit, cursor, shard_value(shard_id))
    return Call(DB4, "Find", req, page, idempotent=True)


def iterate(collection: str, where: Any = None, sort: Any = None,
            page_size: Any = 500) -> StreamCall[Page]:
    """Every page of a find, streamed; after UNAVAILABLE it resumes from the last cursor."""
    req = _find_request(collection, where, sort, page_size, None, None, "page_size")
    return StreamCall(DB4, "Iterate", req, page, resume=after_page)


def count(collection: str, where: Any = None) -> Call[int]:
    """The number of matching documents over every shard."""
    req = router_pb2.CountRequest(collection=validate_collection(collection),
                                  where=where_bytes(where))
    return Call(DB4, "Count", req, lambda resp: resp.count, idempotent=True)


def count_in_shard(collection: str, shard_id: str, where: Any = None) -> Call[int]:
    """The number of matching documents on one shard."""
    req = router_pb2.CountRequest(collection=validate_collection(collection),
                                  where=where_bytes(where), shard_id=shard_value(shard_id))
    return Call(DB4, "Count", req, lambda resp: resp.count, idempotent=True)


# ---- range indexes ----

def index_definition(name: str, collection: str, fields: Any) -> router_pb2.Index:
    """A validated Index message: name, collection and 1-8 (path, direction) keys."""
    pairs = sort_pairs(fields, "fields")
    if not pairs:
        raise InvalidArgumentError("an index needs at least one field")
    return router_pb2.Index(
        name=index_name(name), collection=validate_collection(collection),
        fields=[router_pb2.IndexField(path=p, descending=d == "desc") for p, d in pairs])


def create_index(name: str, collection: str,
                 fields: Any = DEFAULT_INDEX_FIELDS) -> StreamCall[dict[str, Any]]:
    """Build a range index, streaming progress dicts; a write, so never retried."""
    req = router_pb2.CreateIndexRequest(index=index_definition(name, collection, fields))
    return StreamCall(DB4, "CreateIndex", req, progress)


def drop_index(name: str) -> Call[None]:
    """Remove a range index from every shard (NOT_FOUND when there is none)."""
    req = router_pb2.DropIndexRequest(name=index_name(name))
    return Call(DB4, "DropIndex", req, lambda resp: None)


def list_indexes(collection: str | None = None) -> Call[list[dict[str, Any]]]:
    """The range indexes (of one collection, or all), sorted by name."""
    req = router_pb2.ListIndexesRequest(
        collection="" if collection is None else validate_collection(collection))
    return Call(DB4, "ListIndexes", req, lambda resp: [index_info(i) for i in resp.indexes],
                idempotent=True)


def _range_request(index: str, start: Any, end: Any, limit: Any, cursor: Any,
                   what: str = "limit") -> router_pb2.QueryRangeRequest:
    return router_pb2.QueryRangeRequest(
        index=index_name(index), start=range_bound(start, "start"), end=range_bound(end, "end"),
        limit=limit_value(limit, what), cursor=cursor_value(cursor))


def query_range(index: str, start: Any = None, end: Any = None, limit: Any = 100,
                cursor: Any = None) -> Call[Page]:
    """One page of an index's documents between `start` and `end`, in index order."""
    return Call(DB4, "QueryRange", _range_request(index, start, end, limit, cursor), page,
                idempotent=True)


def iterate_range(index: str, start: Any = None, end: Any = None,
                  page_size: Any = 50) -> StreamCall[Page]:
    """Every page of a range query, streamed; resumes from the last cursor after UNAVAILABLE."""
    req = _range_request(index, start, end, page_size, None, "page_size")
    return StreamCall(DB4, "IterateRange", req, page, resume=after_page)

