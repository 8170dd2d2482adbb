"""Metrics and JSON logs with request ids: a router and two nodes started with --metrics-port
and --log-format json; the figures are scraped over HTTP as Prometheus would."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from db4client import Client, errors
from tests.support.procs import HOST, Etcd, Node, Router, free_port, wait_until


def scrape(port: int) -> dict[str, list]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict[str, list], name: str, **labels) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x
                                                            for k, x in labels.items()))


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    root = tmp_path_factory.mktemp("observed")
    etcd = Etcd(root)
    ports = {"n1": free_port(), "n2": free_port(), "router": free_port()}
    env = {"DB4_LOG_FORMAT": "json", "DB4_LOAD_REPORT_SECONDS": "0.5", "DB4_LOG_LEVEL": "DEBUG"}
    nodes = [Node(n, root, etcd.url, env={**env, "DB4_METRICS_PORT": str(ports[n])})
             for n in ("n1", "n2")]
    router = Router(root, etcd.url, shards=4, min_nodes=2,
                    env={**env, "DB4_METRICS_PORT": str(ports["router"])})
    try:
        etcd.start().wait_ready()
        for n in nodes:
            n.start()
        for n in nodes:
            n.wait_ready()
        router.start().wait_ready()
        yield router, nodes, ports
    finally:
        for proc in (router, *nodes, etcd):
            proc.stop(graceful=False)


def test_rpc_latency_by_method_and_code_and_per_shard_figures(observed):
    router, nodes, ports = observed
    with Client(router.address) as client:
        users = client.collection("obs_users")
        docs = [users.create({"i": i}) for i in range(20)]
        for d in docs:
            users.get(d["$id"])
        with pytest.raises(errors.NotFoundError):
            users.update("missing", {"x": 1})
    r = scrape(ports["router"])
    assert value(r, "db4_rpc_seconds_count", method="/db4.v1.Db4/Create", code="OK") >= 20
    assert value(r, "db4_rpc_seconds_count", method="/db4.v1.Db4/Get", code="OK") >= 20
    assert value(r, "db4_rpc_seconds_count", method="/db4.v1.Db4/Update",
                 code="NOT_FOUND") == 1
    assert value(r, "db4_ring_epoch") >= 1 and value(r, "db4_nodes_registered") == 2
    assert value(r, "process_resident_memory_bytes") > 0

    def shards_counted() -> bool:
        samples = [scrape(ports[n]) for n in ("n1", "n2")]
        written = sum(value(s, "db4_shard_writes_total") for s in samples)
        documents = sum(value(s, "db4_shard_documents") for s in samples)
        return written >= 20 and documents >= 20

    wait_until(shards_counted, 20, "the nodes' load figures")
    n = [scrape(ports[x]) for x in ("n1", "n2")]
    assert sum(value(s, "db4_rpc_seconds_count", method="/db4.v1.Node/Write") for s in n) >= 20
    assert sum(len(s["db4_changelog_last_lsn"]) for s in n) == 4  # one per shard
    assert sum(value(s, "db4_changelog_last_lsn") for s in n) >= 20
    assert sum(value(s, "db4_txn_in_doubt") for s in n) == 0
    with Client(router.address) as client:
        status = client.admin.status()
    loads = [s["load"] for s in status["shards"] if s.get("load")]
    assert len(loads) == 4
    assert sum(x["documents"] for x in loads) == sum(value(s, "db4_shard_documents") for s in n)
    assert sum(x["in_doubt"] + x["prepared"] for x in loads) == 0


def test_a_change_feed_consumers_lag_is_exported(observed):
    router, _, ports = observed
    with Client(router.address) as client:
        sub = client.subscribe(collections=["obs_feed"], consumer="obs-reader")
        it = iter(sub)
        users = client.collection("obs_feed")
        users.create({"x": 1})
        first = next(it)
        sub.ack(first.token)
        for i in range(5):
            users.create({"x": i})
        sub.close()

    def lag_seen() -> bool:
        return value(scrape(ports["router"]), "db4_cdc_consumer_lag", consumer="obs-reader") > 0

    wait_until(lag_seen, 30, "the consumer's lag in the router's metrics")


def _json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_json_logs_carry_one_request_id_from_the_router_to_the_node(observed):
    router, nodes, _ = observed
    with Client(router.address) as client:
        client.collection("obs_logs").create({"$id": "traced"})
    routed = [x for x in _json_lines(router.log_path)
              if x["msg"].startswith("/db4.v1.Db4/Create OK") and "request_id" in x]
    assert routed, "the router logged no Create call"
    assert all({"ts", "level", "component", "logger", "msg"} <= set(x)
               for x in _json_lines(router.log_path))
    ids = {x["request_id"] for x in routed}
    on_nodes = [x for n in nodes for x in _json_lines(n.log_path)
                if x["msg"].startswith("/db4.v1.Node/Write OK")]
    assert on_nodes and {x["request_id"] for x in on_nodes} <= ids
    assert {x["component"] for x in on_nodes} <= {"node[n1]", "node[n2]"}
