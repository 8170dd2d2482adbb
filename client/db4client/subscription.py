"""Change streams: `Subscription` (blocking iterator) and `AsyncSubscription` (async iterator).

    with client.subscribe(collections=["orders"], start="now") as sub:
        for ev in sub:                  # ChangeEvent: op, collection, id, before, after, ...
            handle(ev)
            save(ev.token)              # subscribe(from_token=...) continues after ev

The stream underneath is the client's resumable stream (`Client._stream`): after UNAVAILABLE
(a router restarted or killed), a server that ended it, or StreamIdleError it is opened again
from the last token received, for at least the retry policy's stream budget, so no event is
missed or repeated. OutOfRangeError (the token is older than what is kept), DataLossError and
every other error propagate.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any, Protocol

from db4client import _cdc
from db4client._cdc import Batch, ChangeEvent
from db4client.errors import InvalidArgumentError


class _Streams(Protocol):
    def _invoke(self, call: Any) -> Any: ...

    def _stream(self, call: Any, on_open: Callable[[Any], None] | None = None) -> Any: ...


class _Failed:
    """What `on_heartbeat` raised, passed out of the stream's generator (which goes on): the
    iteration raises it, and the next one continues the stream."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _Position:
    """What both kinds of subscription share: the token, the consumer, the open gRPC call."""

    def __init__(self, call: Any, consumer: str | None) -> None:
        self.token: str | None = call.request.from_token or None
        self.consumer = consumer
        # Called with the new token when a heartbeat moves the position: everything before
        # it was yielded or skipped (a collection not asked for), so a consumer that has
        # handled every event may acknowledge it, else a filter that skips everything of a
        # shard would hold that shard's change log from its last event on. What it raises
        # comes out of the iteration, which can go on; on an AsyncSubscription it may be a
        # coroutine function (`sub.ack`), awaited.
        self.on_heartbeat: Callable[[str], Any] | None = None
        self.closed = False
        self._lock = threading.Lock()
        self._rpc: Any = None  # the gRPC call now open, so close() can cancel it anywhere

    def _opened(self, rpc: Any) -> None:
        with self._lock:
            self._rpc = rpc
            if self.closed:  # closed while it was being opened
                rpc.cancel()

    def _cancel(self) -> None:
        with self._lock:
            self.closed = True
            if self._rpc is not None:
                self._rpc.cancel()

    def _ack_call(self, token: str | None) -> Any:
        if self.consumer is None:
            raise InvalidArgumentError("ack needs a durable consumer: subscribe(consumer=NAME)")
        token = self.token if token is None else token
        if token is None:
            raise InvalidArgumentError("nothing to acknowledge yet: no event or heartbeat has "
                                       "arrived")
        return _cdc.acknowledge(self.consumer, token)


class Subscription(_Position):
    """Committed changes as they happen: iterate for ChangeEvents. `.token` is the latest
    position (moved by every event and every heartbeat; heartbeats are not yielded): subscribe
    with it as `from_token` to continue exactly after what was seen. `close()` (or the `with`
    block's end) cancels the stream, from any thread."""

    def __init__(self, client: _Streams, call: Any, consumer: str | None) -> None:
        super().__init__(call, consumer)
        self._client = client
        self._batches: Generator[Batch, None, None] = client._stream(call, self._opened)
        self._events = self._flatten()

    def _flatten(self) -> Generator[ChangeEvent | _Failed, None, None]:
        for batch in self._batches:
            for event in batch.events:
                self.token = event.token
                yield event
            if batch.token:
                moved = not batch.events and batch.token != self.token
                self.token = batch.token
                if moved and self.on_heartbeat is not None:
                    try:
                        self.on_heartbeat(batch.token)
                    except Exception as err:  # noqa: BLE001 - the caller's, given back
                        yield _Failed(err)

    def __iter__(self) -> Iterator[ChangeEvent]:
        return self

    def __next__(self) -> ChangeEvent:
        if self.closed:
            raise StopIteration
        try:
            item = next(self._events)
        except Exception:
            if self.closed:  # the cancelled call's error: the end the caller asked for
                raise StopIteration from None
            raise
        if isinstance(item, _Failed):
            raise item.error
        return item

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream (safe from another thread, and more than once)."""
        self._cancel()
        try:
            self._events.close()
            self._batches.close()
        except ValueError:
            pass  # running in another thread: its call is cancelled, it ends there

    def ack(self, token: str | None = None) -> None:
        """Record this consumer's position: `token` (one it has processed), or `.token`.
        The change log is kept from the lowest acknowledged position on."""
        self._client._invoke(self._ack_call(token))


class AsyncSubscription(_Position):
    """The asyncio `Subscription`: `async for ev in sub`, `async with`, `await sub.ack()`,
    `await sub.aclose()` (or `close()`, which also works from another task or thread)."""

    def __init__(self, client: _Streams, call: Any, consumer: str | None) -> None:
        super().__init__(call, consumer)
        self._client = client
        self._batches: AsyncGenerator[Batch, None] = client._stream(call, self._opened)
        self._events = self._flatten()

    async def _flatten(self) -> AsyncGenerator[ChangeEvent | _Failed, None]:
        async for batch in self._batches:
            for event in batch.events:
                self.token = event.token
                yield event
            if batch.token:
                moved = not batch.events and batch.token != self.token
                self.token = batch.token
                if moved and self.on_heartbeat is not None:
                    try:  # a coroutine function (`sub.ack`) is awaited
                        result = self.on_heartbeat(batch.token)
                        if inspect.isawaitable(result):
                            await result
                    except Exception as err:  # noqa: BLE001 - the caller's, given back
                        yield _Failed(err)

    def __aiter__(self) -> AsyncIterator[ChangeEvent]:
        return self

    async def __anext__(self) -> ChangeEvent:
        if self.closed:
            raise StopAsyncIteration
        try:
            item = await self._events.__anext__()
        except Exception:
            if self.closed:
                raise StopAsyncIteration from None
            raise
        if isinstance(item, _Failed):
            raise item.error
        return item

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Cancel the stream; a pending `__anext__` ends the iteration."""
        self._cancel()

    async def aclose(self) -> None:
        """Cancel the stream and finish its generators."""
        self._cancel()
        try:
            await self._events.aclose()
            await self._batches.aclose()
        except RuntimeError:
            pass  # being awaited by another task: its call is cancelled, it ends there

    async def ack(self, token: str | None = None) -> None:
        """Record this consumer's position; see `Subscription.ack`."""
        await self._client._invoke(self._ack_call(token))
