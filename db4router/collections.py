"""Collection options in etcd: fixed by one create-only write, explicit or on the first write.

Options never change once the record exists. A change, even of an empty collection, would race
writes already on their way with the old options (the router's count of documents cannot see
them), and a document placed by the old partition key is stranded: unreadable by partition,
refused by update. So whoever creates the record first wins, every router obeys that record, and
the loser of a race learns the winner's options from the same etcd transaction.
"""

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
        """Options from the view; defaults when it holds none (reads of a missing collection
        find nothing either way). Cached options are never stale: they cannot change."""
        validate_collection(name)
        opts = self.view.collections.get(name)
        pk = opts["partition_key"] if opts else DEFAULT_PARTITION_KEY
        return CollectionInfo(name, pk)

    async def get(self, name: str) -> CollectionInfo | None:
        """Options, None when the collection does not exist. A name missing from the view is
        read from etcd: another router may have created it before our watch told us."""
        validate_collection(name)
        if name in self.view.collections:
            return self.lookup(name)
        raw = await self.view.get(self.view.keys.collection(name))
        return _info(name, raw) if raw is not None else None

    async def current(self, name: str) -> CollectionInfo:
        """Options as `get`, defaults for a collection that does not exist (yet): what a write
        to an existing document must use, rather than a possibly late view's defaults."""
        return await self.get(name) or CollectionInfo(name)

    async def ensure(self, name: str) -> CollectionInfo:
        """Options of a collection, creating it with defaults on its first write; when a
        create_collection won the race, its options."""
        validate_collection(name)
        if name in self.view.collections:
            return self.lookup(name)
        info, _created = await self._create_or_get(name, DEFAULT_PARTITION_KEY)
        return info

    async def create(
        self, name: str, partition_key: str,
        count_docs: Callable[[str], Awaitable[int]] | None = None,
    ) -> tuple[CollectionInfo, bool]:
        """Create with these options, or accept them when the collection already has them;
        other options already in etcd are FAILED_PRECONDITION. (`count_docs` is unused:
        options are fixed however many documents the collection holds.)"""
        validate_collection(name)
        pk = validate_partition_key(partition_key)
        info, created = await self._create_or_get(name, pk)
        if info.partition_key != pk:
            raise FailedPreconditionError(
                f"collection {name!r} already exists partitioned by {info.partition_key!r} "
                f"(set by its first write or an earlier create_collection); a partition key "
                f"is fixed when a collection is created, so it cannot become {pk!r}"
            )
        return info, created

    async def _create_or_get(self, name: str, partition_key: str
                             ) -> tuple[CollectionInfo, bool]:
        """The one create-only step: our options if we created the record, else the winner's."""
        created, raw = await self.view.create_or_get(self.view.keys.collection(name),
                                                     _record(partition_key))
        return _info(name, raw), created


def _record(partition_key: str) -> bytes:
    return json.dumps({"partition_key": partition_key}).encode()


def _info(name: str, raw: bytes) -> CollectionInfo:
    """Options from an etcd record."""
    return CollectionInfo(name, json.loads(raw)["partition_key"])
