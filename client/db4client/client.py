"""The blocking client: one gRPC channel to a router, calls built by `_wire`."""

from __future__ import annotations

import time
from typing import Any, TypeVar

import grpc

from db4.v1 import admin_pb2_grpc, router_pb2_grpc
from db4client import _channel, _wire
from db4client._retry import DEFAULT_POLICY, RetryPolicy
from db4client.admin import Admin
from db4client.collection import Collection
from db4client.errors import from_rpc_error
from db4core.names import DEFAULT_PARTITION_KEY

T = TypeVar("T")


class Client:
    """A db4 client talking to one router (any router can answer any request)."""

    def __init__(self, address: str = _channel.DEFAULT_ADDRESS, token: str | None = None,
                 tls: bool | dict[str, Any] | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = DEFAULT_POLICY) -> None:
        _channel.split_address(address)  # ValueError unless loopback host:port
        self.address = address
        self.timeout = timeout
        self._metadata = _channel.call_metadata(token)
        self._retry = retry
        self._channel = _channel.open_channel(address, tls)
        self._stubs: dict[str, Any] = {
            _wire.DB4: router_pb2_grpc.Db4Stub(self._channel),
            _wire.ADMIN: admin_pb2_grpc.AdminStub(self._channel),
        }
        self.admin = Admin(self)

    def __repr__(self) -> str:
        return f"Client({self.address!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls after this fail."""
        self._channel.close()

    def _invoke(self, call: _wire.Call[T]) -> T:
        """Send one call, retrying only what the policy allows; errors become domain errors."""
        method = getattr(self._stubs[call.service], call.method)
        attempt = 0
        while True:
            try:
                resp = method(call.request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as err:
                domain = from_rpc_error(err)
                delay = self._retry.delay_for(call, domain, attempt)
                if delay is None:
                    return call.fail(domain, err)
                time.sleep(delay)
                attempt += 1
                continue
            return call.parse(resp)

    def create_collection(self, name: str,
                          partition_key: str = DEFAULT_PARTITION_KEY) -> dict[str, Any]:
        """Set a collection's options (idempotent with the same options)."""
        return self._invoke(_wire.create_collection(name, partition_key))

    def get_collection(self, name: str) -> dict[str, Any] | None:
        """A collection's options, None when it does not exist."""
        return self._invoke(_wire.get_collection(name))

    def collection(self, name: str) -> Collection:
        """A handle on a collection (no round trip: collections exist on first write)."""
        return Collection(self, name)

    def shard_for(self, collection: str, partition_value: Any) -> str:
        """The id of the shard that owns a partition key value."""
        return self.shard_info(collection, partition_value)["shard_id"]

    def shard_info(self, collection: str, partition_value: Any) -> dict[str, Any]:
        """Where a partition key value lives: shard_id, node_id, token and ring epoch."""
        return self._invoke(_wire.shard_for(collection, partition_value))
