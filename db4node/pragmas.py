"""The shard database's SQLite settings, one small documented function each (as apsw's
bestpractice does), applied in order by `apply_all` when a shard is opened."""

from __future__ import annotations

from collections.abc import Callable

import apsw

from db4node.sql import scalar


def journal_wal(conn: apsw.Connection) -> None:
    """WAL: readers never block the writer, and a commit is one append plus one fsync."""
    mode = scalar(conn, "PRAGMA journal_mode=WAL")
    if mode.lower() != "wal":
        raise RuntimeError(f"could not enable WAL (journal_mode={mode})")


def synchronous_full(conn: apsw.Connection) -> None:
    """FULL: fsync the WAL on every commit, so an acknowledged write survives power loss."""
    conn.execute("PRAGMA synchronous=FULL")


def busy_timeout(conn: apsw.Connection) -> None:
    """Wait up to 5 s for a lock held by a checkpointing reader instead of failing at once."""
    conn.set_busy_timeout(5000)


def foreign_keys(conn: apsw.Connection) -> None:
    """Enforce declared constraints; the schema relies on none being silently ignored."""
    conn.execute("PRAGMA foreign_keys=ON")


def temp_store_memory(conn: apsw.Connection) -> None:
    """Sorts and temporary indexes stay in memory, off the data disk."""
    conn.execute("PRAGMA temp_store=MEMORY")


def cache_size(conn: apsw.Connection) -> None:
    """32 MiB page cache per shard: point reads of a warm working set never touch the disk."""
    conn.execute("PRAGMA cache_size=-32768")


def recursive_triggers(conn: apsw.Connection) -> None:
    """Triggers see deletes done by REPLACE conflict handling too (index upkeep relies on it)."""
    conn.execute("PRAGMA recursive_triggers=ON")


def query_only(conn: apsw.Connection) -> None:
    """Reader connections refuse writes: the shard's one writer thread owns every change."""
    conn.execute("PRAGMA query_only=ON")


ALL: tuple[Callable[[apsw.Connection], None], ...] = (
    journal_wal,
    synchronous_full,
    busy_timeout,
    foreign_keys,
    temp_store_memory,
    cache_size,
    recursive_triggers,
)


# A reader thread's connection: the journal mode and synchronous setting belong to the writer.
READER: tuple[Callable[[apsw.Connection], None], ...] = (
    busy_timeout,
    temp_store_memory,
    cache_size,
    query_only,
)


def apply_all(conn: apsw.Connection) -> None:
    """Apply every setting in ALL."""
    for setting in ALL:
        setting(conn)


def apply_reader(conn: apsw.Connection) -> None:
    """Apply every setting in READER."""
    for setting in READER:
        setting(conn)
