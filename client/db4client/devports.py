"""Ports of a `db4 dev` cluster: chosen once per data dir, kept in DATA_DIR/dev.json.

etcd stores its member URLs and the nodes' registrations carry their addresses, so a restart on
the same data dir must listen where the first start did.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
STATE_FILE = "dev.json"


class DevError(Exception):
    """The local cluster cannot start or keep running; the message says why."""


@dataclass
class DevPorts:
    """Every port a dev cluster on one data dir listens on (the router's comes from --port)."""

    etcd_client: int
    etcd_peer: int
    nodes: dict[str, int] = field(default_factory=dict)


def pick_free_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A loopback port that is free now and not in `taken`."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


def port_in_use(port: int) -> bool:
    """Whether something listens on HOST:port (SO_REUSEADDR, as gRPC and etcd bind)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def node_ids(count: int) -> list[str]:
    """n1 .. n<count>."""
    return [f"n{i}" for i in range(1, count + 1)]


def load_ports(data_dir: Path) -> DevPorts | None:
    """The ports saved by the first start on this data dir, None on a fresh one."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return DevPorts(int(raw["etcd_client"]), int(raw["etcd_peer"]),
                        {str(k): int(v) for k, v in raw["nodes"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise DevError(f"{path} is damaged ({err}); remove the data dir to start over") from err


def save_ports(data_dir: Path, ports: DevPorts) -> None:
    """Persist the ports atomically (write a temporary file, then rename it)."""
    tmp = data_dir / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(ports), indent=2) + "\n")
    os.replace(tmp, data_dir / STATE_FILE)


def plan_ports(saved: DevPorts | None, nodes: int, etcd_port: int = 0, router_port: int = 0,
               pick: Callable[[set[int]], int] = pick_free_port) -> DevPorts:
    """Ports for this start: the saved ones, plus new ones for nodes not seen before.

    Nodes already in `saved` are always kept, even when `nodes` is smaller: their shards live
    on them, and a cluster without them would answer UNAVAILABLE for those shards.
    """
    if saved is not None and etcd_port and etcd_port != saved.etcd_client:
        raise DevError(f"this data dir's etcd listens on port {saved.etcd_client}; "
                       f"drop --etcd-port or pass {saved.etcd_client}")
    taken = {router_port} if router_port else set()
    if saved is None:
        client = etcd_port or pick(taken)
        taken.add(client)
        peer = pick(taken)
        taken.add(peer)
        ports = DevPorts(client, peer)
    else:
        ports = DevPorts(saved.etcd_client, saved.etcd_peer, dict(saved.nodes))
        taken |= {ports.etcd_client, ports.etcd_peer, *ports.nodes.values()}
    for node_id in node_ids(nodes):
        if node_id not in ports.nodes:
            ports.nodes[node_id] = pick(taken)
            taken.add(ports.nodes[node_id])
    return ports
