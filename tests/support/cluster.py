"""A whole db4 cluster of real processes: one etcd, N nodes, one or more routers."""

from __future__ import annotations

import glob
from pathlib import Path

import apsw

from tests.support.procs import Etcd, Node, Router


class Cluster:
    """etcd + nodes + routers under one directory; `stop()` kills every process by PID."""

    def __init__(self, root: Path, nodes: int = 3, shards: int = 8):
        self.root = Path(root)
        self.shards = shards
        self.etcd = Etcd(self.root)
        self.nodes = [Node(f"n{i + 1}", self.root, self.etcd.url) for i in range(nodes)]
        self.routers: list[Router] = []
        self.router_env: dict | None = None  # environment of every router started

    def start(self) -> Cluster:
        self.etcd.start().wait_ready()
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        self.add_router()
        return self

    def add_router(self) -> Router:
        name = f"router{len(self.routers) + 1}" if self.routers else "router"
        router = Router(self.root, self.etcd.url, shards=self.shards,
                        min_nodes=len(self.nodes), name=name, env=self.router_env)
        self.routers.append(router.start().wait_ready())
        return router

    @property
    def router(self) -> Router:
        return self.routers[0]

    @property
    def address(self) -> str:
        return self.router.address

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def restart_node(self, node_id: str, graceful: bool = True) -> Node:
        """Stop a node (SIGTERM or SIGKILL) and start it again on the same port and data."""
        old = self.node(node_id)
        old.stop(graceful=graceful)
        new = Node(node_id, self.root, self.etcd.url, port=old.port)
        self.nodes[self.nodes.index(old)] = new
        return new.start().wait_ready()

    def restart_router(self, graceful: bool = True) -> Router:
        old = self.routers.pop(0)
        old.stop(graceful=graceful)
        router = Router(self.root, self.etcd.url, port=old.port, shards=self.shards,
                        min_nodes=len(self.nodes))
        self.routers.insert(0, router.start().wait_ready())
        return router

    def stop(self) -> None:
        for proc in [*self.routers, *self.nodes, self.etcd]:
            proc.stop(graceful=False)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- looking at the files directly -------------------------------------------------------

    def shard_files(self) -> list[str]:
        return sorted(glob.glob(str(self.root / "nodes" / "*" / "shards" / "*.db")))

    def change_count(self, collection: str | None = None) -> int:
        """Change-log records over every shard file (read-only, beside the running nodes)."""
        total = 0
        for path in self.shard_files():
            conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
            try:
                sql = "SELECT COUNT(*) FROM changes"
                args: tuple = ()
                if collection:
                    sql, args = sql + " WHERE collection = ?", (collection,)
                total += conn.execute(sql, args).fetchone()[0]
            finally:
                conn.close()
        return total

    def doc_count(self, collection: str) -> int:
        """Document rows of a collection over every shard file."""
        total = 0
        for path in self.shard_files():
            conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
            try:
                total += conn.execute("SELECT COUNT(*) FROM docs WHERE collection = ?",
                                      (collection,)).fetchone()[0]
            finally:
                conn.close()
        return total
