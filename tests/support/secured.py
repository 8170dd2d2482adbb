"""A secured cluster of real processes: etcd, two nodes and a router with TLS (mutual between
router and nodes) and bearer tokens, the material made as `db4 dev --tls` makes it."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from db4client import Client
from db4client.devtls import DevTls, ensure
from tests.support.procs import HOST, Etcd, Node, Router, free_port, wait_until


def health_status(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=2).status


class Secured:
    """etcd, two secured nodes and a secured router, with tokens of every role."""

    def __init__(self, root) -> None:
        self.root = root
        self.tls: DevTls = ensure(root)
        self.etcd = Etcd(root)
        self.health_port = free_port()
        node_env = {"DB4_TLS_CERT": str(self.tls.server_cert),
                    "DB4_TLS_KEY": str(self.tls.server_key), "DB4_TLS_CA": str(self.tls.ca),
                    "DB4_AUTH": "true", "DB4_TOKEN_FILE": str(self.tls.internal_token)}
        self.nodes = [Node("n1", root, self.etcd.url,
                           env={**node_env, "DB4_HEALTH_PORT": str(self.health_port)}),
                      Node("n2", root, self.etcd.url, env=node_env)]
        self.router_env = {**node_env, "DB4_ADMIN_TOKEN_FILE": str(self.tls.admin_token)}
        self.router = Router(root, self.etcd.url, shards=4, min_nodes=2, env=self.router_env)
        self.tokens: dict[str, str] = {"admin": self.tls.token(),
                                       "node": self.tls.internal_token.read_text().strip()}

    def start(self) -> Secured:
        self.etcd.start().wait_ready()
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        self.router.start()
        wait_until(self._router_serving, 60, "secured router to serve")
        with self.client("admin") as c:
            for role in ("read", "write"):
                self.tokens[role] = c.admin.create_token(role, f"test-{role}")["token"]
        return self

    def restart_router(self) -> None:
        """Stop the router (SIGTERM) and start it again on the same port."""
        self.router.stop(graceful=True)
        self.router = Router(self.root, self.etcd.url, port=self.router.port, shards=4,
                             min_nodes=2, env=self.router_env)
        self.router.start()
        wait_until(self._router_serving, 60, "secured router to serve again")

    def _router_serving(self) -> bool:
        self.router.check_alive()
        try:
            with self.channel(self.router.address) as ch:
                return health_status(ch) == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    def channel(self, address: str, client_cert: bool = True) -> grpc.Channel:
        ca = self.tls.ca.read_bytes()
        if client_cert:
            creds = grpc.ssl_channel_credentials(ca, self.tls.client_key.read_bytes(),
                                                 self.tls.client_cert.read_bytes())
        else:
            creds = grpc.ssl_channel_credentials(ca)
        return grpc.secure_channel(address, creds)

    def client(self, role: str | None, direct: bool = False) -> Client:
        token = self.tokens[role] if role else None
        return Client(self.router.address, token=token, tls=self.tls.sdk_tls(), direct=direct)

    def node_address(self, i: int = 0) -> str:
        return f"{HOST}:{self.nodes[i].port}"

    def stop(self) -> None:
        for proc in (self.router, *self.nodes, self.etcd):
            proc.stop(graceful=False)
