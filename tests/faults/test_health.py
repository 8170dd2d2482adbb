"""The health service tells readiness from liveness: a node without its etcd lease is
NOT_SERVING ("") yet alive ("liveness"), and SERVING again once etcd is back."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.etcd_gateway import EtcdGateway
from tests.support.procs import HOST, Etcd, Node, free_port, wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _status(port: int, service: str) -> int:
    with grpc.insecure_channel(f"{HOST}:{port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2).status


def test_a_node_without_its_lease_is_not_ready_but_alive(tmp_path):
    etcd = Etcd(tmp_path)
    health_port = free_port()
    node = Node("n1", tmp_path, etcd.url, env={"DB4_HEALTH_PORT": str(health_port)})
    try:
        node.start()
        wait_until(lambda: _status(health_port, "liveness") == SERVING, 30, "the health port")
        # etcd is not there yet: alive, not ready
        assert _status(health_port, "") == NOT_SERVING
        assert _status(health_port, "db4.v1.Node") == NOT_SERVING
        etcd.start().wait_ready()
        node.wait_ready()
        wait_until(lambda: _status(health_port, "") == SERVING, 10, "the node to be ready")
        assert _status(node.port, "db4.v1.Node") == SERVING  # the main port says the same
        etcd.stop(graceful=False)
        wait_until(lambda: _status(health_port, "") == NOT_SERVING, 20,
                   "the node to notice its lease is gone")
        assert _status(health_port, "liveness") == SERVING
        etcd.start().wait_ready()
        wait_until(lambda: _status(health_port, "") == SERVING, 30,
                   "the node to be ready again")
        node.stop(graceful=True)
        assert node.popen.returncode == 0
    finally:
        node.stop(graceful=False)
        etcd.stop(graceful=False)


def test_a_node_stopped_with_sigterm_releases_its_lease_at_once(tmp_path):
    """Its registration goes with the process, not LEASE_TTL (10 s) later: routers stop
    sending it calls, and a replacement can register without waiting."""
    etcd = Etcd(tmp_path)
    node = Node("n1", tmp_path, etcd.url)
    gateway = EtcdGateway(etcd.url)
    try:
        etcd.start().wait_ready()
        node.start().wait_ready()
        assert gateway.count("nodes/") == 1
        node.stop(graceful=True)
        assert node.popen.returncode == 0
        assert gateway.count("nodes/") == 0, "the registration outlived the process"
        assert "released lease" in node.log_tail(20)
    finally:
        node.stop(graceful=False)
        etcd.stop(graceful=False)
