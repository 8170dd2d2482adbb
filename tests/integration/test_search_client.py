"""Full-text search through the SDK and the `db4` command line on a real cluster: create with
progress, search with highlights, snippets, filters and cursor pages, list, drop, and the
errors a user sees."""

from __future__ import annotations

import json
import math
import os

import pytest

from db4client import SearchResult, cli, errors

DOCS = [
    {"$id": "d1", "title": "Edge databases", "body": "Keep data near users at the edge",
     "lang": "en"},
    {"$id": "d2", "title": "Key value stores", "body": "A fast key value store at the edge",
     "lang": "en"},
    {"$id": "d3", "title": "Bases de données", "body": "Edge computing et bases", "lang": "fr"},
    {"$id": "d4", "title": "Cooking", "body": "Boil water, add pasta", "lang": "en"},
    {"$id": "d5", "title": "Edge", "body": "edge edge edge cases", "lang": "en"},
    {"$id": "d6", "title": "Networks", "body": "Routers at the network edge", "lang": "en"},
]
EDGE_DOCS = {"d1", "d2", "d3", "d5", "d6"}


@pytest.fixture(scope="module")
def index(client, mode) -> str:
    """DOCS in a fresh collection and a full-text index over title (x2) and body."""
    collection = f"fts{os.getpid()}{mode}"
    client.collection(collection).insert_many(DOCS)
    seen = []
    name = f"{collection}_fts"
    stored = client.create_search_index(name, collection, fields={"title": 2.0, "body": 1.0},
                                        on_progress=seen.append)
    assert stored == {"name": name, "collection": collection,
                      "fields": {"title": 2.0, "body": 1.0}, "tokenizer": "porter"}
    assert seen[-1]["done"] and seen[-1]["documents"] == len(DOCS)
    assert seen[-1]["shards_done"] == seen[-1]["shards_total"] == 8
    return name


def test_search_ranks_highlights_and_snippets(client, index):
    result = client.search(index, "edge", highlight=("[", "]"), snippet_tokens=6)
    assert isinstance(result, SearchResult) and not result.has_more and result.cursor is None
    assert {h.id for h in result.hits} == EDGE_DOCS
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and all(math.isfinite(s) for s in scores)
    top = result.hits[0]
    assert top.id == "d5"  # "edge" in the title (weight 2) and three times in a short body
    assert top.doc["title"] == "Edge" and top.doc["$id"] == "d5"
    assert top.highlights == {"title": "[Edge]", "body": "[edge] [edge] [edge] cases"}
    by_id = {h.id: h for h in result.hits}
    assert by_id["d6"].highlights["body"] == "Routers at the network [edge]"
    assert "[edge]" in by_id["d2"].snippet.lower()
    assert len(by_id["d2"].snippet.replace("[", "").replace("]", "").split()) <= 6


def test_query_language_through_the_sdk(client, index):
    def found(query: str) -> set[str]:
        return {h.id for h in client.search(index, query, limit=100).hits}

    assert found("title:edge") == {"d1", "d5"}
    assert found('"key value"') == {"d2"}
    assert found("databas*") == {"d1"}
    assert found("edge NOT (key OR network)") == {"d1", "d3", "d5"}
    assert found("pasta OR title:networks") == {"d4", "d6"}
    assert found("edge !!!") == EDGE_DOCS  # punctuation-only words are dropped


def test_where_filters_the_hits(client, index):
    result = client.search(index, "edge", where={"lang": "fr"})
    assert [h.id for h in result.hits] == ["d3"]


def test_cursor_pages_cover_every_hit_once_in_rank_order(client, index):
    whole = [h.id for h in client.search(index, "edge", limit=100).hits]
    pages, cursor = [], None
    while True:
        page = client.search(index, "edge", limit=2, cursor=cursor)
        pages.append([h.id for h in page.hits])
        if not page.has_more:
            assert page.cursor is None
            break
        cursor = page.cursor
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == whole
    assert [h.id for h in client.iterate_search(index, "edge", page_size=2)] == whole


def test_list_and_drop(client, index):
    listed = client.list_search_indexes()
    assert any(ix["name"] == index for ix in listed)
    collection = client.list_search_indexes(collection=index.removesuffix("_fts"))
    assert [ix["name"] for ix in collection] == [index]
    client.create_search_index("dropme", collection[0]["collection"], ["body"],
                               tokenizer="trigram")
    assert [h.id for h in client.search("dropme", "oute").hits] == ["d6"]  # in "Routers"
    assert client.search("dropme", "xyz").hits == []
    client.drop_search_index("dropme")
    with pytest.raises(errors.NotFoundError):
        client.search("dropme", "edge")
    with pytest.raises(errors.NotFoundError):
        client.drop_search_index("dropme")
    assert "dropme" not in {ix["name"] for ix in client.list_search_indexes()}


def test_errors_users_see(client, index):
    with pytest.raises(errors.NotFoundError):
        client.search("no_such_index", "edge")
    with pytest.raises(errors.InvalidArgumentError, match="unknown field 'author'"):
        client.search(index, "author:smith")
    with pytest.raises(errors.InvalidArgumentError, match="unbalanced '\\(' at position 5"):
        client.search(index, "edge (data")  # refused by the SDK, before any request
    with pytest.raises(errors.InvalidArgumentError, match="cursor"):
        client.search(index, "edge", cursor="not-a-cursor")
    other = client.search(index, "edge", limit=2).cursor
    with pytest.raises(errors.InvalidArgumentError):
        client.search(index, "data", cursor=other)  # a cursor is bound to its query
    with pytest.raises(errors.AlreadyExistsError):
        client.create_search_index(index, index.removesuffix("_fts"), ["title"])
    with pytest.raises(errors.InvalidArgumentError, match="unknown operator '\\$bogus'"):
        client.search(index, "edge", where={"$bogus": 1})


def test_cli_search_commands(cluster, index, capsys):
    router = ["--router", cluster.address]
    assert cli.main(["search", index, "edge", "--limit", "2", *router]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["score", "id", "snippet"] and out[1].split()[1] == "d5"
    assert out[-1].startswith("next page: --cursor ")
    cursor = out[-1].split()[-1]
    assert cli.main(["search", index, "edge", "--limit", "2", "--cursor", cursor, "--json",
                     *router]) == 0
    page = json.loads(capsys.readouterr().out)
    assert len(page["hits"]) == 2 and page["has_more"] and page["hits"][0]["doc"]["$id"]
    assert cli.main(["search", index, "edge", "--where", '{"lang": "fr"}', *router]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "d3"
    collection = index.removesuffix("_fts")
    assert cli.main(["create-search-index", "cli_fts", "--collection", collection,
                     "--field", "title:3", "--field", "body", *router]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["fields"] == {"title": 3.0, "body": 1.0}
    assert "indexing cli_fts: 8/8 shards, 6 documents" in captured.err
    assert cli.main(["search-indexes", "--collection", collection, *router]) == 0
    assert {ix["name"] for ix in json.loads(capsys.readouterr().out)} == {index, "cli_fts"}
    assert cli.main(["drop-search-index", "cli_fts", *router]) == 0
    assert json.loads(capsys.readouterr().out) == {"dropped": "cli_fts"}
    assert cli.main(["search", "cli_fts", "edge", *router]) == 1
    assert "error: NOT_FOUND" in capsys.readouterr().err
