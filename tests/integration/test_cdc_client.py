"""The SDK's change streams and the `db4 cdc` commands against a real cluster: oldest and now,
filters, updates and deletes, resuming from a saved token exactly once, durable consumers,
`db4 cdc tail` across a router restart and `db4 cdc status`."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from db4client import Client, errors
from tests.support.procs import wait_until

HEARTBEAT_MS = 50


def take(sub, n: int, timeout: float = 15.0) -> list:
    """The next `n` events of `sub` (fewer when `timeout` passes first: the caller asserts)."""
    out: list = []
    timer = threading.Timer(timeout, sub.close)
    timer.daemon = True
    timer.start()
    try:
        for event in sub:
            out.append(event)
            if len(out) == n:
                break
    finally:
        timer.cancel()
    return out


def quiet(sub, seconds: float = 0.6) -> list:
    """Whatever else `sub` delivers within `seconds` (expected: nothing)."""
    return take(sub, 1, timeout=seconds)


def test_oldest_delivers_history_in_order_with_documents(client, coll_name):
    users = client.collection(coll_name)
    a = users.create({"$id": "a", "$type": "User", "n": 1})
    users.update("a", {"n": 2})
    users.delete("a")
    client.collection(coll_name + "x").create({"$id": "other"})  # filtered out
    with client.subscribe(collections=[coll_name], heartbeat_ms=HEARTBEAT_MS) as sub:
        events = take(sub, 3)
        assert quiet(sub) == []
    assert [(e.op, e.collection, e.id, e.version) for e in events] == [
        ("insert", coll_name, "a", 1), ("update", coll_name, "a", 2),
        ("delete", coll_name, "a", 2)]
    insert, update, delete = events
    assert insert.before is None and insert.after == a
    assert update.before == a and update.after["n"] == 2 and update.after["$version"] == 2
    assert delete.before == update.after and delete.after is None
    assert len({e.shard for e in events}) == 1 and [e.lsn for e in events] == sorted(
        e.lsn for e in events)
    assert all(e.txid and e.ts >= a["$createdAt"] and e.token for e in events)


def test_now_skips_history_and_heartbeats_move_the_token(client, coll_name):
    users = client.collection(coll_name)
    users.create({"$id": "before"})
    sub = client.subscribe(collections=[coll_name], start="now", heartbeat_ms=HEARTBEAT_MS)
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(take(sub, 1)))
    reader.start()
    wait_until(lambda: sub.token is not None, 10, "the first heartbeat")
    first = sub.token
    users.create({"$id": "after"})
    reader.join(15)
    sub.close()
    assert [e.id for e in got] == ["after"] and sub.token == got[0].token != first
    with client.subscribe(collections=[coll_name], from_token=first,
                          heartbeat_ms=HEARTBEAT_MS) as again:  # a heartbeat's token resumes
        assert [e.id for e in take(again, 1)] == ["after"]
        assert quiet(again) == []


def test_resume_from_a_saved_token_delivers_the_rest_exactly_once(client, coll_name):
    users = client.collection(coll_name)
    for i in range(5):
        users.create({"$id": f"d{i}", "i": i})
    with client.subscribe(collections=[coll_name], heartbeat_ms=HEARTBEAT_MS) as sub:
        first = take(sub, 2)
    saved = first[-1].token
    for i in range(5, 8):
        users.create({"$id": f"d{i}", "i": i})
    users.update("d0", {"i": 100})
    with client.subscribe(collections=[coll_name], from_token=saved,
                          heartbeat_ms=HEARTBEAT_MS) as sub:
        rest = take(sub, 7)
        assert quiet(sub) == []
    seen = [(e.op, e.id) for e in first + rest]
    assert sorted(seen) == sorted([("insert", f"d{i}") for i in range(8)] + [("update", "d0")])
    assert len(set(seen)) == len(seen) == 9
    assert {e.token for e in rest}.isdisjoint({e.token for e in first})


def test_durable_consumer_acknowledges_and_resumes_without_a_token(client, coll_name):
    name = "k" + coll_name[-60:]
    users = client.collection(coll_name)
    for i in range(4):
        users.create({"$id": f"d{i}"})
    with client.subscribe(collections=[coll_name], consumer=name,
                          heartbeat_ms=HEARTBEAT_MS) as sub:
        first = take(sub, 2)
        sub.ack()
    status = client.admin.cdc_status()
    me = next(c for c in status["consumers"] if c["name"] == name)
    assert me["lsn"] and all(v >= 0 for v in me["lag"].values())
    assert len(status["shards"]) == 8 and all(
        s["last_lsn"] >= s["first_lsn"] - 1 and s["node_id"] for s in status["shards"])
    assert sum(me["lag"].values()) >= 2  # d2 and d3 at least, not acknowledged
    with client.subscribe(collections=[coll_name], consumer=name,
                          heartbeat_ms=HEARTBEAT_MS) as sub:
        rest = take(sub, 2)
        assert quiet(sub) == []
    assert sorted(e.id for e in first + rest) == ["d0", "d1", "d2", "d3"]


def test_async_subscription_delivers_the_same(cluster, coll_name):
    import asyncio

    from db4client import AsyncClient

    Client(cluster.address).collection(coll_name).create({"$id": "a"})

    async def run():
        async with AsyncClient(cluster.address) as aclient, aclient.subscribe(
                collections=[coll_name]) as sub:
            async for ev in sub:
                return ev

    ev = asyncio.run(asyncio.wait_for(run(), 15))
    assert (ev.op, ev.id, ev.collection) == ("insert", "a", coll_name)


def test_bad_arguments_never_reach_the_router(client):
    with pytest.raises(errors.InvalidArgumentError):
        client.subscribe(start="yesterday")
    with pytest.raises(errors.InvalidArgumentError):
        client.subscribe(from_token="v1.not-base64!")


# ---- the command line ----

def db4(*argv: str, router: str) -> list[str]:
    return [sys.executable, "-m", "db4client.cli", *argv, "--router", router]


class Lines:
    """A child's stdout, read line by line on a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.put(line)

    def take(self, n: int, timeout: float = 20.0) -> list[dict]:
        end, out = time.monotonic() + timeout, []
        while len(out) < n:
            try:
                out.append(json.loads(self.lines.get(timeout=max(0.01, end - time.monotonic()))))
            except queue.Empty:
                break
        return out


def test_cdc_tail_prints_json_lines_across_a_router_restart(cluster, client, coll_name):
    users = client.collection(coll_name)
    users.create({"$id": "a", "$type": "T"})
    proc = subprocess.Popen(db4("cdc", "tail", "--collection", coll_name,
                                router=cluster.address),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = Lines(proc)
        first = out.take(1)
        assert [(e["op"], e["id"], e["after"]["$type"]) for e in first] == [("insert", "a", "T")]
        assert list(first[0]) == ["op", "collection", "id", "before", "after", "version",
                                  "shard", "lsn", "txid", "ts", "token"]
        cluster.restart_router(graceful=False)
        for i in range(3):
            users.create({"$id": f"b{i}"})
        users.delete("a")
        rest = out.take(4)
        assert [(e["op"], e["id"]) for e in rest if e["op"] == "delete"] == [("delete", "a")]
        assert sorted(e["id"] for e in rest) == ["a", "b0", "b1", "b2"]
        assert out.take(1, timeout=0.6) == []  # nothing twice
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cdc_status_prints_shards_and_consumers(cluster, client, coll_name):
    name = "s" + coll_name[-60:]
    client.collection(coll_name).create({"$id": "a"})
    with client.subscribe(collections=[coll_name], consumer=name) as sub:
        take(sub, 1)
        sub.ack()
    done = subprocess.run(db4("cdc", "status", router=cluster.address), capture_output=True,
                          text=True, timeout=30, env={**os.environ})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["shard", "node", "first_lsn", "last_lsn", "entries", "bytes",
                                "checkpoint"]
    status = client.admin.cdc_status()
    for shard, line in zip(status["shards"], lines[1:9], strict=True):
        cells = line.split()
        assert cells[0] == shard["shard_id"] and cells[1] == shard["node_id"]
        assert int(cells[3]) <= shard["last_lsn"]
    consumer_line = next(line for line in lines if line.split()[:1] == [name])
    assert int(consumer_line.split()[1]) >= 0
    as_json = subprocess.run(db4("cdc", "status", "--json", router=cluster.address),
                             capture_output=True, text=True, timeout=30)
    assert name in [c["name"] for c in json.loads(as_json.stdout)["consumers"]]
