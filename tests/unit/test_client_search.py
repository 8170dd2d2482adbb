"""Full-text search in the SDK and CLI, without a server: requests built, input refused before
any RPC, answers parsed, pages followed."""

from __future__ import annotations

import asyncio
import json
import math

import grpc
import pytest

from db4.v1 import router_pb2
from db4client import (
    AsyncClient,
    Client,
    RetryPolicy,
    SearchHit,
    SearchResult,
    _channel,
    cli,
    errors,
    search,
)
from db4client.commands import search_lines
from db4core.search import parse_search_query as core_parse
from tests.support.fakes import FakeAioChannel, FakeChannel, FakeRpcError, FakeStub

NO_WAIT = RetryPolicy(attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0, stream_budget_s=0.0,
                      unary_budget_s=0.0)


class Stream:
    """A scripted server stream for both clients: the blocking iterator and grpc.aio's read()."""

    def __init__(self, *items: object) -> None:
        self.items = list(items)
        self.cancelled = False

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def __iter__(self):
        return self

    def __next__(self):
        if not self.items:
            raise StopIteration
        return self.items.pop(0)

    async def read(self):
        return self.items.pop(0) if self.items else grpc.aio.EOF


class StreamingStub(FakeStub):
    """FakeStub whose scripted Stream answers are returned as they are (stream stubs)."""

    def __getattr__(self, method: str):
        unary = super().__getattr__(method)
        if self.script and isinstance(self.script[0], Stream):
            def stream(request, **kw):
                self.calls.append((method, request, kw))
                return self.script.pop(0)
            return stream
        return unary


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    monkeypatch.setattr(_channel, "open_channel", lambda address, tls: FakeChannel())
    monkeypatch.setattr(_channel, "open_aio_channel", lambda address, tls: FakeAioChannel())


def make_client() -> tuple[Client, StreamingStub]:
    client = Client(retry=NO_WAIT)
    db4 = StreamingStub()
    client._stubs = {"db4": db4, "admin": StreamingStub()}
    return client, db4


def make_async_client() -> tuple[AsyncClient, StreamingStub]:
    client = AsyncClient(retry=NO_WAIT)
    db4 = StreamingStub(asynchronous=True)
    client._stubs = {"db4": db4, "admin": StreamingStub(asynchronous=True)}
    return client, db4


def hit(id_: str, score: float, **doc) -> router_pb2.SearchHit:
    document = json.dumps({"$id": id_, **doc}).encode()
    return router_pb2.SearchHit(id=id_, score=score, document=document,
                                highlights={"title": f"<b>{id_}</b>"},
                                snippet=f"... <b>{id_}</b> ...")


def stored_index(tokenizer: str = "porter") -> router_pb2.SearchIndex:
    return router_pb2.SearchIndex(
        name="articles_fts", collection="articles", tokenizer=tokenizer,
        fields=[router_pb2.SearchField(path="title", weight=2.0),
                router_pb2.SearchField(path="body", weight=1.0)])


def progress(done: int, total: int, docs: int, index=None) -> router_pb2.SearchIndexProgress:
    return router_pb2.SearchIndexProgress(shards_done=done, shards_total=total, documents=docs,
                                          done=done == total, index=index)


# ---- create, drop, list ----

def test_create_search_index_sends_fields_in_order_and_returns_the_stored_index():
    client, db4 = make_client()
    db4.script.append(Stream(progress(0, 2, 0), progress(2, 2, 900, stored_index())))
    seen = []
    index = client.create_search_index("articles_fts", "articles",
                                       fields={"title": 2.0, "body": 1}, on_progress=seen.append)
    assert index == {"name": "articles_fts", "collection": "articles",
                     "fields": {"title": 2.0, "body": 1.0}, "tokenizer": "porter"}
    assert [(p["shards_done"], p["documents"], p["done"]) for p in seen] == \
        [(0, 0, False), (2, 900, True)]
    method, req, _ = db4.calls[0]
    assert method == "CreateSearchIndex"
    assert [(f.path, f.weight) for f in req.index.fields] == [("title", 2.0), ("body", 1.0)]
    assert (req.index.name, req.index.collection, req.index.tokenizer) == \
        ("articles_fts", "articles", "porter")


def test_create_search_index_with_a_list_of_paths_weighs_each_one():
    client, db4 = make_client()
    db4.script.append(Stream(progress(1, 1, 3)))
    index = client.create_search_index("idx", "articles", ["title", ("meta.summary", 0.5)],
                                       tokenizer="trigram")
    req = db4.calls[0][1]
    assert [(f.path, f.weight) for f in req.index.fields] == [("title", 1.0), ("meta.summary", 0.5)]
    assert req.index.tokenizer == "trigram"
    assert index["fields"] == {"title": 1.0, "meta.summary": 0.5}  # the definition sent


def test_create_search_index_ending_early_is_an_error():
    client, db4 = make_client()
    db4.script.append(Stream(progress(1, 4, 10)))
    with pytest.raises(errors.InternalError, match="create_search_index is idempotent"):
        client.create_search_index("idx", "articles", ["title"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "1bad"}, "search index name must be 1-128 characters"),
        ({"name": "x" * 129}, "search index name must be 1-128 characters"),
        ({"collection": "bad name"}, "collection"),
        ({"fields": {}}, "a search index has 1 to 32 fields, got 0"),
        ({"fields": [f"f{i}" for i in range(33)]}, "a search index has 1 to 32 fields, got 33"),
        ({"fields": "title"}, "fields must be a dict {path: weight} or a list of paths"),
        ({"fields": {"title": 0}}, "weight of field 'title' must be a finite number > 0, got 0"),
        ({"fields": {"title": -1.5}}, "must be a finite number > 0"),
        ({"fields": {"title": math.inf}}, "must be a finite number > 0"),
        ({"fields": {"title": math.nan}}, "must be a finite number > 0"),
        ({"fields": {"title": True}}, "must be a finite number > 0"),
        ({"fields": {"title": "2"}}, "must be a finite number > 0"),
        ({"fields": ["title", "title"]}, "fields must differ; repeated: ['title']"),
        ({"fields": ["$id"]}, "'$id' is a system field"),
        ({"fields": ["a..b"]}, "a..b"),
        ({"fields": [("title", 1, 2)]}, "a field is a path or a (path, weight) pair"),
        ({"tokenizer": "simple"}, "tokenizer must be one of porter, unicode61, trigram"),
    ],
)
def test_create_search_index_refuses_bad_input_before_any_rpc(kwargs, message):
    client, db4 = make_client()
    args = {"name": "idx", "collection": "articles", "fields": {"title": 2.0}, **kwargs}
    with pytest.raises(errors.InvalidArgumentError) as err:
        client.create_search_index(**args)
    assert message in err.value.message
    assert db4.calls == []


def test_drop_and_list_search_indexes():
    client, db4 = make_client()
    db4.script += [router_pb2.DropSearchIndexResponse(),
                   router_pb2.ListSearchIndexesResponse(indexes=[stored_index("unicode61")])]
    assert client.drop_search_index("articles_fts") is None
    listed = client.list_search_indexes(collection="articles")
    assert listed == [{"name": "articles_fts", "collection": "articles",
                       "fields": {"title": 2.0, "body": 1.0}, "tokenizer": "unicode61"}]
    assert db4.methods() == ["DropSearchIndex", "ListSearchIndexes"]
    assert db4.calls[0][1].name == "articles_fts"
    assert db4.calls[1][1].collection == "articles"


def test_drop_of_an_unknown_search_index_is_not_found():
    client, db4 = make_client()
    db4.script.append(FakeRpcError(grpc.StatusCode.NOT_FOUND, "no search index 'nope'"))
    with pytest.raises(errors.NotFoundError, match="no search index 'nope'"):
        client.drop_search_index("nope")


# ---- search ----

def test_search_builds_the_request_and_parses_hits():
    client, db4 = make_client()
    db4.script.append(router_pb2.SearchResponse(hits=[hit("a", 3.5, title="edge"), hit("b", 1.25)],
                                                cursor="C1", has_more=True))
    result = client.search("articles_fts", 'title:edge AND (database OR "key value")', limit=2,
                           where={"lang": "en"}, highlight=("[", "]"), snippet_tokens=16)
    assert isinstance(result, SearchResult)
    assert result.cursor == "C1" and result.has_more
    assert result.hits[0] == SearchHit("a", 3.5, {"$id": "a", "title": "edge"},
                                       {"title": "<b>a</b>"}, "... <b>a</b> ...")
    method, req, _ = db4.calls[0]
    assert method == "Search"
    assert (req.index, req.query, req.limit, req.cursor) == \
        ("articles_fts", 'title:edge AND (database OR "key value")', 2, "")
    assert json.loads(req.where) == {"lang": "en"}
    assert (req.highlight_open, req.highlight_close, req.snippet_tokens) == ("[", "]", 16)


def test_search_defaults():
    client, db4 = make_client()
    db4.script.append(router_pb2.SearchResponse())
    result = client.search("idx", "edge")
    assert result == SearchResult([], None, False)
    req = db4.calls[0][1]
    assert (req.limit, req.where, req.highlight_open, req.highlight_close, req.snippet_tokens) == \
        (20, b"", "<b>", "</b>", 32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "the search query is empty"),
        ({"query": 7}, "query must be a str, got int"),
        ({"query": "x" * 4097}, "4097 bytes (UTF-8); at most 4096"),
        ({"query": "(edge"}, "unbalanced '(' at position 0"),
        ({"query": "NOT edge"}, "'NOT' at position 0 needs a term on its left"),
        ({"query": "edge \ud800"}, "not valid Unicode text"),
        ({"limit": 0}, "limit must be between 1 and 1000, got 0"),
        ({"limit": 1001}, "limit must be between 1 and 1000, got 1001"),
        ({"limit": "5"}, "limit must be an integer"),
        ({"snippet_tokens": 0}, "snippet_tokens must be between 1 and 64, got 0"),
        ({"snippet_tokens": 65}, "snippet_tokens must be between 1 and 64, got 65"),
        ({"highlight": "<b>"}, "highlight must be a pair of strings"),
        ({"highlight": ("<b>",)}, "highlight must be a pair of strings"),
        ({"highlight": ("x" * 65, "y")}, "highlight marks are at most 64 characters"),
        ({"cursor": ""}, "cursor must be a non-empty str or None"),
        ({"where": {"age": {"$bogus": 1}}}, "$bogus"),
        ({"index": "no such"}, "search index name"),
    ],
)
def test_search_refuses_bad_input_before_any_rpc(kwargs, message):
    client, db4 = make_client()
    args = {"index": "idx", "query": "edge", **kwargs}
    with pytest.raises(errors.InvalidArgumentError) as err:
        client.search(**args)
    assert message in err.value.message
    assert db4.calls == []


def test_search_is_retried_on_unavailable_and_unknown_index_is_not_found():
    client, db4 = make_client()
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "router restarting"),
                   router_pb2.SearchResponse(hits=[hit("a", 1.0)])]
    assert [h.id for h in client.search("idx", "edge").hits] == ["a"]
    assert db4.methods() == ["Search", "Search"]
    db4.script.append(FakeRpcError(grpc.StatusCode.NOT_FOUND, "no search index 'idx'"))
    with pytest.raises(errors.NotFoundError):
        client.search("idx", "edge")


def test_iterate_search_follows_cursors_until_the_last_page():
    client, db4 = make_client()
    db4.script += [router_pb2.SearchResponse(hits=[hit("a", 3.0), hit("b", 2.0)], cursor="C1",
                                             has_more=True),
                   router_pb2.SearchResponse(hits=[hit("c", 1.0)])]
    hits = client.iterate_search("idx", "edge", page_size=2)
    assert db4.calls == []  # nothing is asked before the first next()
    assert [h.id for h in hits] == ["a", "b", "c"]
    assert [(req.limit, req.cursor) for _, req, _ in db4.calls] == [(2, ""), (2, "C1")]
    with pytest.raises(errors.InvalidArgumentError):
        client.iterate_search("idx", "", page_size=2)  # checked when called


def test_async_client_search_and_index_management():
    client, db4 = make_async_client()

    async def run():
        db4.script.append(Stream(progress(1, 1, 2, stored_index())))
        index = await client.create_search_index("articles_fts", "articles", ["title", "body"])
        db4.script += [router_pb2.SearchResponse(hits=[hit("a", 2.0)], cursor="C", has_more=True),
                       router_pb2.SearchResponse(hits=[hit("b", 1.0)]),
                       router_pb2.SearchResponse(hits=[hit("a", 2.0)])]
        ids = [h.id async for h in client.iterate_search("articles_fts", "edge", page_size=1)]
        page = await client.search("articles_fts", "edge", limit=1)
        db4.script += [router_pb2.ListSearchIndexesResponse(), router_pb2.DropSearchIndexResponse()]
        listed = await client.list_search_indexes()
        await client.drop_search_index("articles_fts")
        return index, ids, page, listed

    index, ids, page, listed = asyncio.run(run())
    assert index["fields"] == {"title": 2.0, "body": 1.0}  # as stored
    assert ids == ["a", "b"] and [h.id for h in page.hits] == ["a"]
    assert listed == []
    assert db4.methods() == ["CreateSearchIndex", "Search", "Search", "Search",
                             "ListSearchIndexes", "DropSearchIndex"]


def test_search_module_reexports_the_shared_parser():
    assert search.parse_search_query is core_parse
    assert search.query_to_fts5("edge data*") == '"edge" AND "data" *'


# ---- CLI ----

def test_cli_field_weights_and_search_output():
    args = cli.parser().parse_args(["create-search-index", "articles_fts", "--collection",
                                    "articles", "--field", "title:2.5", "--field", "body"])
    assert args.field == [("title", 2.5), ("body", 1.0)] and args.tokenizer == "porter"
    for bad in ("title:0", "title:x", ":2", "title:nan"):
        with pytest.raises(SystemExit):
            cli.parser().parse_args(["create-search-index", "i", "--collection", "c",
                                     "--field", bad])
    args = cli.parser().parse_args(["search", "idx", "edge db", "--limit", "5", "--where",
                                    '{"lang": "en"}', "--cursor", "C1"])
    assert (args.index, args.query, args.limit, args.where, args.cursor) == \
        ("idx", "edge db", 5, {"lang": "en"}, "C1")
    result = SearchResult([SearchHit("a1", 3.25, {}, {}, "the <b>edge</b>\n db")], "C2", True)
    assert search_lines(result) == ["score  id  snippet", "3.25   a1  the <b>edge</b> db",
                                    "next page: --cursor C2"]
    assert search_lines(SearchResult()) == ["no hits"]


def test_cli_search_prints_hits_and_the_next_cursor(monkeypatch, capsys):
    client, db4 = make_client()
    db4.script.append(router_pb2.SearchResponse(hits=[hit("a", 2.0)], cursor="C9", has_more=True))
    monkeypatch.setattr("db4client.Client", lambda *a, **kw: client)
    assert cli.main(["search", "idx", "edge"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["2", "a"] and out[-1] == "next page: --cursor C9"
    db4.script.append(FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "unknown field 'x'"))
    assert cli.main(["search", "idx", "x:edge"]) == 1
    assert "error: INVALID_ARGUMENT: unknown field 'x'" in capsys.readouterr().err
