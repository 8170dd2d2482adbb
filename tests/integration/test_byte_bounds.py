"""Responses and requests are bounded by bytes on every hop: documents just under the 1 MiB
limit, in numbers whose total passes the 64 MiB transport limit, all go through."""

from __future__ import annotations

import json

import pytest

from db4client import errors
from db4core.documents import MAX_DOCUMENT_BYTES

BIG = 80  # 80 documents of ~1 MiB: 80 MiB, more than one 64 MiB message can hold


def big_doc(i: int, size: int = MAX_DOCUMENT_BYTES - 300) -> dict:
    """A document whose stored form (system fields added) stays just under the limit."""
    doc = {"$id": f"big{i:03d}", "i": i, "pad": ""}
    doc["pad"] = "x" * (size - len(json.dumps(doc, separators=(",", ":"))))
    return doc


@pytest.fixture(scope="module")
def big(client, mode):
    coll = client.collection(f"bytebounds_big_{mode}")
    stored = coll.insert_many([big_doc(i) for i in range(BIG)])
    assert [d["$id"] for d in stored] == [f"big{i:03d}" for i in range(BIG)]
    return coll


def test_insert_many_of_80_documents_near_1mib_is_stored(big):
    assert big.count() == BIG


def test_get_many_returns_every_document_in_order(big):
    ids = [f"big{i:03d}" for i in reversed(range(BIG))] + ["missing"]
    got = big.get_many(ids)
    assert [d["$id"] if d else None for d in got] == ids[:-1] + [None]


def test_find_pages_by_bytes_and_the_cursor_walks_everything_once(big):
    page = big.find(sort=[("i", "asc")], limit=BIG)
    assert 0 < len(page.items) < BIG and page.has_more and page.cursor
    seen = [d["i"] for d in page.items]
    while page.has_more:
        page = big.find(sort=[("i", "asc")], limit=BIG, cursor=page.cursor)
        seen += [d["i"] for d in page.items]
    assert seen == list(range(BIG))


def test_iterate_streams_pages_by_bytes(big):
    assert [d["i"] for d in big.iterate(sort=[("i", "asc")], page_size=BIG)] == list(range(BIG))


def test_iterate_over_150kb_documents(client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([big_doc(i, 150_000) for i in range(500)])  # 75 MB in all
    assert sum(1 for _ in coll.iterate()) == 500


def test_delete_many_of_big_documents(client, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([big_doc(i) for i in range(30)])
    assert coll.delete_many([f"big{i:03d}" for i in range(31)]) == [True] * 30 + [False]


def test_split_insert_many_is_all_or_nothing(client, coll_name):
    """A batch sent in several requests: a later request's failure undoes the earlier ones."""
    coll = client.collection(coll_name)
    coll.create({"$id": "big035", "taken": True})
    with pytest.raises(errors.AlreadyExistsError):
        coll.insert_many([big_doc(i) for i in range(40)])
    assert coll.get_many([f"big{i:03d}" for i in range(40) if i != 35]) == [None] * 39


def test_split_insert_many_refuses_a_repeated_id_before_writing(client, coll_name):
    coll = client.collection(coll_name)
    docs = [big_doc(i) for i in range(30)] + [big_doc(3)]
    with pytest.raises(errors.AlreadyExistsError, match="twice"):
        coll.insert_many(docs)
    assert coll.count() == 0


def test_node_refusal_in_a_batch_names_the_document(client, coll_name):
    """The router checks the document as sent; the node refuses it once the system fields
    take it past 1 MiB, and the error names the document's index in the batch."""
    coll = client.collection(coll_name)
    docs = [{"$id": "a"}, {"$id": "b"}, big_doc(2, MAX_DOCUMENT_BYTES - 5)]
    with pytest.raises(errors.InvalidArgumentError, match=r"documents\[2\]"):
        coll.insert_many(docs)
    assert coll.get_many(["a", "b"]) == [None, None]
