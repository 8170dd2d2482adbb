"""Tailing one shard's change log: the records after a position, then each commit as it lands.

Records are read on the shard's reader threads, a batch at a time, and the next batch is read
only when the consumer of this generator asks for it: the servicer asks once gRPC has taken
the previous message, so a client that stops reading stops the reads and holds at most one
batch. At the end of the log the tail waits on the shard's `log_changed` pulse (fired on the
loop after each commit or truncation), and after `heartbeat_s` without a message it yields an
empty batch carrying the last LSN.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import apsw

from db4core.errors import InvalidArgumentError
from db4node import changelog
from db4node.worker import ShardWorker

DEFAULT_MAX_RECORDS = 500
MAX_RECORDS_LIMIT = 10_000
# Documents per message: a record holds up to two 1 MiB documents, so one always fits, and a
# message of 4 MiB stays far below the transport's limit.
MAX_BATCH_BYTES = 4 << 20
DEFAULT_HEARTBEAT_MS = 1000


def limits(max_records: int, heartbeat_ms: int) -> tuple[int, float]:
    """Records per batch and the heartbeat interval in seconds (0 means the default)."""
    if max_records > MAX_RECORDS_LIMIT:
        raise InvalidArgumentError(
            f"max_records {max_records} is over the limit of {MAX_RECORDS_LIMIT}")
    return (max_records or DEFAULT_MAX_RECORDS,
            (heartbeat_ms or DEFAULT_HEARTBEAT_MS) / 1000)


async def batches(worker: ShardWorker, after_lsn: int, max_records: int,
                  heartbeat_s: float) -> AsyncGenerator[changelog.Batch, None]:
    """Batches of records after `after_lsn` without end; an empty batch is a heartbeat.
    OutOfRangeError (truncated position) and CorruptLogError (DATA_LOSS) end it."""
    shard_id = worker.shard.shard_id
    position = after_lsn
    quiet_until = time.monotonic() + heartbeat_s
    while True:
        changed = worker.log_changed.current()  # before the read: no commit slips between

        def read(conn: apsw.Connection, after: int = position) -> changelog.Batch:
            return changelog.read_batch(conn, after, max_records, MAX_BATCH_BYTES, shard_id)

        batch = await worker.read(read, None, f"tail of shard {shard_id}")
        if batch.records:
            position = batch.records[-1].lsn
            yield batch
            quiet_until = time.monotonic() + heartbeat_s
            continue
        remaining = quiet_until - time.monotonic()
        if remaining > 0:
            try:
                await asyncio.wait_for(changed.wait(), remaining)
                continue  # something committed (or was truncated): look again
            except TimeoutError:
                pass
        yield batch  # no records: a heartbeat with the last LSN
        quiet_until = time.monotonic() + heartbeat_s
