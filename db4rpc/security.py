"""TLS, bearer tokens, health and reflection for the servers of `db4 node` and `db4 router`.

One set of flags on both processes (`add_security_flags`):
- `--tls-cert/--tls-key` serve TLS; the same pair is the client certificate a router or node
  shows when it calls a node. `--tls-ca` is the bundle peers are checked against; a node given
  it requires a client certificate signed by it (mutual TLS) from every caller.
- `--auth true` requires a bearer token on every call (`db4rpc.tokens`); it needs TLS, since a
  token sent in the clear is anyone's. `--token-file` holds this process's own token, role
  `node`, which it sends to nodes and registers (hashed) when it starts.
- Without TLS and tokens a process listens and connects on loopback only; with both, on any
  address. `--advertise` is the address others use (a node registers it in etcd).
- `--health-port` opens a second, plaintext listener that serves only grpc.health.v1 (kubelet
  probes do not speak TLS). The health service also runs on the main port.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from db4core.config import add_flag
from db4rpc.options import SERVER_OPTIONS, check_loopback

log = logging.getLogger("db4.security")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _yes(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_security_flags(p: argparse.ArgumentParser, router: bool = False) -> None:
    """The TLS, token, advertise and health flags shared by `db4 node` and `db4 router`."""
    add_flag(p, "tls-cert", help="PEM certificate chain to serve TLS with (also the client "
                                 "certificate shown to nodes)")
    add_flag(p, "tls-key", help="PEM private key of --tls-cert")
    add_flag(p, "tls-ca", help="PEM CA bundle peers are checked against; a node given it "
                               "requires client certificates signed by it (mutual TLS)")
    add_flag(p, "auth", "false", type=_yes,
             help="require a bearer token with the right role on every call (needs TLS)")
    add_flag(p, "token-file", help="file holding this process's own token (role node), sent "
                                   "to nodes and registered at start")
    add_flag(p, "advertise", help="host:port others reach this process at (default: the "
                                  "listening host and port)")
    add_flag(p, "health-port", 0, type=int,
             help="plaintext port serving only grpc.health.v1, for probes (0: none)")
    if router:
        add_flag(p, "admin-token-file",
                 help="file holding an admin token, registered at start (to bootstrap "
                      "db4 token create)")


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise SystemExit(f"cannot read {what} {path}: {err.strerror}") from None


def read_token(path: str | None, what: str = "--token-file") -> str | None:
    """The token held in a file (surrounding whitespace dropped), None without a path."""
    raw = _read(path, what)
    if raw is None:
        return None
    token = raw.decode("utf-8", "replace").strip()
    if not token:
        raise SystemExit(f"{what} {path} is empty")
    return token


def listen(add_port: Callable[[], int], address: str) -> int:
    """gRPC's add_*_port, a port it cannot bind (in use, or no such address here) being a
    one-line exit instead of a RuntimeError traceback."""
    try:
        return add_port()
    except RuntimeError as err:
        if "Failed to bind" not in str(err):
            raise
        raise SystemExit(f"cannot listen on {address}: the port is in use or the address is "
                         "not this machine's") from None


@dataclass
class Security:
    """What the flags ask for, with the files read once."""

    cert: bytes | None = None
    key: bytes | None = None
    ca: bytes | None = None
    auth: bool = False
    token: str | None = None
    advertise: str | None = None
    health_port: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Security:
        sec = cls(_read(args.tls_cert, "--tls-cert"), _read(args.tls_key, "--tls-key"),
                  _read(args.tls_ca, "--tls-ca"), bool(args.auth),
                  read_token(args.token_file), args.advertise or None, args.health_port)
        if (sec.cert is None) != (sec.key is None):
            raise SystemExit("--tls-cert and --tls-key go together")
        if sec.auth and sec.cert is None:
            raise SystemExit("--auth true needs TLS (--tls-cert and --tls-key): a bearer token "
                             "sent in the clear can be read by anyone on the path")
        if sec.ca is not None and sec.cert is None:
            raise SystemExit("--tls-ca needs --tls-cert and --tls-key")
        if not 0 <= sec.health_port < 65536:
            raise SystemExit("--health-port must be 0-65535")
        return sec

    @property
    def tls(self) -> bool:
        return self.cert is not None

    @property
    def secured(self) -> bool:
        """TLS and tokens both on: the process may listen and connect beyond loopback."""
        return self.tls and self.auth

    def host(self, host: str) -> str:
        """`host` when this process may use it: loopback always, others only when secured."""
        if self.secured:
            return host
        try:
            return check_loopback(host)
        except ValueError as err:
            raise SystemExit(f"{err}; other addresses need --tls-cert, --tls-key and "
                             "--auth true") from None

    def bind(self, server: grpc.aio.Server, host: str, port: int,
             require_client_cert: bool = False) -> int:
        """Listen on host:port (TLS when configured); the port bound."""
        address = f"{self.host(host)}:{port}"
        if not self.tls:
            return listen(lambda: server.add_insecure_port(address), address)
        assert self.key is not None and self.cert is not None
        creds = grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca,
            require_client_auth=require_client_cert and self.ca is not None)
        return listen(lambda: server.add_secure_port(address, creds), address)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Credentials for calls to nodes: TLS with our certificate, plus our token."""
        if not self.tls:
            return None
        creds = grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                             certificate_chain=self.cert)
        if self.token is not None:
            creds = grpc.composite_channel_credentials(
                creds, grpc.access_token_call_credentials(self.token))
        return creds

    def open_channel(self, address: str, options: Any,
                     interceptors: Any = None) -> grpc.aio.Channel:
        """An asyncio channel to a node, secured as configured."""
        creds = self.channel_credentials()
        if creds is None:
            return grpc.aio.insecure_channel(address, options=options,
                                             interceptors=interceptors)
        return grpc.aio.secure_channel(address, creds, options=options,
                                       interceptors=interceptors)

    def advertised(self, host: str, port: int) -> str:
        return self.advertise or f"{host}:{port}"


LIVENESS = "liveness"


class Health:
    """The grpc.health.v1 service of one process, on its main port and the health port.

    "" and the process's own services are SERVING only while it can serve (a node: shards open
    and its etcd lease held; a router: the ring loaded): readiness. LIVENESS is SERVING from
    start to stop whatever etcd does, for liveness probes: an etcd outage must not get every
    node restarted.
    """

    def __init__(self, services: tuple[str, ...]) -> None:
        self.services = ("", *services)
        self.servicer = health.aio.HealthServicer()
        self._extra: grpc.aio.Server | None = None

    def add_to(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    async def start_port(self, sec: Security, host: str) -> int:
        """Start the plaintext health-only listener when --health-port asks for one."""
        await self.set(False)
        await self.servicer.set(LIVENESS, SERVING)
        if not sec.health_port:
            return 0
        self._extra = grpc.aio.server(options=SERVER_OPTIONS)
        self.add_to(self._extra)
        address = f"{sec.host(host)}:{sec.health_port}"
        extra = self._extra
        port = listen(lambda: extra.add_insecure_port(address), address)
        await self._extra.start()
        return port

    async def set(self, serving: bool) -> None:
        for name in self.services:
            await self.servicer.set(name, SERVING if serving else NOT_SERVING)

    async def stop(self) -> None:
        await self.set(False)
        await self.servicer.set(LIVENESS, NOT_SERVING)
        if self._extra is not None:
            await self._extra.stop(grace=1)


def add_reflection(server: grpc.aio.Server, services: tuple[str, ...]) -> None:
    """Server reflection for `services`, the health service and reflection itself."""
    names = (*services, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
