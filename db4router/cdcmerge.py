"""Merging every shard's change log into one feed of events, with resume tokens.

Records come per shard in LSN order (`offer`); `drain` turns them into ChangeEvents, taking the
shards in the order their records arrived. A record of a cross-shard transaction (it names its
participants) is held, with everything after it on its shard, until every participant shard has
delivered its part of that txid (its consecutive records with that txid); then the whole
transaction goes out at once, one part after another. A part is complete when a record of
another txid follows it, or when the shard's last LSN (sent with every node message) is its last
record: the part of one transaction commits atomically on its shard.

Every event carries the token after it: the last LSN per shard, and for a transaction delivered
in part, the shards whose part is done (so a resume delivers only the rest and does not wait
for parts it will never see again). Records of collections not asked for and of id claims
(`$ids:*`) are not delivered, but their LSNs still advance the token.

Two situations would stop the feed for ever, and both deliver a held part alone instead (the
transaction is then not contiguous; nothing is lost or repeated): two transactions committed
in opposite orders on two shards (each shard holds one, waiting for the other: a cycle), and a
part that will never arrive because its shard's position already passed it (a start at "now"
between two participants' commits, or a truncated log), seen as a part waiting `hold_s` on
shards that are live and have nothing more.

Across splits and moves: a shard made by one (its lineage: parent and the parent's fence LSN F)
holds back its records until the parent's have been delivered through F, so every document's
changes come in order although its records moved from one log to another. A shard that appears
while the feed runs is added at position 0 (its log starts with the split).

Nothing here does I/O; the subscription (`subscribe.py`) feeds it and sends what it drains.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from db4.v1 import node_pb2, router_pb2
from db4core.changefeed import Token

log = logging.getLogger("db4.router.cdc")

HOLD_S = 5.0  # a held part waits this long on live, caught-up shards before it goes alone
PENDING_LIMIT = 200  # records taken from one shard ahead of delivery (more only for one part)
EVENT_OVERHEAD = 200  # wire bytes of an event besides its documents (ids, token, shard)


@dataclass
class _Shard:
    """What the merge knows of one shard's stream."""

    pending: deque = field(default_factory=deque)  # (arrival stamp, ChangeRecord)
    seen: int = 0  # highest LSN received
    last_lsn: int = 0  # the shard's last LSN, as its node last said
    needs_more: bool = False  # the head part is incomplete: take records even past the limit
    held: str = ""  # txid whose part this shard holds (it delivers nothing else meanwhile)


def wanted_by(collections: Iterable[str]):
    """The filter of a subscription: id claims never, else the named collections (or all)."""
    names = frozenset(collections)

    def wanted(collection: str) -> bool:
        return not collection.startswith("$") and (not names or collection in names)

    return wanted


def version_of(record: node_pb2.ChangeRecord) -> int:
    """The document's $version after the change (before it, for a delete)."""
    raw = record.after or record.before
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return 0
    version = doc.get("$version", 0) if isinstance(doc, dict) else 0
    return version if isinstance(version, int) else 0


class Merge:
    """Per-shard record streams in, ChangeEvents with tokens out."""

    def __init__(self, token: Token, shards: Sequence[str], collections: Iterable[str] = (),
                 hold_s: float = HOLD_S, lineage: dict[str, tuple[str, int]] | None = None
                 ) -> None:
        self.token = token.copy()
        self.wanted = wanted_by(collections)
        self.hold_s = hold_s
        self.shards = {s: _Shard(seen=self.token.lsn.get(s, 0)) for s in shards}
        for s in shards:
            self.token.lsn.setdefault(s, 0)
        self.parts: dict[str, dict[str, list]] = {}  # txid -> shard -> its records
        self.participants: dict[str, list[str]] = {}
        self.held_since: dict[str, float] = {}
        self.out: deque[router_pb2.ChangeEvent] = deque()
        self.out_bytes = 0
        self._stamp = 0
        self.lineage: dict[str, tuple[str, int]] = dict(lineage or {})  # child -> (parent, F)

    def add_shard(self, shard: str, lineage: tuple[str, int] | None = None) -> None:
        """A shard that appeared while the feed runs (a split or move): from its token position
        (0 when the token does not name it)."""
        if lineage is not None:
            self.lineage[shard] = lineage
        if shard not in self.shards:
            self.token.lsn.setdefault(shard, 0)
            self.shards[shard] = _Shard(seen=self.token.lsn[shard])

    def _behind_parent(self, shard: str) -> bool:
        """Whether the shard's parent has not yet delivered its records through the fence."""
        parent = self.lineage.get(shard)
        return parent is not None and parent[0] in self.shards \
            and self.token.lsn.get(parent[0], 0) < parent[1]

    # ---- input ------------------------------------------------------------------------------

    def wants(self, shard: str) -> bool:
        """Whether to take more from this shard now (flow control: a holding shard takes none)."""
        st = self.shards[shard]
        return not st.held and (len(st.pending) < PENDING_LIMIT or st.needs_more)

    def offer(self, shard: str, records: Sequence[node_pb2.ChangeRecord], last_lsn: int) -> None:
        """Records of one shard in LSN order, following those offered before (or a heartbeat:
        none), and the shard's last LSN when its node sent them."""
        st = self.shards[shard]
        for record in records:
            if record.lsn <= st.seen:
                continue  # sent again after a reconnect: already taken
            self._stamp += 1
            st.pending.append((self._stamp, record))
            st.seen = record.lsn
        st.last_lsn = max(st.last_lsn, last_lsn)
        if st.needs_more:
            st.needs_more = False  # look again at the head part

    # ---- output -----------------------------------------------------------------------------

    def drain(self, max_events: int, max_bytes: int, now: float) -> list[router_pb2.ChangeEvent]:
        """The events deliverable now, at most max_events and about max_bytes of them."""
        while len(self.out) < max_events and self.out_bytes < max_bytes:
            if not self._step(now):
                break
        batch: list[router_pb2.ChangeEvent] = []
        size = 0
        while self.out and len(batch) < max_events and (not batch or size < max_bytes):
            event = self.out.popleft()
            cost = _cost(event)
            size += cost
            self.out_bytes -= cost
            batch.append(event)
        return batch

    def encoded_token(self) -> str:
        """The current position: resuming from it continues after everything drained."""
        return self.token.encode()

    def _step(self, now: float) -> bool:
        """Take the earliest-arrived record of a shard that may deliver; False when none can."""
        ready = [(st.pending[0][0], s) for s, st in self.shards.items()
                 if st.pending and not st.held and not st.needs_more
                 and not self._behind_parent(s)]
        if ready:
            self._take(min(ready)[1], now)
            return True
        return self._unstick(now)

    def _take(self, shard: str, now: float) -> None:
        st = self.shards[shard]
        record = st.pending[0][1]
        if len(record.participants) < 2:
            st.pending.popleft()
            self._deliver(shard, record)
            return
        txid = record.txid
        part = _leading(st.pending, txid)
        complete = len(part) < len(st.pending) or st.last_lsn == part[-1].lsn
        if not complete:
            st.needs_more = True
            return
        for _ in part:
            st.pending.popleft()
        st.held = txid
        self.parts.setdefault(txid, {})[shard] = part
        self.participants[txid] = list(record.participants)
        self.held_since.setdefault(txid, now)
        if not self._missing(txid):
            self._release(txid)

    def _missing(self, txid: str) -> list[str]:
        """Participant shards whose part of txid is neither held nor already delivered."""
        done = set(self.token.open.get(txid, ()))
        held = self.parts.get(txid, {})
        return [p for p in self.participants[txid] if p not in done and p not in held]

    def _release(self, txid: str, only: Sequence[str] | None = None) -> None:
        """Deliver the held parts of txid (all, or `only` those), one part after another."""
        parts = self.parts[txid]
        for shard in sorted(only if only is not None else parts):
            records = parts.pop(shard)
            for i, record in enumerate(records):
                if i == len(records) - 1:
                    self._part_done(txid, shard)
                self._deliver(shard, record)
            self.shards[shard].held = ""
        if not parts:
            del self.parts[txid]
            self.held_since.pop(txid, None)
            if txid not in self.token.open:
                self.participants.pop(txid, None)

    def _part_done(self, txid: str, shard: str) -> None:
        """Mark shard's part of txid delivered; forget the transaction once every part is."""
        done = self.token.open.setdefault(txid, [])
        done.append(shard)
        if set(self.participants[txid]) <= set(done):
            del self.token.open[txid]
            if txid not in self.parts or not self.parts[txid]:
                self.participants.pop(txid, None)

    def _deliver(self, shard: str, record: node_pb2.ChangeRecord) -> None:
        """Advance the token past record; queue its event when the subscriber wants it."""
        self.token.lsn[shard] = record.lsn
        if not self.wanted(record.collection):
            return
        event = router_pb2.ChangeEvent(
            op=record.op, collection=record.collection, id=record.id, before=record.before,
            after=record.after, version=version_of(record), shard=shard, lsn=record.lsn,
            txid=record.txid, ts=record.ts, token=self.token.encode())
        self.out.append(event)
        self.out_bytes += _cost(event)

    # ---- breaking waits that would never end ------------------------------------------------

    def _unstick(self, now: float) -> bool:
        """Deliver one held part alone when the held transactions wait on each other, or on
        parts that cannot come; False when nothing is stuck."""
        shard = self._in_cycle()
        if shard is not None:
            txid = self.shards[shard].held
            log.info("transactions committed in opposite orders on shards; delivering %s of "
                     "%s alone", shard, txid)
            self._release(txid, only=[shard])
            return True
        for txid, since in list(self.held_since.items()):
            missing = self._missing(txid)
            if now - since >= self.hold_s and all(self._caught_up(p) for p in missing):
                log.info("parts of %s on %s never came; delivering the rest", txid, missing)
                self._release(txid)
                return True
        return False

    def _caught_up(self, shard: str) -> bool:
        """The shard (if in this feed) delivered everything its node has, and holds nothing."""
        st = self.shards.get(shard)
        return st is None or (not st.held and not st.pending and st.seen >= st.last_lsn)

    def _in_cycle(self) -> str | None:
        """A holding shard in a cycle of shards waiting on each other's held transactions."""
        waits = {s: [p for p in self._missing(st.held) if p in self.shards
                     and self.shards[p].held]
                 for s, st in self.shards.items() if st.held}
        state: dict[str, int] = {}  # 1: on the current path, 2: explored

        def visit(at: str) -> str | None:
            state[at] = 1
            for nxt in waits.get(at, ()):
                if state.get(nxt) == 1:
                    return nxt
                if nxt not in state and (found := visit(nxt)) is not None:
                    return found
            state[at] = 2
            return None

        for start in sorted(waits):
            if start not in state and (found := visit(start)) is not None:
                return found
        return None


def _leading(pending: deque, txid: str) -> list[node_pb2.ChangeRecord]:
    """The records at the head of pending with this txid."""
    part = []
    for _, record in pending:
        if record.txid != txid:
            break
        part.append(record)
    return part


def _cost(event: router_pb2.ChangeEvent) -> int:
    return len(event.before) + len(event.after) + EVENT_OVERHEAD
