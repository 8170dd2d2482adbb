"""The in-doubt resolver: a prepared transaction that waited too long asks etcd for its fate.

Every RESOLVE_INTERVAL_S the node looks at the prepared transactions of every open shard. One
past its in-doubt timeout reads `txns/<txid>`: a record is the decision, applied here. No record
means the coordinator never decided (or died before it could): the node records abort itself,
with the same create-only etcd transaction the coordinator uses to record commit, so whichever
of the two comes first decides and the other follows it. The participant never deletes the
record: the coordinator (or its janitor) does once every participant applied it.
"""

from __future__ import annotations

import logging
import time

import aetcd
import aetcd.exceptions

from db4core.periodic import Periodic
from db4core.topology import Keys
from db4core.txn import ABORT, Decision
from db4node import txn
from db4node.participant import Participant
from db4node.store import ShardStore

log = logging.getLogger("db4.node.resolver")

RESOLVE_INTERVAL_S = 0.5


class Resolver:
    """One task per node that resolves in-doubt prepared transactions through etcd."""

    def __init__(self, store: ShardStore, participant: Participant, etcd: aetcd.Client,
                 keys: Keys, node_id: str) -> None:
        self.store = store
        self.participant = participant
        self.etcd = etcd
        self.keys = keys
        self.node_id = node_id
        self._loop = Periodic("in-doubt resolution", self.resolve_once, RESOLVE_INTERVAL_S,
                              log, (aetcd.exceptions.ClientError,), wait_first=False)

    def start(self) -> None:
        """Run the resolver in the background until stop()."""
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def resolve_once(self) -> int:
        """Resolve every prepared transaction past its timeout; how many were resolved."""
        now = int(time.time() * 1000)
        done = 0
        for shard_id, worker in self.store.open_shards():
            for record in txn.in_doubt(worker.shard, now):
                decision = await self._decision(worker.shard.prepared, record)
                if decision is None:
                    continue
                had, _ = await self.participant.resolve(shard_id, record.txid, decision)
                if had:
                    done += 1
                    log.info("in-doubt transaction %s on shard %s resolved: %s",
                             record.txid, shard_id, decision)
        return done

    async def _decision(self, prepared: dict[str, txn.Prepared], record: txn.Prepared
                        ) -> str | None:
        """The recorded decision, or abort recorded now when there is none; None when the
        transaction was resolved meanwhile (nothing to record then)."""
        key = self.keys.txn(record.txid)
        found = await self.etcd.get(key)
        if found is not None:
            return Decision.parse(found.value).decision
        if record.txid not in prepared:  # its decision arrived while etcd answered
            return None
        abort = Decision(ABORT, record.participants, by=f"node:{self.node_id}")
        tx = self.etcd.transactions
        created, responses = await self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, abort.encode())],
            failure=[tx.get(key)])
        if created:
            return ABORT
        return Decision.parse(responses[0][0][0]).decision  # [first op][first kv][value]
