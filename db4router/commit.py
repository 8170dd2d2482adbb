"""Committing placed ops and reads: one shard in one Write, read-only shards in parallel Writes,
several shards with ops by two-phase commit with the decision recorded in etcd.

The protocol and its crash points are in DESIGN.md, "Transactions (coordinator)".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from db4.v1 import node_pb2
from db4core import failpoints
from db4core.errors import (
    Db4Error,
    DeadlineExceededError,
    InternalError,
    TransactionAbortedError,
    UnavailableError,
    WrongShardError,
    op_index,
)
from db4core.txn import ABORT, COMMIT, Decision
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher, raise_most_severe
from db4router.topology import EtcdUnavailableError
from db4rpc.status import broke, to_domain

log = logging.getLogger("db4.router.commit")

PREPARE_TIMEOUT_S = 4.0
# A commit is recorded only when the prepare phase took less than this. A participant records
# abort after its in-doubt timeout (2 s) and the janitor deletes records older than 10 s; a
# slower coordinator could otherwise record commit after the abort record was already gone.
PREPARE_BUDGET_S = 6.0
# A transaction carrying this many bytes of documents or more asks its participants to wait
# for the decision longer than their default (2 s): writing (and fsyncing) every part's
# intents can take seconds under load, and a participant that gave up first would abort a
# transaction its coordinator was about to commit. 1 s more per MiB, up to the prepare
# budget and 2 s more.
BIG_TXN_BYTES = 1 << 20


def in_doubt_for(parts: list[Part]) -> int:
    """The in-doubt timeout to ask of participants (0: their default)."""
    size = sum(op.ByteSize() for p in parts for op in p.ops)
    if size < BIG_TXN_BYTES:
        return 0
    return int(min(PREPARE_BUDGET_S + 2.0, 2.0 + size / (1 << 20)) * 1000)
RESPLITS = 3  # times a write is placed again after the ring moved under it
RESOLVE_TIMEOUT_S = 5.0

# Maps (the error a node raised, the caller's index of the op it failed on or None) to the
# error to report.
ErrorNamer = Callable[[Db4Error, "int | None"], Db4Error]


class AbortedInTime(TransactionAbortedError):
    """A two-phase commit aborted for time alone (a slow prepare phase, or a participant that
    gave up waiting, as when a participant node restarted mid-prepare): nothing was written and
    nothing the transaction read was found changed, so it is tried again under a new txid."""


@dataclass
class PlacedOp:
    """A wire op and the token that places it."""

    token: int
    op: node_pb2.WriteOp


@dataclass
class PlacedRead:
    """A read to validate and the token that places it."""

    token: int
    read: node_pb2.ReadCheck


@dataclass
class Part:
    """One participant shard's share: its ops (with their caller indexes) and reads."""

    shard: str
    token: int  # routes the part's single-shard Write
    ops: list[node_pb2.WriteOp] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    reads: list[node_pb2.ReadCheck] = field(default_factory=list)


@dataclass
class Outcome:
    """Per caller op, the node's result; and how many shards took part."""

    results: list[node_pb2.WriteResult]
    shards: int
    txid: str = ""  # the txid that committed (a new one when a two-phase commit went again)


def _keep(err: Db4Error, index: int | None) -> Db4Error:
    return err


class Committer:
    """Runs one transaction's placed ops and reads on their shards, all or nothing."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.view = dispatcher.view
        self._forgetting: set[asyncio.Task] = set()  # record removals under way

    def split(self, ops: list[PlacedOp], reads: list[PlacedRead]) -> list[Part]:
        """Group by owning shard at the current ring, shards sorted by id."""
        topo = self.view.require()
        parts: dict[str, Part] = {}

        def part(token: int) -> Part:
            shard = self.dispatcher.cache.shard_for(topo, token)
            return parts.setdefault(shard, Part(shard, token))

        for i, placed in enumerate(ops):
            p = part(placed.token)
            p.ops.append(placed.op)
            p.slots.append(i)
        for placed_read in reads:
            part(placed_read.token).reads.append(placed_read.read)
        return [parts[s] for s in sorted(parts)]

    async def run(self, txid: str, ops: list[PlacedOp], reads: list[PlacedRead],
                  name_error: ErrorNamer = _keep) -> Outcome:
        """Commit: results per op, in the caller's order. When a node answers that the ring
        moved (a split or move committed, or is in its cutover), nothing was written: the ops
        are placed again on the new ring and sent again; a two-phase commit, whose aborted
        txid must never commit, goes again under a new txid."""
        for attempt in range(RESPLITS + 1):
            parts = self.split(ops, reads)
            out: list[node_pb2.WriteResult] = [node_pb2.WriteResult()] * len(ops)
            if not parts:
                return Outcome(out, 0, txid)
            try:
                if len(parts) == 1 or not ops:
                    answers = await self._gather(self._write(txid, p, name_error)
                                                 for p in parts)
                else:
                    answers = await self._two_phase(txid, parts, name_error)
            except WrongShardError as err:
                if attempt == RESPLITS:
                    raise UnavailableError(
                        f"the ring kept moving under a write ({err.message}); retry") from None
                log.info("the ring moved under %s (%s); placing its ops again", txid,
                         err.message)
                if len(parts) > 1 and ops:
                    txid = uuid.uuid4().hex
                continue
            except AbortedInTime as err:
                if attempt == RESPLITS:
                    raise
                log.info("%s; trying it again under a new txid", err.message)
                txid = uuid.uuid4().hex
                continue
            for p, results in zip(parts, answers, strict=True):
                for slot, result in zip(p.slots, results, strict=True):
                    out[slot] = result
            return Outcome(out, len(parts), txid)
        raise AssertionError("unreachable")

    @staticmethod
    async def _gather(coros) -> list:
        results = await asyncio.gather(*coros, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise_most_severe(failures)
        return results

    # ---- one shard, or several read-only -----------------------------------------------------

    async def _write(self, txid: str, part: Part, name_error: ErrorNamer
                     ) -> list[node_pb2.WriteResult]:
        """One SQLite transaction on the part's shard; no etcd access."""

        async def send(stub, shard, epoch):
            req = node_pb2.WriteRequest(epoch=epoch, shard_id=shard, ops=part.ops, txid=txid,
                                        reads=part.reads)
            try:
                return list((await stub.Write(req, timeout=NODE_TIMEOUT_S)).results)
            except grpc.RpcError as err:
                raise _named(err, part, name_error) from None

        return await self.dispatcher.once(part.shard, send)  # noted by its txid

    # ---- two-phase commit --------------------------------------------------------------------

    async def _two_phase(self, txid: str, parts: list[Part], name_error: ErrorNamer
                         ) -> list[list[node_pb2.WriteResult]]:
        participants = [p.shard for p in parts]
        failpoints.hit("coordinator.before_prepare")
        started = time.monotonic()
        votes = await self._prepare_all(txid, parts, participants, name_error)
        failures = [v for v in votes if isinstance(v, BaseException)]
        if failures:
            await self._abort(txid, [p for p, v in zip(parts, votes, strict=True)
                                     if not _said_no(v)])
            raise_most_severe(failures)
        if time.monotonic() - started > PREPARE_BUDGET_S:
            await self._abort(txid, parts)
            raise AbortedInTime(
                f"transaction {txid}: the prepare phase took over {PREPARE_BUDGET_S:.0f} s; "
                "aborted (nothing was written)")
        await self._decide(txid, parts, participants)
        failpoints.hit("coordinator.after_decision")
        await self._commit_all(txid, parts)
        return [list(v.results) for v in votes]

    async def _prepare_all(self, txid: str, parts: list[Part], participants: list[str],
                           name_error: ErrorNamer) -> list:
        first: list = []
        rest = parts
        wait_ms = in_doubt_for(parts)
        if "coordinator.after_some_prepares" in failpoints.ARMED:
            first = [await _settled(self._prepare(txid, parts[0], participants, name_error,
                                                  wait_ms))]
            failpoints.hit("coordinator.after_some_prepares")
            rest = parts[1:]
        others = await asyncio.gather(
            *(self._prepare(txid, p, participants, name_error, wait_ms) for p in rest),
            return_exceptions=True)
        return first + list(others)

    async def _prepare(self, txid: str, part: Part, participants: list[str],
                       name_error: ErrorNamer, in_doubt_ms: int = 0
                       ) -> node_pb2.PrepareResponse:
        async def send(stub, shard, epoch):
            req = node_pb2.PrepareRequest(epoch=epoch, shard_id=shard, txid=txid, ops=part.ops,
                                          reads=part.reads, participants=participants,
                                          in_doubt_ms=in_doubt_ms)
            try:
                return await stub.Prepare(req, timeout=PREPARE_TIMEOUT_S)
            except grpc.RpcError as err:
                raise _named(err, part, name_error) from None

        # A prepare is answered the same when it comes again (the intents hold the answer).
        return await self.dispatcher.once(part.shard, send)

    async def _decide(self, txid: str, parts: list[Part], participants: list[str]) -> None:
        """Record commit with the create-only etcd transaction; lose to a recorded abort."""
        record = Decision(COMMIT, participants, by="router").encode()
        try:
            _created, won = await self.view.record_decision(txid, record)
        except EtcdUnavailableError as err:
            if not err.sent:  # etcd never saw it: presumed abort is safe to tell now
                await self._abort(txid, parts)
            # else the record may exist: the participants resolve it through etcd
            raise UnavailableError(f"transaction {txid}: could not record the decision "
                                   f"({err.message}); the outcome is unknown") from None
        if Decision.parse(won).decision == ABORT:
            await self._abort(txid, parts)
            raise AbortedInTime(
                f"transaction {txid} was aborted by a participant that waited too long for "
                "the decision; nothing was written")

    async def _commit_all(self, txid: str, parts: list[Part]) -> None:
        """Tell every participant; forget the record once all acknowledged. Those not reached
        apply it on their own (in-doubt timeout) or through the janitor."""
        first: list = []
        rest = parts
        if "coordinator.after_one_commit" in failpoints.ARMED:
            first = [await _settled(resolve(self.dispatcher, parts[0].shard, txid, COMMIT))]
            failpoints.hit("coordinator.after_one_commit")
            rest = parts[1:]
        acks = first + list(await asyncio.gather(
            *(resolve(self.dispatcher, p.shard, txid, COMMIT) for p in rest),
            return_exceptions=True))
        missed = [p.shard for p, a in zip(parts, acks, strict=True)
                  if isinstance(a, BaseException)]
        if missed:
            log.warning("transaction %s committed; %s not told yet (the record stays)", txid,
                        ", ".join(missed))
            return
        # Every participant applied it: the record has done its work. Removing it is not on
        # the commit's path (one etcd round trip less before the answer); should the router die
        # first, the janitor removes it.
        task = asyncio.create_task(self._forget(txid))
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def _forget(self, txid: str) -> None:
        try:
            await self.view.forget_decision(txid)
        except Db4Error as err:
            log.warning("transaction %s committed; its record stays (%s)", txid, err)

    async def _abort(self, txid: str, parts: list[Part]) -> None:
        """Best effort: whoever is not told resolves through etcd (presumed abort)."""
        acks = await asyncio.gather(*(resolve(self.dispatcher, p.shard, txid, ABORT)
                                      for p in parts), return_exceptions=True)
        for p, a in zip(parts, acks, strict=True):
            if isinstance(a, BaseException):
                log.info("transaction %s: abort not delivered to %s (%s)", txid, p.shard, a)


async def resolve(dispatcher: Dispatcher, shard: str, txid: str, decision: str) -> bool:
    """Send a decision to one participant shard: whether it still held intents."""

    async def send(stub, shard_id, epoch):
        req = node_pb2.ResolveRequest(shard_id=shard_id, txid=txid)
        call = stub.CommitPrepared if decision == COMMIT else stub.AbortPrepared
        return (await call(req, timeout=RESOLVE_TIMEOUT_S)).had_intents

    return await dispatcher.by_shard(shard, send)  # decisions are idempotent


async def _settled(coro):
    """The coroutine's result, or the exception it raised (as gather(return_exceptions))."""
    try:
        return await coro
    except Exception as err:  # noqa: BLE001 - collected like gather's results
        return err


def _said_no(vote: object) -> bool:
    """A definite no: the participant answered and holds nothing. Transport trouble (unknown)
    or a yes both need an abort."""
    if not isinstance(vote, BaseException):
        return False
    return not isinstance(vote, (UnavailableError, DeadlineExceededError, InternalError)) \
        and isinstance(vote, Db4Error)


def _named(err: grpc.RpcError, part: Part, name_error: ErrorNamer) -> BaseException:
    """A node's failure as the caller reports it; wrong-shard answers and transport failures
    stay RpcErrors, for the dispatcher to reroute or to wait out a restarting node."""
    domain = to_domain(err)
    if isinstance(domain, WrongShardError) or broke(err):
        return err
    index = op_index(domain)
    slot = part.slots[index] if index is not None and 0 <= index < len(part.slots) else None
    return name_error(domain, slot)
