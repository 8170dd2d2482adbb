"""The Admin gRPC servicer: the cluster's shape, and per-shard counters on request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from db4.v1 import admin_pb2, admin_pb2_grpc, node_pb2
from db4core.errors import InvalidArgumentError, UnavailableError
from db4router.consumers import Consumers, lag
from db4router.controller import read_hot_marks, read_loads
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4router.operations import Operation, Operations
from db4router.plans import Plan, Plans
from db4router.topology import etcd_call
from db4rpc.status import servicer_method
from db4rpc.tokens import Limits, TokenRecord, TokenStore

T = TypeVar("T")
log = logging.getLogger("db4.router.admin")


class AdminService(admin_pb2_grpc.AdminServicer):
    """Cluster status."""

    def __init__(self, dispatcher: Dispatcher, operations: Operations, plans: Plans,
                 tokens: TokenStore) -> None:
        self.dispatcher = dispatcher
        self.tokens = tokens
        self.consumers = Consumers(dispatcher.view)
        self.operations = operations
        self.plans = plans

    async def _stats(self) -> dict[str, node_pb2.ShardStat | None]:
        """Each shard's figures now; None for a shard whose node does not answer (Status then
        shows its last load report: a status is most wanted when something is down). It does
        not wait for such a node, and does not count as its answer."""
        async def one(stub, shard, epoch):
            try:
                resp = await stub.ShardStats(
                    node_pb2.ShardStatsRequest(shard_ids=[shard], epoch=epoch),
                    timeout=NODE_TIMEOUT_S)
            except grpc.RpcError as err:
                if err.code() not in (grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                log.warning("status: shard %s did not answer its figures: %s", shard,
                            err.details())
                raise UnavailableError(f"shard {shard}: {err.details()}") from None
            return resp.shards[0] if resp.shards else None

        unreachable: dict[str, UnavailableError] = {}
        got: dict[str, node_pb2.ShardStat | None] = dict(
            await self.dispatcher.every_shard(one, unreachable))
        return {**got, **dict.fromkeys(unreachable)}

    @servicer_method
    async def Status(self, request: admin_pb2.StatusRequest, context: grpc.aio.ServicerContext):
        view = self.dispatcher.view
        topo = view.require()
        stats = await self._stats() if request.with_stats else {}
        loads = await read_loads(view.etcd, view.keys)
        hot = await read_hot_marks(view.etcd, view.keys)
        leader = await etcd_call("reading the leader", lambda: view.etcd.get(view.keys.leader))
        shards = []
        for shard in sorted(topo.ring.shards):
            st = stats.get(shard)
            load, age = loads.get(shard, (None, 0.0))
            status = admin_pb2.ShardStatus(
                shard_id=shard, node_id=topo.node_of(shard) or "",
                vnodes=topo.ring.vnode_count(shard), ring_share=topo.ring.share(shard),
                documents=st.documents if st else -1, bytes=st.bytes if st else -1)
            if load is not None:
                status.load.CopyFrom(admin_pb2.ShardLoad(
                    reads_per_s=load["reads_per_s"], writes_per_s=load["writes_per_s"],
                    documents=load["documents"], bytes=load["bytes"], age_s=age,
                    prepared=load.get("prepared", 0), in_doubt=load.get("in_doubt", 0)))
                if st is None:
                    status.documents, status.bytes = load["documents"], load["bytes"]
            mark = hot.get(shard)
            if mark is not None:
                status.hot.CopyFrom(admin_pb2.ShardHot(
                    age_s=max(0.0, time.time() - float(mark.get("since", 0))),
                    reason=str(mark.get("reason", "")), ops_per_s=float(mark.get("ops_per_s", 0)),
                    split_token=int(mark.get("split_token", 0)),
                    cannot_split=str(mark.get("cannot_split", ""))))
            if request.with_ranges:
                status.ranges.extend(node_pb2.TokenRange(first=a, last=b)
                                     for a, b in topo.ring.ranges(shard))
            shards.append(status)
        placed = set(topo.placement.values())
        nodes = [
            admin_pb2.NodeStatus(node_id=n, address=view.nodes.get(n, ""), alive=n in view.nodes)
            for n in sorted(placed | set(view.nodes))
        ]
        running = [operation_status(o) for o in await self.operations.listing()
                   if not o.finished]
        return admin_pb2.StatusResponse(cluster=view.keys.cluster, epoch=topo.epoch, nodes=nodes,
                                        shards=shards, leader=leader.value.decode() if leader
                                        else "", operations=running)

    async def _every_shard_by_node(self, ask: Callable[[Any, list[str]], Awaitable[list[T]]],
                                   unreachable: dict[str, UnavailableError] | None = None
                                   ) -> list[T]:
        """ask(stub, shard ids of one node) -> one answer per shard, for every shard of the
        ring, asking each node once for all of its shards (again over the new ring's shards
        when it moves meanwhile). Given `unreachable`, the shards of a node that cannot be
        reached are noted there and left out (`Dispatcher.by_node`)."""
        async def ask_node(stub, shard_ids, epoch):
            return await ask(stub, shard_ids)

        async def ask_one(stub, shard_id, epoch):
            return (await ask(stub, [shard_id]))[0]

        async def read(_again: bool) -> list[T]:
            shards = sorted(self.dispatcher.view.require().ring.shards)
            return await self.dispatcher.by_node(shards, ask_node, ask_one, unreachable)

        return await self.dispatcher.scatter(read)

    async def logs(self, unreachable: dict[str, UnavailableError] | None = None
                   ) -> list[tuple[str, node_pb2.LogStat]]:
        """(node id, LogStat) of every shard; given `unreachable`, those of a node that is
        down are noted there instead."""

        async def ask(stub, shard_ids: list[str]) -> list[tuple[str, node_pb2.LogStat]]:
            resp = await stub.LogStats(node_pb2.LogStatsRequest(shard_ids=shard_ids),
                                       timeout=NODE_TIMEOUT_S)
            by_id = {st.shard_id: st for st in resp.shards}
            return [(resp.node_id, by_id.get(s, node_pb2.LogStat(shard_id=s)))
                    for s in shard_ids]

        return await self._every_shard_by_node(ask, unreachable)

    @servicer_method
    async def CdcStatus(self, request: admin_pb2.CdcStatusRequest,
                        context: grpc.aio.ServicerContext):
        unreachable: dict[str, UnavailableError] = {}
        logs = await self.logs(unreachable)
        topo = self.dispatcher.view.require()
        shards = [admin_pb2.ShardLog(shard_id=st.shard_id, node_id=node, first_lsn=st.first_lsn,
                                     last_lsn=st.last_lsn, entries=st.entries, bytes=st.bytes,
                                     checkpoint=st.checkpoint) for node, st in logs]
        shards += [admin_pb2.ShardLog(shard_id=shard, node_id=topo.node_of(shard) or "",
                                      unreachable=err.message)
                   for shard, err in unreachable.items()]
        shards.sort(key=lambda log: log.shard_id)
        last = {st.shard_id: st.last_lsn for _, st in logs}  # lag: of the shards that answered
        consumers = [
            admin_pb2.ConsumerStatus(
                name=name, lsn=lsn,
                lag=lag(last, lsn))
            for name, lsn in sorted((await self.consumers.listing()).items())
        ]
        return admin_pb2.CdcStatusResponse(shards=shards, consumers=consumers)

    @servicer_method
    async def Checkpoint(self, request: admin_pb2.CheckpointRequest,
                         context: grpc.aio.ServicerContext):
        """Every node truncates its shards' change logs and checkpoints their WAL now."""

        async def ask(stub, shard_ids: list[str]) -> list[node_pb2.ShardCheckpoint]:
            resp = await stub.CheckpointShards(
                node_pb2.CheckpointShardsRequest(shard_ids=shard_ids), timeout=NODE_TIMEOUT_S)
            by_id = {c.shard_id: c for c in resp.shards}
            return [by_id.get(s, node_pb2.ShardCheckpoint(shard_id=s)) for s in shard_ids]

        return admin_pb2.CheckpointResponse(shards=await self._every_shard_by_node(ask))

    # ---- splits and moves ----------------------------------------------------------------------

    async def _answer(self, op: Operation, wait: bool, context: grpc.aio.ServicerContext
                      ) -> admin_pb2.OperationStatus:
        if wait and not op.finished:
            op = await self.operations.wait(op.id, context.time_remaining() or 3600.0)
        return operation_status(op)

    @servicer_method
    async def SplitShard(self, request: admin_pb2.SplitShardRequest,
                         context: grpc.aio.ServicerContext):
        token = request.split_token if request.HasField("split_token") else None
        op = await self.operations.plan("split", request.shard_id, request.op_id,
                                        request.node_id, token)
        return await self._answer(op, request.wait, context)

    @servicer_method
    async def MoveShard(self, request: admin_pb2.MoveShardRequest,
                        context: grpc.aio.ServicerContext):
        op = await self.operations.plan("move", request.shard_id, request.op_id, request.node_id)
        return await self._answer(op, request.wait, context)

    @servicer_method
    async def GetOperation(self, request: admin_pb2.GetOperationRequest,
                           context: grpc.aio.ServicerContext):
        return await self._answer(await self.operations.get(request.op_id), request.wait,
                                  context)

    @servicer_method
    async def ListOperations(self, request: admin_pb2.ListOperationsRequest,
                             context: grpc.aio.ServicerContext):
        ops = [o for o in await self.operations.listing() if request.all or not o.finished]
        return admin_pb2.ListOperationsResponse(operations=[operation_status(o) for o in ops])

    @servicer_method
    async def AbortOperation(self, request: admin_pb2.GetOperationRequest,
                             context: grpc.aio.ServicerContext):
        op = await self.operations.request_abort(request.op_id)
        return await self._answer(op, request.wait, context)

    async def _plan_answer(self, plan: Plan, wait: bool, context: grpc.aio.ServicerContext,
                           dry_run: bool = False) -> admin_pb2.PlanStatus:
        deadline = time.monotonic() + (context.time_remaining() or 3600.0)
        while wait and not dry_run and plan.state == "running" \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            plan = await self.plans.get(plan.id)
        return plan_status(plan, dry_run)

    @servicer_method
    async def DrainNode(self, request: admin_pb2.DrainNodeRequest,
                        context: grpc.aio.ServicerContext):
        if not request.node_id:
            raise InvalidArgumentError("node_id is required")
        plan = await self.plans.make("drain", request.node_id, request.dry_run, request.plan_id)
        return await self._plan_answer(plan, request.wait, context, request.dry_run)

    @servicer_method
    async def Rebalance(self, request: admin_pb2.RebalanceRequest,
                        context: grpc.aio.ServicerContext):
        plan = await self.plans.make("rebalance", "", request.dry_run, request.plan_id)
        return await self._plan_answer(plan, request.wait, context, request.dry_run)

    @servicer_method
    async def GetPlan(self, request: admin_pb2.GetPlanRequest, context: grpc.aio.ServicerContext):
        return await self._plan_answer(await self.plans.get(request.plan_id), request.wait,
                                       context)

    @servicer_method
    async def CreateToken(self, request: admin_pb2.CreateTokenRequest,
                          context: grpc.aio.ServicerContext):
        limits = Limits(request.requests_per_s, request.max_streams, request.bytes_per_s)
        record, token = await self.tokens.create(request.role, request.name, limits)
        return admin_pb2.CreateTokenResponse(info=token_info(record), token=token)

    @servicer_method
    async def ListTokens(self, request: admin_pb2.ListTokensRequest,
                         context: grpc.aio.ServicerContext):
        return admin_pb2.ListTokensResponse(
            tokens=[token_info(r) for r in await self.tokens.list()])

    @servicer_method
    async def RevokeToken(self, request: admin_pb2.RevokeTokenRequest,
                          context: grpc.aio.ServicerContext):
        return token_info(await self.tokens.revoke(request.id))


def token_info(record: TokenRecord) -> admin_pb2.TokenInfo:
    return admin_pb2.TokenInfo(id=record.id, role=record.role, name=record.name,
                               created_ms=record.created_ms,
                               requests_per_s=record.limits.requests_per_s,
                               max_streams=record.limits.streams,
                               bytes_per_s=record.limits.bytes_per_s)


def plan_status(plan: Plan, dry_run: bool = False) -> admin_pb2.PlanStatus:
    """A plan on the wire (a dry run's has no id)."""
    moves = []
    for i, (shard, node) in enumerate(plan.moves):
        result = plan.results[i] if i < len(plan.results) else "pending"
        started = not dry_run and (i < plan.next or (i == plan.next and plan.state == "running"))
        moves.append(admin_pb2.PlannedMove(shard_id=shard, node_id=node, result=result,
                                           op_id=f"{plan.id}-{i}" if started else ""))
    return admin_pb2.PlanStatus(plan_id="" if dry_run else plan.id, kind=plan.kind,
                                node_id=plan.node, state=plan.state, moves=moves)


def operation_status(op: Operation) -> admin_pb2.OperationStatus:
    """An operation record on the wire."""
    return admin_pb2.OperationStatus(
        op_id=op.id, kind=op.kind, state=op.state, source_shard=op.source,
        source_node=op.source_node, target_shard=op.target, target_node=op.target_node,
        epoch=op.epoch, moving=[node_pb2.TokenRange(first=a, last=b) for a, b in op.moving],
        documents=op.documents, copied_bytes=op.copied_bytes, total_bytes=op.total_bytes,
        snapshot_lsn=op.l0, applied_lsn=op.applied, source_lsn=op.source_lsn,
        fence_lsn=op.fence_lsn, error=op.error, created_ms=int(op.created * 1000),
        updated_ms=int(op.updated * 1000), abort_requested=op.abort_requested,
        cutovers=op.cutovers)
