"""Real processes for tests and benchmarks: etcd, nodes and routers on free loopback ports.

Every process is started in its own session and remembered by PID; `stop(graceful=False)` is
kill -9, and `kill_all()` (run at exit too) kills whatever is still alive.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
_LIVE: dict[int, subprocess.Popen] = {}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll check() until it is true; raise TimeoutError naming what we waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class Proc:
    """A child process with its log file, stoppable gracefully or with SIGKILL."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict | None = None):
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        self.env = env
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()  # readiness is judged on what this run writes
            self.popen = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                          env=env, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        _LIVE[self.popen.pid] = self.popen
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, graceful: bool = True, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (graceful) or SIGKILL; returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        _LIVE.pop(self.popen.pid, None)
        return self.popen.returncode

    def new_log(self) -> str:
        """What this run wrote to the log so far."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited early; log tail:\n{self.log_tail()}")


def kill_all() -> None:
    """SIGKILL every process still alive that this module started."""
    for pid, popen in list(_LIVE.items()):
        if popen.poll() is None:
            popen.kill()
            popen.wait(5)
        _LIVE.pop(pid, None)


atexit.register(kill_all)


class Etcd(Proc):
    """The Debian etcd binary, single member, on free loopback ports."""

    def __init__(self, data_dir: Path, client_port: int | None = None):
        self.client_port = client_port or free_port()
        self.peer_port = free_port()
        self.url = f"http://{HOST}:{self.client_port}"
        peer = f"http://{HOST}:{self.peer_port}"
        cmd = ["etcd", "--name", "test", "--data-dir", str(data_dir / "etcd"),
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"test={peer}", "--log-level", "warn"]
        super().__init__("etcd", cmd, data_dir / "logs" / "etcd.log")

    def wait_ready(self, timeout: float = 30.0) -> Etcd:
        def healthy() -> bool:
            self.check_alive()
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                return b'"true"' in resp.read()
        wait_until(healthy, timeout, "etcd health")
        return self



def _grpc_ready(port: int) -> bool:
    import grpc  # late: the unit tests import this module without needing grpc up

    with grpc.insecure_channel(f"{HOST}:{port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=1)
    return True


class Node(Proc):
    """A db4 storage node process."""

    def __init__(self, node_id: str, data_dir: Path, etcd_url: str, port: int | None = None,
                 env: dict | None = None):
        self.node_id = node_id
        self.port = port or free_port()
        self.data_dir = data_dir / "nodes" / node_id
        cmd = [sys.executable, "-m", "db4node", "--id", node_id, "--port", str(self.port),
               "--data-dir", str(self.data_dir), "--etcd", etcd_url]
        super().__init__(f"node {node_id}", cmd, data_dir / "logs" / f"{node_id}.log", env)

    def wait_ready(self, timeout: float = 30.0) -> Node:
        def ready() -> bool:
            self.check_alive()
            return "serving on" in self.new_log()
        wait_until(ready, timeout, f"node {self.node_id} to serve")
        return self


class Router(Proc):
    """A db4 router process."""

    def __init__(self, data_dir: Path, etcd_url: str, port: int | None = None, shards: int = 8,
                 min_nodes: int = 1, name: str = "router", env: dict | None = None):
        self.port = port or free_port()
        self.address = f"{HOST}:{self.port}"
        cmd = [sys.executable, "-m", "db4router", "--port", str(self.port), "--etcd", etcd_url,
               "--shards", str(shards), "--min-nodes", str(min_nodes)]
        super().__init__(name, cmd, data_dir / "logs" / f"{name}.log", env)

    def wait_ready(self, timeout: float = 60.0) -> Router:
        def ready() -> bool:
            self.check_alive()
            return _grpc_ready(self.port)
        wait_until(ready, timeout, "router to serve")
        return self
