"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from db4node.shard import Shard


@pytest.fixture
def shard(tmp_path):
    """A shard database on a fresh file, closed after the test."""
    s = Shard("s0", str(tmp_path / "s0.db"))
    try:
        yield s
    finally:
        s.close()
