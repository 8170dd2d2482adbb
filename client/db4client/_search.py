"""Full-text search, as `_wire` does it: validate, build the request, say how to parse.

create_search_index / drop_search_index / list_search_indexes / search. Input is checked with
the router's rules (names, paths, weights, tokenizers, limits); the query's syntax is checked
with the same parser the router uses (`db4core.search`), so a typo fails here with its
position. Only the index knows its fields: an unknown `field:` is the router's to refuse.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from db4.v1 import router_pb2
from db4client._query import cursor_value, where_bytes
from db4client._wire import DB4, Call, StreamCall
from db4client.errors import InvalidArgumentError
from db4client.results import SearchHit, SearchResult
from db4core import documents
from db4core.names import validate_collection
from db4core.query import SYSTEM_FIELDS, validate_path
from db4core.search import parse_search_query

SEARCH_INDEX_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
MAX_SEARCH_FIELDS = 32
TOKENIZERS = ("porter", "unicode61", "trigram")
DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 1000
DEFAULT_SNIPPET_TOKENS = 32
MAX_SNIPPET_TOKENS = 64
DEFAULT_MARKS = ("<b>", "</b>")
MAX_MARK_CHARS = 64


# ---- input validation ----

def search_index_name(name: Any) -> str:
    """A full-text index name: 1-128 chars of [A-Za-z0-9_-] starting with a letter."""
    if not isinstance(name, str) or not SEARCH_INDEX_NAME.fullmatch(name):
        raise InvalidArgumentError(
            "search index name must be 1-128 characters of [A-Za-z0-9_-] starting with a "
            f"letter, got {name!r}")
    return name


def search_fields(fields: Any) -> list[tuple[str, float]]:
    """[(path, weight), ...] from {path: weight}, [path, ...] or [(path, weight), ...]."""
    if isinstance(fields, Mapping):
        pairs = list(fields.items())
    elif isinstance(fields, (list, tuple)):
        pairs = [(f, 1.0) if isinstance(f, str) else _pair(f) for f in fields]
    else:
        raise InvalidArgumentError(
            "fields must be a dict {path: weight} or a list of paths, got "
            f"{type(fields).__name__}")
    if not 1 <= len(pairs) <= MAX_SEARCH_FIELDS:
        raise InvalidArgumentError(
            f"a search index has 1 to {MAX_SEARCH_FIELDS} fields, got {len(pairs)}")
    checked = [(_field_path(path), _weight(path, weight)) for path, weight in pairs]
    paths = [path for path, _ in checked]
    twice = sorted({p for p in paths if paths.count(p) > 1})
    if twice:
        raise InvalidArgumentError(f"search index fields must differ; repeated: {twice}")
    return checked


def _pair(item: Any) -> tuple[Any, Any]:
    """One (path, weight) item of a list of fields."""
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        raise InvalidArgumentError(
            f"a field is a path or a (path, weight) pair, got {item!r}")
    return item[0], item[1]


def _field_path(path: Any) -> str:
    """A user field path; system fields hold no text to search."""
    if path in SYSTEM_FIELDS:
        raise InvalidArgumentError(
            f"search index field {path!r} is a system field; index a field of the document")
    validate_path(path)
    return str(path)


def _weight(path: str, weight: Any) -> float:
    """A BM25 column weight: a finite number > 0."""
    if (isinstance(weight, bool) or not isinstance(weight, (int, float))
            or not math.isfinite(weight) or weight <= 0):
        raise InvalidArgumentError(
            f"weight of field {path!r} must be a finite number > 0, got {weight!r}")
    return float(weight)


def tokenizer_value(tokenizer: Any) -> str:
    """One of the FTS5 tokenizers db4 offers."""
    if tokenizer not in TOKENIZERS:
        raise InvalidArgumentError(
            f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
    return str(tokenizer)


def query_text(query: Any) -> str:
    """A search query: non-empty text of at most 4 KB whose syntax parses."""
    if not isinstance(query, str):
        raise InvalidArgumentError(f"query must be a str, got {type(query).__name__}")
    _text(query, "query")
    parse_search_query(query)  # size, emptiness, syntax; field names are checked by the router
    return query


def _bounded_int(value: Any, what: str, low: int, high: int) -> int:
    """An int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{what} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidArgumentError(f"{what} must be between {low} and {high}, got {value}")
    return value


def marks(highlight: Any) -> tuple[str, str]:
    """The (open, close) marks around matched terms; None means the defaults."""
    if highlight is None:
        return DEFAULT_MARKS
    if (not isinstance(highlight, (list, tuple)) or len(highlight) != 2
            or not all(isinstance(m, str) for m in highlight)):
        raise InvalidArgumentError(
            f"highlight must be a pair of strings (open, close), got {highlight!r}")
    for mark in highlight:
        if len(mark) > MAX_MARK_CHARS:
            raise InvalidArgumentError(
                f"highlight marks are at most {MAX_MARK_CHARS} characters, got {len(mark)}")
        _text(mark, "highlight mark")
    return highlight[0], highlight[1]


def _text(text: str, what: str) -> None:
    """Refuse a lone surrogate: protobuf strings are UTF-8."""
    if not documents.valid_text(text):
        raise InvalidArgumentError(f"{what} is not valid Unicode text (a lone surrogate)")


# ---- answers ----

def search_index_info(msg: router_pb2.SearchIndex) -> dict[str, Any]:
    """A SearchIndex message as a dict: name, collection, fields {path: weight}, tokenizer."""
    return {"name": msg.name, "collection": msg.collection,
            "fields": {f.path: f.weight or 1.0 for f in msg.fields},
            "tokenizer": msg.tokenizer or "porter"}


def search_progress(msg: router_pb2.SearchIndexProgress) -> dict[str, Any]:
    """A SearchIndexProgress message as the dict `on_progress` receives."""
    return {"shards_done": msg.shards_done, "shards_total": msg.shards_total,
            "documents": msg.documents, "done": msg.done,
            "index": search_index_info(msg.index) if msg.HasField("index") else None}


def search_result(resp: router_pb2.SearchResponse) -> SearchResult:
    """A SearchResponse as a SearchResult (an empty cursor means no next page)."""
    hits = [SearchHit(h.id, h.score, documents.decode_stored(h.document) if h.document else {},
                      dict(h.highlights), h.snippet) for h in resp.hits]
    return SearchResult(hits, resp.cursor or None, resp.has_more)


# ---- calls ----

def search_index_definition(name: Any, collection: Any, fields: Any,
                            tokenizer: Any = "porter") -> router_pb2.SearchIndex:
    """A validated SearchIndex message."""
    return router_pb2.SearchIndex(
        name=search_index_name(name), collection=validate_collection(collection),
        fields=[router_pb2.SearchField(path=p, weight=w) for p, w in search_fields(fields)],
        tokenizer=tokenizer_value(tokenizer))


def create_search_index(name: Any, collection: Any, fields: Any,
                        tokenizer: Any = "porter") -> StreamCall[dict[str, Any]]:
    """Build a full-text index, streaming progress dicts; a write, so never retried."""
    req = router_pb2.CreateSearchIndexRequest(
        index=search_index_definition(name, collection, fields, tokenizer))
    return StreamCall(DB4, "CreateSearchIndex", req, search_progress)


def drop_search_index(name: Any) -> Call[None]:
    """Remove a full-text index from every shard (NOT_FOUND when there is none)."""
    req = router_pb2.DropSearchIndexRequest(name=search_index_name(name))
    return Call(DB4, "DropSearchIndex", req, lambda resp: None)


def list_search_indexes(collection: Any = None) -> Call[list[dict[str, Any]]]:
    """The full-text indexes (of one collection, or all), sorted by name."""
    req = router_pb2.ListSearchIndexesRequest(
        collection="" if collection is None else validate_collection(collection))
    return Call(DB4, "ListSearchIndexes", req,
                lambda resp: [search_index_info(i) for i in resp.indexes], idempotent=True)


def search(index: Any, query: Any, limit: Any = DEFAULT_SEARCH_LIMIT, cursor: Any = None,
           where: Any = None, highlight: Any = DEFAULT_MARKS,
           snippet_tokens: Any = DEFAULT_SNIPPET_TOKENS) -> Call[SearchResult]:
    """One page of hits, best first; a read, so retried on UNAVAILABLE."""
    opening, closing = marks(highlight)
    req = router_pb2.SearchRequest(
        index=search_index_name(index), query=query_text(query),
        limit=_bounded_int(limit, "limit", 1, MAX_SEARCH_LIMIT), cursor=cursor_value(cursor),
        where=where_bytes(where), highlight_open=opening, highlight_close=closing,
        snippet_tokens=_bounded_int(snippet_tokens, "snippet_tokens", 1, MAX_SNIPPET_TOKENS))
    return Call(DB4, "Search", req, search_result, idempotent=True)


def next_search(call: Call[SearchResult], result: SearchResult) -> Call[SearchResult] | None:
    """The call for the page after `result`; None when it was the last."""
    if not result.has_more or not result.cursor:
        return None
    req = router_pb2.SearchRequest()
    req.CopyFrom(call.request)
    req.cursor = result.cursor
    return Call(DB4, "Search", req, search_result, idempotent=True)



def iterate_hits(invoke: Callable[[Call[SearchResult]], SearchResult],
                 call: Call[SearchResult]) -> Iterator[SearchHit]:
    """Every hit of a search, page after page (`invoke` runs one call)."""
    step: Call[SearchResult] | None = call
    while step is not None:
        result = invoke(step)
        yield from result.hits
        step = next_search(step, result)


async def aiterate_hits(invoke: Callable[[Call[SearchResult]], Awaitable[SearchResult]],
                        call: Call[SearchResult]) -> AsyncIterator[SearchHit]:
    """Every hit of a search, page after page, for the asyncio client."""
    step: Call[SearchResult] | None = call
    while step is not None:
        result = await invoke(step)
        for hit in result.hits:
            yield hit
        step = next_search(step, result)
