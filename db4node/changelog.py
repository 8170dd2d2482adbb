"""The per-shard change log: the product's write-ahead log, kept in the shard database.

Each record is written in the same SQLite transaction as the data change it describes, so the
log and the data can never disagree. LSNs are dense per shard (1, 2, 3, ...); each record carries
a CRC32C over its fields, verified on every read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import apsw
import crc32c

from db4node.sql import scalar


@dataclass(frozen=True)
class Change:
    """One change-log record."""

    lsn: int
    txid: str
    op: str  # insert | update | delete
    collection: str
    id: str
    before: str | None
    after: str | None
    ts: int
    crc: int = 0


class CorruptLogError(Exception):
    """A change-log record failed its checksum."""


def checksum(c: Change) -> int:
    """CRC32C over the record's fields; NUL separates fields, absent before/after are empty."""
    fields = (str(c.lsn), c.txid, c.op, c.collection, c.id, c.before or "", c.after or "",
              str(c.ts))
    return crc32c.crc32c("\x00".join(fields).encode())


def last_lsn(conn: apsw.Connection) -> int:
    """Highest LSN written, 0 for an empty log."""
    return int(scalar(conn, "SELECT COALESCE(MAX(lsn), 0) FROM changes"))


def append(conn: apsw.Connection, c: Change) -> None:
    """Write one record; the caller holds the transaction that writes the data change."""
    conn.execute(
        "INSERT INTO changes(lsn, txid, op, collection, id, before, after, ts, crc) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (c.lsn, c.txid, c.op, c.collection, c.id, c.before, c.after, c.ts, checksum(c)),
    )


def read(conn: apsw.Connection, after_lsn: int = 0, limit: int = 1000) -> Iterator[Change]:
    """Records with LSN > after_lsn in order, each checksum verified."""
    rows = conn.execute(
        "SELECT lsn, txid, op, collection, id, before, after, ts, crc FROM changes "
        "WHERE lsn > ? ORDER BY lsn LIMIT ?",
        (after_lsn, limit),
    )
    for row in rows:
        change = Change(*row)
        if checksum(change) != change.crc:
            raise CorruptLogError(f"change-log record {change.lsn} fails its CRC32C check")
        yield change
