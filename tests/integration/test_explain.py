"""find(..., explain=True) and `db4 find --explain`: the shards and nodes a query would ask,
whether partition pruning applied (and why not), and how each shard orders its rows."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_pinned_find_explains_its_one_shard(client, coll_name):
    client.create_collection(coll_name, partition_key="tenant")
    coll = client.collection(coll_name)
    coll.insert_many([{"tenant": f"t{i % 5}", "n": i} for i in range(50)])
    plan = coll.find(where={"tenant": "t3", "n": {"$gt": 4}}, explain=True)
    shard = client.shard_info(coll_name, "t3")
    assert plan["partition_key"] == "tenant"
    assert plan["pruning"] == {"applied": True, "pinned": ["t3"], "shards": 1}
    assert [s["shard"] for s in plan["shards"]] == [shard["shard_id"]]
    assert plan["nodes"] == [shard["node_id"]]
    assert plan["shards"][0]["sqlite"], "no SQLite plan lines"
    assert coll.count() == 50  # explaining reads nothing and writes nothing


def test_a_scatter_find_says_why_and_which_shards_use_an_index(client, coll_name, cluster):
    coll = client.collection(coll_name)
    coll.insert_many([{"n": i} for i in range(40)])
    shards = len(client.admin.status()["shards"])
    unsorted = coll.find(where={"n": {"$gt": 3}}, sort=[("n", "desc")], explain=True)
    assert unsorted["pruning"]["applied"] is False
    assert "does not pin the partition key '$id'" in unsorted["pruning"]["reason"]
    assert len(unsorted["shards"]) == shards and len(unsorted["nodes"]) == len(cluster.nodes)
    assert all(s["sort"].startswith("sorted after reading") for s in unsorted["shards"])

    index = f"{coll_name}_by_n"[:60]
    client.create_index(index, collection=coll_name, fields=[("n", "desc")])
    indexed = coll.find(where={"n": {"$gt": 3}}, sort=[("n", "desc")], explain=True)
    assert indexed["index"] == index
    assert all(s["sort"] == f"read in order from the range index {index!r}"
               for s in indexed["shards"]), indexed["shards"]

    out = subprocess.run([sys.executable, "-m", "db4client.cli", "find", coll_name, "--where",
                          '{"$id": "x"}', "--explain", "--router", cluster.address],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    cli_plan = json.loads(out.stdout)
    assert cli_plan["pruning"]["applied"] is True and cli_plan["pruning"]["pinned"] == ["x"]
