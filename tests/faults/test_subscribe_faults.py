"""The change feed under kill -9 and a slow reader: a node killed mid-stream (its shards'
tails reopen where they broke), a router killed mid-stream (the subscriber resumes from its last
token on the restarted router), each while writes go on; and a subscriber reading one message a
second while 20k documents are written keeps the router's memory flat.

Ground truth is the change log itself, read from the shard files: the delivered events must be
exactly its records of the collection, once each, in LSN order per shard (so per document).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import apsw
import grpc

from db4.v1 import router_pb2, router_pb2_grpc
from db4client import Client
from tests.faults.test_stream_flow import FLOW_OPTIONS, rss_mb
from tests.integration.cdc_support import Feed

COLL = "feed"


def committed(cluster, collection: str) -> set[tuple[str, int]]:
    """(shard, lsn) of every change-log record of the collection, from the shard files."""
    out = set()
    for path in cluster.shard_files():
        conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            rows = conn.execute("SELECT lsn FROM changes WHERE collection = ?", (collection,))
            out |= {(Path(path).stem, lsn) for (lsn,) in rows}
        finally:
            conn.close()
    return out


class Writer(threading.Thread):
    """Creates, then updates, documents one by one until stopped; failures (a killed node or
    router) are ignored: the change log says what committed."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.stop = threading.Event()
        self.done = 0

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as ch:
            stub = router_pb2_grpc.Db4Stub(ch)
            i = 0
            while not self.stop.is_set():
                doc_id = f"w{i % 150}"
                try:
                    if i < 150:
                        stub.Create(router_pb2.CreateRequest(
                            collection=COLL, document=f'{{"$id": "{doc_id}"}}'.encode()),
                            timeout=5)
                    else:
                        stub.Update(router_pb2.UpdateRequest(
                            collection=COLL, id=doc_id, patch=f'{{"n": {i}}}'.encode()),
                            timeout=5)
                    self.done += 1
                except grpc.RpcError:
                    time.sleep(0.05)
                i += 1
                time.sleep(0.005)


def check_exact(cluster, events) -> None:
    got = [(e.shard, e.lsn) for e in events]
    assert len(got) == len(set(got)), "an event was delivered twice"
    assert set(got) == committed(cluster, COLL), "delivered events differ from the change log"
    for shard in {s for s, _ in got}:
        mine = [lsn for s, lsn in got if s == shard]
        assert mine == sorted(mine), f"shard {shard} out of LSN order"
    versions: dict[str, list[int]] = {}
    for e in events:
        versions.setdefault(e.id, []).append(e.version)
    assert all(v == sorted(v) for v in versions.values()), "a document's changes out of order"


def collect_until_complete(cluster, feed: Feed, events: list, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    want = committed(cluster, COLL)
    while {(e.shard, e.lsn) for e in events} < want:
        assert time.monotonic() < deadline, "the feed did not catch up with the change log"
        events.extend(feed.next_message().events)
    events.extend(feed.until_idle())


def test_node_killed_mid_stream_loses_and_repeats_nothing(fresh_cluster):
    c = fresh_cluster
    with grpc.insecure_channel(c.address) as ch:
        stub = router_pb2_grpc.Db4Stub(ch)
        feed = Feed(stub, collections=[COLL], start="oldest", heartbeat_ms=200)
        writer = Writer(c.address)
        writer.start()
        events: list = []
        try:
            while len(events) < 100:
                events.extend(feed.next_message().events)
            c.restart_node("n2", graceful=False)
            start = len(events)
            while len(events) < start + 200:
                events.extend(feed.next_message().events)
        finally:
            writer.stop.set()
            writer.join()
        collect_until_complete(c, feed, events)
        feed.close()
    assert writer.done >= 300
    check_exact(c, events)


def test_router_killed_mid_stream_resumes_from_the_last_token(fresh_cluster):
    c = fresh_cluster
    writer = Writer(c.address)
    events: list = []
    with grpc.insecure_channel(c.address) as ch:
        feed = Feed(router_pb2_grpc.Db4Stub(ch), collections=[COLL], start="oldest",
                    heartbeat_ms=200)
        writer.start()
        while len(events) < 150:
            events.extend(feed.next_message().events)
        token = feed.token
        c.restart_router(graceful=False)
        try:  # what the transport still held, then the broken stream
            while True:
                events.extend(feed.next_message().events)
                token = feed.token
        except grpc.RpcError as err:
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                  grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    with grpc.insecure_channel(c.address) as ch:
        feed = Feed(router_pb2_grpc.Db4Stub(ch), collections=[COLL], from_token=token,
                    heartbeat_ms=200)
        start = len(events)
        try:
            while len(events) < start + 150:
                events.extend(feed.next_message().events)
        finally:
            writer.stop.set()
            writer.join()
        collect_until_complete(c, feed, events)
        feed.close()
    check_exact(c, events)


def test_slow_subscriber_keeps_router_memory_flat(fresh_cluster):
    c = fresh_cluster
    pid = c.router.pid
    pad = "p" * 4000  # 20k documents: 80 MB of changes, far more than the router may hold
    with Client(c.address, timeout=60) as client:
        coll = client.collection(COLL)
        warm = client.collection("warm")  # writes alone raise RSS to where it stays
        for start in range(0, 5000, 1000):
            warm.insert_many([{"$id": f"w{i}", "pad": pad} for i in range(start, start + 1000)])
        start_rss = rss_mb(pid)
        ch = grpc.insecure_channel(c.address, options=FLOW_OPTIONS)
        feed = Feed(router_pb2_grpc.Db4Stub(ch), collections=[COLL], start="now",
                    heartbeat_ms=200)
        feed.next_message()
        try:
            for start in range(0, 20_000, 1000):
                coll.insert_many([{"$id": f"s{i}", "pad": pad} for i in range(start, start + 1000)])
            peak, got = 0.0, 0
            for _ in range(8):  # one message a second
                got += len(feed.next_message().events)
                peak = max(peak, rss_mb(pid))
                time.sleep(1)
        finally:
            feed.close()
            ch.close()
    print(f"router rss start {start_rss:.0f} MiB peak {peak:.0f} MiB, {got} events read")
    assert got < 20_000  # the reader really is behind
    assert peak < start_rss + 45, f"router RSS grew from {start_rss:.0f} to {peak:.0f} MiB"
