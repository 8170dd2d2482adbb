"""The floor every db4 latency is compared with: a bare Python gRPC echo behind a grpc.aio proxy.

Run as a script it serves one of the two roles:
  python bench/floor.py echo  PORT
  python bench/floor.py proxy PORT UPSTREAM_PORT
Both use generic handlers with identity (de)serializers: no protobuf, no logic, just two hops.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

METHOD = "/bench.Echo/Echo"
_IDENTITY = {"request_deserializer": None, "response_serializer": None}


async def _serve(handler, port: int) -> None:
    server = grpc.aio.server()
    rpc = grpc.unary_unary_rpc_method_handler(handler, **_IDENTITY)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("bench.Echo", {"Echo": rpc})]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


async def echo(port: int) -> None:
    async def handle(request: bytes, context) -> bytes:
        return request

    await _serve(handle, port)


async def proxy(port: int, upstream: int) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{upstream}")
    call = channel.unary_unary(METHOD)

    async def handle(request: bytes, context) -> bytes:
        return await call(request)

    await _serve(handle, port)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "echo":
        asyncio.run(echo(int(sys.argv[2])))
    else:
        asyncio.run(proxy(int(sys.argv[2]), int(sys.argv[3])))
