"""The shards a node hosts: one SQLite file each under <data-dir>/shards/."""

from __future__ import annotations

import json
import os
import re
from typing import TypeVar

from db4core.errors import InvalidArgumentError
from db4node.loadmeter import LoadMeter
from db4node.shard import Shard
from db4node.worker import DEFAULT_QUERY_CEILING_S, ScatterPool, ShardWorker

T = TypeVar("T")
_SHARD_ID = re.compile(r"[a-z0-9_-]{1,64}")


class ShardStore:
    """Opens shard databases on first use, each with its worker threads, and keeps them open."""

    def __init__(self, data_dir: str,
                 query_ceiling_s: float | None = DEFAULT_QUERY_CEILING_S) -> None:
        self.dir = os.path.join(data_dir, "shards")
        self.query_ceiling_s = query_ceiling_s
        os.makedirs(self.dir, exist_ok=True)
        self._shards: dict[str, ShardWorker] = {}
        self.scatter = ScatterPool(query_ceiling_s=query_ceiling_s)
        self.load = LoadMeter()

    def get(self, shard_id: str) -> ShardWorker:
        """The open shard's worker, opening (and creating) its file when needed."""
        worker = self._shards.get(shard_id)
        if worker is None:
            shard = Shard(shard_id, self._path(shard_id))
            worker = ShardWorker(shard, query_ceiling_s=self.query_ceiling_s)
            self._shards[shard_id] = worker
        return worker

    def has(self, shard_id: str) -> bool:
        """Whether the node holds a file of the shard (open or not); creates nothing."""
        return shard_id in self._shards or os.path.exists(self._path(shard_id))

    def _path(self, shard_id: str) -> str:
        if not _SHARD_ID.fullmatch(shard_id):
            raise InvalidArgumentError(f"invalid shard id {shard_id!r}")
        return os.path.join(self.dir, f"{shard_id}.db")

    def tmp_path(self, name: str) -> str:
        """A path for a file being made (snapshots, installs): <data-dir>/tmp/<name>."""
        tmp = os.path.join(os.path.dirname(self.dir), "tmp")
        os.makedirs(tmp, exist_ok=True)
        return os.path.join(tmp, name)

    def path_of(self, shard_id: str) -> str:
        """The shard's database file (validating the id)."""
        return self._path(shard_id)

    def adopt_file(self, shard_id: str, made: str) -> ShardWorker:
        """Make a finished file the shard's database (durably renamed) and open it; an open
        shard of that id is closed and its files replaced."""
        self.drop(shard_id)
        path = self._path(shard_id)
        os.replace(made, path)
        _fsync_dir(self.dir)
        return self.get(shard_id)

    def drop(self, shard_id: str) -> bool:
        """Close the shard and delete its files; whether it had any."""
        worker = self._shards.pop(shard_id, None)
        if worker is not None:
            worker.close()
        path = self._path(shard_id)
        found = worker is not None or os.path.exists(path)
        for p in (path, path + "-wal", path + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        _fsync_dir(self.dir)
        return found

    def open_all(self) -> list[str]:
        """Open every shard file of the data directory (so that prepared transactions left by a
        crash are resolved without waiting for a request); returns their ids."""
        names = sorted(f[:-3] for f in os.listdir(self.dir) if f.endswith(".db"))
        found = [n for n in names if _SHARD_ID.fullmatch(n)]
        for shard_id in found:
            self.get(shard_id)
        return found

    def open_shards(self) -> list[tuple[str, ShardWorker]]:
        """The shards open now, with their workers."""
        return list(self._shards.items())

    def close(self) -> None:
        """Close every open shard once its running work is done."""
        self.scatter.close()
        for worker in self._shards.values():
            worker.close()
        self._shards.clear()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def claim_data_dir(data_dir: str, node_id: str, cluster: str) -> None:
    """Refuse to serve another node's or another cluster's data directory."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "node.json")
    mine = {"node_id": node_id, "cluster": cluster}
    if os.path.exists(path):
        with open(path) as f:
            found = json.load(f)
        if found != mine:
            raise SystemExit(
                f"data dir {data_dir} belongs to node {found.get('node_id')!r} of cluster "
                f"{found.get('cluster')!r}, not node {node_id!r} of cluster {cluster!r}"
            )
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(mine, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
