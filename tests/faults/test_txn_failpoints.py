"""Two-phase commit survives kill -9 of the coordinator or a participant at every named point.

Each test arms one failpoint (DB4_FAILPOINTS) in one process, runs a transaction over two shards
on two nodes through it, lets the process die there, restarts it, and checks that within 5 s the
transaction is wholly committed or wholly absent (which one is fixed by where it died), every
lock is released, and no acknowledged commit is lost.
"""

from __future__ import annotations

import signal
import time

import pytest

from db4client import Client, errors
from tests.support.cluster import Cluster
from tests.support.procs import Node, Router

SETTLE_S = 5.0


def two_ids_on_two_nodes(client: Client, node_id: str) -> tuple[str, str]:
    """An account on a shard of `node_id` and one on a shard of another node."""
    mine = other = None
    i = 0
    while mine is None or other is None:
        doc_id = f"acct-{i}"
        on = client.shard_info("acct", doc_id)["node_id"]
        if on == node_id and mine is None:
            mine = doc_id
        elif on != node_id and other is None:
            other = doc_id
        i += 1
    return mine, other


def transfer(client: Client, a: str, b: str) -> None:
    with client.transaction() as tx:
        tx.update("acct", a, {"balance": tx.get("acct", a)["balance"] - 10})
        tx.update("acct", b, {"balance": tx.get("acct", b)["balance"] + 10})


def settled(client: Client, ids: tuple[str, str]) -> dict[str, int]:
    """Balances once a transaction over both keys commits (no lock left), within SETTLE_S."""
    deadline = time.monotonic() + SETTLE_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with client.transaction() as tx:
                got = {i: tx.get("acct", i)["balance"] for i in ids}
                for i in ids:
                    tx.update("acct", i, {"probe": True})
            return got
        except (errors.TransactionAbortedError, errors.UnavailableError,
                errors.DeadlineExceededError) as err:
            last = err
            time.sleep(0.1)
    raise AssertionError(f"keys still locked or unreachable {SETTLE_S} s after restart: {last}")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, nodes=2, shards=4)
    try:
        yield c
    finally:
        c.stop()


def seed(client: Client) -> tuple[str, str]:
    a, b = two_ids_on_two_nodes(client, "n1")
    for doc_id in (a, b):
        client.collection("acct").create({"$id": doc_id, "balance": 100})
    return a, b


@pytest.mark.parametrize("point,committed", [
    ("coordinator.before_prepare", False),
    ("coordinator.after_some_prepares", False),
    ("coordinator.after_decision", True),
    ("coordinator.after_one_commit", True),
])
def test_coordinator_killed(cluster, point, committed):
    cluster.start()
    with Client(cluster.address, timeout=10) as client:
        a, b = seed(client)
        doomed = Router(cluster.root, cluster.etcd.url, shards=cluster.shards, min_nodes=2,
                        name="doomed", env={"DB4_FAILPOINTS": point}).start().wait_ready()
        cluster.routers.append(doomed)
        with Client(doomed.address, timeout=10) as through_doomed, \
                pytest.raises(errors.UnavailableError):
            transfer(through_doomed, a, b)
        assert doomed.popen.wait(10) == -signal.SIGKILL  # it died at the failpoint
        assert f"failpoint {point}" in doomed.log_tail(50)
        restarted = Router(cluster.root, cluster.etcd.url, port=doomed.port,
                           shards=cluster.shards, min_nodes=2, name="restarted")
        cluster.routers.append(restarted.start().wait_ready())
        balances = settled(client, (a, b))
        assert balances == ({a: 90, b: 110} if committed else {a: 100, b: 100})


@pytest.mark.parametrize("point,committed", [
    ("participant.after_intent", False),
    ("participant.after_commit", True),
])
def test_participant_killed(cluster, point, committed):
    cluster.nodes[0] = Node("n1", cluster.root, cluster.etcd.url,
                            env={"DB4_FAILPOINTS": point})
    cluster.start()
    with Client(cluster.address, timeout=10) as client:
        a, b = seed(client)
        before = cluster.change_count("acct")
        if committed:
            transfer(client, a, b)  # acknowledged: the decision is in etcd before n1 died
        else:
            with pytest.raises(errors.Db4Error):
                transfer(client, a, b)
        assert cluster.node("n1").popen.wait(10) == -signal.SIGKILL
        assert f"failpoint {point}" in cluster.node("n1").log_tail(50)
        cluster.restart_node("n1", graceful=False)
        balances = settled(client, (a, b))
        assert balances == ({a: 90, b: 110} if committed else {a: 100, b: 100})
        # The transaction's records reached the change log only if it committed (2 updates),
        # plus the 2 probe updates of settled().
        assert cluster.change_count("acct") == before + (2 if committed else 0) + 2
