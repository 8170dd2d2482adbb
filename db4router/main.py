"""`db4 router`: run one stateless router until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

import aetcd
import aetcd.exceptions
import grpc

from db4.v1 import admin_pb2_grpc, router_pb2_grpc
from db4core.config import (
    ETCD_CHANNEL_OPTIONS,
    add_flag,
    parse_endpoint,
    setup_logging,
    stop_event,
    unless_stopped,
    wait_for,
)
from db4core.errors import UnavailableError
from db4core.topology import Keys
from db4router.admin import AdminService
from db4router.collections import Collections
from db4router.controller import (
    DEFAULT_HOT_THRESHOLD,
    DEFAULT_HOT_WINDOW_S,
    HotController,
    HotLimits,
    Leadership,
)
from db4router.dispatch import Dispatcher
from db4router.janitor import Janitor
from db4router.metrics import RouterMetrics
from db4router.nodes import NodePool
from db4router.operations import Operations
from db4router.plans import Plans
from db4router.queries import MAX_STREAMS, MAX_STREAMS_PER_CONNECTION, STREAM_IDLE_S, StreamGate
from db4router.routing import RoutingCache
from db4router.service import Db4Service
from db4router.topology import ClusterView, EtcdUnavailableError
from db4rpc.decoding import add_guarded
from db4rpc.observe import (
    add_observe_flags,
    forwarding_interceptors,
    serve_metrics,
    server_observer,
)
from db4rpc.options import SERVER_OPTIONS
from db4rpc.security import Health, Security, add_reflection, add_security_flags, read_token
from db4rpc.tokens import AuthInterceptor, TokenStore

log = logging.getLogger("db4.router")


def parser() -> argparse.ArgumentParser:
    """Flags of `db4 router`; each also reads DB4_<FLAG> from the environment."""
    p = argparse.ArgumentParser(prog="db4 router", description="Run a db4 router.")
    add_flag(p, "host", "127.0.0.1",
             help="address to listen on (loopback unless TLS and --auth are on)")
    add_flag(p, "port", 7400, type=int, help="port to listen on")
    add_flag(p, "etcd", "http://127.0.0.1:2379", help="etcd endpoint")
    add_flag(p, "cluster", "default", help="cluster name: etcd keys live under /db4/<cluster>/")
    add_flag(p, "shards", 8, type=int, help="shards to create when etcd holds no cluster yet")
    add_flag(p, "min-nodes", 1, type=int, help="registered nodes to wait for before creating")
    add_flag(p, "log-level", "INFO", help="DEBUG, INFO, WARNING or ERROR")
    add_flag(p, "max-streams-per-connection", MAX_STREAMS_PER_CONNECTION, type=int,
             help="open Iterate/IterateRange streams one client connection may hold")
    add_flag(p, "max-streams", MAX_STREAMS, type=int, help="open streams this router serves")
    add_flag(p, "hot-shard-threshold", DEFAULT_HOT_THRESHOLD, type=float,
             help="reads/s + writes/s over which a shard that stays there for --hot-window-"
                  "seconds is marked hot (the leader router marks; db4 status shows it)")
    add_flag(p, "hot-window-seconds", DEFAULT_HOT_WINDOW_S, type=float,
             help="how long a shard must stay over --hot-shard-threshold to be marked hot")
    add_flag(p, "hot-max-documents", 0, type=int,
             help="documents over which a shard is marked hot (0: no limit)")
    add_flag(p, "hot-max-bytes", 0, type=int,
             help="file bytes over which a shard is marked hot (0: no limit)")
    add_flag(p, "auto-split", "false", type=_yes,
             help="split a shard the leader marks hot (when a split can help), one operation "
                  "at a time (true/false; default false)")
    add_flag(p, "stream-idle-seconds", STREAM_IDLE_S, type=float,
             help="a stream whose client takes nothing this long ends with DEADLINE_EXCEEDED")
    add_security_flags(p, router=True)
    add_observe_flags(p)
    return p


def _yes(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def hot_limits(args: argparse.Namespace) -> HotLimits:
    """The hot-shard limits the flags ask for; a negative one is refused."""
    limits = HotLimits(args.hot_shard_threshold, args.hot_window_seconds,
                       args.hot_max_documents, args.hot_max_bytes)
    if min(limits.ops_per_s, limits.window_s, limits.documents, limits.bytes) < 0:
        raise SystemExit("--hot-* limits must not be negative")
    return limits


async def load_cluster(view: ClusterView, args: argparse.Namespace,
                       registrations: list[tuple[str, str, str]], tokens: TokenStore) -> None:
    """Read (or create) the cluster and the cursor key, register the tokens held in files;
    etcd down is waited out, not fatal."""

    async def attempt() -> None:
        await view.ensure_cluster(args.shards, args.min_nodes)
        await view.ensure_secret()
        for token, role, name in registrations:
            if await tokens.register(token, role, name) is not None:
                continue
            if role != "admin":
                raise SystemExit("--token-file holds a revoked token: give this router a new "
                                 "one (db4 token create --role node)")
            log.warning("the token in --admin-token-file was revoked; it stays revoked")

    host, port = parse_endpoint(args.etcd)
    await wait_for(f"etcd at {host}:{port} to load cluster {args.cluster!r}", attempt,
                   (EtcdUnavailableError, UnavailableError), log)


async def serve(args: argparse.Namespace) -> None:
    """Load (or create) the cluster, serve until signalled, stop cleanly."""
    limits = hot_limits(args)
    sec = Security.from_args(args)
    sec.host(args.host)  # a host it may not listen on ends the process before anything starts
    registrations = [(sec.token, "node", "router")] if sec.token else []
    admin_token = read_token(args.admin_token_file, "--admin-token-file")
    if admin_token:
        registrations.append((admin_token, "admin", "bootstrap admin"))
    stop = stop_event()
    health = Health(("db4.v1.Db4", "db4.v1.Admin"))
    await health.start_port(sec, args.host)
    host, etcd_port = parse_endpoint(args.etcd)
    etcd = aetcd.Client(sec.host(host), etcd_port, timeout=5,
                        options=ETCD_CHANNEL_OPTIONS)
    view = ClusterView(etcd, Keys(args.cluster))
    tokens = TokenStore(etcd, Keys(args.cluster), (aetcd.exceptions.ClientError,))
    loaded, _ = await unless_stopped(load_cluster(view, args, registrations, tokens), stop)
    if not loaded:
        log.info("stopping router before it served")
        await health.stop()
        await etcd.close()
        return
    await view.start_watch()
    observer = server_observer(args)
    forward = forwarding_interceptors() if args.log_format == "json" else None
    pool = NodePool(lambda address, options: sec.open_channel(address, options, forward))
    dispatcher = Dispatcher(view, pool, RoutingCache())
    collections = Collections(view)
    janitor = Janitor(dispatcher)
    janitor.start()
    interceptors = [i for i in (observer, AuthInterceptor(tokens.record_of) if sec.auth else None)
                    if i is not None]
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors or None)
    streams = StreamGate(args.max_streams_per_connection, args.max_streams,
                         args.stream_idle_seconds)
    add_guarded(router_pb2_grpc.add_Db4Servicer_to_server,
                Db4Service(dispatcher, collections, streams), server)
    leadership = Leadership(etcd, Keys(args.cluster), "")  # named once the port is known
    operations = Operations(dispatcher, leadership)
    plans = Plans(operations)
    operations.after_round.append(plans.step)
    admin = AdminService(dispatcher, operations, plans, tokens)
    add_guarded(admin_pb2_grpc.add_AdminServicer_to_server, admin, server)
    router_metrics = None
    if args.metrics_port:
        router_metrics = RouterMetrics(view, operations, admin.logs, admin.consumers.listing)
        bound = serve_metrics(sec.host(args.host), args.metrics_port)
        log.info("metrics on http://%s:%d/metrics", args.host, bound)
    health.add_to(server)
    add_reflection(server, ("db4.v1.Db4", "db4.v1.Admin"))
    port = sec.bind(server, args.host, args.port)
    await server.start()
    await health.set(True)
    leadership.name = sec.advertised(args.host, port)
    leadership.start()
    operations.start()
    controller = HotController(etcd, Keys(args.cluster), leadership, limits,
                               split=operations.auto_split if args.auto_split else None)
    controller.start()
    if router_metrics is not None:
        router_metrics.start()
    log.info("db4 router serving on %s:%d (cluster %s, epoch %d)", args.host, port,
             args.cluster, view.epoch)
    await stop.wait()
    log.info("stopping router")
    await health.stop()
    await server.stop(grace=2)
    await controller.stop()
    if router_metrics is not None:
        await router_metrics.stop()
    await operations.stop()
    await leadership.stop()
    await janitor.stop()
    await view.stop()
    await pool.close()
    await etcd.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `db4 router` and `python -m db4router`."""
    args = parser().parse_args(argv)
    setup_logging("router", args.log_level, args.log_format)
    asyncio.run(serve(args))
    return 0
