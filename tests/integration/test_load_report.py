"""Nodes report every shard's load to etcd on an interval (load/<node>, on the node's lease), and
`Admin.Status` / `db4 status` show it beside each shard's share of the ring and token ranges; the
leader router marks a shard hot while its load stays over the threshold.

A cluster of its own whose nodes report every half second, with a low hot threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from db4client import Client
from db4core.hashing import token_for
from tests.support.cluster import Cluster

REPORT_S = 0.5
HOT_OPS = 40.0
HOT_WINDOW_S = 1.0


@pytest.fixture(scope="module")
def reporting(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("load"), nodes=2, shards=4)
    for node in c.nodes:
        # a short change-log history, truncated only when asked (the checkpoint test)
        node.env = {"DB4_LOAD_REPORT_SECONDS": str(REPORT_S), "DB4_CDC_RETENTION_ENTRIES": "50",
                    "DB4_CDC_RETENTION_BYTES": "0", "DB4_CDC_RETENTION_SECONDS": "0",
                    "DB4_CDC_TRUNCATE_INTERVAL_SECONDS": "3600"}
    c.router_env = {"DB4_HOT_SHARD_THRESHOLD": str(HOT_OPS),
                    "DB4_HOT_WINDOW_SECONDS": str(HOT_WINDOW_S)}
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _status_when(client: Client, ready, timeout: float = 10.0, **kw) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.admin.status(**kw)
        if ready(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_status_shows_each_shards_reported_load(reporting):
    with Client(reporting.address) as client:
        client.create_collection("tenants", partition_key="tenant")
        coll = client.collection("tenants")
        coll.insert_many([{"tenant": "hot", "n": i} for i in range(40)]
                         + [{"tenant": f"t{i}", "n": i} for i in range(20)])
        hot = client.shard_for("tenants", "hot")
        ids = [d["$id"] for d in coll.find(where={"tenant": "hot"}, limit=10).items]

        def busy(status: dict) -> bool:
            shard = next(s for s in status["shards"] if s["shard_id"] == hot)
            return bool(shard["load"]) and shard["load"]["reads_per_s"] > 5

        deadline = time.monotonic() + 3 * REPORT_S
        while time.monotonic() < deadline:  # reads on the hot tenant's shard only
            for doc_id in ids:
                assert coll.get(doc_id, partition="hot") is not None
        status = _status_when(client, busy)

        by_id = {s["shard_id"]: s for s in status["shards"]}
        assert busy(status), by_id[hot]
        counted = client.admin.status(with_stats=True)["shards"]
        assert sum(s["documents"] for s in counted) == 60
        for shard in counted:
            reported = by_id[shard["shard_id"]]
            assert reported["load"] is not None, reported
            # Without with_stats, the documents are the last report's
            assert reported["documents"] == reported["load"]["documents"] == shard["documents"]
            assert reported["load"]["bytes"] > 0 and reported["load"]["age_s"] < 5
        quiet = [s for s in by_id.values() if s["shard_id"] != hot]
        assert all(s["load"]["reads_per_s"] < by_id[hot]["load"]["reads_per_s"] for s in quiet)
        assert abs(sum(s["ring_share"] for s in by_id.values()) - 1.0) < 1e-9
        assert "ranges" not in by_id[hot]


def test_token_ranges_place_every_token_on_its_shard(reporting):
    with Client(reporting.address) as client:
        shards = client.admin.status(with_ranges=True)["shards"]
        client.create_collection("places", partition_key="tenant")
        for tenant in (f"x{i}" for i in range(30)):
            token = token_for(tenant)
            owner = [s["shard_id"] for s in shards
                     if any(first <= token <= last for first, last in s["ranges"])]
            assert owner == [client.shard_for("places", tenant)]


def test_db4_status_prints_the_load(reporting):
    out = subprocess.run([sys.executable, "-m", "db4client.cli", "status", "--router",
                          reporting.address], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    status = json.loads(out)
    assert {"ring_share", "load", "documents"} <= set(status["shards"][0])


def test_a_shard_that_stays_busy_is_marked_hot_then_cleared(reporting):
    with Client(reporting.address) as client:
        client.create_collection("heat", partition_key="tenant")
        coll = client.collection("heat")
        coll.insert_many([{"tenant": "blaze", "n": i} for i in range(10)])
        hot = client.shard_for("heat", "blaze")
        ids = [d["$id"] for d in coll.find(where={"tenant": "blaze"}).items]

        def marked(status: dict) -> dict | None:
            return next(s for s in status["shards"] if s["shard_id"] == hot)["hot"]

        deadline = time.monotonic() + 20
        status = client.admin.status()
        while marked(status) is None and time.monotonic() < deadline:
            for doc_id in ids:  # far over HOT_OPS reads/s, on one shard
                coll.get(doc_id, partition="blaze")
            status = client.admin.status()
        mark = marked(status)
        assert mark is not None, status
        assert "over the threshold" in mark["reason"] and mark["ops_per_s"] > HOT_OPS
        # every operation was on one tenant: one token, so a split would not help
        assert mark["split_token"] is None and "one partition key" in mark["cannot_split"]
        assert status["leader"] == reporting.address
        assert all(s["hot"] is None for s in status["shards"] if s["shard_id"] != hot)

        # quiet again: the next reports carry no load, and the mark goes
        cleared = _status_when(client, lambda st: marked(st) is None, timeout=15)
        assert marked(cleared) is None


def test_a_hot_shard_of_many_keys_is_told_where_to_split(reporting):
    with Client(reporting.address) as client:
        client.create_collection("spread", partition_key="tenant")
        coll = client.collection("spread")
        target = client.shard_for("spread", "k0")
        tenants = [t for t in (f"k{i}" for i in range(400))
                   if client.shard_for("spread", t) == target][:20]
        assert len(tenants) >= 10
        docs = coll.insert_many([{"tenant": t} for t in tenants])
        pairs = [(d["$id"], d["tenant"]) for d in docs]

        def mark(status: dict) -> dict | None:
            return next(s for s in status["shards"] if s["shard_id"] == target)["hot"]

        deadline = time.monotonic() + 20
        status = client.admin.status()
        while mark(status) is None and time.monotonic() < deadline:
            for doc_id, tenant in pairs:
                coll.get(doc_id, partition=tenant)
            status = client.admin.status()
        hot = mark(status)
        assert hot is not None and hot["cannot_split"] is None, hot
        tokens = sorted(token_for(t) for t in tenants)
        assert tokens[0] <= hot["split_token"] <= tokens[-1]


def test_checkpoint_truncates_what_no_consumer_needs_and_empties_the_wal(reporting):
    with Client(reporting.address) as client:
        client.create_collection("logged")
        coll = client.collection("logged")
        for start in range(0, 600, 100):
            coll.insert_many([{"n": i} for i in range(start, start + 100)])
        before = {s["shard_id"]: s for s in client.admin.cdc_status()["shards"]}
        assert max(s["entries"] for s in before.values()) > 50
        done = client.admin.checkpoint()
        assert sorted(c["shard_id"] for c in done) == sorted(before)
        assert all(c["wal_bytes"] == 0 for c in done), done
        after = {s["shard_id"]: s for s in client.admin.cdc_status()["shards"]}
        for c in done:  # the nodes keep 50 records of history, no consumer holds more
            kept = after[c["shard_id"]]["entries"]
            assert kept == min(50, before[c["shard_id"]]["entries"]), (c, after)
            assert c["truncated"] == before[c["shard_id"]]["entries"] - kept
        again = client.admin.checkpoint()  # safe to repeat: nothing more to do
        assert all(c["truncated"] == 0 and c["wal_bytes"] == 0 for c in again)
        assert coll.count() == 600
