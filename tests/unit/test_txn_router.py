"""The coordinator's checks, before anything is sent: txid, isolation, limits, op kinds and
bodies, reads, increment deltas, conditions; and how ops group by shard."""

from __future__ import annotations

import json

import pytest

from db4.v1 import node_pb2, router_pb2
from db4core.errors import InvalidArgumentError
from db4core.hashing import token_for
from db4core.ring import Ring
from db4core.topology import Topology
from db4core.txn import MAX_TXN_OPS
from db4router.claims import claims_of, needs_claim
from db4router.collections import CollectionInfo
from db4router.commit import Committer, PlacedOp, PlacedRead
from db4router.docops import check_condition, check_deltas
from db4router.txn import check_limits, check_op, check_read, serializable


def txn_op(kind=1, collection="c", doc_id="a", body: bytes | dict = b"{}", **kw):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return router_pb2.TxnOp(kind=kind, collection=collection, id=doc_id, body=raw, **kw)


def test_isolation_levels():
    assert serializable(0) and serializable(1) and not serializable(2)
    with pytest.raises(InvalidArgumentError, match="isolation"):
        serializable(3)


@pytest.mark.parametrize("msg, words", [
    (txn_op(kind=0), "unknown op kind"),
    (txn_op(kind=6), "unknown op kind"),
    (txn_op(collection="1bad"), "collection"),
    (txn_op(doc_id=""), "id"),
    (txn_op(body=b"[1]"), "JSON object"),
    (txn_op(body={"$id": "b"}), "not the op's id"),
    (txn_op(body={"$secret": 1}), "reserved"),
    (txn_op(kind=2, body={"$createdAt": 1}), "cannot be changed"),
    (txn_op(kind=5, body={"x": 1}), "no body"),
    (txn_op(partition=b"{"), "partition"),
])
def test_bad_ops_name_their_index(msg, words):
    with pytest.raises(InvalidArgumentError, match=words) as info:
        check_op(3, msg)
    assert info.value.message.startswith("ops[3]: ")


def test_good_ops_parse():
    op = check_op(0, txn_op(kind=4, body={"$id": "a", "n": 1}))
    assert (op.kind, op.doc) == ("upsert", {"$id": "a", "n": 1})
    assert check_op(1, txn_op(kind=5, body=b"")).doc is None
    assert check_op(2, txn_op(kind=2, body={"n": None})).kind == "update"


def test_limits():
    check_limits([txn_op()] * MAX_TXN_OPS)
    with pytest.raises(InvalidArgumentError, match="at most 10000 writes"):
        check_limits([txn_op()] * (MAX_TXN_OPS + 1))
    big = txn_op(body=b"x" * (1 << 20))
    with pytest.raises(InvalidArgumentError, match="bytes"):
        check_limits([big] * 17)


def test_reads():
    check_read(0, router_pb2.TxnRead(collection="c", id="a", version=0))
    with pytest.raises(InvalidArgumentError, match=r"reads\[2\]: version"):
        check_read(2, router_pb2.TxnRead(collection="c", id="a", version=-1))
    with pytest.raises(InvalidArgumentError, match=r"reads\[0\]"):
        check_read(0, router_pb2.TxnRead(collection="c", id="no space", version=1))


@pytest.mark.parametrize("raw", [b"{}", b"[]", b'{"a": "1"}', b'{"a": true}', b'{"$version": 1}',
                                 b'{"a..b": 1}', b'{"a": 1, "a": 2}'])
def test_bad_deltas(raw):
    with pytest.raises(InvalidArgumentError):
        check_deltas(raw)


def test_good_deltas_and_conditions():
    check_deltas(b'{"a": 1, "b.c": -2.5}')
    check_condition(b'{"status": "active", "n": {"$gte": 1}}')
    for bad in (b'{"n": {"$nope": 1}}', b"[]", b"{"):
        with pytest.raises(InvalidArgumentError, match="condition"):
            check_condition(bad)


def test_claims_only_for_chosen_ids_in_field_partitioned_collections():
    assert needs_claim(CollectionInfo("c", "tenantId"), chosen_id=True)
    assert not needs_claim(CollectionInfo("c", "tenantId"), chosen_id=False)
    assert not needs_claim(CollectionInfo("c", "$id"), chosen_id=True)
    assert claims_of("users") == CollectionInfo("$ids:users", "$id")


class _View:
    def __init__(self, topo):
        self.topology = topo

    def require(self):
        return self.topology


class _Cache:
    def shard_for(self, topo, token):
        return topo.shard_for_token(token)


class _Dispatcher:
    def __init__(self, topo):
        self.view = _View(topo)
        self.cache = _Cache()


def test_split_groups_ops_and_reads_by_shard_in_order():
    topo = Topology(1, Ring.build(["s000", "s001", "s002"], 16), {})
    committer = Committer(_Dispatcher(topo))  # type: ignore[arg-type]
    keys = [f"k{i}" for i in range(30)]
    ops = [PlacedOp(token_for(k), node_pb2.WriteOp(id=k)) for k in keys]
    reads = [PlacedRead(token_for(k), node_pb2.ReadCheck(id=k)) for k in keys[:5]]
    parts = committer.split(ops, reads)
    assert [p.shard for p in parts] == sorted(p.shard for p in parts)
    assert sorted(s for p in parts for s in p.slots) == list(range(30))
    for p in parts:
        assert p.slots == sorted(p.slots)
        assert all(topo.shard_for_token(token_for(o.id)) == p.shard for o in p.ops)
        assert all(topo.shard_for_token(token_for(r.id)) == p.shard for r in p.reads)
    assert sum(len(p.reads) for p in parts) == 5
