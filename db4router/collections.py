"""Collection options in etcd: created on first write, changed only while empty."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from db4core.errors import FailedPreconditionError
from db4core.names import DEFAULT_PARTITION_KEY, validate_collection, validate_partition_key
from db4router.topology import ClusterView


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's options."""

    name: str
    partition_key: str = DEFAULT_PARTITION_KEY


class Collections:
    """Reads options from the cluster view, writes them with create-only etcd transactions."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view

    def lookup(self, name: str) -> CollectionInfo:
        """Options of a collection; defaults when it does not exist yet (reads need no write)."""
        validate_collection(name)
        opts = self.view.collections.get(name)
        pk = opts["partition_key"] if opts else DEFAULT_PARTITION_KEY
        return CollectionInfo(name, pk)

    async def ensure(self, name: str) -> CollectionInfo:
        """Options of a collection, creating it with defaults on its first write."""
        validate_collection(name)
        if name not in self.view.collections:
            await self._put_if_absent(name, DEFAULT_PARTITION_KEY)
        return self.lookup(name)

    async def create(
        self, name: str, partition_key: str, count_docs: Callable[[str], Awaitable[int]]
    ) -> tuple[CollectionInfo, bool]:
        """Idempotent create; changing the partition key needs an empty collection."""
        validate_collection(name)
        pk = validate_partition_key(partition_key)
        if await self._put_if_absent(name, pk):
            return CollectionInfo(name, pk), True
        current = self.lookup(name)
        if current.partition_key == pk:
            return current, False
        held = await count_docs(name)
        if held:
            raise FailedPreconditionError(
                f"collection {name!r} holds {held} documents partitioned by "
                f"{current.partition_key!r}; its partition key cannot change to {pk!r}"
            )
        await self.view.put(self.view.keys.collection(name), _record(pk))
        return CollectionInfo(name, pk), False

    async def _put_if_absent(self, name: str, partition_key: str) -> bool:
        return await self.view.create_only(self.view.keys.collection(name),
                                           _record(partition_key))


def _record(partition_key: str) -> bytes:
    return json.dumps({"partition_key": partition_key}).encode()
