"""Channels to storage nodes, one per node, rebuilt when a node's address changes."""

from __future__ import annotations

import grpc

from db4.v1 import node_pb2_grpc
from db4core.errors import UnavailableError
from db4rpc.options import CHANNEL_OPTIONS


class NodePool:
    """node id -> Node stub."""

    def __init__(self) -> None:
        self._stubs: dict[str, tuple[str, grpc.aio.Channel, node_pb2_grpc.NodeStub]] = {}

    def stub(self, node_id: str, nodes: dict[str, str]) -> node_pb2_grpc.NodeStub:
        """The stub for node_id at its registered address."""
        address = nodes.get(node_id)
        if address is None:
            raise UnavailableError(f"node {node_id} is not registered (down or restarting)")
        entry = self._stubs.get(node_id)
        if entry is None or entry[0] != address:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            entry = (address, channel, node_pb2_grpc.NodeStub(channel))
            self._stubs[node_id] = entry
        return entry[2]

    async def close(self) -> None:
        for _, channel, _ in self._stubs.values():
            await channel.close()
        self._stubs.clear()
