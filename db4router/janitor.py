"""The janitor: finishes two-phase commits whose coordinator did not.

Every router runs one. Every JANITOR_INTERVAL_S it reads the decision records (txns/) and, for
each older than JANITOR_AGE_S, sends the recorded decision to every participant shard listed
(CommitPrepared or AbortPrepared, both idempotent) and deletes the record once all of them
acknowledged, guarded by the record's revision. A record younger than that belongs to a
coordinator still at work, or to participants resolving it themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time

from db4core.errors import Db4Error
from db4core.periodic import Periodic
from db4core.txn import COMMIT, Decision
from db4router.commit import resolve
from db4router.dispatch import Dispatcher

log = logging.getLogger("db4.router.janitor")

JANITOR_INTERVAL_S = 5.0
JANITOR_AGE_S = 10.0


class Janitor:
    """Concludes old decision records."""

    def __init__(self, dispatcher: Dispatcher, age_s: float = JANITOR_AGE_S) -> None:
        self.dispatcher = dispatcher
        self.view = dispatcher.view
        self.age_s = age_s
        self._loop: Periodic | None = None

    def start(self, interval_s: float = JANITOR_INTERVAL_S) -> None:
        # etcd or a node away is passing trouble: the next round tries again
        self._loop = Periodic("decision-record janitor", self.sweep, interval_s, log,
                              (Db4Error,))
        self._loop.start()

    async def stop(self) -> None:
        if self._loop is not None:
            await self._loop.stop()

    async def sweep(self) -> int:
        """Conclude every record old enough; how many were deleted."""
        now_ms = time.time() * 1000
        done = 0
        for txid, raw, revision in await self.view.decisions():
            try:
                record = Decision.parse(raw)
            except ValueError:
                log.error("janitor: unreadable decision record %s: %r", txid, raw)
                continue
            if now_ms - record.ts < self.age_s * 1000:
                continue
            if await self._conclude(txid, record):
                await self.view.forget_decision(txid, revision)
                done += 1
        return done

    async def _conclude(self, txid: str, record: Decision) -> bool:
        """Tell every participant; True when all acknowledged."""
        acks = await asyncio.gather(
            *(resolve(self.dispatcher, shard, txid, record.decision)
              for shard in record.participants), return_exceptions=True)
        missed = [s for s, a in zip(record.participants, acks, strict=True)
                  if isinstance(a, BaseException)]
        if missed:
            log.info("janitor: %s %s not acknowledged by %s yet", record.decision, txid,
                     ", ".join(missed))
            return False
        log.info("janitor: concluded %s of %s on %d shards",
                 "commit" if record.decision == COMMIT else "abort", txid,
                 len(record.participants))
        return True
