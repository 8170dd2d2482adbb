"""The router's full-text parts without a cluster: definitions, request checks, the hit merge."""

from __future__ import annotations

import math

import pytest

from db4.v1 import node_pb2, router_pb2
from db4core.errors import InvalidArgumentError
from db4router.search import _marks, _snippet_tokens, merge_hits
from db4router.searchdefs import to_wire, validate_search_index


def index(name="articles_fts", collection="articles", fields=(("title", 2.0), ("body", 1.0)),
          tokenizer="porter") -> router_pb2.SearchIndex:
    return router_pb2.SearchIndex(
        name=name, collection=collection, tokenizer=tokenizer,
        fields=[router_pb2.SearchField(path=p, weight=w) for p, w in fields])


def test_definition_record_round_trips():
    record = validate_search_index(index())
    assert record == {"collection": "articles", "fields": [["title", 2.0], ["body", 1.0]],
                      "tokenizer": "porter"}
    assert to_wire("articles_fts", record) == index()


def test_defaults_tokenizer_porter_and_weight_one():
    record = validate_search_index(index(fields=[("a.b", 0.0)], tokenizer=""))
    assert record == {"collection": "articles", "fields": [["a.b", 1.0]], "tokenizer": "porter"}


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"name": "9bad"}, "search index name"),
    ({"name": ""}, "search index name"),
    ({"collection": "no spaces"}, "collection name"),
    ({"fields": []}, "1 to 32 fields"),
    ({"fields": [(f"f{i}", 1.0) for i in range(33)]}, "1 to 32 fields, got 33"),
    ({"fields": [("title", -1.0)]}, "weight of field 'title'"),
    ({"fields": [("title", math.inf)]}, "finite"),
    ({"fields": [("title", math.nan)]}, "finite"),
    ({"fields": [("title", 1.0), ("title", 2.0)]}, "repeated: ['title']"),
    ({"fields": [("$id", 1.0)]}, "system field"),
    ({"fields": [("a..b", 1.0)]}, "invalid field path 'a..b'"),
    ({"tokenizer": "ngram"}, "porter, unicode61, trigram"),
])
def test_bad_definitions_name_the_problem(kwargs, needle):
    with pytest.raises(InvalidArgumentError) as err:
        validate_search_index(index(**kwargs))
    assert needle in err.value.message


def test_snippet_tokens_and_marks():
    assert _snippet_tokens(0) == 32
    assert _snippet_tokens(64) == 64
    for bad in (-1, 65):
        with pytest.raises(InvalidArgumentError, match="between 1 and 64"):
            _snippet_tokens(bad)
    assert _marks(router_pb2.SearchRequest()) == ("<b>", "</b>")
    assert _marks(router_pb2.SearchRequest(highlight_open="[", highlight_close="]")) == ("[", "]")
    with pytest.raises(InvalidArgumentError, match="at most 64"):
        _marks(router_pb2.SearchRequest(highlight_open="x" * 65))


def shard(*hits, more=False) -> node_pb2.SearchShardResponse:
    return node_pb2.SearchShardResponse(
        hits=[router_pb2.SearchHit(id=i, score=s) for s, i in hits], has_more=more)


def test_merge_orders_by_score_then_id_and_keeps_limit():
    answers = [shard((3.0, "b"), (1.0, "z")), shard((3.0, "a"), (2.0, "c")), shard()]
    hits, more = merge_hits(answers, 3)
    assert [(h.score, h.id) for h in hits] == [(3.0, "a"), (3.0, "b"), (2.0, "c")]
    assert more
    hits, more = merge_hits(answers, 4)
    assert [h.id for h in hits] == ["a", "b", "c", "z"] and not more


def test_merge_never_passes_a_hit_a_shard_with_more_may_still_hold():
    # The first shard stopped after "a" (its byte budget) and may hold hits scoring 0.9: "b"
    # must wait for the next page, else the cursor after it would skip them.
    hits, more = merge_hits([shard((1.0, "a"), more=True), shard((0.5, "b"))], 10)
    assert [h.id for h in hits] == ["a"] and more
    hits, more = merge_hits([shard((1.0, "a"), (0.7, "c"), more=True), shard((0.8, "b"))], 10)
    assert [h.id for h in hits] == ["a", "b", "c"] and more


def test_merge_stops_before_the_byte_budget_but_never_at_zero():
    big = node_pb2.SearchShardResponse(hits=[
        router_pb2.SearchHit(id=f"d{i}", score=10.0 - i, document=b"x" * 1000) for i in range(5)])
    hits, more = merge_hits([big], 5, max_bytes=2500)
    assert [h.id for h in hits] == ["d0", "d1"] and more
    hits, more = merge_hits([big], 5, max_bytes=10)
    assert [h.id for h in hits] == ["d0"] and more
