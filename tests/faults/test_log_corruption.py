"""A change-log record damaged on disk while its node is down: after the restart TailChanges
serves every record before it, then ends with DATA_LOSS naming the shard and LSN, and never
sends that record or any after it."""

from __future__ import annotations

import apsw
import grpc

from db4.v1 import node_pb2
from tests.integration.test_ownership import node_stub, read_topology
from tests.integration.test_txn_node import create, id_on
from tests.support.procs import Node


def test_a_corrupt_record_is_data_loss_and_never_sent(fresh_cluster):
    cluster = fresh_cluster
    topo = read_topology(cluster)
    shard = sorted(topo.ring.shards)[0]
    node = cluster.node(topo.node_of(shard))
    ops = [create("dl", id_on(topo, shard), n=i) for i in range(6)]
    for o in ops:  # one record per write: LSNs 1..6
        node_stub(node).Write(node_pb2.WriteRequest(epoch=topo.epoch, shard_id=shard, ops=[o]),
                              timeout=10)
    node.stop(graceful=True)
    path = str(node.data_dir / "shards" / f"{shard}.db")
    conn = apsw.Connection(path)
    try:
        # Flip one character of record 4's document, leaving its stored CRC as it was.
        conn.execute("UPDATE changes SET after = replace(after, '\"n\":3', '\"n\":8') "
                     "WHERE lsn = 4")
        assert conn.changes() == 1
    finally:
        conn.close()
    node = Node(node.node_id, cluster.root, cluster.etcd.url, port=node.port)
    cluster.nodes[[n.node_id for n in cluster.nodes].index(node.node_id)] = node
    node.start().wait_ready()

    stub = node_stub(node)
    got: list[int] = []
    call = stub.TailChanges(node_pb2.TailChangesRequest(shard_id=shard), timeout=10)
    try:
        for msg in call:
            got += [r.lsn for r in msg.records]
        raise AssertionError("the stream ended without an error")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.DATA_LOSS, err.details()
        assert err.details() == (f"change-log record 4 of shard {shard} fails its CRC32C "
                                 "check; it is not served")
    assert got == [1, 2, 3]
    again = stub.TailChanges(node_pb2.TailChangesRequest(shard_id=shard, after_lsn=3),
                             timeout=10)
    try:
        sent = [r.lsn for msg in again for r in msg.records]
        raise AssertionError(f"no error; records {sent}")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.DATA_LOSS and "record 4" in err.details()
    # A reader placed past the damaged record on purpose gets the records after it.
    after = stub.TailChanges(node_pb2.TailChangesRequest(shard_id=shard, after_lsn=4,
                                                         heartbeat_ms=100), timeout=10)
    try:
        assert [r.lsn for r in next(after).records] == [5, 6]
    finally:
        after.cancel()
