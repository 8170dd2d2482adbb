"""Fault tests start their own clusters: they kill processes."""

from __future__ import annotations

import pytest

from tests.support.cluster import Cluster


@pytest.fixture
def fresh_cluster(tmp_path):
    c = Cluster(tmp_path, nodes=3, shards=8)
    try:
        c.start()
        yield c
    finally:
        c.stop()  # by PID: only this cluster's processes


@pytest.fixture
def small_cluster(tmp_path):
    """Two nodes, two shards: room for a split or a move to a node of its own."""
    c = Cluster(tmp_path, nodes=2, shards=2)
    try:
        c.start()
        yield c
    finally:
        c.stop()
