"""TailChanges and LogStats on real node processes (etcd, two nodes, a router that creates the
topology): the log from a position, commits pushed within milliseconds, heartbeats, ownership,
participants of a cross-shard commit, and OUT_OF_RANGE once the checkpoint and tiny retention
limits let the node truncate."""

from __future__ import annotations

import json
import time
import uuid

import grpc
import pytest

from db4.v1 import node_pb2
from tests.integration.test_ownership import node_stub, read_topology
from tests.integration.test_txn_node import create, id_on, prepare, resolve
from tests.integration.txn_support import expect_error, reason
from tests.support.cluster import Cluster
from tests.support.etcd_gateway import EtcdGateway
from tests.support.procs import wait_until

COLL = "tail"
HOLD = "consumers/hold"  # a consumer that acknowledged nothing: every log is kept
TINY = {"DB4_CDC_RETENTION_ENTRIES": "2", "DB4_CDC_RETENTION_BYTES": "0",
        "DB4_CDC_RETENTION_SECONDS": "0", "DB4_CDC_TRUNCATE_INTERVAL_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("node-tail"), nodes=2, shards=4)
    for node in c.nodes:
        node.env = dict(TINY)
    try:
        c.start()
        EtcdGateway(c.etcd.url).put(HOLD, json.dumps({"token": "", "lsn": {}, "ts": 0}).encode())
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def topo(cluster):
    return read_topology(cluster)


def stub_for(cluster, topo, shard: str):
    return node_stub(cluster.node(topo.node_of(shard)))


def write(cluster, topo, shard: str, n: int = 1, **fields) -> list[str]:
    ids = [id_on(topo, shard) for _ in range(n)]
    stub_for(cluster, topo, shard).Write(node_pb2.WriteRequest(
        epoch=topo.epoch, shard_id=shard, ops=[create(COLL, i, **fields) for i in ids]),
        timeout=10)
    return ids


def log_stat(cluster, topo, shard: str) -> node_pb2.LogStat:
    resp = stub_for(cluster, topo, shard).LogStats(
        node_pb2.LogStatsRequest(shard_ids=[shard]), timeout=10)
    assert [s.shard_id for s in resp.shards] == [shard]
    return resp.shards[0]


def tail(cluster, topo, shard: str, after: int, **kw):
    return stub_for(cluster, topo, shard).TailChanges(
        node_pb2.TailChangesRequest(shard_id=shard, after_lsn=after, **kw), timeout=30)


def test_tail_from_zero_then_commits_pushed_within_milliseconds(cluster, topo):
    shard = sorted(topo.ring.shards)[0]
    before = log_stat(cluster, topo, shard).last_lsn
    ids = write(cluster, topo, shard, 3, v=1)
    call = tail(cluster, topo, shard, 0, heartbeat_ms=10_000)
    try:
        got = []
        while len(got) < before + 3:
            got += list(next(call).records)
        assert [r.lsn for r in got] == list(range(1, before + 4))
        assert [r.id for r in got[-3:]] == ids and all(r.op == "insert" for r in got[-3:])
        assert json.loads(got[-1].after)["v"] == 1 and got[-1].before == b""
        assert not got[-1].participants  # a single-shard write names no participants
        for _ in range(3):
            started = time.monotonic()
            [new] = write(cluster, topo, shard)
            msg = next(call)
            assert [r.id for r in msg.records] == [new]
            assert time.monotonic() - started < 0.25  # pushed on commit, not polled
            assert msg.last_lsn == msg.records[-1].lsn
    finally:
        call.cancel()


def test_an_idle_tail_gets_heartbeats_with_the_last_lsn(cluster, topo):
    shard = sorted(topo.ring.shards)[1]
    write(cluster, topo, shard, 2)
    last = log_stat(cluster, topo, shard).last_lsn
    call = tail(cluster, topo, shard, last, heartbeat_ms=200)
    try:
        started = time.monotonic()
        beats = [next(call) for _ in range(3)]
        assert all(not b.records and b.last_lsn == last for b in beats)
        assert 0.5 < time.monotonic() - started < 2.0
    finally:
        call.cancel()


def test_max_records_bounds_each_message(cluster, topo):
    shard = sorted(topo.ring.shards)[1]
    write(cluster, topo, shard, 5)
    last = log_stat(cluster, topo, shard).last_lsn
    call = tail(cluster, topo, shard, last - 5, max_records=2)
    try:
        assert [len(next(call).records) for _ in range(3)] == [2, 2, 1]
    finally:
        call.cancel()


def test_a_shard_placed_elsewhere_is_wrong_shard(cluster, topo):
    shard = sorted(topo.ring.shards)[0]
    other = next(n for n in cluster.nodes if n.node_id != topo.node_of(shard))
    call = node_stub(other).TailChanges(node_pb2.TailChangesRequest(shard_id=shard), timeout=5)
    err = expect_error(grpc.StatusCode.FAILED_PRECONDITION, next, call)
    assert reason(err) == "wrong_shard"


def test_a_two_phase_commit_names_its_participants(cluster, topo):
    s1, s2 = sorted(topo.ring.shards)[2:4]
    starts = {s: log_stat(cluster, topo, s).last_lsn for s in (s1, s2)}
    txid = uuid.uuid4().hex
    ids = {s: id_on(topo, s) for s in (s1, s2)}
    for s in (s2, s1):
        prepare(cluster, topo, s, txid, [create(COLL, ids[s], n=1)], [s2, s1])
    for s in (s1, s2):
        assert resolve(cluster, topo, s, txid, commit=True).had_intents
    for s in (s1, s2):
        call = tail(cluster, topo, s, starts[s])
        try:
            [record] = next(call).records
        finally:
            call.cancel()
        assert (record.txid, record.id) == (txid, ids[s])
        assert list(record.participants) == sorted([s1, s2])


def test_log_stats_report_every_hosted_shard(cluster, topo):
    node = cluster.nodes[0]
    resp = node_stub(node).LogStats(node_pb2.LogStatsRequest(), timeout=10)
    assert resp.node_id == node.node_id
    assert [s.shard_id for s in resp.shards] == topo.shards_on(node.node_id)
    for s in resp.shards:
        assert s.first_lsn <= s.last_lsn + 1 and s.entries == s.last_lsn - s.first_lsn + 1
        assert (s.bytes > 0) == (s.entries > 0) and s.checkpoint == 0


def test_truncated_positions_are_out_of_range(cluster, topo):
    shard = sorted(topo.ring.shards)[0]
    write(cluster, topo, shard, 6)
    last = log_stat(cluster, topo, shard).last_lsn
    gateway = EtcdGateway(cluster.etcd.url)
    # The consumer acknowledged up to last - 1: the retention limit (2 entries) cuts at last - 2.
    gateway.put(HOLD, json.dumps({"token": "", "lsn": {shard: last - 1}, "ts": 0}).encode())
    try:
        wait_until(lambda: log_stat(cluster, topo, shard).first_lsn == last - 1, 10,
                   "the node to truncate the change log")
        stat = log_stat(cluster, topo, shard)
        assert (stat.entries, stat.last_lsn, stat.checkpoint) == (2, last, last - 1)
        err = expect_error(grpc.StatusCode.OUT_OF_RANGE, next, tail(cluster, topo, shard, 0))
        assert f"oldest change-log record kept is LSN {last - 1}" in err.details()
        call = tail(cluster, topo, shard, last - 2)
        try:
            assert [r.lsn for r in next(call).records] == [last - 1, last]
        finally:
            call.cancel()
    finally:
        gateway.put(HOLD, json.dumps({"token": "", "lsn": {}, "ts": 0}).encode())
