"""Cluster topology as kept in etcd: keys, the ring, shard placement, the epoch.

Layout under /db4/<cluster>/ (contract):
  topo/epoch              the ring epoch (decimal); bumped in the same etcd txn as any change below
  topo/ring               JSON {"vnodes": [[token, shard_id], ...]}
  topo/placement/<shard>  node id hosting the shard
  nodes/<node_id>         JSON {"address": "host:port"}, attached to the node's lease
  collections/<name>      JSON {"partition_key": "..."}
  indexes/<name>          JSON {"collection": "...", "fields": [[path, "asc"|"desc"], ...]}
  secrets/cursor          hex key that signs page cursors (any router can continue any cursor)
  search/<name>           JSON {"collection": "...", "fields": [[path, weight], ...],
                          "tokenizer": "porter"|"unicode61"|"trigram"}: a full-text index
  txns/<txid>             JSON {"decision": "commit"|"abort", "participants": [shard, ...],
                          "ts": ms, "by": who}: a cross-shard transaction's decision, written
                          once with a create-only etcd transaction, removed once every
                          participant has applied it
  consumers/<name>        JSON {"token": "...", "lsn": {shard: lsn}, "ts": ms}: a durable
                          change-feed consumer's acknowledged position; the change log is kept
                          from the lowest of them on (the checkpoint). `$op-<id>` is a
                          split or move's pin: {"lsn": {shard: lsn}, "pin": true}, which holds
                          only the shards it names
  ops/<id>                JSON: a split or move (db4router/operations.py), its state and progress
  lineage/<shard>         JSON {"parent", "ranges", "fence_lsn", "epoch", "op"}: a shard made by a
                          split or move took `ranges` of `parent`, whose log holds their changes
                          up to `fence_lsn`; written with the ring change (the commit point)
A reader takes the whole topo/ prefix in one range read, so it sees one consistent revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from db4core.ring import Ring


@dataclass(frozen=True)
class Keys:
    """etcd key names for one cluster."""

    cluster: str

    @property
    def root(self) -> bytes:
        return f"/db4/{self.cluster}/".encode()

    @property
    def topo(self) -> bytes:
        return self.root + b"topo/"

    @property
    def epoch(self) -> bytes:
        return self.topo + b"epoch"

    @property
    def ring(self) -> bytes:
        return self.topo + b"ring"

    @property
    def placement(self) -> bytes:
        return self.topo + b"placement/"

    @property
    def nodes(self) -> bytes:
        return self.root + b"nodes/"

    @property
    def collections(self) -> bytes:
        return self.root + b"collections/"

    @property
    def indexes(self) -> bytes:
        return self.root + b"indexes/"

    @property
    def cursor_secret(self) -> bytes:
        return self.root + b"secrets/cursor"

    @property
    def search_indexes(self) -> bytes:
        return self.root + b"search/"

    def search_index(self, name: str) -> bytes:
        return self.search_indexes + name.encode()

    @property
    def txns(self) -> bytes:
        return self.root + b"txns/"

    def txn(self, txid: str) -> bytes:
        return self.txns + txid.encode()

    @property
    def consumers(self) -> bytes:
        return self.root + b"consumers/"

    @property
    def tokens(self) -> bytes:
        return self.root + b"tokens/"

    @property
    def leader(self) -> bytes:
        return self.root + b"leader"

    @property
    def hot_marks(self) -> bytes:
        return self.root + b"hot/"

    def hot(self, shard_id: str) -> bytes:
        return self.hot_marks + shard_id.encode()

    @property
    def loads(self) -> bytes:
        return self.root + b"load/"

    def load(self, node_id: str) -> bytes:
        return self.loads + node_id.encode()

    @property
    def operations(self) -> bytes:
        return self.root + b"ops/"

    def operation(self, op_id: str) -> bytes:
        return self.operations + op_id.encode()

    @property
    def lineages(self) -> bytes:
        return self.root + b"lineage/"

    def lineage(self, shard_id: str) -> bytes:
        return self.lineages + shard_id.encode()

    def consumer(self, name: str) -> bytes:
        return self.consumers + name.encode()

    def index(self, name: str) -> bytes:
        return self.indexes + name.encode()

    def node(self, node_id: str) -> bytes:
        return self.nodes + node_id.encode()

    def collection(self, name: str) -> bytes:
        return self.collections + name.encode()

    def shard_placement(self, shard_id: str) -> bytes:
        return self.placement + shard_id.encode()


@dataclass(frozen=True)
class Topology:
    """One consistent view of ring, placement and epoch."""

    epoch: int
    ring: Ring
    placement: dict[str, str] = field(default_factory=dict)

    def shard_for_token(self, token: int) -> str:
        """Owning shard of a token."""
        return self.ring.shard_for_token(token)

    def node_of(self, shard_id: str) -> str | None:
        """Node hosting a shard, None when unplaced."""
        return self.placement.get(shard_id)

    def shards_on(self, node_id: str) -> list[str]:
        """Shards placed on a node, sorted."""
        return sorted(s for s, n in self.placement.items() if n == node_id)

    def to_kvs(self, keys: Keys) -> dict[bytes, bytes]:
        """Every key of the topo/ prefix, for one etcd transaction."""
        kvs = {keys.epoch: str(self.epoch).encode(), keys.ring: self.ring.to_json().encode()}
        for shard, node in self.placement.items():
            kvs[keys.shard_placement(shard)] = node.encode()
        return kvs

    @classmethod
    def from_kvs(cls, keys: Keys, kvs: dict[bytes, bytes]) -> Topology | None:
        """Parse the topo/ prefix; None when the cluster was never created."""
        if keys.epoch not in kvs or keys.ring not in kvs:
            return None
        placement = {
            k[len(keys.placement):].decode(): v.decode()
            for k, v in kvs.items()
            if k.startswith(keys.placement)
        }
        return cls(int(kvs[keys.epoch]), Ring.from_json(kvs[keys.ring]), placement)


def shard_name(index: int) -> str:
    """Name of the index-th shard created with the cluster: s000, s001, ..."""
    return f"s{index:03d}"


def parse_node_record(raw: bytes) -> str:
    """A node registration's address."""
    return str(json.loads(raw)["address"])
