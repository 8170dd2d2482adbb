"""The asyncio client: the same calls as `Client`, over a grpc.aio channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import grpc

from db4.v1 import admin_pb2_grpc, node_pb2_grpc, router_pb2_grpc
from db4client import _bulk, _cdc, _channel, _direct, _query, _search, _txn, _wire
from db4client._plan import arun_plan
from db4client._retry import DEFAULT_POLICY, RetryPolicy, Tries, never_sent
from db4client.admin import AsyncAdmin
from db4client.collection import AsyncCollection, _adocuments
from db4client.errors import (
    Db4Error,
    DeadlineExceededError,
    UnavailableError,
    UnimplementedError,
    from_rpc_error,
)
from db4client.results import BulkLoadResult, Page, SearchHit, SearchResult, TransactionResult
from db4client.subscription import AsyncSubscription
from db4client.transaction import AsyncTransaction
from db4core.names import DEFAULT_PARTITION_KEY

T = TypeVar("T")


class AsyncClient:
    """A db4 client for asyncio code; every call is a coroutine."""

    def __init__(self, address: str = _channel.DEFAULT_ADDRESS, token: str | None = None,
                 tls: bool | dict[str, Any] | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = DEFAULT_POLICY, direct: bool = False) -> None:
        """`direct=True`: as for `Client`, point reads and writes go straight to the node."""
        _channel.split_address(address, bool(tls))  # ValueError: not host:port, or not
        # loopback without TLS
        self.address = address
        self.timeout = timeout
        self._metadata = _channel.call_metadata(token)
        self._retry = retry
        self._tls = tls
        self._routes = _direct.Routes(secure=bool(tls)) if direct else None
        self._nodes: dict[str, Any] = {}  # node address -> (channel, Node stub)
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
        for channel, _ in self._nodes.values():
            await channel.close()

    async def _invoke(self, call: _wire.Call[T]) -> T:
        """Send one call, retrying only what the policy allows; errors become domain errors.
        A direct client sends what it can place straight to the owning node."""
        if self._routes is not None and call.service == _wire.DB4 \
                and call.method in _direct.METHODS:
            plan = await self._direct_plan(call)
            if plan is not None:
                sent, value = await self._send_direct(call, plan)
                if sent:
                    return value
        method = getattr(self._stubs[call.service], call.method)
        tries = Tries(self._retry, call, self.timeout)
        while True:
            try:
                resp = await method(call.request, timeout=tries.timeout(), metadata=self._metadata)
            except grpc.RpcError as err:
                delay, failure = tries.after(err)
                if delay is None:
                    return call.fail(*failure)
                await asyncio.sleep(delay)
                continue
            return call.parse(resp)

    async def _direct_plan(self, call: _wire.Call[T]) -> _direct.NodeCall | None:
        """See `Client._direct_plan`."""
        routes = self._routes
        assert routes is not None
        collection = call.request.collection
        key = routes.partition_key(collection)
        if key is _direct.UNKNOWN:
            routes.learn(collection, await self._invoke(_wire.get_collection(collection)))
            key = routes.partition_key(collection)
        if key is None:
            if call.method in ("Create", "Upsert"):
                routes.unknown.pop(collection, None)  # the router creates it: ask next time
            routes.fell_back += 1
            return None
        topo = routes.topology
        if topo is None:
            try:
                topo = routes.adopt(await self._invoke(_wire.routing()))
            except UnimplementedError:  # a router older than direct mode
                self._routes = None
                return None
        plan = routes.plan(call, key, topo)
        if plan is None:
            routes.fell_back += 1
        return plan

    async def _send_direct(self, call: _wire.Call[T], plan: _direct.NodeCall) -> tuple[bool, Any]:
        """See `Client._send_direct`."""
        routes = self._routes
        assert routes is not None
        if plan.address not in self._nodes:
            channel = _channel.open_aio_channel(plan.address, self._tls)
            self._nodes[plan.address] = (channel, node_pb2_grpc.NodeStub(channel))
        stub = self._nodes[plan.address][1]
        since, maybe_applied = time.monotonic(), False
        while True:
            try:
                resp = await getattr(stub, plan.method)(
                    plan.request, timeout=call.deadline(self.timeout), metadata=self._metadata)
            except grpc.RpcError as err:
                domain = from_rpc_error(err)
                action = _direct.after_failure(domain, never_sent(err), plan, maybe_applied,
                                               since)
                if action == _direct.ROUTER:
                    routes.forget(plan.topology)
                    routes.fell_back += 1
                    return False, None
                if action == _direct.RESEND:
                    maybe_applied = True  # a write that left: only this txid may follow it
                    await asyncio.sleep(0.1)
                    continue
                routes.sent += 1
                return True, call.fail(domain, err)
            routes.sent += 1
            return True, call.parse(plan.answer(resp))

    async def _stream(self, call: _wire.StreamCall[T],
                      on_open: Callable[[Any], None] | None = None
                      ) -> AsyncGenerator[T, None]:
        """Parsed messages of a server stream, as `Client._stream` (same timeout, resume and
        `on_open` rules). Close it (`aclose()`, or `contextlib.aclosing`) when you stop early,
        so the stream is cancelled at once rather than when the generator is collected."""
        request = call.request
        attempt, failing_since = 0, None  # failures since the last message, and since when
        while request is not None:
            method = getattr(self._stubs[call.service], call.method)
            responses = method(request, metadata=self._metadata)
            if on_open is not None:
                on_open(responses)
            try:
                while True:
                    message = await self._read(responses, call.message_timeout(self.timeout))
                    if message is grpc.aio.EOF:
                        if not call.endless:
                            return
                        raise UnavailableError("the router ended the stream")
                    item = call.parse(message)
                    attempt, failing_since = 0, None
                    if call.resume is not None:
                        request = call.resume(call.request, item)
                    yield item
            except (grpc.RpcError, UnavailableError) as err:
                domain = err if isinstance(err, Db4Error) else from_rpc_error(err)
                if call.resume is not None and request is None:
                    return  # the last page had arrived: nothing is missing
                failing_since = failing_since or time.monotonic()
                delay = self._retry.resume_delay(call, domain, attempt,
                                                 time.monotonic() - failing_since)
                if delay is None:
                    if domain is err:
                        raise
                    raise domain from err
                await asyncio.sleep(delay)
                attempt += 1
            finally:
                responses.cancel()

    async def _read(self, responses: Any, timeout: float | None) -> Any:
        """The next raw message (or grpc.aio.EOF); DeadlineExceededError when `timeout` late."""
        if timeout is None:
            return await responses.read()
        try:
            return await asyncio.wait_for(responses.read(), timeout)
        except TimeoutError:
            raise DeadlineExceededError(f"the router sent nothing for {timeout} s") from None

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

    async def bulk_load(self, collection: str, docs: Any, batch_size: int = 1000,
                        progress: Callable[[int], None] | None = None,
                        in_flight: int = 4) -> BulkLoadResult:
        """See `Client.bulk_load`."""
        coll = self.collection(collection)
        return await _bulk.arun(coll.insert_many, coll.delete_many, docs, batch_size,
                                in_flight, progress, time.perf_counter)

    async def shard_for(self, collection: str, partition_value: Any) -> str:
        """The id of the shard that owns a partition key value."""
        return (await self.shard_info(collection, partition_value))["shard_id"]

    async def shard_info(self, collection: str, partition_value: Any) -> dict[str, Any]:
        """Where a partition key value lives: shard_id, node_id, token and ring epoch."""
        return await self._invoke(_wire.shard_for(collection, partition_value))

    # ---- transactions ----

    def transaction(self, isolation: str = "serializable",
                    timeout: float = 30.0) -> AsyncTransaction:
        """A transaction (use it in `async with`); see `Client.transaction`."""
        return AsyncTransaction(self, isolation, timeout)

    async def run_transaction(self, fn: Callable[[AsyncTransaction], Awaitable[T]],
                              max_retries: int = 5, initial_backoff_ms: float = 50,
                              isolation: str = "serializable",
                              timeout: float = 30.0) -> TransactionResult:
        """Run `await fn(tx)` in a fresh transaction and commit it, retrying aborted ones;
        see `Client.run_transaction`."""
        retries, backoff_ms = _txn.run_settings(fn, max_retries, initial_backoff_ms, isolation,
                                                timeout)
        return await arun_plan(self, _txn.run_transaction(
            lambda: self.transaction(isolation, timeout), fn, retries, backoff_ms))

    # ---- range indexes ----

    async def create_index(self, name: str, collection: str,
                           fields: Any = _query.DEFAULT_INDEX_FIELDS,
                           on_progress: Callable[[dict[str, Any]], Any] | None = None
                           ) -> dict[str, Any]:
        """Build a range index and return it as stored; see `Client.create_index`.
        `on_progress` is a plain function, called for every progress message."""
        call = _query.create_index(name, collection, fields)
        build = _query.IndexBuild(call.request.index, on_progress)
        async with aclosing(self._stream(call)) as stream:  # cancelled at once on errors
            async for item in stream:
                build.add(item)
        return build.result()

    async def drop_index(self, name: str) -> None:
        """Remove a range index from every shard; NotFoundError when it does not exist."""
        await self._invoke(_query.drop_index(name))

    async def list_indexes(self, collection: str | None = None) -> list[dict[str, Any]]:
        """The range indexes (of `collection`, or all), sorted by name."""
        return await self._invoke(_query.list_indexes(collection))

    async def query_range(self, index: str, start: Any = None, end: Any = None,
                          limit: int = 100, cursor: str | None = None) -> Page:
        """One page of the index's documents from `start` to `end`; see `Client.query_range`."""
        return await self._invoke(_query.query_range(index, start, end, limit, cursor))

    def iterate_range(self, index: str, start: Any = None, end: Any = None,
                      page_size: int = 50) -> AsyncIterator[dict[str, Any]]:
        """Every document of a range query over one stream (`async for`); input is checked
        now, the stream opens on the first iteration."""
        return _adocuments(self._stream(_query.iterate_range(index, start, end, page_size)))

    # ---- full-text search ----

    async def create_search_index(self, name: str, collection: str, fields: Any,
                                  tokenizer: str = "porter",
                                  on_progress: Callable[[dict[str, Any]], Any] | None = None
                                  ) -> dict[str, Any]:
        """Build a full-text index and return it as stored; see `Client.create_search_index`.
        `on_progress` is a plain function, called for every progress message."""
        call = _search.create_search_index(name, collection, fields, tokenizer)
        build = _query.IndexBuild(call.request.index, on_progress, _search.search_index_info,
                                  "create_search_index")
        async with aclosing(self._stream(call)) as stream:  # cancelled at once on errors
            async for item in stream:
                build.add(item)
        return build.result()

    async def drop_search_index(self, name: str) -> None:
        """Remove a full-text index from every shard; NotFoundError when it does not exist."""
        await self._invoke(_search.drop_search_index(name))

    async def list_search_indexes(self, collection: str | None = None) -> list[dict[str, Any]]:
        """The full-text indexes (of `collection`, or all), sorted by name."""
        return await self._invoke(_search.list_search_indexes(collection))

    async def search(self, index: str, query: str, limit: int = 20, cursor: str | None = None,
                     where: dict[str, Any] | None = None,
                     highlight: tuple[str, str] = _search.DEFAULT_MARKS,
                     snippet_tokens: int = 32) -> SearchResult:
        """One page of hits, best first; see `Client.search`."""
        return await self._invoke(_search.search(index, query, limit, cursor, where, highlight,
                                                 snippet_tokens))

    def iterate_search(self, index: str, query: str, page_size: int = 100,
                       where: dict[str, Any] | None = None,
                       highlight: tuple[str, str] = _search.DEFAULT_MARKS,
                       snippet_tokens: int = 32) -> AsyncIterator[SearchHit]:
        """Every hit of a search (`async for`); input is checked now, the first page is asked
        for on the first iteration."""
        call = _search.search(index, query, page_size, None, where, highlight, snippet_tokens)
        return _search.aiterate_hits(self._invoke, call)

    # ---- change data capture ----

    def subscribe(self, collections: Any = None, from_token: str | None = None,
                  start: str = "oldest", consumer: str | None = None,
                  heartbeat_ms: int | None = None) -> AsyncSubscription:
        """Committed changes as an `AsyncSubscription` (`async for ev in ...`); see
        `Client.subscribe`. Arguments are checked now; the stream opens on the first
        iteration."""
        call = _cdc.subscribe(collections, from_token, start, consumer, heartbeat_ms)
        return AsyncSubscription(self, call, consumer)
