"""A router killed in the middle of a two-phase commit (failpoints): after the decision record,
the participants apply the commit on their own and the janitor of a surviving router deletes
the record; after only some Prepares, the participants record abort and nothing is written."""

from __future__ import annotations

import time

import grpc

from db4.v1 import router_pb2, router_pb2_grpc
from db4core.txn import DEFAULT_IN_DOUBT_S
from db4router.janitor import JANITOR_AGE_S, JANITOR_INTERVAL_S
from tests.integration.txn_support import (
    EtcdGateway,
    commit,
    create,
    get,
    ids_on_distinct_shards,
    op,
)
from tests.support.procs import Router


def _armed_router(cluster, name: str, failpoint: str) -> Router:
    router = Router(cluster.root, cluster.etcd.url, shards=cluster.shards,
                    min_nodes=len(cluster.nodes), name=name,
                    env={"DB4_FAILPOINTS": failpoint})
    cluster.routers.append(router.start().wait_ready())
    return router


def _crash_commit(router: Router, ops) -> None:
    with grpc.insecure_channel(router.address) as ch:
        try:
            commit(router_pb2_grpc.Db4Stub(ch), ops=ops)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAVAILABLE, err
        else:
            raise AssertionError("the router should have died at its failpoint")
    assert router.popen is not None
    router.popen.wait(timeout=10)


def test_coordinator_killed_after_decision_or_after_some_prepares(fresh_cluster):
    cluster = fresh_cluster
    etcd = EtcdGateway(cluster.etcd.url)
    with grpc.insecure_channel(cluster.address) as ch:
        raw = router_pb2_grpc.Db4Stub(ch)
        raw.CreateCollection(router_pb2.CreateCollectionRequest(name="acc"))
        a, b, c, d = ids_on_distinct_shards(raw, "acc", 4)
        for key in (a, b, c, d):
            create(raw, "acc", {"$id": key, "n": 0})
        decided = _armed_router(cluster, "decided", "coordinator.after_decision")
        _crash_commit(decided, [op("update", "acc", a, {"n": 1}),
                                op("update", "acc", b, {"n": 1})])
        assert etcd.count("txns/") == 1  # commit recorded, nobody told
        half = _armed_router(cluster, "half", "coordinator.after_some_prepares")
        _crash_commit(half, [op("update", "acc", c, {"n": 1}),
                             op("update", "acc", d, {"n": 1})])
        # reads wait for prepared keys: once the participants resolve, each read is final
        time.sleep(DEFAULT_IN_DOUBT_S + 1.5)
        assert [get(raw, "acc", k)[0]["n"] for k in (a, b, c, d)] == [1, 1, 0, 0]
        deadline = time.monotonic() + JANITOR_AGE_S + 2 * JANITOR_INTERVAL_S + 5
        while etcd.count("txns/") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert etcd.count("txns/") == 0
        assert cluster.change_count("acc") == 4 + 2
