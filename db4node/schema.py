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
    # 2: prepared transactions of two-phase commit. A key appears in txn_locks at most once: one
    # transaction holds it from its prepare to its decision. `intents` is JSON {"effects": [...],
    # "results": [...]}: the after-images to write at commit and the answer to a repeated
    # prepare (a result that is an effect's after-image names it: {"found", "effect": index});
    # `participants` is the JSON list of every participant shard.
    """
    CREATE TABLE txn_locks (
        collection TEXT NOT NULL,
        id         TEXT NOT NULL,
        txid       TEXT NOT NULL,
        PRIMARY KEY (collection, id)
    ) WITHOUT ROWID;
    CREATE TABLE txn_prepared (
        txid           TEXT PRIMARY KEY,
        participants   TEXT NOT NULL,
        prepared_at_ms INTEGER NOT NULL,
        in_doubt_ms    INTEGER NOT NULL,
        intents        TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: the shards a cross-shard transaction committed on, on each of its change-log records
    # (JSON list, sorted; NULL for a single-shard write), so a change-feed reader can gather
    # the whole transaction. Part of the record's CRC32C only when present.
    """
    ALTER TABLE changes ADD COLUMN participants TEXT;
    """,
    # 4: full-text index definitions hosted by the shard (search_index.py). `definition` is the
    # JSON {"fields": [{"path", "weight"}], "tokenizer"}; `ready` is 0 while the collection's
    # existing documents are being indexed. The FTS5 tables and the triggers on `docs` that keep
    # them current are created with each definition.
    """
    CREATE TABLE search_indexes (
        name       TEXT PRIMARY KEY,
        collection TEXT NOT NULL,
        definition TEXT NOT NULL,
        ready      INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: the ring token of each change-log record's document (signed, as docs.token), so a
    # split's catch-up can pick the records of the moving token ranges. NULL on records written
    # before it; part of the record's CRC32C only when present.
    """
    ALTER TABLE changes ADD COLUMN token INTEGER;
    """,
    # 6: the txids of recent writes (applied.py), so that a write sent again after a broken
    # connection is answered, not applied twice. `unchanged` is the JSON list of the indexes of
    # ops that changed nothing (NULL: none); the others wrote first_lsn..last_lsn in op order.
    # `digest` is the request's (applied.digest): the same txid with another request is refused.
    """
    CREATE TABLE writes_applied (
        txid      TEXT PRIMARY KEY,
        at_ms     INTEGER NOT NULL,
        first_lsn INTEGER NOT NULL,
        last_lsn  INTEGER NOT NULL,
        unchanged TEXT,
        digest    TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX writes_applied_by_time ON writes_applied(at_ms);
    """,
)

# 7: documents per collection, kept by triggers in the writing transaction, so the load report
# (every few seconds, on every shard) reads a few rows instead of counting every document. A
# REPLACE of a stored row fires the delete trigger too (the writer's recursive_triggers), so it
# counts once. A shard file from before is counted once, here.
COUNTS_MIGRATION = """
    CREATE TABLE doc_counts (
        collection TEXT PRIMARY KEY,
        n          INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO doc_counts(collection, n) SELECT collection, COUNT(*) FROM docs GROUP BY 1;
    CREATE TRIGGER "db4:count:insert" AFTER INSERT ON docs BEGIN
        INSERT INTO doc_counts(collection, n) VALUES (NEW.collection, 1)
            ON CONFLICT(collection) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER "db4:count:delete" AFTER DELETE ON docs BEGIN
        UPDATE doc_counts SET n = n - 1 WHERE collection = OLD.collection;
    END;
"""
MIGRATIONS += (COUNTS_MIGRATION,)

# 8: the document characters the change log holds (what its bytes retention limit counts), kept
# by triggers like doc_counts, so a truncation round that deletes nothing reads no record. No row
# is an empty log.
LOG_BYTES_MIGRATION = """
    CREATE TABLE log_bytes (
        id    INTEGER PRIMARY KEY CHECK (id = 0),
        bytes INTEGER NOT NULL
    );
    INSERT INTO log_bytes(id, bytes)
        SELECT 0, COALESCE(SUM(COALESCE(length(before), 0) + COALESCE(length(after), 0)), 0)
        FROM changes;
    CREATE TRIGGER "db4:log:insert" AFTER INSERT ON changes BEGIN
        INSERT INTO log_bytes(id, bytes)
            VALUES (0, COALESCE(length(NEW.before), 0) + COALESCE(length(NEW.after), 0))
            ON CONFLICT(id) DO UPDATE SET bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER "db4:log:delete" AFTER DELETE ON changes BEGIN
        UPDATE log_bytes
            SET bytes = bytes - COALESCE(length(OLD.before), 0) - COALESCE(length(OLD.after), 0)
            WHERE id = 0;
    END;
    CREATE TRIGGER "db4:log:update" AFTER UPDATE OF before, after ON changes BEGIN
        UPDATE log_bytes
            SET bytes = bytes - COALESCE(length(OLD.before), 0) - COALESCE(length(OLD.after), 0)
                + COALESCE(length(NEW.before), 0) + COALESCE(length(NEW.after), 0)
            WHERE id = 0;
    END;
"""
MIGRATIONS += (LOG_BYTES_MIGRATION,)


def migrate(conn: apsw.Connection) -> None:
    """Apply the migrations not yet applied, each in its own transaction."""
    done = scalar(conn, "PRAGMA user_version")
    for step, sql in enumerate(MIGRATIONS[done:], start=done + 1):
        with conn:
            conn.execute(sql)
            conn.execute(f"PRAGMA user_version={step}")
