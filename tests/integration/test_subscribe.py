"""Subscribe, Acknowledge and CdcStatus on the shared cluster, with the bare stub: starts,
filters, heartbeats, exact resumes from every token, cross-shard transactions delivered
together, nothing of what did not commit, bad input, durable consumers and their lag."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from db4.v1 import admin_pb2, admin_pb2_grpc, router_pb2
from db4core.changefeed import Token
from tests.integration.cdc_support import Feed, brief, doc, lsns
from tests.integration.txn_support import (
    commit,
    create,
    expect_error,
    get,
    ids_on_distinct_shards,
    op,
    read,
    txid,
)


@pytest.fixture
def admin(cluster):
    with grpc.insecure_channel(cluster.address) as ch:
        yield admin_pb2_grpc.AdminStub(ch)


def update(raw, coll: str, doc_id: str, patch: dict) -> dict:
    resp = raw.Update(router_pb2.UpdateRequest(collection=coll, id=doc_id,
                                               patch=json.dumps(patch).encode()))
    return json.loads(resp.document)


def delete(raw, coll: str, doc_id: str) -> None:
    raw.Delete(router_pb2.DeleteRequest(collection=coll, id=doc_id))


def now_feed(raw, **kw) -> Feed:
    """A feed from "now", once its first heartbeat proved it is open."""
    feed = Feed(raw, start="now", **kw)
    assert feed.until_idle() == []
    return feed


def test_oldest_delivers_history_with_versions_and_ops(raw, coll_name):
    for i in range(5):
        create(raw, coll_name, {"$id": f"d{i}", "n": i})
    update(raw, coll_name, "d1", {"n": 10})
    delete(raw, coll_name, "d2")
    with Feed(raw, collections=[coll_name], start="oldest") as feed:
        events = feed.events(7)
    by_doc: dict[str, list] = {}
    for e in events:
        by_doc.setdefault(e.id, []).append(e)
    assert sorted(by_doc) == [f"d{i}" for i in range(5)]
    assert [(e.op, e.version) for e in by_doc["d1"]] == [("insert", 1), ("update", 2)]
    assert doc(by_doc["d1"][1])["n"] == 10 and json.loads(by_doc["d1"][1].before)["n"] == 1
    assert [(e.op, e.version) for e in by_doc["d2"]] == [("insert", 1), ("delete", 1)]
    assert by_doc["d2"][1].after == b""
    assert all(e.collection == coll_name and e.txid and e.ts > 0 and e.shard for e in events)


def test_now_skips_history(raw, coll_name):
    create(raw, coll_name, {"$id": "old"})
    with now_feed(raw, collections=[coll_name]) as feed:
        create(raw, coll_name, {"$id": "new"})
        assert brief(feed.events(1)) == [("insert", coll_name, "new")]
        assert feed.until_idle() == []


def test_collection_filter_and_no_id_claims(raw, coll_name):
    other = coll_name + "x"
    with now_feed(raw, collections=[coll_name]) as only, now_feed(raw) as every:
        create(raw, coll_name, {"$id": "a"})
        create(raw, other, {"$id": "b"})
        create(raw, coll_name, {"$id": "c"})
        assert [e.id for e in only.events(2)] == ["a", "c"]
        assert only.until_idle() == []
        # Heartbeats sent before the writes reached the feed may wait in the stream ahead of
        # their events: read until the three arrived, then until a heartbeat.
        seen: list = []
        deadline = time.monotonic() + 20
        while len([e for e in seen if e.collection in (coll_name, other)]) < 3:
            assert time.monotonic() < deadline, f"the feed of every collection got {seen}"
            seen.extend(every.next_message().events)
        seen.extend(every.until_idle())
        mine = [e for e in seen if e.collection in (coll_name, other)]
        assert sorted(e.id for e in mine) == ["a", "b", "c"]
        assert not [e for e in seen if e.collection.startswith("$")]


def test_heartbeats_carry_a_token_of_every_shard(raw, cluster):
    with Feed(raw, start="now", heartbeat_ms=100) as feed:
        msgs = [feed.next_message() for _ in range(3)]
    assert all(not m.events for m in msgs)
    token = Token.decode(msgs[-1].token)
    assert len(token.lsn) == cluster.shards


def test_resume_from_every_token_gives_exactly_the_rest(raw, coll_name):
    a, b, c = ids_on_distinct_shards(raw, coll_name, 3)
    with now_feed(raw, collections=[coll_name]) as feed:
        start = feed.token
        for i in range(6):
            create(raw, coll_name, {"$id": f"r{i}"})
        create(raw, coll_name, {"$id": a})
        create(raw, coll_name, {"$id": b})
        commit(raw, ops=[op("update", coll_name, a, {"t": 1}), op("update", coll_name, b,
                         {"t": 1}), op("create", coll_name, c, {"$id": c})])
        update(raw, coll_name, "r0", {"x": 1})
        events = feed.events(12)
    want = [(e.shard, e.lsn) for e in events]
    assert len(set(want)) == 12
    for i, event in enumerate([None, *events]):
        token = event.token if event is not None else start
        with Feed(raw, collections=[coll_name], from_token=token) as again:
            rest = again.events(11 - i + 1) if i < 12 else []
            assert again.until_idle() == [], f"more than the rest after event {i}"
        got = [(e.shard, e.lsn) for e in rest]
        assert sorted(got) == sorted(want[i:]), f"resume after event {i}"


def test_a_cross_shard_transaction_is_contiguous_and_shares_its_txid(raw, coll_name):
    ids = ids_on_distinct_shards(raw, coll_name, 3)
    with now_feed(raw, collections=[coll_name]) as feed:
        tid = txid()
        for n in range(3):  # a plain write before and after, on the same shards
            create(raw, coll_name, {"$id": f"p{n}"})
        commit(raw, tid=tid, ops=[op("create", coll_name, i, {"$id": i}) for i in ids])
        for n in range(3, 6):
            create(raw, coll_name, {"$id": f"p{n}"})
        events = feed.events(9)
    txn = [k for k, e in enumerate(events) if e.txid == tid]
    assert len(txn) == 3 and txn == list(range(txn[0], txn[0] + 3))
    assert sorted(events[k].id for k in txn) == sorted(ids)
    assert len({events[k].shard for k in txn}) == 3


def test_what_did_not_commit_never_appears(raw, coll_name):
    a, b = ids_on_distinct_shards(raw, coll_name, 2)
    with now_feed(raw, collections=[coll_name]) as feed:
        create(raw, coll_name, {"$id": a, "v": 0})
        update(raw, coll_name, a, {"v": 1})
        expect_error(grpc.StatusCode.ABORTED, commit, raw, reads=[read(coll_name, a, 1)],
                     ops=[op("update", coll_name, a, {"v": 9}),
                          op("create", coll_name, b, {"$id": b})])
        expect_error(grpc.StatusCode.ALREADY_EXISTS, create, raw, coll_name, {"$id": a})
        expect_error(grpc.StatusCode.ABORTED, raw.Update, router_pb2.UpdateRequest(
            collection=coll_name, id=a, patch=b'{"v": 5}', expected_version=1))
        create(raw, coll_name, {"$id": "marker"})
        events = feed.events(3)
        assert feed.until_idle() == []
    assert brief(events) == [("insert", coll_name, a), ("update", coll_name, a),
                             ("insert", coll_name, "marker")]
    assert get(raw, coll_name, b)[0] is None


BAD = [
    (dict(collections=["no such name!"]), "collection name"),
    (dict(start="later"), "start must be"),
    (dict(from_token="garbage"), "not a change-feed token"),
    (dict(from_token="v1.!!!"), "corrupt"),
    (dict(consumer="bad name"), "consumer name"),
    (dict(heartbeat_ms=5), "heartbeat_ms"),
]


@pytest.mark.parametrize(("fields", "words"), BAD)
def test_bad_subscribe_input_is_invalid_argument(raw, fields, words):
    call = raw.Subscribe(router_pb2.SubscribeRequest(**fields))
    err = expect_error(grpc.StatusCode.INVALID_ARGUMENT, next, call)
    assert words in err.details()


def test_bad_acknowledge_input(raw, coll_name):
    err = expect_error(grpc.StatusCode.NOT_FOUND, raw.Acknowledge, router_pb2.AcknowledgeRequest(
        consumer=coll_name, token=Token({"shard-000": 1}).encode()))
    assert "not registered" in err.details()
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, raw.Acknowledge,
                 router_pb2.AcknowledgeRequest(consumer=coll_name, token="nope"))
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, raw.Acknowledge,
                 router_pb2.AcknowledgeRequest(consumer="bad name", token=""))


def test_acknowledge_moves_a_consumer_forward_and_cdc_status_shows_its_lag(raw, admin,
                                                                              coll_name):
    name = coll_name
    with now_feed(raw, collections=[coll_name], consumer=name) as feed:
        registered = feed.token
        for i in range(3):
            create(raw, coll_name, {"$id": f"k{i}"})
        events = feed.events(3)
    raw.Acknowledge(router_pb2.AcknowledgeRequest(consumer=name, token=events[1].token))
    raw.Acknowledge(router_pb2.AcknowledgeRequest(consumer=name, token=registered))  # late: no-op
    status = admin.CdcStatus(admin_pb2.CdcStatusRequest())
    me = next(c for c in status.consumers if c.name == name)
    acked = lsns(events[1].token)
    assert dict(me.lsn) == acked
    last = {s.shard_id: s.last_lsn for s in status.shards}
    assert dict(me.lag) == {s: last[s] - acked[s] for s in last}
    assert me.lag[events[2].shard] >= 1  # k2 is not acknowledged
    assert [s.shard_id for s in status.shards] == sorted(last) and all(
        s.node_id and s.last_lsn >= s.first_lsn - 1 for s in status.shards)
    # Subscribing again by name (no token) resumes after the acknowledged event.
    with Feed(raw, collections=[coll_name], consumer=name) as again:
        assert [e.id for e in again.events(1)] == ["k2"]
        assert again.until_idle() == []
