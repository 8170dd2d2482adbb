"""Property: queries on a real 8-shard cluster, paged with cursors, equal the Python oracle.

Documents, filters, sorts and page sizes come from the same hypothesis strategies as the SQL unit
property (tests/unit/test_query_oracle.py); here they travel through the SDK, the router's k-way
merge of every shard and the signed cursors.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings

from db4client import errors
from db4core.query import matches, sort_key
from db4core.query.prune import pinned_values
from tests.unit.test_query_oracle import Case, admitted, cases, has_nul_key

_n = itertools.count()


def oracle(docs, where, sort) -> list[str]:
    decoded = [json.loads(json.dumps({**doc, "$id": doc_id})) for doc_id, doc in docs]
    chosen = [d for d in decoded if matches(d, where)]
    return [d["$id"] for d in sorted(chosen, key=lambda d: sort_key(d, sort))]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_paged_find_matches_oracle(client, case: Case) -> None:
    docs, where, sort, page_size = case
    coll = client.collection(f"oracle{next(_n)}")
    refused = [doc for doc_id, doc in docs if has_nul_key(doc)]
    if refused:  # a U+0000 field name is refused on write, and the whole batch with it
        with pytest.raises(errors.InvalidArgumentError, match="U\\+0000"):
            coll.insert_many([{**refused[0], "$id": "nul"}])
        docs = admitted(docs)
    if has_nul_key(where):  # and in filter literals
        with pytest.raises(errors.InvalidArgumentError, match="U\\+0000"):
            coll.find(where=where)
        return
    stored = coll.insert_many([{**doc, "$id": doc_id} for doc_id, doc in docs])
    assert [d["$id"] for d in stored] == [doc_id for doc_id, _ in docs]
    expected = oracle(docs, where, sort)
    assert paged(coll, where, sort, page_size, len(docs)) == expected
    assert coll.count(where=where) == len(expected)

    # The same data with the where pinned to a few ids: the router asks only their shards
    # (partition pruning), and the answer is still the oracle's.
    ids = [doc_id for doc_id, _ in docs][::3] + ["absent"]
    pinned = {"$and": [*([where] if where else []), {"$id": {"$in": ids}}]}
    assert pinned_values(pinned, "$id") is not None
    expected = oracle(docs, pinned, sort)
    assert paged(coll, pinned, sort, page_size, len(docs)) == expected
    assert coll.count(where=pinned) == len(expected)


def paged(coll, where, sort, page_size: int, n: int) -> list[str]:
    """Every page of a find, walked with cursors; ids in order, each once."""
    got: list[str] = []
    cursor = None
    for _ in range(n + 2):
        page = coll.find(where=where, sort=sort, limit=page_size, cursor=cursor)
        got.extend(d["$id"] for d in page.items)
        assert len(page.items) <= page_size
        if not page.has_more:
            break
        cursor = page.cursor
    assert len(got) == len(set(got)), "a document appeared on two pages"
    return got
