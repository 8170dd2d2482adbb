"""How much of a shard's change log may go: the checkpoint and the retention limits.

Two things keep a record. Durable change-feed consumers keep every record after the lowest LSN
they acknowledged for the shard (the checkpoint; with no consumer registered there is no such
constraint). The retention limits keep at least the newest `entries` records, the newest records
worth `bytes` of documents and the records of the last `seconds`, whichever keeps the most.
Records at or below min(checkpoint, retention cut) are deleted, the oldest first, in chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import apsw

from db4node import changelog

DEFAULT_ENTRIES = 1_000_000
DEFAULT_BYTES = 1 << 30
DEFAULT_SECONDS = 7 * 24 * 3600.0
# Records deleted per writer transaction: each chunk is one short transaction, so the shard's
# writes queue behind a truncation for milliseconds, not for the whole deletion.
CHUNK = 2000


@dataclass(frozen=True)
class Retention:
    """History kept whatever the consumers acknowledged (the most generous limit wins)."""

    entries: int = DEFAULT_ENTRIES
    bytes: int = DEFAULT_BYTES
    seconds: float = DEFAULT_SECONDS


def _entries_cut(last: int, keep: int) -> int:
    """Highest LSN that may go while the newest `keep` records stay (LSNs are dense)."""
    return max(last - keep, 0)


def truncation_point(conn: apsw.Connection, retention: Retention, checkpoint: int | None,
                     now_ms: int | None = None) -> int:
    """Highest LSN that may be deleted (below the first kept record: nothing to delete).
    checkpoint None: no consumer constrains the shard."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with conn:  # one snapshot
        cut = _cut(conn, retention, checkpoint, now_ms)
    return cut


def _cut(conn: apsw.Connection, retention: Retention, checkpoint: int | None,
         now_ms: int) -> int:
    """The records that may go: at most the entries cut and the checkpoint; none younger
    than `seconds` or after it; none whose going would leave the newer records holding less
    than `bytes` of documents. Reads only the records that may go, and the one after them: a
    round that deletes nothing reads one record (the oldest) and the log's byte total."""
    last = changelog.last_lsn(conn)
    first = changelog.first_lsn(conn)
    cut = _entries_cut(last, retention.entries)
    if checkpoint is not None:
        cut = min(cut, checkpoint)
    if cut < first:
        return cut  # cheap limits keep everything: no scan
    oldest_kept_ts = now_ms - int(retention.seconds * 1000)
    row = conn.execute("SELECT ts FROM changes WHERE lsn = ?", (first,)).fetchone()
    if row is not None and row[0] > oldest_kept_ts:
        return first - 1  # the oldest record is young enough: everything stays
    # Records may go while the ones after them still hold keep_bytes: while the characters of
    # the records up to them (oldest first) stay within total - keep_bytes.
    allowance = changelog.log_bytes(conn) - retention.bytes
    if allowance < 0:
        return 0  # the whole log holds less than the bytes limit keeps
    may_go, held = 0, 0  # LSNs are dense: each record is may_go + 1
    for lsn, ts, size in conn.execute(
            "SELECT lsn, ts, COALESCE(length(before), 0) + COALESCE(length(after), 0) "
            "FROM changes WHERE lsn <= ? ORDER BY lsn", (cut,)):
        held += size
        if held > allowance:
            return may_go  # this record must stay for the bytes limit
        if ts > oldest_kept_ts:
            return int(lsn) - 1  # the first record young enough to stay
        may_go = int(lsn)
    return cut


def delete_through(conn: apsw.Connection, upto: int, last_lsn: int, chunk: int = CHUNK) -> int:
    """Delete the oldest records up to LSN `upto`, at most `chunk` of them, in the caller's
    transaction; remember last_lsn in meta first, so the next LSN survives a log emptied by
    this. Returns how many went."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                 (changelog.LAST_LSN_KEY, str(last_lsn)))
    first = changelog.first_lsn(conn)
    bound = min(upto, first + chunk - 1)
    conn.execute("DELETE FROM changes WHERE lsn <= ?", (bound,))
    return conn.changes()
