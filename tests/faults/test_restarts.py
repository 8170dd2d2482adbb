"""Restarts and transient faults: parts started before etcd wait for it; iterate outlives a router
restart by resuming from its cursor."""

from __future__ import annotations

import threading
import time

import pytest

from db4client import Client
from db4client.errors import UnavailableError
from db4router.dispatch import NODE_DOWN_AFTER_S
from tests.support.cluster import Cluster
from tests.support.procs import Etcd, Node, Router, wait_until

WAIT_LINE = "waiting for etcd"


@pytest.fixture
def procs():
    """Processes a test starts by hand; every one is killed (by PID) afterwards."""
    started: list = []
    yield started
    for proc in started:
        proc.stop(graceful=False)


def waits_for_etcd(proc, tries: int = 3) -> None:
    """proc stays up while etcd is down, says what it waits for, retries, and never crashes."""
    def retried() -> bool:
        proc.check_alive()
        return proc.new_log().count(WAIT_LINE) >= tries
    wait_until(retried, 30, f"{proc.name} to retry etcd {tries} times")
    proc.check_alive()
    assert "Traceback" not in proc.new_log(), proc.new_log()


def test_node_started_while_etcd_is_down_waits_then_serves(tmp_path, procs):
    etcd = Etcd(tmp_path)
    node = Node("n1", tmp_path, etcd.url)
    procs += [etcd, node]
    node.start()
    waits_for_etcd(node)
    etcd.start().wait_ready()
    node.wait_ready(timeout=30)
    router = Router(tmp_path, etcd.url, shards=2, min_nodes=1)
    procs.append(router)
    router.start().wait_ready()
    with Client(router.address) as client:
        doc = client.collection("users").create({"n": 1})
        assert client.collection("users").get(doc["$id"]) == doc


def test_sigterm_stops_a_node_and_a_router_still_waiting_for_etcd(tmp_path, procs):
    etcd = Etcd(tmp_path)
    node, router = Node("n1", tmp_path, etcd.url), Router(tmp_path, etcd.url, min_nodes=1)
    procs += [node, router]
    node.start(), router.start()
    waits_for_etcd(node)
    waits_for_etcd(router)
    assert node.stop(graceful=True, timeout=10) == 0, node.new_log()
    assert router.stop(graceful=True, timeout=10) == 0, router.new_log()


def test_router_started_while_etcd_is_down_waits_then_serves(tmp_path, procs):
    etcd = Etcd(tmp_path)
    router = Router(tmp_path, etcd.url, shards=2, min_nodes=1)
    procs += [etcd, router]
    router.start()
    waits_for_etcd(router)
    etcd.start().wait_ready()
    node = Node("n1", tmp_path, etcd.url)
    procs.append(node)
    node.start().wait_ready()
    router.wait_ready(timeout=60)
    with Client(router.address) as client:
        assert client.collection("users").create({"$id": "a"})["$version"] == 1


def test_iterate_resumes_across_a_router_restart(tmp_path):
    """Half way through an iterate, the router is killed and comes back 0.5 s later (plus its
    start-up time): the stream resumes from its cursor; every document arrives exactly once."""
    with Cluster(tmp_path, nodes=2, shards=4) as cluster, Client(cluster.address) as client:
        users = client.collection("users")
        pad = "x" * 1000  # big enough that the stream cannot sit in the client's buffers
        for start in range(0, 3000, 500):
            users.insert_many([{"$id": f"u{i:05d}", "pad": pad} for i in range(start, start + 500)])
        stream = users.iterate(sort=[("$id", "asc")], page_size=20)
        seen = [next(stream)["$id"] for _ in range(500)]
        old = cluster.routers[0]
        old.stop(graceful=False)
        time.sleep(0.5)
        restarted = Router(cluster.root, cluster.etcd.url, port=old.port, shards=4, min_nodes=2)
        cluster.routers[0] = restarted.start()
        seen += [doc["$id"] for doc in stream]
        assert seen == [f"u{i:05d}" for i in range(3000)]
        restarted.check_alive()


def test_point_calls_wait_out_a_router_restart(tmp_path):
    """The router is killed and comes back a second later (plus its start-up time): a read and a
    write made meanwhile succeed once it is back instead of failing with UNAVAILABLE; the write
    is applied once (it never left the client while nothing listened)."""
    with Cluster(tmp_path, nodes=1, shards=2) as cluster, \
            Client(cluster.address, timeout=10) as client:
        users = client.collection("users")
        first = users.create({"n": 1})
        old = cluster.routers[0]
        old.stop(graceful=False)
        outcome: dict = {}

        def calls() -> None:
            for name, call in (("get", lambda: users.get(first["$id"])),
                               ("create", lambda: users.create({"n": 2}))):
                try:
                    outcome[name] = call()
                except Exception as err:  # noqa: BLE001 - the assertion below shows it
                    outcome[name] = err

        caller = threading.Thread(target=calls)
        caller.start()
        time.sleep(1.0)
        restarted = Router(cluster.root, cluster.etcd.url, port=old.port, shards=2, min_nodes=1)
        cluster.routers[0] = restarted.start()
        caller.join(30)
        assert isinstance(outcome.get("get"), dict) and outcome["get"]["n"] == 1, outcome
        assert isinstance(outcome.get("create"), dict) and outcome["create"]["n"] == 2, outcome
        assert users.count() == 2


def test_a_graceful_node_restart_is_waited_out_by_the_router(tmp_path):
    """A node stopped with SIGTERM releases its registration at once; the router sends calls
    for its shards to its last address meanwhile and waits there, so a rolling restart costs
    clients no error."""
    with Cluster(tmp_path, nodes=2, shards=4) as c, Client(c.address, timeout=30) as client:
        users = client.collection("rolling")
        made = [users.create({"i": i})["$id"] for i in range(40)]
        errors: list = []
        stop = threading.Event()

        def traffic() -> None:
            i = 0
            while not stop.is_set():
                try:
                    made.append(users.create({"i": 1000 + i})["$id"])
                    assert users.get(made[i % len(made)]) is not None
                except Exception as err:  # noqa: BLE001 - every error is a failure here
                    errors.append(err)
                i += 1

        worker = threading.Thread(target=traffic)
        worker.start()
        try:
            time.sleep(0.5)
            c.restart_node("n1", graceful=True)
            time.sleep(0.5)
        finally:
            stop.set()
            worker.join(60)
        assert errors == []
        assert all(users.get(doc_id) is not None for doc_id in made)


def test_with_a_node_down_reads_answer_from_the_nodes_up_and_fail_at_once_naming_it(tmp_path):
    """One node of three is killed and stays down. A `get` without the partition value finds a
    document that a node still up holds (it was UNAVAILABLE); one on the dead node, a count
    and a find are UNAVAILABLE naming the node; `cdc_status` lists the shards of the nodes up
    and names the one down (it failed). The router waits a node out (a restart) until it has
    failed for 10 s with its registration expired: then every call fails at once, so a client
    with a 2 s timeout hears UNAVAILABLE naming the node, not DEADLINE_EXCEEDED (each call
    waited 5 s)."""
    with Cluster(tmp_path, nodes=3, shards=6) as cluster, \
            Client(cluster.address, timeout=30) as client:
        client.create_collection("t", partition_key="tenant")
        coll = client.collection("t")
        coll.insert_many([{"$id": f"d{i}", "tenant": f"t{i}", "i": i} for i in range(60)])
        shards = client.admin.status()["shards"]
        held = {n: {d["$id"] for s in shards if s["node_id"] == n
                    for d in coll.find_in_shard(s["shard_id"], limit=100).items}
                for n in ("n1", "n2", "n3")}
        assert sum(map(len, held.values())) == 60 and all(held.values()), held
        cluster.node("n3").stop(graceful=False)
        up_id, down_id = sorted(held["n1"])[0], sorted(held["n3"])[0]

        began = time.monotonic()
        with pytest.raises(UnavailableError, match="node n3 cannot be reached"):
            coll.count()  # calls wait a restart out, until the node is down for good:
        assert coll.get(up_id)["$id"] == up_id
        wait_until(lambda: not next(n["alive"] for n in client.admin.status()["nodes"]
                                    if n["node_id"] == "n3"), 30, "n3's registration to expire")
        time.sleep(max(0.0, began + NODE_DOWN_AFTER_S + 0.5 - time.monotonic()))
        with Client(cluster.address, timeout=2) as hurried:
            other = hurried.collection("t")
            assert other.get(sorted(held["n2"])[0]) is not None
            for read in (lambda: other.get(down_id), other.count,
                         lambda: other.find({"i": {"$gte": 0}})):
                with pytest.raises(UnavailableError, match="n3 cannot be reached"):
                    read()
        with pytest.raises(UnavailableError, match=f"{down_id!r} of 't' is on no shard"):
            coll.get(down_id)
        with pytest.raises(UnavailableError, match="node n3 cannot be reached"):
            coll.get(down_id, partition=down_id.replace("d", "t"))
        # An operator's status answers for the nodes that are up and names the one down.
        logs = client.admin.cdc_status()["shards"]
        assert {s["shard_id"] for s in logs} == {s["shard_id"] for s in shards}
        for log in logs:
            on_n3 = log["node_id"] == "n3"
            assert ("unreachable" in log) == on_n3, log
            assert on_n3 or log["last_lsn"] > 0
            assert not on_n3 or "node n3 cannot be reached" in log["unreachable"]
