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


def _seconds_cut(conn: apsw.Connection, keep_s: float, now_ms: int, last: int) -> int:
    """Highest LSN below the first record younger than keep_s (all of them when none is; with
    keep_s 0 a record written this very millisecond may go too). The scan reads only records
    old enough to go, oldest first."""
    oldest_kept_ts = now_ms - int(keep_s * 1000)
    for lsn, ts in conn.execute("SELECT lsn, ts FROM changes ORDER BY lsn"):
        if ts > oldest_kept_ts:
            return int(lsn) - 1
    return last


def _bytes_cut(conn: apsw.Connection, keep_bytes: int) -> int:
    """Highest LSN that may go while the newest records holding keep_bytes of documents stay
    (0 when the whole log holds less). The scan reads the newest records only."""
    total = 0
    for lsn, size in conn.execute(
            "SELECT lsn, COALESCE(length(before), 0) + COALESCE(length(after), 0) "
            "FROM changes ORDER BY lsn DESC"):
        if total >= keep_bytes:
            return int(lsn)  # the newer records hold enough: this one and older may go
        total += size
    return 0


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
    last = changelog.last_lsn(conn)
    first = changelog.first_lsn(conn)
    cut = _entries_cut(last, retention.entries)
    if checkpoint is not None:
        cut = min(cut, checkpoint)
    if cut < first:
        return cut  # cheap limits keep everything: no scan
    cut = min(cut, _seconds_cut(conn, retention.seconds, now_ms, last))
    if cut < first:
        return cut
    return min(cut, _bytes_cut(conn, retention.bytes))


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
