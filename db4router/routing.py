"""Where a key lives: ring lookups through an LRU cache that is dropped on every epoch change."""

from __future__ import annotations

from collections import OrderedDict

from db4core.errors import UnavailableError
from db4core.topology import Topology


class RoutingCache:
    """token -> shard for the current epoch, least recently used entries evicted first."""

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._epoch = -1
        self._entries: OrderedDict[int, str] = OrderedDict()

    def shard_for(self, topo: Topology, token: int) -> str:
        """The shard owning token at topo's epoch."""
        if topo.epoch != self._epoch:
            self._entries.clear()
            self._epoch = topo.epoch
        shard = self._entries.get(token)
        if shard is None:
            shard = topo.shard_for_token(token)
            self._entries[token] = shard
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(token)
        return shard


def node_for(topo: Topology, shard_id: str) -> str:
    """The node hosting a shard, or UNAVAILABLE when it has none."""
    node = topo.node_of(shard_id)
    if node is None:
        raise UnavailableError(f"shard {shard_id} has no node at epoch {topo.epoch}")
    return node
