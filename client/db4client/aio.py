"""The asyncio client: the same calls as `Client`, over a grpc.aio channel."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import grpc

from db4.v1 import admin_pb2_grpc, router_pb2_grpc
from db4client import _channel, _wire
from db4client._retry import DEFAULT_POLICY, RetryPolicy
from db4client.admin import AsyncAdmin
from db4client.collection import AsyncCollection
from db4client.errors import from_rpc_error
from db4core.names import DEFAULT_PARTITION_KEY

T = TypeVar("T")


class AsyncClient:
    """A db4 client for asyncio code; every call is a coroutine."""

    def __init__(self, address: str = _channel.DEFAULT_ADDRESS, token: str | None = None,
                 tls: bool | dict[str, Any] | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = DEFAULT_POLICY) -> None:
        _channel.split_address(address)  # ValueError unless loopback host:port
        self.address = address
        self.timeout = timeout
        self._metadata = _channel.call_metadata(token)
        self._retry = retry
        self._channel = _channel.open_aio_channel(address, tls)
        self._stubs: dict[str, Any] = {
            _wire.DB4: router_pb2_grpc.Db4Stub(self._channel),
            _wire.ADMIN: admin_pb2_grpc.AdminStub(self._channel),
        }
        self.admin = AsyncAdmin(self)

    def __repr__(self) -> str:
        return f"AsyncClient({self.address!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls after this fail."""
        await self._channel.close()

    async def _invoke(self, call: _wire.Call[T]) -> T:
        """Send one call, retrying only what the policy allows; errors become domain errors."""
        method = getattr(self._stubs[call.service], call.method)
        attempt = 0
        while True:
            try:
                resp = await method(call.request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as err:
                domain = from_rpc_error(err)
                delay = self._retry.delay_for(call, domain, attempt)
                if delay is None:
                    return call.fail(domain, err)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            return call.parse(resp)

    async def create_collection(self, name: str,
                                partition_key: str = DEFAULT_PARTITION_KEY) -> dict[str, Any]:
        """Set a collection's options (idempotent with the same options)."""
        return await self._invoke(_wire.create_collection(name, partition_key))

    async def get_collection(self, name: str) -> dict[str, Any] | None:
        """A collection's options, None when it does not exist."""
        return await self._invoke(_wire.get_collection(name))

    def collection(self, name: str) -> AsyncCollection:
        """A handle on a collection (no round trip: collections exist on first write)."""
        return AsyncCollection(self, name)

    async def shard_for(self, collection: str, partition_value: Any) -> str:
        """The id of the shard that owns a partition key value."""
        return (await self.shard_info(collection, partition_value))["shard_id"]

    async def shard_info(self, collection: str, partition_value: Any) -> dict[str, Any]:
        """Where a partition key value lives: shard_id, node_id, token and ring epoch."""
        return await self._invoke(_wire.shard_for(collection, partition_value))
