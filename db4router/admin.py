"""The Admin gRPC servicer: the cluster's shape, and per-shard counters on request."""

from __future__ import annotations

import grpc

from db4.v1 import admin_pb2, admin_pb2_grpc, node_pb2
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4rpc.status import servicer_method


class AdminService(admin_pb2_grpc.AdminServicer):
    """Cluster status."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def _stats(self) -> dict[str, node_pb2.ShardStat]:
        async def one(stub, shard, epoch):
            resp = await stub.ShardStats(node_pb2.ShardStatsRequest(shard_ids=[shard]),
                                         timeout=NODE_TIMEOUT_S)
            return resp.shards[0] if resp.shards else None

        return await self.dispatcher.every_shard(one)

    @servicer_method
    async def Status(self, request: admin_pb2.StatusRequest, context: grpc.aio.ServicerContext):
        view = self.dispatcher.view
        topo = view.require()
        stats = await self._stats() if request.with_stats else {}
        shards = []
        for shard in sorted(topo.ring.shards):
            st = stats.get(shard)
            shards.append(admin_pb2.ShardStatus(
                shard_id=shard, node_id=topo.node_of(shard) or "",
                vnodes=topo.ring.vnode_count(shard),
                documents=st.documents if st else -1, bytes=st.bytes if st else -1,
            ))
        placed = set(topo.placement.values())
        nodes = [
            admin_pb2.NodeStatus(node_id=n, address=view.nodes.get(n, ""), alive=n in view.nodes)
            for n in sorted(placed | set(view.nodes))
        ]
        return admin_pb2.StatusResponse(cluster=view.keys.cluster, epoch=topo.epoch, nodes=nodes,
                                        shards=shards)
