#!/usr/bin/env python3
"""A materialized view kept up to date from db4's change stream: documents per `$type`.

    python examples/materialized_view.py --router 127.0.0.1:7400 --db view.sqlite
    sqlite3 view.sqlite 'SELECT type, n FROM counts ORDER BY type'

Every change event moves the counts (an insert adds one to its type, a delete takes one from
the type it had, an update that changes `$type` moves one from the old to the new) and the
event's resume token is written in the same SQLite transaction. So the file always holds counts
and the exact position they reflect: killed at any moment (even kill -9), the next run continues
from the saved token, and every change is counted exactly once. Documents without a `$type` are
not counted.

Options: --collection NAME (only that collection; default every collection), --until-idle S
(exit after S seconds without an event; default: run until killed).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from typing import Any

from db4client import ChangeEvent, Client

SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 1),
                                     collection TEXT NOT NULL, token TEXT NOT NULL);
"""


def open_view(path: str) -> sqlite3.Connection:
    """The view's database; every change is durable once its transaction commits."""
    db = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    return db


def saved_token(db: sqlite3.Connection, collection: str | None) -> str | None:
    """Where the last run stopped; refuses a file kept for another collection."""
    row = db.execute("SELECT collection, token FROM position").fetchone()
    if row is None:
        return None
    if row[0] != (collection or ""):
        sys.exit(f"{db!r} holds a view of collection {row[0] or '(all)'!r}, "
                 f"not {collection or '(all)'!r}")
    return row[1]


def _type(doc: dict[str, Any] | None) -> str | None:
    value = None if doc is None else doc.get("$type")
    return value if isinstance(value, str) else None


def apply(db: sqlite3.Connection, event: ChangeEvent, collection: str | None) -> None:
    """Move the counts by one event and save its token, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        old, new = _type(event.before), _type(event.after)
        if old != new:
            if old is not None:
                db.execute("UPDATE counts SET n = n - 1 WHERE type = ?", (old,))
            if new is not None:
                db.execute("INSERT INTO counts (type, n) VALUES (?, 1) "
                           "ON CONFLICT (type) DO UPDATE SET n = n + 1", (new,))
        db.execute("INSERT OR REPLACE INTO position (id, collection, token) VALUES (1, ?, ?)",
                   (collection or "", event.token))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def close_when_idle(sub: Any, idle_s: float, last: list[float]) -> threading.Thread:
    """A thread that closes the subscription after `idle_s` seconds without an event."""

    def watch() -> None:
        while not sub.closed:
            if time.monotonic() - last[0] >= idle_s:
                sub.close()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def run(router: str, path: str, collection: str | None, until_idle: float | None) -> int:
    """Follow the change stream into the view; returns how many events were applied."""
    db = open_view(path)
    token = saved_token(db, collection)
    applied, last = 0, [time.monotonic()]
    with Client(router) as client:
        sub = client.subscribe(collections=[collection] if collection else None,
                               from_token=token, start="oldest")
        with sub:
            if until_idle is not None:
                close_when_idle(sub, until_idle, last)
            for event in sub:
                apply(db, event, collection)
                applied += 1
                last[0] = time.monotonic()
    db.close()
    return applied


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--router", default="127.0.0.1:7400", help="router host:port")
    ap.add_argument("--db", required=True, help="SQLite file holding the view and its token")
    ap.add_argument("--collection", default=None, help="only this collection (default: all)")
    ap.add_argument("--until-idle", type=float, default=None, metavar="SECONDS",
                    help="exit after this long without an event (default: run until killed)")
    args = ap.parse_args()
    try:
        applied = run(args.router, args.db, args.collection, args.until_idle)
    except KeyboardInterrupt:
        return 0
    print(f"materialized view: {applied} events applied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
