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


def start_dev(data_dir: Path, port: int, *flags: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [DB4, "dev", "--nodes", "2", "--shards", "4", "--port", str(port),
         "--data-dir", str(data_dir), *flags],
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


def test_dev_tls_wires_tls_and_tokens_into_every_part_and_the_sdk(dev_dir):
    from db4client import errors
    from db4client.devtls import DevTls

    port = free_port()
    proc = start_dev(dev_dir, port, "--tls")
    try:
        tls = DevTls(dev_dir / "tls")
        with Client(f"127.0.0.1:{port}", token=tls.token(), tls=tls.sdk_tls()) as client:
            doc = client.collection("users").create({"name": "Ann"})
            assert client.collection("users").get(doc["$id"]) == doc
            reader = client.admin.create_token("read", "dev-reader")["token"]
        with Client(f"127.0.0.1:{port}", token=tls.token(), tls=tls.sdk_tls(),
                    direct=True) as client:
            assert client.collection("users").get(doc["$id"]) == doc
            assert client._routes.sent == 1
        with Client(f"127.0.0.1:{port}", token=reader, tls=tls.sdk_tls()) as client, \
                pytest.raises(errors.PermissionDeniedError):
            client.collection("users").create({"name": "Bob"})
        with Client(f"127.0.0.1:{port}", tls=tls.sdk_tls()) as client, \
                pytest.raises(errors.UnauthenticatedError):
            client.collection("users").get(doc["$id"])
        env = {**os.environ, "DB4_ROUTER": f"127.0.0.1:{port}", "DB4_TLS_CA": str(tls.ca),
               "DB4_TOKEN_FILE": str(tls.admin_token)}
        listed = subprocess.run([DB4, "token", "list"], capture_output=True, text=True,
                                env=env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "dev-reader" in listed.stdout and "bootstrap admin" in listed.stdout
        assert "db4_" not in listed.stdout  # never a secret
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
