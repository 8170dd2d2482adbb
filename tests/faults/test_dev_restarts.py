"""`db4 dev` keeps a local cluster up: a node or router that dies is restarted (and logged), a
child that keeps dying is given up on with a clear message, and SIGTERM still stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from db4client import Client
from tests.faults.test_dev import DB4, children_of, group_alive
from tests.support.procs import free_port, wait_until


@pytest.fixture
def dev_dir(tmp_path):
    yield tmp_path / "data"
    for line in subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True,
                               text=True).stdout.split():
        os.kill(int(line), signal.SIGKILL)


class Dev:
    """A `db4 dev` process, its stderr in a file we can read while it runs."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.err_path = data_dir.parent / "dev.stderr"
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [DB4, "dev", "--nodes", "2", "--shards", "4", "--port", str(self.port),
                 "--data-dir", str(data_dir)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                start_new_session=True, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == f"db4 ready router=127.0.0.1:{self.port}", self.stderr()

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def child(self, marker: str) -> int:
        """The pid of the child whose command line holds `marker` (e.g. '--id n1')."""
        for pid in children_of(self.proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                return pid
        raise LookupError(marker)

    def replaced(self, marker: str, old_pid: int) -> bool:
        """A new process runs for `marker`."""
        try:
            return self.child(marker) != old_pid
        except LookupError:
            return False


def readable(address: str, docs: list[dict]) -> bool:
    with Client(address, timeout=5) as client:
        users = client.collection("users")
        return all(users.get(d["$id"]) == d for d in docs)


def test_dev_restarts_a_dead_node_and_router_and_still_stops_on_sigterm(dev_dir):
    dev = Dev(dev_dir)
    address = f"127.0.0.1:{dev.port}"
    with Client(address) as client:
        docs = [client.collection("users").create({"i": i}) for i in range(40)]
    for marker, name in (("--id n1", "node n1"), ("-m db4router", "router")):
        old = dev.child(marker)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda m=marker, o=old: dev.replaced(m, o), 30, f"{name} to be restarted")
        assert dev.proc.poll() is None, dev.stderr()
        assert re.search(f"{name} was killed by SIGKILL after [0-9.]+ s; restarting it in",
                         dev.stderr()), dev.stderr()
        wait_until(lambda: readable(address, docs), 30, f"reads after {name} restarted")
        wait_until(lambda n=name: f"{n} serving again" in dev.stderr(), 30, f"{name} ready line")
    assert len(children_of(dev.proc.pid)) == 4, dev.stderr()  # etcd, 2 nodes, router
    dev.proc.send_signal(signal.SIGTERM)
    assert dev.proc.wait(30) == 0, dev.stderr()
    wait_until(lambda: not group_alive(dev.proc.pid), 10, "dev's children to exit")


def test_dev_gives_up_on_a_child_that_keeps_dying(dev_dir):
    dev = Dev(dev_dir)
    node_json = dev_dir / "nodes" / "n1" / "node.json"
    node_json.write_text(json.dumps({"node_id": "someone-else", "cluster": "default"}))
    began = time.monotonic()
    os.kill(dev.child("--id n1"), signal.SIGKILL)  # every restart now refuses the data dir
    assert dev.proc.wait(90) == 1, dev.stderr()
    took = time.monotonic() - began
    err = dev.stderr()
    # deaths 1-4 are restarted (the SIGKILL, then three refusals), the 5th in a row is not
    assert len(re.findall("node n1 exited with code 1 after [0-9.]+ s; restarting it", err)) == 3
    assert "node n1 exited with code 1: it died 5 times in a row, every restart within " \
           "10 s; giving up" in err, err
    assert "belongs to node 'someone-else'" in err, err  # the child's own reason, quoted
    # backed off 0.25 + 0.5 + 1 + 2 s between the five deaths, not a tight loop
    assert took >= 3.5, f"restarts were not backed off: all within {took:.1f} s"
    wait_until(lambda: not group_alive(dev.proc.pid), 10, "dev's children to exit")


def test_ctrl_c_to_the_whole_group_stops_without_restarting_anyone(dev_dir):
    """A terminal's Ctrl-C sends SIGINT to dev and every child at once: the children's exits
    are a stop, not deaths to recover from."""
    dev = Dev(dev_dir)
    os.killpg(dev.proc.pid, signal.SIGINT)
    assert dev.proc.wait(30) == 0, dev.stderr()
    assert "restart" not in dev.stderr(), dev.stderr()
    wait_until(lambda: not group_alive(dev.proc.pid), 10, "dev's children to exit")
