"""One router leads (etcd key `leader`, under its lease) and runs the hot-shard controller. When
the leader is killed another takes over once the lease expires; when it stops gracefully it
hands over at once."""

from __future__ import annotations

import time

from db4client import Client
from tests.support.cluster import Cluster


def _leader_seen_by(address: str, wanted, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    with Client(address, timeout=5) as client:
        while True:
            leader = client.admin.status()["leader"]
            if wanted(leader) or time.monotonic() > deadline:
                return leader
            time.sleep(0.2)


def test_another_router_leads_when_the_leader_dies_or_stops(tmp_path):
    c = Cluster(tmp_path, nodes=1, shards=2)
    try:
        c.start()
        c.add_router()
        c.add_router()
        addresses = [r.address for r in c.routers]
        first = _leader_seen_by(addresses[0], lambda x: x in addresses, 10)
        assert first in addresses
        # every router reads the same leader
        assert {_leader_seen_by(a, lambda x: x == first, 5) for a in addresses} == {first}

        killed = next(r for r in c.routers if r.address == first)
        killed.stop(graceful=False)
        rest = [r for r in c.routers if r is not killed]
        t = time.monotonic()
        second = _leader_seen_by(rest[0].address, lambda x: x in (r.address for r in rest), 20)
        assert second in [r.address for r in rest], second
        assert time.monotonic() - t < 15, "the lease should have expired and a router taken over"

        stopped = next(r for r in rest if r.address == second)
        stopped.stop(graceful=True)
        last = next(r for r in rest if r is not stopped)
        t = time.monotonic()
        assert _leader_seen_by(last.address, lambda x: x == last.address, 10) == last.address
        assert time.monotonic() - t < 5, "a graceful stop hands the leadership over at once"
    finally:
        c.stop()
