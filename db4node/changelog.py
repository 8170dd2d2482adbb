"""The per-shard change log: the product's write-ahead log, kept in the shard database.

Each record is written in the same SQLite transaction as the data change it describes, so the
log and the data can never disagree. LSNs are dense per shard (1, 2, 3, ...) and never reused:
truncation deletes the oldest records but the next LSN always follows the highest one ever
written (kept in `meta` under `last_lsn`, so it survives a log truncated to nothing). Each record
carries a CRC32C over its fields, verified on every read: a record that fails is DATA_LOSS and
is never handed out.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import apsw
import crc32c

from db4core.errors import DataLossError, OutOfRangeError
from db4core.hashing import from_signed, to_signed
from db4node.sql import scalar

LAST_LSN_KEY = "last_lsn"  # meta key: the highest LSN ever written
_COLUMNS = "lsn, txid, op, collection, id, before, after, ts, crc, participants, token"


@dataclass(frozen=True)
class Change:
    """One change-log record. `participants` lists a cross-shard transaction's shards (sorted);
    None for a single-shard write."""

    lsn: int
    txid: str
    op: str  # insert | update | delete
    collection: str
    id: str
    before: str | None
    after: str | None
    ts: int
    crc: int = 0
    participants: tuple[str, ...] | None = None
    token: int | None = None  # unsigned ring token of the document; None on older records

    def size(self) -> int:
        """Bytes of its documents, as LogStats and the retention limits count them."""
        return len(self.before or "") + len(self.after or "")


class CorruptLogError(DataLossError):
    """A change-log record failed its checksum (DATA_LOSS): reported, never served."""


def participants_text(participants: Sequence[str] | None) -> str | None:
    """The stored form of a participant list: compact JSON, sorted; None stays None."""
    if participants is None:
        return None
    if isinstance(participants, tuple):
        return _participants_text(participants)  # every record of a transaction: once
    return json.dumps(sorted(participants), separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _participants_text(participants: tuple[str, ...]) -> str:
    return json.dumps(sorted(participants), separators=(",", ":"))


def checksum(c: Change) -> int:
    """CRC32C over the record's fields; NUL separates fields, absent before/after are empty.
    Participants and the token are fields only when present, so records written before they
    existed (and single-shard records) keep the checksum they were written with."""
    fields = [str(c.lsn), c.txid, c.op, c.collection, c.id, c.before or "", c.after or "",
              str(c.ts)]
    text = participants_text(c.participants)
    if text is not None:
        fields.append(text)
    if c.token is not None:
        fields.append(f"t{c.token}")
    return crc32c.crc32c("\x00".join(fields).encode())


def shard_of(conn: apsw.Connection) -> str:
    """The shard id a connection's file stands for (`<shard>.db`)."""
    name = os.path.basename(conn.filename or "")
    return name[:-3] if name.endswith(".db") else name or "?"


def last_lsn(conn: apsw.Connection) -> int:
    """Highest LSN ever written, 0 for a shard that never logged anything. Truncation may have
    deleted that record; `meta` remembers its LSN then."""
    in_log = int(scalar(conn, "SELECT COALESCE(MAX(lsn), 0) FROM changes"))
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (LAST_LSN_KEY,)).fetchone()
    return max(in_log, int(row[0]) if row else 0)


def first_lsn(conn: apsw.Connection) -> int:
    """Lowest LSN kept; last_lsn + 1 when the log is empty."""
    row = conn.execute("SELECT MIN(lsn) FROM changes").fetchone()
    return int(row[0]) if row and row[0] is not None else last_lsn(conn) + 1


def append(conn: apsw.Connection, c: Change) -> None:
    """Write one record; the caller holds the transaction that writes the data change."""
    append_many(conn, (c,))


def append_many(conn: apsw.Connection, changes: Iterable[Change]) -> None:
    """Write records in one statement run (a batch's); the caller holds the transaction."""
    conn.executemany(
        f"INSERT INTO changes({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.lsn, c.txid, c.op, c.collection, c.id, c.before, c.after, c.ts, checksum(c),
          participants_text(c.participants), None if c.token is None else to_signed(c.token))
         for c in changes])


def _decode(row: tuple, shard_id: str) -> Change:
    """A stored row as a verified record; CorruptLogError when its CRC32C does not match (or
    its participants are not a JSON list, which no writer stores)."""
    lsn, txid, op, collection, doc_id, before, after, ts, crc, participants, token = row
    try:
        parts = tuple(json.loads(participants)) if participants is not None else None
    except ValueError:
        parts = ("<unreadable>",)
    change = Change(lsn, txid, op, collection, doc_id, before, after, ts, crc, parts,
                    None if token is None else from_signed(token))
    if checksum(change) != crc or (parts is not None
                                   and participants_text(parts) != participants):
        raise CorruptLogError(
            f"change-log record {change.lsn} of shard {shard_id} fails its CRC32C check; "
            "it is not served")
    return change


def read(conn: apsw.Connection, after_lsn: int = 0, limit: int = 1000,
         shard_id: str | None = None) -> Iterator[Change]:
    """Records with LSN > after_lsn in order, each checksum verified."""
    shard_id = shard_id or shard_of(conn)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM changes WHERE lsn > ? ORDER BY lsn LIMIT ?", (after_lsn, limit))
    for row in rows:
        yield _decode(row, shard_id)


@dataclass
class Batch:
    """Records just after a position (LSN order, no gaps) and the shard's last LSN as of the
    same read. No records: the reader is at the end (a heartbeat carries this)."""

    records: list[Change]
    last_lsn: int


def read_batch(conn: apsw.Connection, after_lsn: int, max_records: int, max_bytes: int,
               shard_id: str | None = None) -> Batch:
    """The records after `after_lsn`, up to max_records and (past the first) max_bytes of
    documents, in one read transaction. OutOfRangeError when records just after the position
    were truncated (or the position is past the end); CorruptLogError when the first record
    fails its check. A later corrupt record ends the batch before it: it is raised by the next
    read, which starts there, so every record before it is served."""
    shard_id = shard_id or shard_of(conn)
    with conn:  # one snapshot: the records and last_lsn agree
        last = last_lsn(conn)
        check_position(conn, after_lsn, last, shard_id)
        records: list[Change] = []
        size = 0
        for row in conn.execute(f"SELECT {_COLUMNS} FROM changes WHERE lsn > ? ORDER BY lsn "
                                "LIMIT ?", (after_lsn, max_records)):
            try:
                change = _decode(row, shard_id)
            except CorruptLogError:
                if not records:
                    raise
                break
            size += change.size()
            if records and size > max_bytes:
                break
            records.append(change)
    return Batch(records, last)


def check_position(conn: apsw.Connection, after_lsn: int, last: int, shard_id: str) -> None:
    """OutOfRangeError unless the record after `after_lsn` is still kept or not yet written."""
    if after_lsn > last:
        raise OutOfRangeError(
            f"position {after_lsn} is past the end of shard {shard_id}'s change log "
            f"(last LSN {last})")
    first = first_lsn(conn)
    if after_lsn < first - 1:
        raise OutOfRangeError(
            f"position {after_lsn} of shard {shard_id} was truncated: the oldest change-log "
            f"record kept is LSN {first} (resume from position {first - 1} or later)")


@dataclass
class LogStat:
    """One shard's change log at a glance."""

    first_lsn: int
    last_lsn: int
    entries: int
    bytes: int


def log_bytes(conn: apsw.Connection) -> int:
    """Document characters the log holds (kept by triggers: schema step 8)."""
    row = conn.execute("SELECT bytes FROM log_bytes WHERE id = 0").fetchone()
    return int(row[0]) if row else 0


def stats(conn: apsw.Connection) -> LogStat:
    """first/last LSN, records kept and their document bytes, in one read transaction (LSNs
    are dense, so the records kept are counted from the first and last)."""
    with conn:
        last = last_lsn(conn)
        newest = scalar(conn, "SELECT MAX(lsn) FROM changes")
        size = log_bytes(conn)
        first = first_lsn(conn)
    entries = 0 if newest is None else int(newest) - first + 1
    return LogStat(first, last, entries, size)
