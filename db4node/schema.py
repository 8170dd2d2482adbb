"""The shard database schema and its migrations (user_version counts applied steps)."""

from __future__ import annotations

import apsw

from db4node.sql import scalar

MIGRATIONS: tuple[str, ...] = (
    # 1: documents and the change log. `token` is the signed view of the ring token, so a range
    # of the ring is a range of the index (shard split copies by token range).
    """
    CREATE TABLE docs (
        collection TEXT NOT NULL,
        id         TEXT NOT NULL,
        token      INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        body       TEXT NOT NULL,
        PRIMARY KEY (collection, id)
    ) WITHOUT ROWID;
    CREATE INDEX docs_by_token ON docs(token);
    CREATE TABLE changes (
        lsn        INTEGER PRIMARY KEY,
        txid       TEXT NOT NULL,
        op         TEXT NOT NULL,
        collection TEXT NOT NULL,
        id         TEXT NOT NULL,
        before     TEXT,
        after      TEXT,
        ts         INTEGER NOT NULL,
        crc        INTEGER NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    """,
)


def migrate(conn: apsw.Connection) -> None:
    """Apply the migrations not yet applied, each in its own transaction."""
    done = scalar(conn, "PRAGMA user_version")
    for step, sql in enumerate(MIGRATIONS[done:], start=done + 1):
        with conn:
            conn.execute(sql)
            conn.execute(f"PRAGMA user_version={step}")
