"""Channels to storage nodes, one per node, rebuilt when a node's address changes.

Change-log tails get a channel of their own per node, with gRPC's BDP probing off: with it on,
each stream's flow-control window grows to megabytes, and a router tailing every shard for a
slow subscriber would hold that much per shard. With it off a stream buffers ~64 KiB, so what
a slow subscriber costs the router stays bounded by its own small queues.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from db4.v1 import node_pb2_grpc
from db4core.errors import UnavailableError
from db4rpc.options import CHANNEL_OPTIONS

TAIL_CHANNEL_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0))


class NodePool:
    """node id -> Node stub."""

    def __init__(self, open_channel: Callable[[str, Any], grpc.aio.Channel] | None = None
                 ) -> None:
        # opens a channel to a node: TLS and the router's token when configured
        self._open = open_channel or (
            lambda address, options: grpc.aio.insecure_channel(address, options=options))
        self._stubs: dict[tuple[str, bool], tuple[str, grpc.aio.Channel,
                                                  node_pb2_grpc.NodeStub]] = {}

    def stub(self, node_id: str, nodes: dict[str, str], tail: bool = False
             ) -> node_pb2_grpc.NodeStub:
        """The stub for node_id at its registered address (`tail`: the change-log channel)."""
        address = nodes.get(node_id)
        entry = self._stubs.get((node_id, tail))
        if address is None:
            if entry is not None:
                # A node that stopped released its registration; while it restarts, calls go
                # to its last address, where they are waited for like any unreachable node.
                return entry[2]
            raise UnavailableError(f"node {node_id} is not registered (down or restarting)")
        if entry is None or entry[0] != address:
            options = TAIL_CHANNEL_OPTIONS if tail else CHANNEL_OPTIONS
            channel = self._open(address, options)
            entry = (address, channel, node_pb2_grpc.NodeStub(channel))
            self._stubs[(node_id, tail)] = entry
        return entry[2]

    async def close(self) -> None:
        for _, channel, _ in self._stubs.values():
            await channel.close()
        self._stubs.clear()
