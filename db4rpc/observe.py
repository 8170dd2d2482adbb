"""Metrics and request ids for the servers of `db4 node` and `db4 router`.

- `--metrics-port N` serves Prometheus metrics over HTTP (prometheus-client): the process's
  own (CPU, memory, open files), `db4_rpc_seconds{method,code}` for every RPC it serves, and
  what each component registers (per-shard load on nodes, change-feed lag and operations on
  routers). Off (0) by default: a process without it records nothing per call.
- `--log-format json` writes one JSON object per log line. Each call then runs under a request
  id: the caller's `x-request-id` metadata, or a new one; a router sends its id on with every
  call it makes to a node, so one request's lines on the router and the nodes share it. At
  --log-level DEBUG every call is logged when it ends (method, status code, milliseconds).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import grpc
from prometheus_client import Histogram, start_http_server

from db4core.config import REQUEST_ID, add_flag
from db4rpc import handlers

REQUEST_ID_KEY = "x-request-id"


def add_observe_flags(p: Any) -> None:
    """--metrics-port and --log-format, on `db4 node` and `db4 router`."""
    add_flag(p, "metrics-port", 0, type=int,
             help="port serving Prometheus metrics over HTTP (0: none)")
    add_flag(p, "log-format", "text",
             help="text, or json: one JSON object per line with the request id")


def server_observer(args: Any) -> ServerObserver | None:
    """The interceptor the flags ask for, None when neither metrics nor request ids are on."""
    if not 0 <= args.metrics_port < 65536:
        raise SystemExit("--metrics-port must be 0-65535")
    ids = args.log_format == "json"
    return ServerObserver(bool(args.metrics_port), ids) if args.metrics_port or ids else None
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            10.0, 30.0, 120.0)
RPC_SECONDS = Histogram("db4_rpc_seconds", "Time to answer an RPC, by method and status code",
                        ["method", "code"], buckets=_BUCKETS)

log = logging.getLogger("db4.observe")


def serve_metrics(host: str, port: int) -> int:
    """Start the Prometheus HTTP endpoint (a thread); the port bound."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_address[1])


def _code(context: grpc.aio.ServicerContext, err: BaseException | None) -> str:
    """The status the call ended with, as the client sees it."""
    code = context.code()
    if code is not None:
        return code.name if isinstance(code, grpc.StatusCode) else str(code)
    if isinstance(err, Exception) and not isinstance(err, grpc.aio.AbortError):
        return "UNKNOWN"
    if err is None and not context.cancelled():
        return "OK"
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    return "CANCELLED"


class ServerObserver(grpc.aio.ServerInterceptor):
    """Times every call into RPC_SECONDS (`metrics`) and runs it under a request id (`ids`)."""

    def __init__(self, metrics: bool, ids: bool) -> None:
        self.metrics = metrics
        self.ids = ids

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        request_id = None
        if self.ids:
            request_id = next((v for k, v in details.invocation_metadata or ()
                               if k == REQUEST_ID_KEY), None) or uuid.uuid4().hex[:16]
        return _wrap(handler, details.method, self.metrics, request_id)


def _wrap(handler: Any, method: str, metrics: bool, request_id: str | None) -> Any:
    def observe(started: float, context: Any, err: BaseException | None) -> None:
        if metrics:
            RPC_SECONDS.labels(method, _code(context, err)).observe(
                time.perf_counter() - started)
        if request_id is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %.2f ms", method, _code(context, err),
                      (time.perf_counter() - started) * 1000)

    def enter() -> float:
        # Each call runs in a task of its own, with its own copy of the context: the id is
        # set, never reset (a stream's generator may be closed from another context).
        if request_id is not None:
            REQUEST_ID.set(request_id)
        return time.perf_counter()

    if handler.response_streaming:
        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: Any) -> Any:
            started = enter()
            err: BaseException | None = None
            try:
                async for item in inner(request, context):
                    yield item
            except BaseException as e:
                err = e
                raise
            finally:
                observe(started, context, err)

        behaviour: Any = streaming
    else:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: Any) -> Any:
            started = enter()
            err: BaseException | None = None
            try:
                result = inner(request, context)
                return await result if hasattr(result, "__await__") else result
            except BaseException as e:
                err = e
                raise
            finally:
                observe(started, context, err)

        behaviour = unary
    return handlers.like(handler, behaviour)


class _Forward:
    """Adds the running call's request id to a call made to a node."""

    @staticmethod
    def _details(details: Any) -> Any:
        request_id = REQUEST_ID.get()
        if request_id is None:
            return details
        metadata = [*(details.metadata or ()), (REQUEST_ID_KEY, request_id)]
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                          details.credentials, details.wait_for_ready)


class _ForwardUnaryUnary(_Forward, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _ForwardUnaryStream(_Forward, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _ForwardStreamUnary(_Forward, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any,
                                     requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _ForwardStreamStream(_Forward, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any,
                                      requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def forwarding_interceptors() -> list[Any]:
    """Client interceptors that send the request id on to nodes."""
    return [_ForwardUnaryUnary(), _ForwardUnaryStream(), _ForwardStreamUnary(),
            _ForwardStreamStream()]
