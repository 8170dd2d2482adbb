"""Small helpers over apsw that the rest of the node shares."""

from __future__ import annotations

from typing import Any

import apsw


def scalar(conn: apsw.Connection, sql: str, params: tuple | list = ()) -> Any:
    """The first column of the first row of a statement that always returns one row."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, f"no row from {sql!r}"
    return row[0]
