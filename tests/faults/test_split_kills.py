"""A split (or move) under writes and a change-feed subscriber, with one party killed (SIGKILL at
a failpoint) in each state: the leader router, the source node, the target node. The writes are
updates, creates and cross-shard transactions. Afterwards the operation has finished or rolled
back, every acknowledged write is there at its latest version, no document is there twice,
transfers kept the total, and the subscriber saw every change of every document exactly once,
in order. No client sees an error: when a node dies, the router waits out its restart and sends
the writes in flight at the kill again under their txids, which the node answers without
applying them twice."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import aetcd
import apsw
import pytest

from db4client import Client
from db4client.errors import Db4Error
from db4core.config import parse_endpoint
from db4core.topology import Keys
from tests.support.cluster import Cluster
from tests.support.procs import Node, Router, wait_until

TENANTS = [f"t{i}" for i in range(24)]
PER_TENANT = 4
COLL = "kills"
NEW = "kills_new"  # creates
ACCT = "kills_acct"  # cross-shard transfers


class Load:
    """Writers updating documents with increasing `n`, and a subscriber collecting events."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.stop = threading.Event()
        self.acked: dict[str, int] = {}
        self.tried: dict[str, set[int]] = {}
        self.failures: list[BaseException] = []
        self.events: list = []
        self.feed_done = threading.Event()
        self.created: set[str] = set()
        self.transfers = 0
        self.threads = [threading.Thread(target=self._write, args=(k,)) for k in range(2)]
        self.threads += [threading.Thread(target=self._create),
                         threading.Thread(target=self._transfer)]
        self.threads.append(threading.Thread(target=self._subscribe))
        self.opened = threading.Event()

    def start(self) -> None:
        self.threads[-1].start()
        assert self.opened.wait(15)
        for th in self.threads[:-1]:
            th.start()

    def _write(self, k: int) -> None:
        with Client(self.address, timeout=10) as c:
            coll = c.collection(COLL)
            i = k
            while not self.stop.is_set():
                t = TENANTS[i % len(TENANTS)]
                doc_id = f"{t}-{i % PER_TENANT}"
                self.tried.setdefault(doc_id, set()).add(i)
                try:
                    coll.update(doc_id, {"n": i}, partition=t)
                    self.acked[doc_id] = max(self.acked.get(doc_id, -1), i)
                except Db4Error as err:
                    self.failures.append(err)
                    time.sleep(0.05)
                i += 2

    def _create(self) -> None:
        with Client(self.address, timeout=10) as c:
            coll = c.collection(NEW)
            i = 0
            while not self.stop.is_set():
                t = TENANTS[i % len(TENANTS)]
                try:
                    coll.create({"$id": f"{t}-new{i}", "tenant": t})
                    self.created.add(f"{t}-new{i}")
                except Db4Error as err:
                    self.failures.append(err)
                    time.sleep(0.05)
                i += 1

    def _transfer(self) -> None:
        """Cross-shard transactions moving one unit between accounts of two tenants. The only
        writer of the accounts: a conflict cannot happen, so any abort is a failure."""
        with Client(self.address, timeout=10) as c:
            i = 0
            while not self.stop.is_set():
                a, b = TENANTS[i % len(TENANTS)], TENANTS[(i * 5 + 1) % len(TENANTS)]
                i += 1
                if a == b:
                    continue
                try:
                    with c.transaction() as tx:
                        x = tx.get(ACCT, f"acct-{a}", partition=a)
                        y = tx.get(ACCT, f"acct-{b}", partition=b)
                        tx.update(ACCT, f"acct-{a}", {"balance": x["balance"] - 1}, partition=a)
                        tx.update(ACCT, f"acct-{b}", {"balance": y["balance"] + 1}, partition=b)
                    self.transfers += 1
                except Db4Error as err:
                    self.failures.append(err)
                    time.sleep(0.05)

    def _subscribe(self) -> None:
        while not self.feed_done.is_set():
            token = self.events[-1].token if self.events else None
            try:
                with Client(self.address, timeout=10) as c, \
                        c.subscribe(collections=[COLL], from_token=token,
                                    heartbeat_ms=100) as sub:
                    self.opened.set()
                    for event in sub:
                        self.events.append(event)
                        if self.feed_done.is_set():
                            return
            except Db4Error:
                time.sleep(0.2)  # the router died: resume from the last event's token

    def finish(self) -> None:
        self.stop.set()
        for th in self.threads[:-1]:
            th.join()


def verify(client: Client, load: Load) -> None:
    new_ids = [d["$id"] for d in client.collection(NEW).iterate()]
    assert len(new_ids) == len(set(new_ids)), "a created document appears twice"
    assert load.created <= set(new_ids), "an acknowledged create is missing"
    balances = [d["balance"] for d in client.collection(ACCT).iterate()]
    assert len(balances) == len(TENANTS) and sum(balances) == 100 * len(TENANTS), balances
    assert load.transfers > 0 and load.created
    coll = client.collection(COLL)
    docs = list(coll.iterate())
    ids = [d["$id"] for d in docs]
    assert len(ids) == len(set(ids)), "a document appears twice"
    assert set(ids) == {f"{t}-{i}" for t in TENANTS for i in range(PER_TENANT)}
    for d in docs:
        acked = load.acked.get(d["$id"], -1)
        assert d["n"] >= acked or d["n"] == -1 and acked == -1, (d, acked)
        assert d["n"] == -1 or d["n"] in load.tried[d["$id"]]
    final = {d["$id"]: d["$version"] for d in docs}
    wait_until(lambda: _seen_versions(load) == final, 30, "the feed to deliver every change")
    load.feed_done.set()
    coll.update(f"{TENANTS[0]}-0", {"poke": True}, partition=TENANTS[0])  # wake the reader
    per_doc: dict[str, list[int]] = {}
    for e in load.events:
        per_doc.setdefault(e.id, []).append(e.version)
    for doc_id, versions in per_doc.items():
        if doc_id == f"{TENANTS[0]}-0" and versions[-1] == final[doc_id] + 1:
            versions = versions[:-1]
        assert versions == list(range(1, len(versions) + 1)), (doc_id, versions)


def _seen_versions(load: Load) -> dict[str, int]:
    seen: dict[str, int] = {}
    for e in list(load.events):
        seen[e.id] = max(seen.get(e.id, 0), e.version)
    return seen


def pins(c: Cluster) -> list[bytes]:
    """The change-log pins of operations in etcd (`consumers/$op-<id>`), read directly."""

    async def read() -> list[bytes]:
        host, port = parse_endpoint(c.etcd.url)
        etcd = aetcd.Client(host, port)
        try:
            found = await etcd.get_prefix(Keys("default").consumer("$op-"))
            return [kv.key for kv in found]
        finally:
            await etcd.close()

    return asyncio.run(read())


def _fill(client: Client) -> None:
    client.create_collection(COLL, partition_key="tenant")
    client.collection(COLL).insert_many(
        [{"$id": f"{t}-{i}", "tenant": t, "n": -1} for t in TENANTS for i in range(PER_TENANT)])
    client.create_collection(NEW, partition_key="tenant")
    client.create_collection(ACCT, partition_key="tenant")
    client.collection(ACCT).insert_many(
        [{"$id": f"acct-{t}", "tenant": t, "balance": 100} for t in TENANTS])


LEADER_POINTS = ["operation.before_snapshot", "operation.after_install",
                 "operation.catching_up", "operation.after_fence", "operation.after_commit"]


@pytest.mark.parametrize("point", LEADER_POINTS)
def test_the_leader_router_killed_in_each_state(tmp_path, point):
    c = Cluster(tmp_path, nodes=2, shards=2)
    try:
        c.start()
        with Client(c.address, timeout=30) as client:
            _fill(client)
        doomed = Router(c.root, c.etcd.url, shards=c.shards, min_nodes=2, name="doomed",
                        env={"DB4_FAILPOINTS": point}).start().wait_ready()
        c.routers.append(doomed)
        c.routers[0].stop(graceful=True)  # hands the leadership to the doomed router
        c.routers.pop(0)
        with Client(doomed.address, timeout=30) as client:
            wait_until(lambda: client.admin.status()["leader"] == doomed.address, 15,
                       "the doomed router to lead")
        spare = c.add_router()  # takes over once the doomed router's lease expires
        with Client(spare.address, timeout=30) as client:
            load = Load(spare.address)
            load.start()
            time.sleep(0.3)
            shard = client.admin.status()["shards"][0]["shard_id"]
            op = client.admin.split_shard(shard, wait=False)
            assert doomed.popen.wait(30) == -signal.SIGKILL
            assert f"failpoint {point}" in doomed.log_tail(50)
            assert pins(c), "the dead leader left its pin (the next one removes it)"
            op = client.admin.operation(op["op_id"], wait=True)
            assert op["state"] == "done", op
            time.sleep(0.3)
            load.finish()
            verify(client, load)
            assert load.failures == []
            # No pin is left behind: change logs are truncated as before.
            wait_until(lambda: pins(c) == [], 10, "the operation's pin to go")
    finally:
        c.stop()


NODE_POINTS = [("source", "source.mid_snapshot"), ("source", "source.after_fence"),
               ("target", "follower.after_install"), ("target", "follower.after_apply")]


@pytest.mark.parametrize(("party", "point"), NODE_POINTS)
def test_a_node_killed_in_each_state(tmp_path, party, point):
    c = Cluster(tmp_path, nodes=2, shards=2)
    try:
        c.start()
        with Client(c.address, timeout=30) as client:
            _fill(client)
            status = client.admin.status()
            shard = status["shards"][0]
            other = next(n["node_id"] for n in status["nodes"]
                         if n["node_id"] != shard["node_id"])
            victim_id = shard["node_id"] if party == "source" else other
            old = c.node(victim_id)
            old.stop(graceful=True)
            armed = Node(victim_id, c.root, c.etcd.url, port=old.port,
                         env={"DB4_FAILPOINTS": point})
            c.nodes[c.nodes.index(old)] = armed
            armed.start().wait_ready()
            load = Load(c.address)
            load.start()
            time.sleep(0.3)
            op = client.admin.split_shard(shard["shard_id"], node_id=other, wait=False)
            assert armed.popen.wait(30) == -signal.SIGKILL
            assert f"failpoint {point}" in armed.log_tail(50)
            time.sleep(1)
            back = Node(victim_id, c.root, c.etcd.url, port=armed.port)
            c.nodes[c.nodes.index(armed)] = back
            back.start().wait_ready()
            op = client.admin.operation(op["op_id"], wait=True)
            assert op["state"] in ("done", "aborted"), op
            time.sleep(0.3)
            load.finish()
            verify(client, load)
            # The router waits out the node's restart and sends a write in flight at the kill
            # again under its txid (the node answers it, or applies it if it never had).
            assert load.failures == []
    finally:
        c.stop()


def _prepared_on(c: Cluster) -> dict[str, list[str]]:
    """Shard id -> transactions prepared on it, read from the files beside the nodes."""
    out: dict[str, list[str]] = {}
    for path in c.shard_files():
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            txids = [r[0] for r in conn.execute("SELECT txid FROM txn_prepared")]
        finally:
            conn.close()
        if txids:
            out[os.path.basename(path)[:-3]] = txids
    return out


def test_a_transaction_in_doubt_on_a_moving_key_holds_the_cutover_back(tmp_path):
    c = Cluster(tmp_path, nodes=2, shards=2)
    try:
        c.start()
        for old in list(c.nodes):  # transactions stay in doubt longer than a cutover's budget
            old.stop(graceful=True)
            new = Node(old.node_id, c.root, c.etcd.url, port=old.port,
                       env={"DB4_TXN_IN_DOUBT_SECONDS": "8"})
            c.nodes[c.nodes.index(old)] = new
            new.start().wait_ready()
        with Client(c.address, timeout=30) as client:
            shard_of = {}
            i = 0
            while len(shard_of) < 2:
                info = client.shard_info("acct", f"a{i}")
                shard_of.setdefault(info["shard_id"], (f"a{i}", info["token"]))
                i += 1
            for doc_id, _ in shard_of.values():
                client.collection("acct").create({"$id": doc_id, "balance": 100})
            doomed = Router(c.root, c.etcd.url, shards=c.shards, min_nodes=2, name="doomed",
                            env={"DB4_FAILPOINTS": "coordinator.after_some_prepares"}
                            ).start().wait_ready()
            c.routers.append(doomed)
            ids = [doc_id for doc_id, _ in shard_of.values()]
            with Client(doomed.address, timeout=5) as via, \
                    pytest.raises(Db4Error), via.transaction() as tx:
                tx.update("acct", ids[0], {"balance": 90})
                tx.update("acct", ids[1], {"balance": 110})
            assert doomed.popen.wait(10) == -signal.SIGKILL
            prepared = _prepared_on(c)
            assert len(prepared) == 1, prepared
            shard = next(iter(prepared))
            key, token = shard_of[shard]
            # The key held by the transaction in doubt moves: its token is above the split.
            op = client.admin.split_shard(shard, split_token=token - 1)
            assert op["state"] == "done", op
            assert op["cutovers"] >= 1, op  # the first cutover found the transaction prepared
            assert _prepared_on(c) == {}
            balances = [client.collection("acct").get(i)["balance"] for i in ids]
            assert balances in ([100, 100], [90, 110])  # wholly applied or wholly absent
            assert client.shard_info("acct", key)["shard_id"] == op["target_shard"]
            client.collection("acct").update(key, {"balance": 1})  # the key is writable
    finally:
        c.stop()
