"""One client cannot exhaust a router with Iterate streams it never reads.

A module-scoped cluster of its own: 100k documents and RSS figures must not disturb (or be
disturbed by) other tests. Router memory is read from /proc/<pid>/status (VmRSS).
"""

from __future__ import annotations

import os
import statistics
import time

import grpc
import pytest

from db4.v1 import router_pb2, router_pb2_grpc
from db4client import Client
from db4client._channel import channel_options
from tests.support.cluster import Cluster
from tests.support.procs import kill_all, wait_until

DOCS = 100_000
BATCH = 5_000
COLLECTION = "many"
# The SDK's own channel options (its receive window stays at 64 KiB: no BDP probing, so "taken by
# the transport" means taken by the reader). Each channel gets its own connection (grpc would
# otherwise share one between channels with the same options), so per-connection limits apply
# per channel.
FLOW_OPTIONS = (*channel_options(None), ("grpc.use_local_subchannel_pool", 1))

# The latency figure compares point reads with and without unread streams: nothing else may run.
pytestmark = pytest.mark.serial


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(pids: list[int], timeout: float = 60) -> None:
    """Wait until router and nodes use under 10% CPU: the streams' first pages are out and
    nothing more is computed while nobody reads."""
    def quiet() -> bool:
        before = [cpu_s(p) for p in pids]
        time.sleep(1)
        return all(cpu_s(p) - b < 0.1 for p, b in zip(pids, before, strict=True))
    wait_until(quiet, timeout, "router and nodes to go quiet")


def p99_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] * 1000


def point_reads(client: Client, ids: list[str]) -> list[float]:
    coll = client.collection(COLLECTION)
    out = []
    for doc_id in ids:
        start = time.perf_counter()
        assert coll.get(doc_id) is not None
        out.append(time.perf_counter() - start)
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("streams"), nodes=3, shards=8)
    try:
        c.start()
        with Client(c.address, timeout=60) as client:
            coll = client.collection(COLLECTION)
            for start in range(0, DOCS, BATCH):
                coll.insert_many([{"$id": f"d{i:06d}", "i": i, "pad": "p" * 100}
                                  for i in range(start, start + BATCH)])
        yield c
    finally:
        c.stop()
        kill_all()


def open_streams(address: str, n: int, per_channel: int, options=FLOW_OPTIONS):
    """n Iterate calls over ceil(n / per_channel) connections, none of them ever read."""
    channels, calls = [], []
    for k in range(n):
        if k % per_channel == 0:
            channels.append(grpc.insecure_channel(address, options=options))
        stub = router_pb2_grpc.Db4Stub(channels[-1])
        calls.append(stub.Iterate(router_pb2.FindRequest(collection=COLLECTION, limit=500)))
    return channels, calls


def test_unread_streams_keep_router_memory_and_latency_bounded(loaded):
    pid = loaded.router.pid
    with Client(loaded.address) as client:
        ids = [f"d{i:06d}" for i in range(0, DOCS, DOCS // 300)]
        point_reads(client, ids[:50])  # warm the channel and routing cache
        idle = point_reads(client, ids)
        start_rss = rss_mb(pid)
        channels, calls = open_streams(loaded.address, 200, per_channel=50)
        try:
            pids = [pid, *(n.pid for n in loaded.nodes)]
            wait_quiet(pids)  # every stream sent what flow control let through, then stopped
            assert not [c for c in calls if c.done()], "a stream was refused or ended"
            busy = point_reads(client, ids)
            peak = max(rss_mb(pid) for _ in range(5) if time.sleep(0.2) is None)
        finally:
            for call in calls:
                call.cancel()
            for ch in channels:
                ch.close()
        print(f"rss start {start_rss:.0f} MiB peak {peak:.0f} MiB; p99 idle "
              f"{p99_ms(idle):.2f} ms, with streams {p99_ms(busy):.2f} ms")
        assert peak < 300, f"router RSS {peak:.0f} MiB with 200 unread streams"
        assert p99_ms(busy) <= 5 * p99_ms(idle)
        wait_until(lambda: rss_mb(pid) < start_rss + 50, 20, "router RSS to return")
        print(f"rss after close {rss_mb(pid):.0f} MiB")


@pytest.fixture
def strict_router(loaded, monkeypatch):
    """A second router of the same cluster with tiny stream limits and a 2 s idle timeout."""
    monkeypatch.setenv("DB4_MAX_STREAMS_PER_CONNECTION", "2")
    monkeypatch.setenv("DB4_MAX_STREAMS", "3")
    monkeypatch.setenv("DB4_STREAM_IDLE_SECONDS", "2")
    router = loaded.add_router()
    try:
        yield router
    finally:
        router.stop(graceful=False)
        loaded.routers.remove(router)


def first_code(call) -> grpc.StatusCode | None:
    """The status a stream fails with before its first page, None when a page comes."""
    try:
        next(call)
    except grpc.RpcError as err:
        return err.code()
    return None


def test_stream_limits_per_connection_and_in_all_and_idle_timeout(strict_router):
    address = strict_router.address
    a = grpc.insecure_channel(address, options=FLOW_OPTIONS)
    b = grpc.insecure_channel(address, options=FLOW_OPTIONS)
    request = router_pb2.FindRequest(collection=COLLECTION, limit=500)
    calls = []

    def stream(channel):
        calls.append(router_pb2_grpc.Db4Stub(channel).Iterate(request))
        return calls[-1]

    try:
        held = [stream(a), stream(a)]
        assert [first_code(c) for c in held] == [None, None]  # admitted: a page came
        # A third stream on connection a is over the per-connection limit (2) ...
        assert first_code(stream(a)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # ... b's first fits the router's total (3), its second does not.
        assert first_code(stream(b)) is None
        refused = stream(b)
        assert first_code(refused) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 3 streams" in refused.details()
        # Unread, a's streams stall; after the idle timeout they end with DEADLINE_EXCEEDED
        # (once the pages the transport had taken are read), never with a silent end.
        time.sleep(3)
        for call in held:
            with pytest.raises(grpc.RpcError) as err:
                for _ in call:
                    pass
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "idle" in err.value.details()
        # Their slots are free again.
        assert first_code(stream(a)) is None
    finally:
        for call in calls:
            call.cancel()
        a.close()
        b.close()


def test_an_iterator_read_slowly_resumes_after_the_idle_timeout(strict_router):
    """The router lets go of a stream its reader left idle (2 s here); the SDK's iterator asks
    again from its cursor when the program reads on: every document once, in order."""
    where = {"i": {"$lt": 3000}}
    with Client(strict_router.address) as client:
        docs = client.collection(COLLECTION).iterate(where=where, sort=[("i", "asc")],
                                                     page_size=500)
        first = next(docs)
        time.sleep(3)  # past the router's idle timeout
        rest = list(docs)
    assert [d["i"] for d in [first, *rest]] == list(range(3000))
