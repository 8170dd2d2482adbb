"""Splits and moves: operation records in etcd, planned by any router, driven by the leader.

The protocol is in DESIGN.md ("Elastic sharding"). A record `ops/<id>` moves through
planned -> copying -> catching_up -> cutover -> done, or to aborted. Every step is idempotent
and the record says which step is next, so a new leader resumes where the old one stopped:

- copying: the target node fetches a snapshot of the shard from the source node (InstallShard
  names the source; it calls SnapshotShard) and installs it as a follower keeping only the
  moving ranges. A follower of this operation that already exists is kept (its position says
  where it stands). The source's change log is pinned (`consumers/$op-<id>`) from before the
  snapshot.
- catching_up: ReadLog on the source, ApplyParent on the target, until the follower is within
  CLOSE_ENOUGH records of the source's head.
- cutover: Fence on the source (writes of moving keys wait for the next epoch), wait for the
  transactions prepared on moving keys to resolve, catch up to the fence LSN, then one etcd
  transaction (guarded by the planned epoch and the record's revision) writes the new ring and
  placement, epoch + 1, `lineage/<target>` and the record's state `done`: the commit point.
  Past the cutover budget before that point, the operation aborts.
- aborted: the fence is lifted, the follower dropped, the pin removed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import grpc

from db4.v1 import node_pb2
from db4core import failpoints
from db4core.errors import (
    Db4Error,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from db4core.periodic import Periodic
from db4core.ring import TOKEN_MAX, Ring
from db4core.topology import Topology, shard_name
from db4router.controller import Leadership
from db4router.dispatch import Dispatcher
from db4router.topology import etcd_call
from db4rpc.status import to_domain

log = logging.getLogger("db4.router.operations")

PLANNED, COPYING, CATCHING_UP, CUTOVER, DONE, ABORTED = (
    "planned", "copying", "catching_up", "cutover", "done", "aborted")
ACTIVE = (PLANNED, COPYING, CATCHING_UP, CUTOVER)
CLOSE_ENOUGH = 200  # records behind the source's head that start the cutover
CUTOVER_BUDGET_S = 2.0  # how long moving keys may stay fenced before the operation aborts
MAX_CUTOVERS = 10  # cutovers past the budget before the operation aborts
PARTY_BUDGET_S = 120.0  # how long a party may fail before an unfinished operation aborts
READ_BATCH = 5000
COPY_TIMEOUT_S = 1800.0  # a snapshot's copy, relayed by the leader
CALL_TIMEOUT_S = 30.0  # any other call to a node
ROUND_S = 0.5
_OP_ID = re.compile(r"[a-z0-9-]{1,64}")


@dataclass
class Operation:
    """An operation record (`ops/<id>`)."""

    id: str
    kind: str  # split | move
    source: str
    source_node: str
    target: str
    target_node: str
    epoch: int  # the ring epoch it was planned at
    ring: str  # the new ring's JSON
    moving: list[list[int]]  # inclusive unsigned token ranges the target takes
    state: str = PLANNED
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    l0: int = 0  # the source's LSN the snapshot stood at
    applied: int = 0  # the follower's position
    source_lsn: int = 0  # the source's last LSN as last seen
    fence_lsn: int = 0
    documents: int = 0  # documents the snapshot gave the target
    copied_bytes: int = 0
    total_bytes: int = 0
    error: str = ""  # the last failure (retried) or why it aborted
    failing_since: float = 0.0
    abort_requested: bool = False
    cutovers: int = 0  # cutovers given up (past the budget) and tried again
    revision: int = field(default=0, compare=False)  # etcd mod revision (not stored)

    def to_json(self) -> bytes:
        d = asdict(self)
        d.pop("revision")
        return json.dumps(d).encode()

    @classmethod
    def from_kv(cls, value: bytes, revision: int) -> Operation:
        d = json.loads(value)
        names = set(cls.__dataclass_fields__)
        op = cls(**{k: v for k, v in d.items() if k in names})
        op.revision = revision
        return op

    @property
    def finished(self) -> bool:
        return self.state in (DONE, ABORTED)


def validate_op_id(op_id: str) -> str:
    if not _OP_ID.fullmatch(op_id):
        raise InvalidArgumentError(
            f"operation id must be 1-64 characters of [a-z0-9-], got {op_id!r}")
    return op_id


def next_shard_id(topo: Topology, taken: set[str]) -> str:
    """The next unused sNNN shard id."""
    used = set(topo.ring.shards) | set(topo.placement) | taken
    numbers = [int(s[1:]) for s in used if re.fullmatch(r"s\d+", s)]
    n = max(numbers, default=-1) + 1
    while shard_name(n) in used:
        n += 1
    return shard_name(n)


def split_ring(ring: Ring, source: str, target: str, split_token: int | None) -> Ring:
    """The ring after a split: the target takes the source's tokens above `split_token` (by
    default the point halving the source's share); a vnode is added at the split token when it
    falls inside one of the source's arcs, so that arc is shared."""
    if source not in ring.shards:
        raise FailedPreconditionError(f"shard {source} owns no tokens")
    if split_token is None:
        split_token = _halving_token(ring, source)
    assert split_token is not None
    if not 0 <= split_token < TOKEN_MAX:
        raise InvalidArgumentError(f"split token {split_token} is outside the ring")
    vnodes = dict(zip(ring.tokens, ring.owners, strict=True))
    if ring.shard_for_token(split_token) == source and split_token not in vnodes:
        vnodes[split_token] = source
    moved = {t: target for t, o in vnodes.items() if o == source and t > split_token}
    # The arc that wraps past the top belongs to the first vnode; tokens above the last vnode
    # count as above the split token when that first vnode is the source's.
    if not moved:
        raise FailedPreconditionError(
            f"shard {source} owns no tokens above {split_token}: nothing would move")
    if len(moved) == sum(1 for o in vnodes.values() if o == source):
        raise FailedPreconditionError(
            f"shard {source} owns no tokens at or below {split_token}: nothing would stay")
    vnodes.update(moved)
    pairs = sorted(vnodes.items())
    return Ring(tuple(t for t, _ in pairs), tuple(o for _, o in pairs))


def _halving_token(ring: Ring, source: str) -> int:
    """The token above which the source's vnodes own half of its share: walking its vnodes
    from the top, the arc reaching half is cut inside."""
    arcs = []  # (vnode token, its arc's size), the ring's first vnode's arc wrapping
    for i, (token, owner) in enumerate(zip(ring.tokens, ring.owners, strict=True)):
        if owner == source:
            prev = ring.tokens[i - 1] if i else ring.tokens[-1] - (TOKEN_MAX + 1)
            arcs.append((token, token - prev))
    half = sum(size for _, size in arcs) // 2
    acc = 0
    for token, size in reversed(arcs):
        if acc + size > half:
            return max(0, token - (half - acc))
        acc += size
    return 0


def move_ring(ring: Ring, source: str, target: str) -> Ring:
    """The ring after a move: every vnode of the source goes to the target. The source stays
    placed on its node, owning no tokens: its change log stays readable for change feeds, and
    decisions of transactions prepared on it still reach it."""
    return Ring(ring.tokens, tuple(target if o == source else o for o in ring.owners))


class Operations:
    """Plans operations (any router) and drives them (the leader)."""

    def __init__(self, dispatcher: Dispatcher, leadership: Leadership,
                 round_s: float = ROUND_S, cutover_budget_s: float = CUTOVER_BUDGET_S,
                 party_budget_s: float = PARTY_BUDGET_S) -> None:
        self.dispatcher = dispatcher
        self.view = dispatcher.view
        self.etcd = dispatcher.view.etcd
        self.keys = dispatcher.view.keys
        self.leadership = leadership
        self.cutover_budget_s = cutover_budget_s
        self.party_budget_s = party_budget_s
        self._rounds = Periodic("operations", self.round, round_s, log, (Db4Error,))
        self.after_round: list[Callable[[], Awaitable[None]]] = []  # plans' steps

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    # ---- records -------------------------------------------------------------------------------

    def _key(self, op_id: str) -> bytes:
        return self.keys.operation(op_id)

    async def listing(self) -> list[Operation]:
        """Every operation record, oldest first."""
        prefix = self.keys.operations
        found = await etcd_call("reading operations", lambda: self.etcd.get_prefix(prefix))
        ops = [Operation.from_kv(kv.value, kv.mod_revision) for kv in found]
        return sorted(ops, key=lambda o: (o.created, o.id))

    async def get(self, op_id: str) -> Operation:
        validate_op_id(op_id)
        found = await etcd_call("reading an operation", lambda: self.etcd.get(self._key(op_id)))
        if found is None:
            raise NotFoundError(f"no operation {op_id}")
        return Operation.from_kv(found.value, found.mod_revision)

    async def _save(self, op: Operation) -> bool:
        """Write the record if nobody changed it since we read it; whether we did."""
        op.updated = time.time()
        key, tx = self._key(op.id), self.etcd.transactions
        ok, _ = await etcd_call("writing an operation", lambda: self.etcd.transaction(
            compare=[tx.mod(key) == op.revision], success=[tx.put(key, op.to_json())],
            failure=[]))
        if ok:
            fresh = await self.get(op.id)
            op.revision = fresh.revision
        return bool(ok)

    # ---- planning (any router) -------------------------------------------------------------------

    async def plan(self, kind: str, shard_id: str, op_id: str = "", node_id: str = "",
                   split_token: int | None = None) -> Operation:
        """Record a split or move of a shard (planned); the same op_id again answers the
        record already there."""
        op_id = validate_op_id(op_id) if op_id else uuid.uuid4().hex[:16]
        try:
            return await self.get(op_id)
        except NotFoundError:
            pass
        await self.view.refresh()
        topo = self.view.require()
        if shard_id not in topo.ring.shards:
            raise NotFoundError(f"no shard {shard_id} on the ring")
        source_node = topo.node_of(shard_id)
        if source_node is None:
            raise FailedPreconditionError(f"shard {shard_id} is not placed")
        active = [o for o in await self.listing() if not o.finished]
        for o in active:
            if source_node in (o.source_node, o.target_node) or \
                    (node_id and node_id in (o.source_node, o.target_node)):
                raise FailedPreconditionError(
                    f"operation {o.id} ({o.kind} of {o.source}) is in progress on node "
                    f"{source_node if source_node in (o.source_node, o.target_node) else node_id}"
                    "; one operation per node at a time")
        target = next_shard_id(topo, {o.target for o in active})
        if kind == "split":
            target_node = node_id or source_node
            ring = split_ring(topo.ring, shard_id, target, split_token)
        elif kind == "move":
            if not node_id:
                raise InvalidArgumentError("a move needs the node to move to")
            if node_id == source_node:
                raise FailedPreconditionError(f"shard {shard_id} is on node {node_id} already")
            target_node = node_id
            ring = move_ring(topo.ring, shard_id, target)
        else:
            raise InvalidArgumentError(f"unknown operation kind {kind!r}")
        if target_node not in self.view.nodes:
            raise FailedPreconditionError(f"node {target_node} is not registered (alive)")
        op = Operation(op_id, kind, shard_id, source_node, target, target_node, topo.epoch,
                       ring.to_json(), [[a, b] for a, b in ring.ranges(target)])
        tx, key = self.etcd.transactions, self._key(op_id)
        created, _ = await etcd_call("planning an operation", lambda: self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, op.to_json())], failure=[]))
        log.info("planned %s %s: shard %s (node %s) -> %s (node %s), epoch %d", kind, op_id,
                 shard_id, source_node, target, target_node, topo.epoch)
        return await self.get(op_id)

    async def auto_split(self, shard_id: str, split_token: int | None) -> bool:
        """Plan a split of a hot shard unless an operation is running or the shard cannot be
        split here; whether one was planned. Its id names the shard and the ring epoch."""
        if any(not o.finished for o in await self.listing()):
            return False
        topo = self.view.require()
        op_id = f"auto-{shard_id}-{topo.epoch}"
        try:
            await self.get(op_id)
            return False  # planned already at this epoch (it aborted: wait for the ring)
        except NotFoundError:
            pass
        try:
            await self.plan("split", shard_id, op_id, "", split_token)
        except (FailedPreconditionError, NotFoundError, InvalidArgumentError) as err:
            log.info("hot shard %s is not split: %s", shard_id, err)
            return False
        return True

    async def request_abort(self, op_id: str) -> Operation:
        """Ask the leader to abort an unfinished operation (an aborted one is answered as is:
        idempotent); the operation aborts unless it passed its commit point. One that finished
        (done) is FAILED_PRECONDITION: there is nothing left to abort."""
        for _ in range(20):
            op = await self.get(op_id)
            if op.state == DONE:
                raise FailedPreconditionError(
                    f"operation {op_id} ({op.kind} of {op.source}) already finished; nothing "
                    "was aborted")
            if op.finished or op.abort_requested:
                return op
            op.abort_requested = True
            if await self._save(op):
                return op
        raise UnavailableError(f"operation {op_id} kept changing; try again")

    async def wait(self, op_id: str, timeout_s: float | None) -> Operation:
        """Poll until the operation finished (or the timeout passed); its record."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            op = await self.get(op_id)
            if op.finished or (deadline is not None and time.monotonic() >= deadline):
                return op
            await asyncio.sleep(0.1)

    # ---- driving (the leader) --------------------------------------------------------------------

    async def round(self) -> None:
        if not self.leadership.is_leader:
            return
        ops = await self.listing()
        await self._drop_stale_pins({o.id for o in ops if not o.finished})
        for op in ops:
            if op.finished:
                continue
            try:
                await self.drive(op)
            except (Db4Error, grpc.RpcError) as err:
                domain = to_domain(err) if isinstance(err, grpc.RpcError) else err
                await self._failed(op.id, domain)
        for step in self.after_round:
            await step()

    async def _drop_stale_pins(self, active: set[str]) -> None:
        """Remove pins of operations no longer running (a commit whose answer was lost)."""
        prefix = self.keys.consumer("$op-")
        found = await etcd_call("reading pins", lambda: self.etcd.get_prefix(prefix))
        for key in [kv.key for kv in found if kv.key[len(prefix):].decode() not in active]:
            await self._delete(key)

    async def _delete(self, key: bytes) -> None:
        await etcd_call("dropping a pin", lambda: self.etcd.delete(key))

    async def _failed(self, op_id: str, err: Db4Error) -> None:
        op = await self.get(op_id)
        if op.finished:
            return
        now = time.time()
        op.error = str(err)
        op.failing_since = op.failing_since or now
        log.warning("operation %s (%s) failed in %s: %s", op.id, op.kind, op.state, err)
        if now - op.failing_since > self.party_budget_s and op.state != DONE:
            await self._abort(op, f"failing for {now - op.failing_since:.0f} s: {err}")
        else:
            await self._save(op)

    async def drive(self, op: Operation) -> None:
        """Run an operation's steps from its state on, to its end."""
        steps = {PLANNED: self._start, COPYING: self._copy, CATCHING_UP: self._catch_up,
                 CUTOVER: self._cutover}
        while op.state in steps:
            if op.abort_requested:
                await self._abort(op, "aborted on request")
                return
            before = op.state
            await steps[op.state](op)
            if op.finished:
                return  # _commit and _abort wrote the record
            if op.state == before:
                return  # waiting (another round continues)
            op.error, op.failing_since = "", 0.0
            if not await self._save(op):
                return  # someone changed the record (an abort request): next round
            log.info("operation %s: %s -> %s", op.id, before, op.state)

    def _stub(self, node: str):
        return self.dispatcher.pool.stub(node, self.view.nodes)

    async def _start(self, op: Operation) -> None:
        topo = self.view.require()
        if topo.epoch != op.epoch:
            await self._abort(op, f"the ring moved from epoch {op.epoch} to {topo.epoch} "
                                  "before the operation started")
            return
        if topo.node_of(op.source) != op.source_node:
            await self._abort(op, f"shard {op.source} is no longer on node {op.source_node}")
            return
        await self._pin(op, 0)
        op.state = COPYING

    async def _pin(self, op: Operation, lsn: int) -> None:
        """Keep the source's change log after `lsn` until the operation ends."""
        value = json.dumps({"lsn": {op.source: lsn}, "pin": True,
                            "ts": int(time.time() * 1000)}).encode()
        await etcd_call("pinning a change log",
                        lambda: self.etcd.put(self.keys.consumer(f"$op-{op.id}"), value))

    async def _unpin(self, op: Operation) -> None:
        await etcd_call("unpinning a change log",
                        lambda: self.etcd.delete(self.keys.consumer(f"$op-{op.id}")))

    async def _copy(self, op: Operation) -> None:
        target = self._stub(op.target_node)
        status = await target.FollowerStatus(
            node_pb2.FollowerStatusRequest(shard_id=op.target), timeout=CALL_TIMEOUT_S)
        if status.exists and status.following and status.op == op.id:
            op.applied = status.applied  # a copy a previous leader finished
            op.l0 = op.l0 or status.applied
            op.state = CATCHING_UP
            return
        failpoints.hit("operation.before_snapshot")
        ranges = [node_pb2.TokenRange(first=a, last=b) for a, b in op.moving]
        address = self.view.nodes.get(op.source_node)
        if address is None:
            raise UnavailableError(f"node {op.source_node} is not registered")
        # The target fetches the snapshot from the source itself: one hop, not two.
        install = target.InstallShard(timeout=COPY_TIMEOUT_S)
        try:
            await install.write(node_pb2.InstallShardRequest(
                shard_id=op.target, parent=op.source, ranges=ranges, op=op.id,
                source_address=address))
            await install.done_writing()
            installed = await install
        except BaseException:
            install.cancel()
            raise
        failpoints.hit("operation.after_install")
        op.l0 = op.applied = installed.applied
        op.documents = installed.documents
        op.copied_bytes = op.total_bytes = installed.bytes
        await self._pin(op, op.l0)
        op.state = CATCHING_UP

    async def _follow(self, op: Operation, until: int | None = None) -> int:
        """Apply the source's records to the follower until it is within CLOSE_ENOUGH of the
        head (or has applied `until`); the source's last LSN."""
        source, target = self._stub(op.source_node), self._stub(op.target_node)
        last_save = time.monotonic()
        while True:
            batch = await source.ReadLog(node_pb2.ReadLogRequest(
                shard_id=op.source, after_lsn=op.applied, max_records=READ_BATCH),
                timeout=CALL_TIMEOUT_S)
            op.source_lsn = batch.last_lsn
            if batch.records:
                reply = await target.ApplyParent(node_pb2.ApplyParentRequest(
                    shard_id=op.target, records=batch.records), timeout=CALL_TIMEOUT_S)
                op.applied = reply.applied
            if until is None and (batch.records or batch.last_lsn - op.applied <= CLOSE_ENOUGH):
                # Once records were applied, or as catching up ends when none came.
                failpoints.hit("operation.catching_up")
            if until is not None:
                if op.applied >= until:
                    return batch.last_lsn
            elif batch.last_lsn - op.applied <= CLOSE_ENOUGH:
                return batch.last_lsn
            if not batch.records:
                await asyncio.sleep(0.02)
            if time.monotonic() - last_save > 1.0:  # progress for status
                last_save = time.monotonic()
                await self._pin(op, op.applied)
                if not await self._save(op):
                    raise UnavailableError(f"operation {op.id} changed under its driver")

    async def _catch_up(self, op: Operation) -> None:
        await self._follow(op)
        await self._pin(op, op.applied)
        op.state = CUTOVER

    async def _cutover(self, op: Operation) -> None:
        topo = self.view.require()
        if topo.epoch != op.epoch:
            await self._abort(op, f"the ring moved from epoch {op.epoch} to {topo.epoch} "
                                  "before the cutover")
            return
        source = self._stub(op.source_node)
        ranges = [node_pb2.TokenRange(first=a, last=b) for a, b in op.moving]
        fence = node_pb2.FenceRequest(shard_id=op.source, ranges=ranges, op=op.id,
                                      epoch=op.epoch)
        started = time.monotonic()
        reply = await source.Fence(fence, timeout=CALL_TIMEOUT_S)
        while reply.prepared:
            if time.monotonic() - started > self.cutover_budget_s:
                await self._retry_cutover(op, f"transactions {', '.join(reply.prepared)} "
                                              "stayed prepared on moving keys")
                return
            await asyncio.sleep(0.02)
            reply = await source.Fence(fence, timeout=CALL_TIMEOUT_S)
        op.fence_lsn = reply.last_lsn
        failpoints.hit("operation.after_fence")
        await self._follow(op, until=op.fence_lsn)
        if time.monotonic() - started > self.cutover_budget_s:
            await self._retry_cutover(op, "the cutover's catch-up took longer than its budget")
            return
        await self._commit(op, topo)

    async def _retry_cutover(self, op: Operation, why: str) -> None:
        """Past the cutover budget: lift the fence and go back to catching up (the writes of
        the moving keys resume); abort after MAX_CUTOVERS attempts."""
        op.cutovers += 1
        if op.cutovers >= MAX_CUTOVERS:
            await self._abort(op, f"{why}, {op.cutovers} cutovers in a row")
            return
        await self._stub(op.source_node).Unfence(
            node_pb2.UnfenceRequest(shard_id=op.source, op=op.id), timeout=CALL_TIMEOUT_S)
        log.info("operation %s: %s past the cutover budget; the fence is lifted and the "
                 "cutover will be tried again", op.id, why)
        op.state = CATCHING_UP
        await asyncio.sleep(min(0.2 * op.cutovers, 1.0))

    async def _commit(self, op: Operation, topo: Topology) -> None:
        """The commit point: ring, placement, epoch, lineage and the record in one etcd
        transaction guarded by the planned epoch and the record's revision."""
        keys, tx = self.keys, self.etcd.transactions
        op.state = DONE
        op.error, op.failing_since = "", 0.0
        op.updated = time.time()
        lineage = json.dumps({"parent": op.source, "ranges": op.moving,
                              "fence_lsn": op.fence_lsn, "epoch": op.epoch + 1,
                              "op": op.id}).encode()
        puts = [tx.put(keys.epoch, str(op.epoch + 1).encode()),
                tx.put(keys.ring, op.ring.encode()),
                tx.put(keys.shard_placement(op.target), op.target_node.encode()),
                tx.put(keys.lineage(op.target), lineage),
                tx.put(self._key(op.id), op.to_json())]
        ok, _ = await etcd_call("committing an operation", lambda: self.etcd.transaction(
            compare=[tx.value(keys.epoch) == str(op.epoch).encode(),
                     tx.mod(self._key(op.id)) == op.revision],
            success=puts, failure=[]))
        if not ok:
            fresh = await self.get(op.id)
            if fresh.state == DONE:
                return
            await self._abort(fresh, "the ring or the operation changed at the commit point")
            op.state = ABORTED
            return
        failpoints.hit("operation.after_commit")
        await self._unpin(op)
        await self.view.refresh()
        log.info("operation %s done: shard %s's ranges now on %s (node %s), epoch %d",
                 op.id, op.source, op.target, op.target_node, op.epoch + 1)

    async def _abort(self, op: Operation, why: str) -> None:
        """Lift the fence, drop the follower, remove the pin, record `aborted`."""
        log.warning("aborting operation %s (%s of %s): %s", op.id, op.kind, op.source, why)
        await self._stub(op.source_node).Unfence(
            node_pb2.UnfenceRequest(shard_id=op.source, op=op.id), timeout=CALL_TIMEOUT_S)
        await self._stub(op.target_node).DropFollower(
            node_pb2.DropFollowerRequest(shard_id=op.target, op=op.id), timeout=CALL_TIMEOUT_S)
        await self._unpin(op)
        op.state, op.error = ABORTED, why
        await self._save(op)
