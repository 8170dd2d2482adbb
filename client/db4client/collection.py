"""Point operations on one collection, sync (`Collection`) and asyncio (`AsyncCollection`).

Both classes are thin: `_wire` validates and builds every request, the client executes it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from db4client import _wire
from db4core.names import validate_collection

T = TypeVar("T")
Document = dict[str, Any]


class _Runs(Protocol):
    def _invoke(self, call: _wire.Call[T]) -> T: ...


class _RunsAsync(Protocol):
    def _invoke(self, call: _wire.Call[T]) -> Awaitable[T]: ...


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
