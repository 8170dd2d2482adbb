"""The blocking client: one gRPC channel to a router, calls built by `_wire`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from typing import Any, TypeVar

import grpc

from db4.v1 import admin_pb2_grpc, node_pb2_grpc, router_pb2_grpc
from db4client import _bulk, _cdc, _channel, _direct, _query, _search, _txn, _wire
from db4client._plan import run_plan
from db4client._retry import DEFAULT_POLICY, RetryPolicy, Tries, never_sent
from db4client.admin import Admin
from db4client.collection import Collection, _documents
from db4client.errors import (
    Db4Error,
    DeadlineExceededError,
    UnavailableError,
    UnimplementedError,
    from_rpc_error,
)
from db4client.results import BulkLoadResult, Page, SearchHit, SearchResult, TransactionResult
from db4client.subscription import Subscription
from db4client.transaction import Transaction
from db4core.names import DEFAULT_PARTITION_KEY

T = TypeVar("T")
_END = object()  # a stream's end


def _next_within(responses: Any, timeout: float | None) -> Any:
    """The next message of a response stream, `_END` at its end. When nothing arrives within
    `timeout` seconds the call is cancelled and DeadlineExceededError raised."""
    if timeout is None:
        return next(responses, _END)
    late = threading.Event()

    def expire() -> None:
        late.set()
        responses.cancel()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        return next(responses, _END)
    except grpc.RpcError as err:
        if late.is_set():
            raise DeadlineExceededError(f"the router sent nothing for {timeout} s") from err
        raise
    finally:
        timer.cancel()


class Client:
    """A db4 client talking to one router (any router can answer any request)."""

    def __init__(self, address: str = _channel.DEFAULT_ADDRESS, token: str | None = None,
                 tls: bool | dict[str, Any] | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = DEFAULT_POLICY, direct: bool = False) -> None:
        """`direct=True`: point reads and writes go straight to the node owning the document
        (the client hashes the partition key itself), the rest through the router; results
        and errors are the same (`_direct.py` says which calls go direct)."""
        _channel.split_address(address, bool(tls))  # ValueError: not host:port, or not
        # loopback without TLS
        self.address = address
        self.timeout = timeout
        self._metadata = _channel.call_metadata(token)
        self._retry = retry
        self._tls = tls
        self._routes = _direct.Routes(secure=bool(tls)) if direct else None
        self._nodes: dict[str, Any] = {}  # node address -> (channel, Node stub)
        self._nodes_lock = threading.Lock()
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
        for channel, _ in self._nodes.values():
            channel.close()

    def _invoke(self, call: _wire.Call[T]) -> T:
        """Send one call, retrying only what the policy allows; errors become domain errors.
        A direct client sends what it can place straight to the owning node."""
        if self._routes is not None and call.service == _wire.DB4 \
                and call.method in _direct.METHODS:
            plan = self._direct_plan(call)
            if plan is not None:
                sent, value = self._send_direct(call, plan)
                if sent:
                    return value
        method = getattr(self._stubs[call.service], call.method)
        tries = Tries(self._retry, call, self.timeout)
        while True:
            try:
                resp = method(call.request, timeout=tries.timeout(), metadata=self._metadata)
            except grpc.RpcError as err:
                delay, failure = tries.after(err)
                if delay is None:
                    return call.fail(*failure)
                time.sleep(delay)
                continue
            return call.parse(resp)

    def _direct_plan(self, call: _wire.Call[T]) -> _direct.NodeCall | None:
        """The node call for a call a direct client can place, else None (the router's)."""
        routes = self._routes
        assert routes is not None
        collection = call.request.collection
        key = routes.partition_key(collection)
        if key is _direct.UNKNOWN:
            routes.learn(collection, self._invoke(_wire.get_collection(collection)))
            key = routes.partition_key(collection)
        if key is None:
            if call.method in ("Create", "Upsert"):
                routes.unknown.pop(collection, None)  # the router creates it: ask next time
            routes.fell_back += 1
            return None
        topo = routes.topology
        if topo is None:
            try:
                topo = routes.adopt(self._invoke(_wire.routing()))
            except UnimplementedError:  # a router older than direct mode
                self._routes = None
                return None
        plan = routes.plan(call, key, topo)
        if plan is None:
            routes.fell_back += 1
        return plan

    def _send_direct(self, call: _wire.Call[T], plan: _direct.NodeCall) -> tuple[bool, Any]:
        """(True, the answer) from the node; (False, None) when the router must take the call
        (the node does not own the key any more, or could not be reached before the call left).
        A write whose connection broke after it left goes to the same node again under the same
        txid (the node answers one it applied from its notes) for up to RESEND_FOR_S."""
        routes = self._routes
        assert routes is not None
        with self._nodes_lock:  # threads share the client (bulk_load does)
            if plan.address not in self._nodes:
                channel = _channel.open_channel(plan.address, self._tls)
                self._nodes[plan.address] = (channel, node_pb2_grpc.NodeStub(channel))
            stub = self._nodes[plan.address][1]
        since, maybe_applied = time.monotonic(), False
        while True:
            try:
                resp = getattr(stub, plan.method)(
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
                    time.sleep(0.1)
                    continue
                routes.sent += 1
                return True, call.fail(domain, err)
            routes.sent += 1
            return True, call.parse(plan.answer(resp))

    def _stream(self, call: _wire.StreamCall[T],
                on_open: Callable[[Any], None] | None = None) -> Generator[T, None, None]:
        """Parsed messages of a server stream, as they arrive (nothing is sent before the
        first `next`). Each message must come within `timeout` seconds of asking for it: a
        stream has no overall deadline, since a long scan or index build is not an error.
        A resumable stream that got UNAVAILABLE is asked again from its last message, for at
        least `RetryPolicy.stream_budget_s` seconds (see `_retry`); an endless one (a change
        feed) also when the server ends it. `on_open(call)` sees every gRPC call opened, so
        another thread can cancel it."""
        request = call.request
        attempt, failing_since = 0, None  # failures since the last message, and since when
        while request is not None:
            method = getattr(self._stubs[call.service], call.method)
            responses = method(request, metadata=self._metadata)
            if on_open is not None:
                on_open(responses)
            try:
                while True:
                    message = _next_within(responses, call.message_timeout(self.timeout))
                    if message is _END:
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
                time.sleep(delay)
                attempt += 1
            finally:
                responses.cancel()

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

    def bulk_load(self, collection: str, docs: Any, batch_size: int = 1000,
                  progress: Callable[[int], None] | None = None,
                  in_flight: int = 4) -> BulkLoadResult:
        """Create the documents of any iterable (read lazily, a generator is fine) as
        consecutive insert_many batches of `batch_size` (at most 10,000), `in_flight` of them
        sent at once. `progress(loaded)` is called after each batch commits, in input order.
        Each batch is all or nothing; when one fails, the error (its `documents[i]` numbered in
        the whole input) says in `err.loaded` how many documents are loaded: exactly the
        input before the failed batch (later batches that committed are deleted again)."""
        coll = self.collection(collection)
        return _bulk.run(coll.insert_many, coll.delete_many, docs, batch_size, in_flight,
                         progress, time.perf_counter)

    def shard_for(self, collection: str, partition_value: Any) -> str:
        """The id of the shard that owns a partition key value."""
        return self.shard_info(collection, partition_value)["shard_id"]

    def shard_info(self, collection: str, partition_value: Any) -> dict[str, Any]:
        """Where a partition key value lives: shard_id, node_id, token and ring epoch."""
        return self._invoke(_wire.shard_for(collection, partition_value))

    # ---- transactions ----

    def transaction(self, isolation: str = "serializable", timeout: float = 30.0) -> Transaction:
        """A transaction (use it in `with`): reads see its own writes, writes are buffered
        here and sent in one Commit when the block ends; an exception discards them. See
        `Transaction`. `timeout` (seconds) runs from now."""
        return Transaction(self, isolation, timeout)

    def run_transaction(self, fn: Callable[[Transaction], T], max_retries: int = 5,
                        initial_backoff_ms: float = 50, isolation: str = "serializable",
                        timeout: float = 30.0) -> TransactionResult:
        """Run `fn(tx)` in a fresh transaction and commit it; on ConflictError or another
        TransactionAbortedError (LockedError, a timeout) try again after a jittered,
        doubling backoff, at most `max_retries` times, then raise the last error. Other errors
        propagate at once. `.value` is fn's return, `.attempts` the transactions it took.
        fn may run several times: keep side effects outside it."""
        retries, backoff_ms = _txn.run_settings(fn, max_retries, initial_backoff_ms, isolation,
                                                timeout)
        return run_plan(self, _txn.run_transaction(
            lambda: self.transaction(isolation, timeout), fn, retries, backoff_ms))

    # ---- range indexes ----

    def create_index(self, name: str, collection: str,
                     fields: Any = _query.DEFAULT_INDEX_FIELDS,
                     on_progress: Callable[[dict[str, Any]], Any] | None = None
                     ) -> dict[str, Any]:
        """Build a range index on every shard (existing documents too) and return it as
        stored: {"name", "collection", "fields": [(path, "asc"|"desc"), ...]}.

        `on_progress(p)` is called for every progress message, p holding shards_done,
        shards_total, documents, done and index. Idempotent with the same definition
        (ALREADY_EXISTS with another), yet never retried by the client: call it again.
        """
        call = _query.create_index(name, collection, fields)
        build = _query.IndexBuild(call.request.index, on_progress)
        with closing(self._stream(call)) as stream:  # cancelled at once if on_progress raises
            for item in stream:
                build.add(item)
        return build.result()

    def drop_index(self, name: str) -> None:
        """Remove a range index from every shard; NotFoundError when it does not exist."""
        self._invoke(_query.drop_index(name))

    def list_indexes(self, collection: str | None = None) -> list[dict[str, Any]]:
        """The range indexes (of `collection`, or all), sorted by name."""
        return self._invoke(_query.list_indexes(collection))

    def query_range(self, index: str, start: Any = None, end: Any = None, limit: int = 100,
                    cursor: str | None = None) -> Page:
        """One page of the index's documents from `start` to `end`, in index order (ties by
        `$id`). A bound is `(value, inclusive)` or None for an open end; the value is a scalar,
        or for a composite index a list of the first key values (a prefix)."""
        return self._invoke(_query.query_range(index, start, end, limit, cursor))

    def iterate_range(self, index: str, start: Any = None, end: Any = None,
                      page_size: int = 50) -> Iterator[dict[str, Any]]:
        """Every document of a range query, over one stream of pages (IterateRange)."""
        return _documents(self._stream(_query.iterate_range(index, start, end, page_size)))

    # ---- full-text search ----

    def create_search_index(self, name: str, collection: str, fields: Any,
                            tokenizer: str = "porter",
                            on_progress: Callable[[dict[str, Any]], Any] | None = None
                            ) -> dict[str, Any]:
        """Build a full-text index on every shard (existing documents too) and return it as
        stored: {"name", "collection", "fields": {path: weight}, "tokenizer"}.

        `fields` is {path: weight} or [path, ...] (weight 1); a weight is a finite number > 0
        that scales the field's term frequencies in BM25. `tokenizer`: "porter" (English
        stemming), "unicode61" or "trigram" (substrings). `on_progress` as for create_index.
        Idempotent with the same definition (ALREADY_EXISTS with another); never retried.
        """
        call = _search.create_search_index(name, collection, fields, tokenizer)
        build = _query.IndexBuild(call.request.index, on_progress, _search.search_index_info,
                                  "create_search_index")
        with closing(self._stream(call)) as stream:  # cancelled at once if on_progress raises
            for item in stream:
                build.add(item)
        return build.result()

    def drop_search_index(self, name: str) -> None:
        """Remove a full-text index from every shard; NotFoundError when it does not exist."""
        self._invoke(_search.drop_search_index(name))

    def list_search_indexes(self, collection: str | None = None) -> list[dict[str, Any]]:
        """The full-text indexes (of `collection`, or all), sorted by name."""
        return self._invoke(_search.list_search_indexes(collection))

    def search(self, index: str, query: str, limit: int = 20, cursor: str | None = None,
               where: dict[str, Any] | None = None,
               highlight: tuple[str, str] = _search.DEFAULT_MARKS,
               snippet_tokens: int = 32) -> SearchResult:
        """One page of the documents matching `query` (the search language: words, "phrases",
        prefix*, field:word, AND/OR/NOT, parentheses), best BM25 score first over the whole
        collection. `limit` 1-1000; `cursor` from the previous page; `where` a find filter
        the documents must also match; `highlight` the marks around matched terms in
        `hit.highlights` and `hit.snippet`; `snippet_tokens` 1-64."""
        return self._invoke(_search.search(index, query, limit, cursor, where, highlight,
                                           snippet_tokens))

    def iterate_search(self, index: str, query: str, page_size: int = 100,
                       where: dict[str, Any] | None = None,
                       highlight: tuple[str, str] = _search.DEFAULT_MARKS,
                       snippet_tokens: int = 32) -> Iterator[SearchHit]:
        """Every hit of a search, best first, fetching `page_size` at a time (input is
        checked now, the first page is asked for on the first `next`)."""
        call = _search.search(index, query, page_size, None, where, highlight, snippet_tokens)
        return _search.iterate_hits(self._invoke, call)

    # ---- change data capture ----

    def subscribe(self, collections: Any = None, from_token: str | None = None,
                  start: str = "oldest", consumer: str | None = None,
                  heartbeat_ms: int | None = None) -> Subscription:
        """Committed changes, merged over every shard, as a `Subscription` (iterate it for
        ChangeEvents). `collections`: names to deliver (None: all). `from_token`: continue
        right after the event or heartbeat that gave it; else `start` "oldest" (every change
        kept) or "now" (changes after this call). `consumer`: a durable consumer's name, so
        `sub.ack()` can record its position (the log is kept from there on). `heartbeat_ms`:
        how often an idle stream moves `.token` (10-60000; default 1000). Arguments are
        checked now; the stream opens on the first `next`."""
        call = _cdc.subscribe(collections, from_token, start, consumer, heartbeat_ms)
        return Subscription(self, call, consumer)
