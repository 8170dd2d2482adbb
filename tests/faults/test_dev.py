"""`db4 dev` as a user runs it: ready line, clean stop, and SIGKILL of its whole process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db4client import Client
from tests.support.procs import free_port, wait_until

DB4 = str(Path(sys.executable).with_name("db4"))


def start_dev(data_dir: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [DB4, "dev", "--nodes", "2", "--shards", "4", "--port", str(port),
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        start_new_session=True, text=True,
    )
    line = proc.stdout.readline()
    assert line.strip() == f"db4 ready router=127.0.0.1:{port}", line
    return proc


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != pid]


@pytest.fixture
def dev_dir(tmp_path):
    yield tmp_path / "data"
    for line in subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True,
                               text=True).stdout.split():
        os.kill(int(line), signal.SIGKILL)


def test_sigterm_stops_every_child(dev_dir):
    port = free_port()
    proc = start_dev(dev_dir, port)
    kids = children_of(proc.pid)
    assert len(kids) == 4, kids  # etcd, 2 nodes, router
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    wait_until(lambda: not group_alive(proc.pid), 10, "dev's children to exit")
    assert (dev_dir / "logs").is_dir()


def test_sigkill_group_then_restart_serves_everything(dev_dir):
    port = free_port()
    proc = start_dev(dev_dir, port)
    with Client(f"127.0.0.1:{port}") as client:
        client.create_collection("orders", partition_key="tenantId")
        docs = [client.collection("users").create({"i": i}) for i in range(50)]
        docs += [client.collection("orders").create({"tenantId": f"t{i % 3}"}) for i in range(20)]
        updated = client.collection("users").update(docs[0]["$id"], {"changed": True})
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    wait_until(lambda: not group_alive(proc.pid), 10, "the killed group to vanish")
    time.sleep(0.2)
    proc = start_dev(dev_dir, port)
    try:
        with Client(f"127.0.0.1:{port}") as client:
            assert client.collection("users").get(docs[0]["$id"]) == updated
            for d in docs[1:50]:
                assert client.collection("users").get(d["$id"]) == d
            for d in docs[50:]:
                assert client.collection("orders").get(d["$id"], partition=d["tenantId"]) == d
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
