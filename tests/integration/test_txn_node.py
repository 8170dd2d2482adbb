"""Nodes as two-phase-commit participants, spoken to directly (real etcd and node processes):
prepare and commit across two shards; waiting writes and reads; and crashes: a prepared
transaction left by kill -9 is resolved after restart through etcd (abort when nobody decided,
the recorded decision otherwise), also when the node dies between its intents and its vote."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import time
import uuid

import aetcd
import apsw
import grpc
import pytest

from db4.v1 import node_pb2
from db4core.hashing import token_for
from db4core.topology import Keys
from db4core.txn import ABORT, COMMIT, Decision
from tests.integration.test_ownership import node_stub, read_topology
from tests.support.cluster import Cluster
from tests.support.procs import Node, wait_until

KEYS = Keys("default")
_ids = itertools.count()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("txn-node"), nodes=2, shards=4)
    try:
        yield c.start()
    finally:
        c.stop()


def etcd_call(cluster, fn):
    async def go():
        _, port = cluster.etcd.url.rsplit(":", 1)
        async with aetcd.Client("127.0.0.1", int(port)) as etcd:
            return await fn(etcd)

    return asyncio.run(go())


def decision_of(cluster, txid: str) -> Decision | None:
    found = etcd_call(cluster, lambda etcd: etcd.get(KEYS.txn(txid)))
    return Decision.parse(found.value) if found is not None else None


def id_on(topo, shard: str) -> str:
    """A fresh document id whose token the shard owns."""
    while True:
        doc_id = f"d{next(_ids)}"
        if topo.shard_for_token(token_for(doc_id)) == shard:
            return doc_id


def create(coll: str, doc_id: str, **fields) -> node_pb2.WriteOp:
    return node_pb2.WriteOp(kind=node_pb2.OP_KIND_CREATE, collection=coll, id=doc_id,
                            token=token_for(doc_id), body=json.dumps(fields).encode(),
                            partition_key="$id")


def prepare(cluster, topo, shard: str, txid: str, ops, participants, in_doubt_ms=0):
    stub = node_stub(cluster.node(topo.node_of(shard)))
    return stub.Prepare(node_pb2.PrepareRequest(
        epoch=topo.epoch, shard_id=shard, txid=txid, ops=ops, participants=participants,
        in_doubt_ms=in_doubt_ms), timeout=10)


def resolve(cluster, topo, shard: str, txid: str, commit: bool) -> node_pb2.ResolveResponse:
    stub = node_stub(cluster.node(topo.node_of(shard)))
    call = stub.CommitPrepared if commit else stub.AbortPrepared
    return call(node_pb2.ResolveRequest(shard_id=shard, txid=txid), timeout=10)


def read(cluster, topo, shard: str, coll: str, doc_id: str, timeout: float = 10) -> dict | None:
    stub = node_stub(cluster.node(topo.node_of(shard)))
    item = stub.Read(node_pb2.ReadRequest(epoch=topo.epoch, shard_id=shard, collection=coll,
                                          ids=[doc_id], tokens=[token_for(doc_id)]),
                     timeout=timeout).items[0]
    return json.loads(item.document) if item.found else None


def shard_file(cluster, topo, shard: str) -> str:
    node = cluster.node(topo.node_of(shard))
    return str(node.data_dir / "shards" / f"{shard}.db")


def sql_count(path: str, sql: str, params=()) -> int:
    conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def restart(cluster, node_id: str, env: dict | None = None, kill: bool = True) -> Node:
    """Stop a node (kill -9 by default) and start it on the same port and data, with env."""
    old = cluster.node(node_id)
    old.stop(graceful=not kill)
    new = Node(node_id, cluster.root, cluster.etcd.url, port=old.port, env=env)
    cluster.nodes[cluster.nodes.index(old)] = new
    return new.start().wait_ready()


def test_prepare_on_two_shards_then_commit(cluster):
    topo = read_topology(cluster)
    s1, s2 = sorted(topo.ring.shards)[:2]
    a, b = id_on(topo, s1), id_on(topo, s2)
    txid = uuid.uuid4().hex
    r1 = prepare(cluster, topo, s1, txid, [create("tx", a, n=1)], [s1, s2])
    prepare(cluster, topo, s2, txid, [create("tx", b, n=2)], [s1, s2])
    assert json.loads(r1.results[0].document)["n"] == 1
    again = prepare(cluster, topo, s1, txid, [create("tx", a, n=1)], [s1, s2])
    assert again.results[0].document == r1.results[0].document  # idempotent: the same answer

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # A reader and a writer meeting the prepared key wait for the decision, not fail.
        reading = pool.submit(read, cluster, topo, s1, "tx", a)
        update = node_pb2.WriteOp(kind=node_pb2.OP_KIND_INCREMENT, collection="tx", id=a,
                                  token=token_for(a), body=b'{"n": 10}', partition_key="$id")
        writing = pool.submit(node_stub(cluster.node(topo.node_of(s1))).Write,
                              node_pb2.WriteRequest(epoch=topo.epoch, shard_id=s1, ops=[update]),
                              timeout=10)
        time.sleep(0.3)
        assert not reading.done() and not writing.done()
        done = [resolve(cluster, topo, s, txid, commit=True) for s in (s1, s2)]
        assert all(r.had_intents and r.last_lsn > 0 for r in done)
        assert reading.result()["n"] == 1  # the committed document, never the absent one
        assert json.loads(writing.result().results[0].document)["n"] == 11

    assert read(cluster, topo, s2, "tx", b)["n"] == 2
    assert not resolve(cluster, topo, s1, txid, commit=True).had_intents  # acknowledged again
    assert sql_count(shard_file(cluster, topo, s1),
                     "SELECT count(*) FROM changes WHERE txid = ?", (txid,)) == 1


def test_a_write_on_a_key_still_prepared_is_locked(cluster):
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[0]
    doc_id = id_on(topo, shard)
    txid = uuid.uuid4().hex
    prepare(cluster, topo, shard, txid, [create("tx", doc_id, n=1)], [shard], in_doubt_ms=60_000)
    stub = node_stub(cluster.node(topo.node_of(shard)))
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        stub.Write(node_pb2.WriteRequest(epoch=topo.epoch, shard_id=shard,
                                         ops=[create("tx", doc_id, n=2)]), timeout=10)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert dict(err.value.trailing_metadata())["db4-reason"] == "locked"
    waited = time.monotonic() - started
    assert waited > 1.8, waited  # it waited for the lock (2 s), then gave up
    assert waited < 5, waited
    assert not resolve(cluster, topo, shard, uuid.uuid4().hex, commit=False).had_intents
    assert resolve(cluster, topo, shard, txid, commit=False).had_intents
    assert read(cluster, topo, shard, "tx", doc_id) is None


def test_increment_and_condition_on_the_wire(cluster):
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[0]
    doc_id = id_on(topo, shard)
    stub = node_stub(cluster.node(topo.node_of(shard)))
    stub.Write(node_pb2.WriteRequest(epoch=topo.epoch, shard_id=shard,
                                     ops=[create("tx", doc_id, n=1)]))
    op = node_pb2.WriteOp(kind=node_pb2.OP_KIND_INCREMENT, collection="tx", id=doc_id,
                          token=token_for(doc_id), body=b'{"n": 2}', partition_key="$id",
                          condition=b'{"n": {"$gt": 5}}')
    with pytest.raises(grpc.RpcError) as err:
        stub.Write(node_pb2.WriteRequest(epoch=topo.epoch, shard_id=shard, ops=[op]))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["db4-reason"] == "condition_failed"
    op.condition = b'{"n": 1}'
    done = stub.Write(node_pb2.WriteRequest(epoch=topo.epoch, shard_id=shard, ops=[op]))
    assert json.loads(done.results[0].document)["n"] == 3


def test_a_prepared_txn_of_a_killed_node_is_aborted_after_restart(cluster):
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[1]
    doc_id = id_on(topo, shard)
    txid = uuid.uuid4().hex
    prepare(cluster, topo, shard, txid, [create("tx", doc_id, n=1)], [shard, "elsewhere"],
            in_doubt_ms=500)
    restart(cluster, topo.node_of(shard))
    path = shard_file(cluster, topo, shard)
    wait_until(lambda: sql_count(path, "SELECT count(*) FROM txn_prepared") == 0, 5,
               "the in-doubt transaction to be resolved")
    decision = decision_of(cluster, txid)
    assert decision is not None and decision.decision == ABORT
    assert decision.participants == [shard, "elsewhere"]
    assert decision.by == f"node:{topo.node_of(shard)}"
    assert sql_count(path, "SELECT count(*) FROM txn_locks") == 0
    assert sql_count(path, "SELECT count(*) FROM changes WHERE txid = ?", (txid,)) == 0
    assert read(cluster, topo, shard, "tx", doc_id) is None


def test_a_recorded_commit_is_applied_after_restart(cluster):
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[2]
    doc_id = id_on(topo, shard)
    txid = uuid.uuid4().hex
    prepare(cluster, topo, shard, txid, [create("tx", doc_id, n=7)], [shard], in_doubt_ms=500)
    node_id = topo.node_of(shard)
    cluster.node(node_id).stop(graceful=False)
    record = Decision(COMMIT, [shard], by="router").encode()
    etcd_call(cluster, lambda etcd: etcd.put(KEYS.txn(txid), record))
    restart(cluster, node_id)
    wait_until(lambda: read(cluster, topo, shard, "tx", doc_id, timeout=2) is not None, 5,
               "the recorded commit to be applied")
    assert read(cluster, topo, shard, "tx", doc_id)["n"] == 7
    path = shard_file(cluster, topo, shard)
    assert sql_count(path, "SELECT count(*) FROM changes WHERE txid = ?", (txid,)) == 1
    assert decision_of(cluster, txid).decision == COMMIT  # the participant never deletes it


def test_a_node_dying_between_intents_and_vote_aborts_after_restart(cluster):
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[3]
    node_id = topo.node_of(shard)
    node = restart(cluster, node_id, env={"DB4_FAILPOINTS": "participant.after_intent"},
                   kill=False)
    doc_id = id_on(topo, shard)
    txid = uuid.uuid4().hex
    with pytest.raises(grpc.RpcError) as err:
        prepare(cluster, topo, shard, txid, [create("tx", doc_id, n=1)], [shard],
                in_doubt_ms=500)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    wait_until(lambda: not node.alive(), 5, "the failpoint to kill the node")
    assert "failpoint participant.after_intent" in node.new_log()
    path = shard_file(cluster, topo, shard)
    assert sql_count(path, "SELECT count(*) FROM txn_prepared WHERE txid = ?", (txid,)) == 1
    restart(cluster, node_id)
    wait_until(lambda: sql_count(path, "SELECT count(*) FROM txn_prepared") == 0, 5,
               "the in-doubt transaction to be resolved")
    assert decision_of(cluster, txid).decision == ABORT
    assert read(cluster, topo, shard, "tx", doc_id) is None
