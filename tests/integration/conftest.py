"""One real cluster (etcd + 3 nodes + router, 8 shards) shared by the integration tests.

Tests isolate themselves by collection name, not by cluster: starting a cluster costs seconds.
"""

from __future__ import annotations

import itertools
import os

import pytest

from tests.support.cluster import Cluster
from tests.support.procs import kill_all

_names = itertools.count()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    c = Cluster(root, nodes=3, shards=8)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        kill_all()


@pytest.fixture(scope="session", params=["routed", "direct"])
def client(cluster, request):
    """The SDK client, once through the router and once token-aware (`direct=True`: point
    reads and writes straight to the owning node): every test using it runs in both modes and
    must see the same results and errors."""
    from db4client import Client

    with Client(cluster.address, direct=request.param == "direct") as c:
        yield c


@pytest.fixture(scope="session")
def mode(client) -> str:
    """"routed" or "direct": the client's mode, for names a module fixture must not reuse."""
    return "direct" if client._routes is not None else "routed"


@pytest.fixture
def raw(cluster):
    """A bare stub of the router's public service: sends what the SDK would refuse."""
    import grpc

    from db4.v1 import router_pb2_grpc

    with grpc.insecure_channel(cluster.address) as ch:
        yield router_pb2_grpc.Db4Stub(ch)


@pytest.fixture
def coll_name(request) -> str:
    """A collection name unique to this test."""
    base = "".join(ch for ch in request.node.name if ch.isalnum())[:40]
    return f"c{os.getpid()}{next(_names)}{base}"
