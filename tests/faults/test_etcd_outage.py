"""etcd down: what the cluster already knows keeps serving; what needs etcd is UNAVAILABLE."""

from __future__ import annotations

import time

import pytest

from db4client import Client, errors


def test_etcd_outage_and_return(fresh_cluster):
    c = fresh_cluster
    with Client(c.address, timeout=10) as client:
        users = client.collection("users")
        docs = [users.create({"i": i}) for i in range(20)]
        c.etcd.stop(graceful=False)
        # Ring, placement and collection options are cached: reads and writes go on.
        assert all(users.get(d["$id"]) == d for d in docs)
        assert users.update(docs[0]["$id"], {"during": True})["$version"] == 2
        # A new collection must be recorded in etcd first: retriable UNAVAILABLE, not INTERNAL.
        with pytest.raises(errors.UnavailableError):
            client.collection("brand_new").create({"x": 1})
        # A long outage: gRPC's default reconnect backoff would by now wait several seconds
        # after etcd is back. Reads keep working all along.
        until = time.monotonic() + 8
        while time.monotonic() < until:
            assert users.get(docs[1]["$id"]) == docs[1]
            time.sleep(0.2)
        c.etcd.start().wait_ready()
        # The first write that needs etcd once it is back succeeds.
        assert client.collection("brand_new").create({"x": 1})["$version"] == 1
        assert users.get(docs[0]["$id"])["during"] is True
