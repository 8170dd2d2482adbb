"""Small helpers over apsw that the rest of the node shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import apsw


def scalar(conn: apsw.Connection, sql: str, params: tuple | list = ()) -> Any:
    """The first column of the first row of a statement that always returns one row."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, f"no row from {sql!r}"
    return row[0]


@contextmanager
def transaction(conn: apsw.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """A transaction opened and committed by statements. apsw steps a statement without the
    GIL but commits `with conn` with it: a commit's WAL fsync (and any checkpoint it runs)
    would hold every other thread of the node, the event loop included, for milliseconds."""
    conn.execute(begin)
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
