"""`db4 dev` without processes: port persistence across restarts, command lines, log probes."""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from db4client import dev, devports


def fake_picker(start: int = 20000):
    """A deterministic pick_free_port: the next number not taken."""
    counter = itertools.count(start)

    def pick(taken):
        return next(p for p in counter if p not in taken)

    return pick


def test_first_start_picks_distinct_ports():
    ports = devports.plan_ports(None, nodes=3, router_port=20001, pick=fake_picker())
    used = [ports.etcd_client, ports.etcd_peer, *ports.nodes.values()]
    assert list(ports.nodes) == ["n1", "n2", "n3"]
    assert len(set(used)) == 5 and 20001 not in used


def test_explicit_etcd_port_is_used_on_first_start():
    ports = devports.plan_ports(None, nodes=1, etcd_port=2399, pick=fake_picker())
    assert ports.etcd_client == 2399 and ports.etcd_peer != 2399


def test_restart_reuses_every_saved_port(tmp_path):
    first = devports.plan_ports(None, nodes=3, pick=fake_picker())
    devports.save_ports(tmp_path, first)
    saved = devports.load_ports(tmp_path)
    assert saved == first
    again = devports.plan_ports(saved, nodes=3, pick=fake_picker(30000))
    assert again == first


def test_restart_keeps_saved_etcd_port_when_not_asked_for_another(tmp_path):
    saved = devports.DevPorts(2400, 2401, {"n1": 2402})
    assert devports.plan_ports(saved, nodes=1, etcd_port=0).etcd_client == 2400
    assert devports.plan_ports(saved, nodes=1, etcd_port=2400).etcd_client == 2400
    with pytest.raises(devports.DevError, match="2400"):
        devports.plan_ports(saved, nodes=1, etcd_port=2500)


def test_more_nodes_get_new_ports_and_old_ones_stay():
    saved = devports.DevPorts(2400, 2401, {"n1": 2402, "n2": 2403})
    ports = devports.plan_ports(saved, nodes=4, pick=fake_picker(2400))
    assert ports.nodes["n1"] == 2402 and ports.nodes["n2"] == 2403
    assert set(ports.nodes) == {"n1", "n2", "n3", "n4"}
    assert len(set(ports.nodes.values()) | {2400, 2401}) == 6
    assert saved.nodes == {"n1": 2402, "n2": 2403}  # the saved plan is not mutated


def test_fewer_nodes_still_start_every_saved_node():
    saved = devports.DevPorts(2400, 2401, {"n1": 2402, "n2": 2403, "n3": 2404})
    assert devports.plan_ports(saved, nodes=1).nodes == saved.nodes


def test_fresh_data_dir_has_no_saved_ports(tmp_path):
    assert devports.load_ports(tmp_path) is None


def test_state_file_is_plain_json(tmp_path):
    devports.save_ports(tmp_path, devports.DevPorts(1, 2, {"n1": 3}))
    raw = json.loads((tmp_path / devports.STATE_FILE).read_text())
    assert raw == {"etcd_client": 1, "etcd_peer": 2, "nodes": {"n1": 3}}
    assert not list(tmp_path.glob("*.tmp"))


def test_damaged_state_file_is_reported(tmp_path):
    (tmp_path / devports.STATE_FILE).write_text('{"etcd_client": 1}')
    with pytest.raises(devports.DevError, match="damaged"):
        devports.load_ports(tmp_path)


def test_etcd_command_uses_the_saved_urls(tmp_path):
    argv = dev.etcd_command("/usr/bin/etcd", tmp_path, devports.DevPorts(2379, 2380))
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--data-dir"] == str(tmp_path / "etcd")
    assert flags["--listen-client-urls"] == flags["--advertise-client-urls"] == \
        "http://127.0.0.1:2379"
    assert flags["--listen-peer-urls"] == flags["--initial-advertise-peer-urls"] == \
        "http://127.0.0.1:2380"
    assert flags["--initial-cluster"] == "dev=http://127.0.0.1:2380"


def test_node_and_router_commands(tmp_path):
    ports = devports.DevPorts(2379, 2380, {"n2": 5002})
    node = dev.node_command("n2", 5002, tmp_path, ports, "INFO")
    assert node[:3] == [sys.executable, "-m", "db4node"]
    assert node[node.index("--data-dir") + 1] == str(tmp_path / "nodes" / "n2")
    assert node[node.index("--etcd") + 1] == "http://127.0.0.1:2379"
    router = dev.router_command(7400, 8, 3, ports, "DEBUG")
    assert router[:3] == [sys.executable, "-m", "db4router"]
    assert router[router.index("--min-nodes") + 1] == "3"
    assert router[router.index("--shards") + 1] == "8"


def test_node_readiness_reads_only_this_runs_log(tmp_path):
    log = tmp_path / "n1.log"
    log.write_text("old run: db4 node n1 serving on 127.0.0.1:1\n")
    child = dev.Child("node n1", ["true"], log)
    child.log_start = log.stat().st_size
    assert not dev.node_serving(child, "n1")
    with open(log, "a") as f:
        f.write("INFO node[n1] db4.node: db4 node n1 serving on 127.0.0.1:5 (data x)\n")
    assert dev.node_serving(child, "n1")
    assert not dev.node_serving(child, "n11")
    assert "serving on 127.0.0.1:5" in child.tail()


def test_exit_descriptions():
    child = dev.Child("etcd", ["etcd"], Path("/nonexistent.log"))
    child.proc = SimpleNamespace(returncode=-signal.SIGKILL)
    assert child.describe_exit() == "was killed by SIGKILL"
    child.proc.returncode = 3
    assert child.describe_exit() == "exited with code 3"
    assert child.output() == ""


@pytest.mark.parametrize("argv", [["--nodes", "0"], ["--shards", "0"], ["--port", "0"],
                                  ["--etcd-port", "70000"]])
def test_impossible_flags_are_usage_errors(argv):
    p = argparse.ArgumentParser()
    dev.add_arguments(p)
    with pytest.raises(SystemExit) as done:
        dev.check_arguments(p, p.parse_args(argv))
    assert done.value.code == 2


def test_defaults_match_the_contract():
    p = argparse.ArgumentParser()
    dev.add_arguments(p)
    args = p.parse_args([])
    assert (args.nodes, args.shards, args.port, args.data_dir, args.etcd_port) == \
        (3, 8, 7400, "./db4-data", 0)
