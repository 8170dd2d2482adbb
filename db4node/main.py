"""`db4 node`: run one storage node until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

import aetcd
import aetcd.exceptions
import grpc

from db4.v1 import node_pb2_grpc
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
from db4core.txn import DEFAULT_IN_DOUBT_S
from db4node import load, metrics, retention, search_merge
from db4node.checkpoint import DEFAULT_INTERVAL_S, Checkpointer
from db4node.keeper import RangeKeeper
from db4node.load import LoadReporter
from db4node.membership import Membership
from db4node.participant import Participant
from db4node.resolver import Resolver
from db4node.service import NodeService
from db4node.store import ShardStore, claim_data_dir
from db4node.worker import DEFAULT_QUERY_CEILING_S
from db4rpc.decoding import add_guarded
from db4rpc.observe import add_observe_flags, serve_metrics, server_observer
from db4rpc.options import SERVER_OPTIONS
from db4rpc.security import Health, Security, add_reflection, add_security_flags
from db4rpc.tokens import AuthInterceptor, TokenStore

log = logging.getLogger("db4.node")


def parser() -> argparse.ArgumentParser:
    """Flags of `db4 node`; each also reads DB4_<FLAG> from the environment."""
    p = argparse.ArgumentParser(prog="db4 node", description="Run a db4 storage node.")
    add_flag(p, "id", help="node id, unique in the cluster (required)")
    add_flag(p, "host", "127.0.0.1",
             help="address to listen on (loopback unless TLS and --auth are on)")
    add_flag(p, "port", 0, type=int, help="port to listen on (0 picks a free one)")
    add_flag(p, "data-dir", help="directory for shard databases (required)")
    add_flag(p, "etcd", "http://127.0.0.1:2379", help="etcd endpoint")
    add_flag(p, "cluster", "default", help="cluster name: etcd keys live under /db4/<cluster>/")
    add_flag(p, "log-level", "INFO", help="DEBUG, INFO, WARNING or ERROR")
    add_flag(p, "max-query-seconds", DEFAULT_QUERY_CEILING_S, type=float,
             help="ceiling on one query or count on one shard; past it the query answers "
                  "RESOURCE_EXHAUSTED (0: no ceiling)")
    add_flag(p, "txn-in-doubt-seconds", DEFAULT_IN_DOUBT_S, type=float,
             help="how long a prepared transaction waits for its decision before the node asks "
                  "etcd for it (and records abort when there is none); a Prepare may say less")
    add_flag(p, "cdc-retention-entries", retention.DEFAULT_ENTRIES, type=int,
             help="change-log records every shard keeps at least (newest first), whatever the "
                  "consumers acknowledged")
    add_flag(p, "cdc-retention-bytes", retention.DEFAULT_BYTES, type=int,
             help="bytes of documents (before + after) of the newest change-log records every "
                  "shard keeps at least")
    add_flag(p, "cdc-retention-seconds", retention.DEFAULT_SECONDS, type=float,
             help="seconds of change-log history every shard keeps at least")
    add_flag(p, "load-report-seconds", load.DEFAULT_INTERVAL_S, type=float,
             help="how often the node reports each shard's reads/s, writes/s, documents and "
                  "bytes to etcd (load/<node id>), read by db4 status")
    add_flag(p, "cdc-truncate-interval-seconds", DEFAULT_INTERVAL_S, type=float,
             help="how often the node reads the consumers' checkpoints from etcd and truncates "
                  "the change logs")
    add_flag(p, "search-merge-seconds", search_merge.DEFAULT_INTERVAL_S, type=float,
             help="a shard whose change log has not moved for this long has its full-text "
                  "indexes merged into one segment each, in short steps (0: never)")
    add_security_flags(p)
    add_observe_flags(p)
    return p


def retention_of(args: argparse.Namespace) -> retention.Retention:
    """The retention limits the flags ask for; a negative one is refused."""
    limits = retention.Retention(args.cdc_retention_entries, args.cdc_retention_bytes,
                                 args.cdc_retention_seconds)
    if min(limits.entries, limits.bytes, limits.seconds) < 0 \
            or args.cdc_truncate_interval_seconds <= 0:
        raise SystemExit("--cdc-retention-* must not be negative and "
                         "--cdc-truncate-interval-seconds must be positive")
    return limits


async def serve(args: argparse.Namespace) -> None:
    """Start the gRPC server, register in etcd (waiting for it), serve until signalled, stop."""
    stop = stop_event()
    claim_data_dir(args.data_dir, args.id, args.cluster)
    store = ShardStore(args.data_dir, args.max_query_seconds or None)
    # Every shard file opens now, not on its first request: prepared transactions left by a
    # crash must be resolved even if no request ever comes for their shard.
    opened = store.open_all()
    participant = Participant(store, int(args.txn_in_doubt_seconds * 1000))
    sec = Security.from_args(args)
    sec.host(args.host)  # a host it may not listen on ends the process before anything starts
    if args.host.strip("[]") in ("0.0.0.0", "::") and not sec.advertise:
        raise SystemExit(f"--host {args.host} listens on every address: give --advertise "
                         "HOST:PORT, the address routers and clients reach this node at")
    health = Health(("db4.v1.Node",))
    await health.start_port(sec, args.host)
    host, etcd_port = parse_endpoint(args.etcd)
    etcd = aetcd.Client(sec.host(host), etcd_port, timeout=5, options=ETCD_CHANNEL_OPTIONS)
    tokens = TokenStore(etcd, Keys(args.cluster), (aetcd.exceptions.ClientError,))
    observer = server_observer(args)
    interceptors = [i for i in (observer, AuthInterceptor(tokens.record_of) if sec.auth else None)
                    if i is not None]
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors or None)
    port = sec.bind(server, args.host, args.port, require_client_cert=True)
    address = sec.advertised(args.host, port)
    membership = Membership(etcd, Keys(args.cluster), args.id, address)
    keeper = RangeKeeper(store, args.id)
    membership.on_adopt.append(keeper.adopt)
    membership.gate = keeper.gate
    membership.scope = keeper.scope
    membership.epoch_check = keeper.check_epoch
    resolver = Resolver(store, participant, etcd, Keys(args.cluster), args.id)
    checkpointer = Checkpointer(store, etcd, Keys(args.cluster), retention_of(args),
                                args.cdc_truncate_interval_seconds)
    if args.load_report_seconds <= 0:
        raise SystemExit("--load-report-seconds must be positive")
    if args.search_merge_seconds < 0:
        raise SystemExit("--search-merge-seconds must not be negative")
    merger = (search_merge.SearchMerger(store, args.search_merge_seconds)
              if args.search_merge_seconds else None)
    if args.metrics_port:
        metrics.register(store, lambda: checkpointer.checkpoint)
        bound = serve_metrics(sec.host(args.host), args.metrics_port)
        log.info("metrics on http://%s:%d/metrics", args.host, bound)
    reporter = LoadReporter(store, store.load, membership, etcd, Keys(args.cluster),
                            args.load_report_seconds)
    add_guarded(node_pb2_grpc.add_NodeServicer_to_server,
                NodeService(store, membership, participant, lambda: checkpointer.checkpoint,
                            checkpointer.truncate_now, sec.open_channel),
                server)
    health.add_to(server)
    add_reflection(server, ("db4.v1.Node",))
    await server.start()  # until registered, requests get UNAVAILABLE (no topology yet)

    async def register() -> None:
        if sec.token is not None \
                and await tokens.register(sec.token, "node", f"node:{args.id}") is None:
            raise SystemExit("--token-file holds a revoked token: give this node a new one "
                             "(db4 token create --role node)")
        await membership.start()

    registering = wait_for(f"etcd at {host}:{etcd_port} to register node {args.id}",
                           register, (aetcd.exceptions.ClientError, UnavailableError), log)
    registered, _ = await unless_stopped(registering, stop)
    if registered:
        resolver.start()
        checkpointer.start()
        reporter.start()
        if merger is not None:
            merger.start()
        await health.set(True)
        membership.on_lease = health.set
        log.info("db4 node %s serving on %s (data %s, %d shards)", args.id, address,
                 args.data_dir, len(opened))
        await stop.wait()
    log.info("stopping node %s", args.id)
    await health.stop()
    await resolver.stop()
    await checkpointer.stop()
    await reporter.stop()
    if merger is not None:
        await merger.stop()
    await keeper.stop()
    await server.stop(grace=2)  # in-flight calls finish first
    await membership.stop()
    await membership.release()
    await etcd.close()
    store.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `db4 node` and `python -m db4node`."""
    args = parser().parse_args(argv)
    if not args.id or not args.data_dir:
        parser().error("--id and --data-dir are required")
    setup_logging(f"node[{args.id}]", args.log_level, args.log_format)
    asyncio.run(serve(args))
    return 0
