"""`db4 dev`: a whole cluster on loopback (etcd, N nodes, one router) as child processes.

Once every part serves, dev supervises them: a child that dies is logged and started again, after
a backoff that doubles while it keeps dying soon after each start; after RESTART_GIVE_UP such
deaths in a row dev gives up, naming the child and quoting its log, and stops the cluster.

The children stay in dev's process group on purpose: `kill -9 -<pgid>` of the group takes the
whole cluster down at once, which is how the crash tests simulate a power cut. Ports are kept in
DATA_DIR/dev.json from the first start, because etcd stores its member URLs and the nodes'
registrations carry their addresses: a restart on the same data dir must use the same ones.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from db4client.devports import (
    HOST,
    DevError,
    DevPorts,
    load_ports,
    plan_ports,
    port_in_use,
    save_ports,
)
from db4core.config import log_level

if TYPE_CHECKING:
    from db4client.devtls import DevTls

STOP_GRACE_S = 10.0
POLL_S = 0.1
# Restart policy: a child that lived less than QUICK_RUN_S died "quickly"; each quick death in a
# row doubles the wait before the next start (from RESTART_BACKOFF_S up to MAX_RESTART_BACKOFF_S),
# and the RESTART_GIVE_UP-th in a row ends dev: something (a port, a data dir) needs a human.
QUICK_RUN_S = 10.0
RESTART_BACKOFF_S = 0.25
MAX_RESTART_BACKOFF_S = 8.0
RESTART_GIVE_UP = 5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived while waiting for something."""


# ---- command lines ----

def etcd_url(ports: DevPorts) -> str:
    """The client URL nodes and router use."""
    return f"http://{HOST}:{ports.etcd_client}"


def etcd_command(etcd: str, data_dir: Path, ports: DevPorts) -> list[str]:
    """A single-member etcd on loopback, its data under DATA_DIR/etcd."""
    client, peer = f"http://{HOST}:{ports.etcd_client}", f"http://{HOST}:{ports.etcd_peer}"
    return [etcd, "--name", "dev", "--data-dir", str(data_dir / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"dev={peer}", "--logger", "zap", "--log-outputs", "stderr"]


def node_command(node_id: str, port: int, data_dir: Path, ports: DevPorts,
                 log_level: str, extra: list[str] | None = None) -> list[str]:
    """One storage node, its shards under DATA_DIR/nodes/<id>."""
    return [sys.executable, "-m", "db4node", "--id", node_id, "--host", HOST, "--port", str(port),
            "--data-dir", str(data_dir / "nodes" / node_id), "--etcd", etcd_url(ports),
            "--log-level", log_level, *(extra or ())]


def router_command(port: int, shards: int, min_nodes: int, ports: DevPorts,
                   log_level: str, extra: list[str] | None = None) -> list[str]:
    """The router; it creates the cluster in etcd once `min_nodes` nodes registered."""
    return [sys.executable, "-m", "db4router", "--host", HOST, "--port", str(port),
            "--shards", str(shards), "--min-nodes", str(min_nodes), "--etcd", etcd_url(ports),
            "--log-level", log_level, *(extra or ())]


# ---- children ----

def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child if dev itself dies (e.g. kill -9 dev)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: nothing to load after
    except OSError:
        return None
    pr_set_pdeathsig = 1
    return lambda: libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Child:
    """One child process, its output appended to DATA_DIR/logs/<name>.log."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_start = 0  # offset where this run's output begins
        self.started_at = 0.0
        self.deaths_in_a_row = 0  # the first, then each that followed a run under QUICK_RUN_S
        self.restart_at: float | None = None  # when a restart is due (monotonic)
        self.restarted = False  # started again and not yet seen serving

    def start(self) -> None:
        """Spawn the process in dev's process group."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== db4 dev {stamp}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.log_start = log.tell()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=_die_with_parent())
            self.started_at = time.monotonic()

    def alive(self) -> bool:
        """Started and not exited."""
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """What this run of the child has logged so far."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self.log_start)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        """The last lines of this run's log, indented for quoting."""
        return "\n".join(f"    {line}" for line in self.output().splitlines()[-lines:])

    def describe_exit(self) -> str:
        """'exited with code N' or 'was killed by SIGX'."""
        code = self.proc.returncode if self.proc else None
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"


def stop_children(children: list[Child], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every live child, wait up to grace_s for all, SIGKILL whatever is left."""
    live = [c for c in children if c.alive()]
    for child in live:
        child.proc.terminate()  # type: ignore[union-attr]
    deadline = time.monotonic() + grace_s
    for child in live:
        try:
            child.proc.wait(max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {grace_s:.0f} s; killing it")
            child.proc.kill()  # type: ignore[union-attr]
            child.proc.wait()  # type: ignore[union-attr]


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"db4 dev: {message}", file=sys.stderr, flush=True)


# ---- readiness probes ----

def etcd_healthy(port: int) -> bool:
    """etcd answers /health with health=true (it has a leader)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as resp:
            return json.loads(resp.read()).get("health") == "true"
    except (OSError, ValueError):
        return False


def node_serving(child: Child, node_id: str) -> bool:
    """The node logged that it serves (it has registered in etcd by then)."""
    return f"db4 node {node_id} serving on" in child.output()


def router_answers(port: int, tls: DevTls | None = None) -> bool:
    """The router answers a real Admin.Status call."""
    from db4client import Client, RetryPolicy, errors  # grpc is loaded only when needed

    secured = {} if tls is None else {"token": tls.token(), "tls": tls.sdk_tls()}
    try:
        with Client(f"{HOST}:{port}", timeout=2.0, retry=RetryPolicy(attempts=1),
                    **secured) as client:  # type: ignore[arg-type]
            client.admin.status()
        return True
    except errors.Db4Error:
        return False


# ---- the cluster ----

class DevCluster:
    """Starts, watches and stops the children of one `db4 dev`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir = Path(args.data_dir).resolve()
        self.etcd: Child | None = None
        self.nodes: list[Child] = []
        self.router: Child | None = None
        self.stop_signal: str | None = None
        self._wake = threading.Event()
        self.probes: dict[str, Callable[[], bool]] = {}  # child name -> "it serves"
        self.tls: DevTls | None = None

    def children(self) -> list[Child]:
        """Every child started so far."""
        return [c for c in (self.etcd, *self.nodes, self.router) if c is not None]

    def on_signal(self, signum: int, _frame: object) -> None:
        """Ask the main loop to stop."""
        self.stop_signal = signal.Signals(signum).name
        self._wake.set()

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        """Poll until ready() while every child lives; raise on death, signal or timeout."""
        deadline = time.monotonic() + self.args.timeout
        while not ready():
            self.check_children()
            if time.monotonic() > deadline:
                raise DevError(f"{what} did not become ready within {self.args.timeout:.0f} s")
            self._wake.wait(POLL_S)
        self.check_children()

    def check_children(self) -> None:
        """Raise Stopped after a signal, DevError naming the first child that died."""
        if self.stop_signal:
            raise Stopped(self.stop_signal)
        for child in self.children():
            if not child.alive():
                time.sleep(0.3)  # a signal to the whole group may be on its way to us too
                if self.stop_signal:
                    raise Stopped(self.stop_signal)
                raise DevError(f"{child.name} {child.describe_exit()}; its log is "
                               f"{child.log_path}, ending with:\n{child.tail()}")

    def prepare(self) -> DevPorts:
        """Create the data dir, settle and persist the ports, check they are free."""
        args = self.args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        saved = load_ports(self.data_dir)
        ports = plan_ports(saved, args.nodes, args.etcd_port, args.port)
        if saved is not None and len(saved.nodes) > args.nodes:
            say(f"{self.data_dir} already has {len(saved.nodes)} nodes; starting all of them")
        save_ports(self.data_dir, ports)
        wanted = [("router", args.port), ("etcd", ports.etcd_client),
                  ("etcd peer", ports.etcd_peer), *ports.nodes.items()]
        for name, port in wanted:
            if port_in_use(port):
                raise DevError(f"port {port} ({name}) is already in use; "
                               "is another db4 dev running?")
        return ports

    def start(self) -> None:
        """etcd, then every node, then the router; each waited for before the next step."""
        etcd = shutil.which("etcd")
        if etcd is None:
            raise DevError("no `etcd` on PATH: install Debian's etcd-server (make deps)")
        ports, logs, level = self.prepare(), self.data_dir / "logs", self.args.log_level
        say(f"data dir {self.data_dir}, logs in {logs}")
        if self.args.tls:
            from db4client import devtls  # cryptography is loaded only when asked for

            self.tls = devtls.ensure(self.data_dir)
            say(f"TLS and tokens on: CA {self.tls.ca}, admin token in {self.tls.admin_token}")
        node_flags = self.tls.server_flags(router=False) if self.tls else []
        self.etcd = Child("etcd", etcd_command(etcd, self.data_dir, ports), logs / "etcd.log")
        say(f"starting etcd on {HOST}:{ports.etcd_client} (peer port {ports.etcd_peer})")
        self.etcd.start()
        self.probes["etcd"] = functools.partial(etcd_healthy, ports.etcd_client)
        self.wait_for("etcd", self.probes["etcd"])
        say(f"etcd serving on {HOST}:{ports.etcd_client}")
        for node_id, port in ports.nodes.items():
            argv = node_command(node_id, port, self.data_dir, ports, level, node_flags)
            self.nodes.append(Child(f"node {node_id}", argv, logs / f"{node_id}.log"))
            say(f"starting node {node_id} on {HOST}:{port}")
            self.nodes[-1].start()
        for node_id, child in zip(ports.nodes, self.nodes, strict=True):
            self.probes[child.name] = functools.partial(node_serving, child, node_id)
            self.wait_for(child.name, self.probes[child.name])
            say(f"node {node_id} serving on {HOST}:{ports.nodes[node_id]}")
        argv = router_command(self.args.port, self.args.shards, len(self.nodes), ports, level,
                              self.tls.server_flags(router=True) if self.tls else [])
        self.router = Child("router", argv, logs / "router.log")
        say(f"starting router on {HOST}:{self.args.port}")
        self.router.start()
        self.probes["router"] = functools.partial(router_answers, self.args.port, self.tls)
        self.wait_for("router", self.probes["router"])
        say(f"router serving on {HOST}:{self.args.port}")

    def watch(self) -> None:
        """Supervise until a signal (raises Stopped) or a child dies once too often (DevError):
        restart the dead, and say when a restarted child serves again."""
        while not self.stop_signal:
            for child in self.children():
                self.supervise(child)
            self._wake.wait(POLL_S * 2)
        raise Stopped(self.stop_signal)

    def supervise(self, child: Child) -> None:
        """One look at one child: due for a restart, dead, or back in service."""
        if child.restart_at is not None:
            if time.monotonic() >= child.restart_at:
                child.restart_at, child.restarted = None, True
                child.start()
                say(f"restarted {child.name} (pid {child.proc.pid})")  # type: ignore[union-attr]
        elif not child.alive():
            self.schedule_restart(child)
        elif child.restarted and self.probes[child.name]():
            child.restarted = False
            say(f"{child.name} serving again")

    def schedule_restart(self, child: Child) -> None:
        """Log a death and set when to start the child again; DevError after too many."""
        ran_s = time.monotonic() - child.started_at
        time.sleep(0.3)  # Ctrl-C reaches the whole group: its SIGINT may be on its way to us
        if self.stop_signal:
            return
        quick = child.deaths_in_a_row > 0 and ran_s < QUICK_RUN_S
        child.deaths_in_a_row = child.deaths_in_a_row + 1 if quick else 1
        if child.deaths_in_a_row >= RESTART_GIVE_UP:
            raise DevError(
                f"{child.name} {child.describe_exit()}: it died {child.deaths_in_a_row} times in "
                f"a row, every restart within {QUICK_RUN_S:.0f} s; giving up. Its log is "
                f"{child.log_path}, ending with:\n{child.tail()}")
        delay = min(MAX_RESTART_BACKOFF_S, RESTART_BACKOFF_S * 2 ** (child.deaths_in_a_row - 1))
        say(f"{child.name} {child.describe_exit()} after {ran_s:.1f} s; restarting it in "
            f"{delay:.2f} s")
        child.restart_at = time.monotonic() + delay

    def stop(self) -> None:
        """Router first (no new requests), then the nodes, then etcd."""
        for group in ([self.router], self.nodes, [self.etcd]):
            live = [c for c in group if c is not None and c.alive()]
            if live:
                say(f"stopping {', '.join(c.name for c in live)}")
            stop_children([c for c in group if c is not None])


def run(args: argparse.Namespace) -> int:
    """Run the cluster until a signal (exit 0) or a failure (exit 1)."""
    cluster = DevCluster(args)
    for sig in STOP_SIGNALS:
        signal.signal(sig, cluster.on_signal)
    code = 0
    try:
        cluster.start()
        if cluster.tls is not None:
            t = cluster.tls
            say(f"connect with: export DB4_TLS_CA={t.ca} DB4_TLS_CERT={t.client_cert} "
                f"DB4_TLS_KEY={t.client_key} DB4_TOKEN_FILE={t.admin_token}")
        print(f"db4 ready router={HOST}:{args.port}", flush=True)
        cluster.watch()
    except Stopped as stop:
        say(f"{stop} received")
    except DevError as err:
        say(f"error: {err}")
        code = 1
    finally:
        cluster.stop()
    say("stopped" if code == 0 else "stopped after an error")
    return code


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `db4 dev`."""
    p.add_argument("--nodes", type=int, default=3, help="storage nodes to run (default 3)")
    p.add_argument("--shards", type=int, default=8,
                   help="shards to create on the first start (default 8)")
    p.add_argument("--port", type=int, default=7400, help="router port (default 7400)")
    p.add_argument("--data-dir", default="./db4-data",
                   help="where etcd, the shards and the logs live (default ./db4-data)")
    p.add_argument("--etcd-port", type=int, default=0,
                   help="etcd client port on the first start (default: a free one; "
                        "later starts reuse the saved one)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for each part to serve (default 60)")
    p.add_argument("--log-level", default="INFO", type=log_level,
                   help="log level of nodes and router: DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--tls", action="store_true",
                   help="TLS everywhere (mutual between router and nodes) and bearer tokens: "
                        "a throwaway CA, certificates and an admin token are made in "
                        "DATA_DIR/tls (kept for later starts)")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject values no cluster can start with (a usage error, exit 2)."""
    if args.nodes < 1:
        p.error("--nodes must be at least 1")
    if args.shards < 1:
        p.error("--shards must be at least 1")
    if not 0 < args.port < 65536:
        p.error("--port must be 1-65535")
    if not 0 <= args.etcd_port < 65536:
        p.error("--etcd-port must be 0-65535")
