"""Drains and rebalances: plans of moves, run one move after another by the leader.

A plan (`plans/<id>` in etcd) lists its moves (shard -> node) when it is made, so `db4
rebalance --dry-run` shows exactly what a run would do. The leader starts a plan's next move
(operation id `<plan id>-<n>`, so a restarted leader never starts one twice) once the previous
one has finished; a move that aborted is recorded and the plan goes on with the next. A drain
moves every shard of a node (owning tokens) to the other nodes, each to the node owning the
least of the ring then; a rebalance moves shards from the nodes owning the most of the ring to
those owning the least (a joined node starts with none) while a move narrows the gap.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field

from db4core.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from db4core.topology import Topology
from db4router.operations import Operations, validate_op_id
from db4router.topology import etcd_call

log = logging.getLogger("db4.router.plans")


@dataclass
class Plan:
    """A drain or rebalance and how far it got."""

    id: str
    kind: str  # drain | rebalance
    moves: list[list[str]]  # [shard, node]
    node: str = ""  # the drained node
    next: int = 0  # index of the move to start (or running)
    results: list[str] = field(default_factory=list)  # state of each finished move
    state: str = "running"  # running | done
    created: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Plan:
        d = json.loads(raw)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _shares(topo: Topology, nodes: list[str]) -> dict[str, float]:
    out = dict.fromkeys(nodes, 0.0)
    for shard in topo.ring.shards:
        node = topo.node_of(shard)
        if node in out:
            out[node] += topo.ring.share(shard)
    return out


def drain_moves(topo: Topology, node: str, alive: list[str]) -> list[list[str]]:
    """Every shard of `node` owning tokens, each to the other node owning the least then."""
    others = [n for n in alive if n != node]
    if not others:
        raise FailedPreconditionError(f"no other node to drain {node} to")
    shares = _shares(topo, others)
    moves = []
    for shard in sorted(topo.ring.shards, key=lambda s: -topo.ring.share(s)):
        if topo.node_of(shard) != node:
            continue
        to = min(others, key=lambda n: (shares[n], n))
        shares[to] += topo.ring.share(shard)
        moves.append([shard, to])
    return moves


def rebalance_moves(topo: Topology, alive: list[str]) -> list[list[str]]:
    """Moves from the nodes owning the most of the ring to those owning the least, each only
    when it narrows the gap between the two."""
    if len(alive) < 2:
        return []
    shares = _shares(topo, alive)
    owner = {s: topo.node_of(s) for s in topo.ring.shards}
    moves: list[list[str]] = []
    for _ in range(len(owner)):
        high = max(alive, key=lambda n: (shares[n], n))
        low = min(alive, key=lambda n: (shares[n], n))
        candidates = sorted((topo.ring.share(s), s) for s, n in owner.items() if n == high)
        best = None
        for share, shard in candidates:
            if abs((shares[high] - share) - (shares[low] + share)) < shares[high] - shares[low]:
                best = (share, shard)
        if best is None:
            break
        share, shard = best
        shares[high] -= share
        shares[low] += share
        owner[shard] = low
        moves.append([shard, low])
    return moves


class Plans:
    """Makes plans (any router) and runs them (the leader, from the operations' round)."""

    def __init__(self, operations: Operations) -> None:
        self.operations = operations
        self.view = operations.view
        self.etcd = operations.etcd
        self.keys = operations.keys

    def _key(self, plan_id: str) -> bytes:
        return self.keys.root + b"plans/" + plan_id.encode()

    async def listing(self) -> list[Plan]:
        prefix = self.keys.root + b"plans/"
        found = await etcd_call("reading plans", lambda: self.etcd.get_prefix(prefix))
        return sorted((Plan.from_json(kv.value) for kv in found), key=lambda p: p.created)

    async def get(self, plan_id: str) -> Plan:
        validate_op_id(plan_id)
        found = await etcd_call("reading a plan", lambda: self.etcd.get(self._key(plan_id)))
        if found is None:
            raise NotFoundError(f"no plan {plan_id}")
        return Plan.from_json(found.value)

    async def make(self, kind: str, node: str = "", dry_run: bool = False,
                   plan_id: str = "") -> Plan:
        """A drain of `node` or a rebalance; recorded (and then run) unless dry_run. The same
        plan_id again answers the plan already recorded."""
        plan_id = validate_op_id(plan_id) if plan_id else uuid.uuid4().hex[:12]
        if not dry_run:
            try:
                return await self.get(plan_id)
            except NotFoundError:
                pass
        await self.view.refresh()
        topo = self.view.require()
        alive = sorted(self.view.nodes)
        if kind == "drain":
            if node not in set(topo.placement.values()) | set(alive):
                raise NotFoundError(f"no node {node}")
            moves = drain_moves(topo, node, alive)
        elif kind == "rebalance":
            moves = rebalance_moves(topo, alive)
        else:
            raise InvalidArgumentError(f"unknown plan kind {kind!r}")
        if dry_run:  # nothing runs: the plan as it would start
            return Plan(plan_id, kind, moves, node, state="planned")
        plan = Plan(plan_id, kind, moves, node, state="running" if moves else "done")
        for other in await self.listing():
            if other.state == "running":
                raise FailedPreconditionError(
                    f"plan {other.id} ({other.kind}) is running; one plan at a time")
        tx, key = self.etcd.transactions, self._key(plan_id)
        await etcd_call("recording a plan", lambda: self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, plan.to_json())], failure=[]))
        log.info("%s plan %s: %s", kind, plan_id, moves)
        return await self.get(plan_id)

    async def step(self) -> None:
        """Advance running plans: record the current move's end, start the next."""
        for plan in await self.listing():
            if plan.state != "running":
                continue
            changed = False
            while plan.next < len(plan.moves):
                op_id = f"{plan.id}-{plan.next}"
                try:
                    op = await self.operations.get(op_id)
                except NotFoundError:
                    if any(not o.finished for o in await self.operations.listing()):
                        break  # one operation at a time: wait for the others
                    shard, node = plan.moves[plan.next]
                    try:
                        await self.operations.plan("move", shard, op_id, node)
                    except (FailedPreconditionError, NotFoundError) as err:
                        # The shard moved or left meanwhile: record why and go on.
                        plan.results.append(f"skipped: {err}")
                        plan.next += 1
                        changed = True
                        continue
                    break
                if not op.finished:
                    break
                plan.results.append(op.state if not op.error else f"{op.state}: {op.error}")
                plan.next += 1
                changed = True
            if plan.next >= len(plan.moves):
                plan.state, changed = "done", True
            if changed:
                await self._put(plan)

    async def _put(self, plan: Plan) -> None:
        key, value = self._key(plan.id), plan.to_json()
        await etcd_call("advancing a plan", lambda: self.etcd.put(key, value))
