"""Operations on one collection, sync (`Collection`) and asyncio (`AsyncCollection`).

Both classes are thin: `_wire` and `_query` validate and build every request, the client
executes it (`_invoke` for one answer, `_stream` for a server stream).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal, Protocol, TypeVar, overload

from db4.v1 import router_pb2
from db4client import _optimistic, _query, _wire
from db4client._plan import arun_plan, run_plan
from db4client.errors import AlreadyExistsError, Db4Error, InternalError
from db4client.results import CasResult, OptimisticResult, Page
from db4core import documents
from db4core.names import validate_collection
from db4rpc.options import MAX_MESSAGE_BYTES

T = TypeVar("T")
Document = dict[str, Any]


class _Runs(Protocol):
    def _invoke(self, call: _wire.Call[T]) -> T: ...

    def _stream(self, call: _wire.StreamCall[T]) -> Iterator[T]: ...


class _RunsAsync(Protocol):
    def _invoke(self, call: _wire.Call[T]) -> Awaitable[T]: ...

    def _stream(self, call: _wire.StreamCall[T]) -> AsyncIterator[T]: ...


def _documents(pages: Iterator[Page]) -> Iterator[Document]:
    """The documents of a stream of pages; closing this closes (cancels) the stream."""
    try:
        for page in pages:
            yield from page.items
    finally:
        pages.close()  # type: ignore[attr-defined]  # a generator


async def _adocuments(pages: AsyncIterator[Page]) -> AsyncIterator[Document]:
    """The documents of an async stream of pages; closing this closes the stream."""
    try:
        async for page in pages:
            for doc in page.items:
                yield doc
    finally:
        await pages.aclose()  # type: ignore[attr-defined]  # an async generator


def _byte_chunks(sizes: list[int], limit: int = MAX_MESSAGE_BYTES) -> list[tuple[int, int]]:
    """Consecutive (start, end) slices whose sizes add up to at most `limit` (one item alone
    when it is larger), so no request passes the transport's message limit."""
    out: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if i > start and used + size > limit:
            out.append((start, i))
            start, used = i, 0
        used += size
    if sizes:
        out.append((start, len(sizes)))
    return out


def _insert_chunks(call: _wire.Call[list[Document]]) -> list[_wire.Call[list[Document]]]:
    """An InsertMany call split into calls of at most 16 MiB of documents each. Split batches
    refuse an `$id` given twice before anything is sent (each request checks only its own)."""
    docs = list(call.request.documents)
    slices = _byte_chunks([len(d) + 16 for d in docs])
    if len(slices) > 1:
        seen: dict[str, int] = {}
        for index, raw in enumerate(docs):
            doc_id = documents.decode(raw).get("$id")
            if doc_id in seen:
                raise AlreadyExistsError(
                    f"documents[{index}]: $id {doc_id!r} appears twice in the batch "
                    f"(also documents[{seen[doc_id]}]); nothing was inserted")
            if doc_id is not None:
                seen[doc_id] = index
    name = call.request.collection
    return [dataclasses.replace(call, request=router_pb2.InsertManyRequest(
        collection=name, documents=docs[a:b])) for a, b in slices]


def _id_chunks(call: _wire.Call[T]) -> list[_wire.Call[T]]:
    """A GetMany or DeleteMany call split by the bytes of its ids."""
    ids = list(call.request.ids)
    return [dataclasses.replace(call, request=type(call.request)(
        collection=call.request.collection, ids=ids[a:b]))
        for a, b in _byte_chunks([len(i) + 8 for i in ids])]


def _shift_index(err: Db4Error, offset: int) -> Db4Error:
    """An error of one chunk, its `documents[i]` renumbered to the whole batch."""
    if offset:
        err.message = re.sub(r"documents\[(\d+)\]",
                             lambda m: f"documents[{int(m.group(1)) + offset}]", err.message)
        err.args = (err.message,)
    return err


def _rest_of_get_many(call: _wire.Call[list[Document | None]], done: int
                      ) -> _wire.Call[list[Document | None]]:
    """The GetMany call for the ids after the first `done` (the router answers a prefix when
    all documents would pass its byte budget)."""
    req = call.request
    return dataclasses.replace(call, request=router_pb2.GetManyRequest(
        collection=req.collection, ids=list(req.ids)[done:]))


def _check_progress(got: list) -> None:
    if not got:
        raise InternalError("the router answered GetMany with no item")


class Collection:
    """A named collection on a blocking `Client`."""

    def __init__(self, client: _Runs, name: str) -> None:
        self._client = client
        self.name = validate_collection(name)

    def __repr__(self) -> str:
        return f"Collection({self.name!r})"

    def create(self, doc: Document) -> Document:
        """Store a new document (`$id` generated when absent); the stored document."""
        return self._client._invoke(_wire.create(self.name, doc))

    def get(self, id: str, partition: Any = None) -> Document | None:
        """The document with this id, None when it does not exist."""
        return self._client._invoke(_wire.get(self.name, id, partition))

    def update(self, id: str, patch: Document, expected_version: int | None = None,
               partition: Any = None) -> Document:
        """Shallow-merge `patch` (None removes a field); ConflictError on a version mismatch."""
        return self._client._invoke(
            _wire.update(self.name, id, patch, expected_version, partition))

    def replace(self, id: str, doc: Document, expected_version: int | None = None,
                partition: Any = None) -> Document:
        """Swap the document's user fields for `doc`'s, keeping `$id` and `$createdAt`."""
        return self._client._invoke(
            _wire.replace(self.name, id, doc, expected_version, partition))

    def upsert(self, doc: Document) -> Document:
        """Create the document or replace the one with the same `$id`."""
        return self._client._invoke(_wire.upsert(self.name, doc))

    def delete(self, id: str, expected_version: int | None = None,
               partition: Any = None) -> bool:
        """Remove the document; False when it did not exist."""
        return self._client._invoke(_wire.delete(self.name, id, expected_version, partition))

    # ---- optimistic concurrency ----

    def update_with_optimistic_lock(self, id: str, fn: Callable[[Document], Document],
                                    max_retries: int = 5, initial_backoff_ms: float = 50,
                                    partition: Any = None) -> OptimisticResult:
        """Read the document, `patch = fn(doc)`, update it with `expected_version`; when
        another writer got in between (ConflictError) wait (doubling, full jitter) and start
        over, at most `max_retries` times, then raise. NotFoundError when it does not exist.
        `.document` is the stored result, `.attempts` the rounds it took."""
        return run_plan(self._client, _optimistic.optimistic_update(
            self.name, id, fn, max_retries, initial_backoff_ms, partition))

    def conditional_update(self, id: str, where: dict[str, Any], patch: Document,
                           partition: Any = None) -> Document | None:
        """Apply `patch` only when the stored document matches `where` (checked atomically on
        its shard); the updated document, or None when it did not match or does not exist."""
        return self._client._invoke(
            _optimistic.conditional_update(self.name, id, where, patch, partition))

    def compare_and_swap(self, id: str, field: str, expected: Any, new: Any,
                         partition: Any = None) -> CasResult:
        """Set top-level `field` to `new` when it equals `expected` (None also matches a
        missing field). `.swapped`, and `.doc`: the document after the swap, or as it is now
        when not swapped (None when it does not exist)."""
        return run_plan(self._client, _optimistic.compare_and_swap(
            self.name, id, field, expected, new, partition))

    def atomic_increment(self, id: str, field: str, delta: int | float = 1,
                         partition: Any = None) -> int | float:
        """Add `delta` to a number field in one transaction on the document's shard (an absent
        field counts as 0); the new value. A field holding anything but a number is
        InvalidArgumentError; NotFoundError when the document does not exist. Never retried."""
        return self._client._invoke(
            _optimistic.increment(self.name, id, field, delta, partition))

    # ---- batches ----

    def insert_many(self, docs: Any) -> list[Document]:
        """Create every document or none; the stored documents in input order. Batches over
        16 MiB go in several requests; when one fails, those already written are deleted."""
        stored: list[Document] = []
        for n, call in enumerate(_insert_chunks(_wire.insert_many(self.name, docs))):
            try:
                written: list[Document] = self._client._invoke(call)
                stored += written
            except Db4Error as err:
                if n:
                    self.delete_many([d["$id"] for d in stored])
                raise _shift_index(err, len(stored)) from err.__cause__
        return stored

    def get_many(self, ids: Any) -> list[Document | None]:
        """The documents with these ids in input order, None where one does not exist."""
        out: list[Document | None] = []
        for call in _id_chunks(_wire.get_many(self.name, ids)):
            got: list[Document | None] = []
            while len(got) < len(call.request.ids):
                part = self._client._invoke(_rest_of_get_many(call, len(got)))
                _check_progress(part)
                got += part
            out += got
        return out

    def delete_many(self, ids: Any) -> list[bool]:
        """Delete by id; per id in input order, whether a document was removed."""
        out: list[bool] = []
        for call in _id_chunks(_wire.delete_many(self.name, ids)):
            deleted: list[bool] = self._client._invoke(call)
            out += deleted
        return out

    # ---- queries ----

    @overload
    def find(self, where: dict[str, Any] | None = ..., sort: Any = ..., limit: int = ...,
             cursor: str | None = ..., explain: Literal[False] = ...) -> Page: ...

    @overload
    def find(self, where: dict[str, Any] | None = ..., sort: Any = ..., limit: int = ...,
             cursor: str | None = ..., *, explain: Literal[True]) -> dict[str, Any]: ...

    def find(self, where: dict[str, Any] | None = None, sort: Any = None, limit: int = 100,
             cursor: str | None = None, explain: bool = False) -> Page | dict[str, Any]:
        """One page of the documents matching `where`, in `sort` order (ties by `$id`).

        `sort` is [(path, "asc"|"desc"), ...] (a bare path means asc); pass `page.cursor`
        back, with the same where and sort, for the next page. With `explain=True` nothing is
        read: the result is the plan (shards and nodes asked, whether partition pruning
        applied and why not, how each shard orders its rows)."""
        if explain:
            return self._client._invoke(_query.explain_find(self.name, where, sort, limit))
        return self._client._invoke(_query.find(self.name, where, sort, limit, cursor))

    def iterate(self, where: dict[str, Any] | None = None, sort: Any = None,
                page_size: int = 500) -> Iterator[Document]:
        """Every matching document, in order, over one stream of pages (Iterate). Input is
        checked now; the stream opens on the first `next`."""
        return _documents(self._client._stream(
            _query.iterate(self.name, where, sort, page_size)))

    def count(self, where: dict[str, Any] | None = None) -> int:
        """The number of documents matching `where`, over every shard."""
        return self._client._invoke(_query.count(self.name, where))

    def find_in_shard(self, shard_id: str, where: dict[str, Any] | None = None,
                      sort: Any = None, limit: int = 100, cursor: str | None = None) -> Page:
        """`find` on one shard only (see `client.shard_for`)."""
        return self._client._invoke(
            _query.find_in_shard(self.name, shard_id, where, sort, limit, cursor))

    def count_in_shard(self, shard_id: str, where: dict[str, Any] | None = None) -> int:
        """`count` on one shard only."""
        return self._client._invoke(_query.count_in_shard(self.name, shard_id, where))


class AsyncCollection:
    """A named collection on an `AsyncClient`; every method is a coroutine."""

    def __init__(self, client: _RunsAsync, name: str) -> None:
        self._client = client
        self.name = validate_collection(name)

    def __repr__(self) -> str:
        return f"AsyncCollection({self.name!r})"

    async def create(self, doc: Document) -> Document:
        """Store a new document (`$id` generated when absent); the stored document."""
        return await self._client._invoke(_wire.create(self.name, doc))

    async def get(self, id: str, partition: Any = None) -> Document | None:
        """The document with this id, None when it does not exist."""
        return await self._client._invoke(_wire.get(self.name, id, partition))

    async def update(self, id: str, patch: Document, expected_version: int | None = None,
                     partition: Any = None) -> Document:
        """Shallow-merge `patch` (None removes a field); ConflictError on a version mismatch."""
        return await self._client._invoke(
            _wire.update(self.name, id, patch, expected_version, partition))

    async def replace(self, id: str, doc: Document, expected_version: int | None = None,
                      partition: Any = None) -> Document:
        """Swap the document's user fields for `doc`'s, keeping `$id` and `$createdAt`."""
        return await self._client._invoke(
            _wire.replace(self.name, id, doc, expected_version, partition))

    async def upsert(self, doc: Document) -> Document:
        """Create the document or replace the one with the same `$id`."""
        return await self._client._invoke(_wire.upsert(self.name, doc))

    async def delete(self, id: str, expected_version: int | None = None,
                     partition: Any = None) -> bool:
        """Remove the document; False when it did not exist."""
        return await self._client._invoke(
            _wire.delete(self.name, id, expected_version, partition))

    # ---- optimistic concurrency ----

    async def update_with_optimistic_lock(self, id: str, fn: Callable[[Document], Any],
                                          max_retries: int = 5, initial_backoff_ms: float = 50,
                                          partition: Any = None) -> OptimisticResult:
        """See `Collection.update_with_optimistic_lock`; `fn` may be a plain function or a
        coroutine function."""
        return await arun_plan(self._client, _optimistic.optimistic_update(
            self.name, id, fn, max_retries, initial_backoff_ms, partition))

    async def conditional_update(self, id: str, where: dict[str, Any], patch: Document,
                                 partition: Any = None) -> Document | None:
        """See `Collection.conditional_update`."""
        return await self._client._invoke(
            _optimistic.conditional_update(self.name, id, where, patch, partition))

    async def compare_and_swap(self, id: str, field: str, expected: Any, new: Any,
                               partition: Any = None) -> CasResult:
        """See `Collection.compare_and_swap`."""
        return await arun_plan(self._client, _optimistic.compare_and_swap(
            self.name, id, field, expected, new, partition))

    async def atomic_increment(self, id: str, field: str, delta: int | float = 1,
                               partition: Any = None) -> int | float:
        """See `Collection.atomic_increment`."""
        return await self._client._invoke(
            _optimistic.increment(self.name, id, field, delta, partition))

    # ---- batches ----

    async def insert_many(self, docs: Any) -> list[Document]:
        """Create every document or none; see `Collection.insert_many`."""
        stored: list[Document] = []
        for n, call in enumerate(_insert_chunks(_wire.insert_many(self.name, docs))):
            try:
                written: list[Document] = await self._client._invoke(call)
                stored += written
            except Db4Error as err:
                if n:
                    await self.delete_many([d["$id"] for d in stored])
                raise _shift_index(err, len(stored)) from err.__cause__
        return stored

    async def get_many(self, ids: Any) -> list[Document | None]:
        """The documents with these ids in input order, None where one does not exist."""
        out: list[Document | None] = []
        for call in _id_chunks(_wire.get_many(self.name, ids)):
            got: list[Document | None] = []
            while len(got) < len(call.request.ids):
                part = await self._client._invoke(_rest_of_get_many(call, len(got)))
                _check_progress(part)
                got += part
            out += got
        return out

    async def delete_many(self, ids: Any) -> list[bool]:
        """Delete by id; per id in input order, whether a document was removed."""
        out: list[bool] = []
        for call in _id_chunks(_wire.delete_many(self.name, ids)):
            deleted: list[bool] = await self._client._invoke(call)
            out += deleted
        return out

    # ---- queries ----

    @overload
    async def find(self, where: dict[str, Any] | None = ..., sort: Any = ..., limit: int = ...,
                   cursor: str | None = ..., explain: Literal[False] = ...) -> Page: ...

    @overload
    async def find(self, where: dict[str, Any] | None = ..., sort: Any = ..., limit: int = ...,
                   cursor: str | None = ..., *, explain: Literal[True]) -> dict[str, Any]: ...

    async def find(self, where: dict[str, Any] | None = None, sort: Any = None,
                   limit: int = 100, cursor: str | None = None,
                   explain: bool = False) -> Page | dict[str, Any]:
        """One page of the documents matching `where`; see `Collection.find`."""
        if explain:
            return await self._client._invoke(
                _query.explain_find(self.name, where, sort, limit))
        return await self._client._invoke(_query.find(self.name, where, sort, limit, cursor))

    def iterate(self, where: dict[str, Any] | None = None, sort: Any = None,
                page_size: int = 500) -> AsyncIterator[Document]:
        """Every matching document over one stream (`async for`). Input is checked now; the
        stream opens on the first iteration. Stopping early? `aclose()` it (or use
        `contextlib.aclosing`) so the stream is cancelled at once."""
        return _adocuments(self._client._stream(
            _query.iterate(self.name, where, sort, page_size)))

    async def count(self, where: dict[str, Any] | None = None) -> int:
        """The number of documents matching `where`, over every shard."""
        return await self._client._invoke(_query.count(self.name, where))

    async def find_in_shard(self, shard_id: str, where: dict[str, Any] | None = None,
                            sort: Any = None, limit: int = 100,
                            cursor: str | None = None) -> Page:
        """`find` on one shard only (see `client.shard_for`)."""
        return await self._client._invoke(
            _query.find_in_shard(self.name, shard_id, where, sort, limit, cursor))

    async def count_in_shard(self, shard_id: str, where: dict[str, Any] | None = None) -> int:
        """`count` on one shard only."""
        return await self._client._invoke(_query.count_in_shard(self.name, shard_id, where))
