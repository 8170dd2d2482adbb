"""Operations on one collection, sync (`Collection`) and asyncio (`AsyncCollection`).

Both classes are thin: `_wire` and `_query` validate and build every request, the client
executes it (`_invoke` for one answer, `_stream` for a server stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Protocol, TypeVar

from db4client import _query, _wire
from db4client.results import Page
from db4core.names import validate_collection

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

    # ---- batches ----

    def insert_many(self, docs: Any) -> list[Document]:
        """Create every document or none; the stored documents in input order."""
        return self._client._invoke(_wire.insert_many(self.name, docs))

    def get_many(self, ids: Any) -> list[Document | None]:
        """The documents with these ids in input order, None where one does not exist."""
        return self._client._invoke(_wire.get_many(self.name, ids))

    def delete_many(self, ids: Any) -> list[bool]:
        """Delete by id; per id in input order, whether a document was removed."""
        return self._client._invoke(_wire.delete_many(self.name, ids))

    # ---- queries ----

    def find(self, where: dict[str, Any] | None = None, sort: Any = None, limit: int = 100,
             cursor: str | None = None) -> Page:
        """One page of the documents matching `where`, in `sort` order (ties by `$id`).

        `sort` is [(path, "asc"|"desc"), ...] (a bare path means asc); pass `page.cursor`
        back, with the same where and sort, for the next page."""
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

    # ---- batches ----

    async def insert_many(self, docs: Any) -> list[Document]:
        """Create every document or none; the stored documents in input order."""
        return await self._client._invoke(_wire.insert_many(self.name, docs))

    async def get_many(self, ids: Any) -> list[Document | None]:
        """The documents with these ids in input order, None where one does not exist."""
        return await self._client._invoke(_wire.get_many(self.name, ids))

    async def delete_many(self, ids: Any) -> list[bool]:
        """Delete by id; per id in input order, whether a document was removed."""
        return await self._client._invoke(_wire.delete_many(self.name, ids))

    # ---- queries ----

    async def find(self, where: dict[str, Any] | None = None, sort: Any = None,
                   limit: int = 100, cursor: str | None = None) -> Page:
        """One page of the documents matching `where`; see `Collection.find`."""
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
