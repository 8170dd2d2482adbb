"""Full-text index definitions: kept in etcd, built on every shard, repaired shard by shard.

A definition is `search/<name>` = {"collection", "fields": [[path, weight], ...], "tokenizer"},
written with a create-only etcd transaction: creating the same definition again is idempotent
(and re-ensures every shard, which finishes a build a dead router left half done), another
definition under the name is ALREADY_EXISTS. A shard that lacks an index it should have (a build
cut short, a shard file started afresh) gets it from the definition the first time a search
meets the gap (`ensure_on`), before that shard's answer is used.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Sequence

from db4.v1 import node_pb2, router_pb2
from db4core.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from db4core.names import validate_collection
from db4core.query import SYSTEM_FIELDS, validate_path
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher

SEARCH_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
MAX_SEARCH_FIELDS = 32
TOKENIZERS = ("porter", "unicode61", "trigram")
DEFAULT_TOKENIZER = "porter"
BUILD_TIMEOUT_S = NODE_TIMEOUT_S * 20


def validate_search_index(index: router_pb2.SearchIndex) -> dict:
    """A wire full-text index definition as the etcd record, validated."""
    if not SEARCH_NAME.fullmatch(index.name):
        raise InvalidArgumentError(
            "search index name must be 1-128 characters of [A-Za-z0-9_-] starting with a "
            f"letter, got {index.name!r}")
    validate_collection(index.collection)
    if not 1 <= len(index.fields) <= MAX_SEARCH_FIELDS:
        raise InvalidArgumentError(f"a search index has 1 to {MAX_SEARCH_FIELDS} fields, "
                                   f"got {len(index.fields)}")
    paths = [_field_path(f.path) for f in index.fields]
    fields = [[p, _weight(f)] for p, f in zip(paths, index.fields, strict=True)]
    if len(set(paths)) != len(paths):
        twice = sorted({p for p in paths if paths.count(p) > 1})
        raise InvalidArgumentError(f"search index fields must differ; repeated: {twice}")
    tokenizer = index.tokenizer or DEFAULT_TOKENIZER
    if tokenizer not in TOKENIZERS:
        raise InvalidArgumentError(
            f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
    return {"collection": index.collection, "fields": fields, "tokenizer": tokenizer}


def _field_path(path: str) -> str:
    """A user field path (system fields hold no text to search)."""
    if path in SYSTEM_FIELDS:
        raise InvalidArgumentError(f"search index field {path!r} is a system field; "
                                   "index a field of the document")
    validate_path(path)
    return path


def _weight(field: router_pb2.SearchField) -> float:
    """The field's BM25 weight: finite and > 0; an unset weight (0) is 1."""
    weight = field.weight or 1.0
    if not math.isfinite(weight) or weight <= 0:
        raise InvalidArgumentError(
            f"weight of field {field.path!r} must be a finite number > 0, got {field.weight}")
    return weight


def to_wire(name: str, record: dict) -> router_pb2.SearchIndex:
    """An etcd record as a wire SearchIndex."""
    fields = [router_pb2.SearchField(path=p, weight=w) for p, w in record["fields"]]
    return router_pb2.SearchIndex(name=name, collection=record["collection"], fields=fields,
                                  tokenizer=record["tokenizer"])


class SearchIndexes:
    """Create, drop, list and repair full-text indexes."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @property
    def view(self):
        return self.dispatcher.view

    def get(self, name: str) -> dict:
        """The definition, NOT_FOUND naming the index when there is none."""
        record = self.view.search_indexes.get(name)
        if record is None:
            raise NotFoundError(f"search index {name!r} does not exist")
        return record

    async def create(self, index: router_pb2.SearchIndex
                     ) -> AsyncIterator[router_pb2.SearchIndexProgress]:
        """Record the definition, then build it on every shard, yielding progress."""
        record = validate_search_index(index)
        self._check_free(index.name, record)
        if record["collection"] not in self.view.collections:
            raise NotFoundError(
                f"collection {record['collection']!r} does not exist: create it "
                "(create_collection, or a first write) before indexing it")
        await self._record(index.name, record)
        wire = to_wire(index.name, record)
        async for progress in self._build(wire):
            yield progress

    async def _build(self, wire: router_pb2.SearchIndex
                     ) -> AsyncIterator[router_pb2.SearchIndexProgress]:
        """Ensure the index on every shard at once, reporting each shard's progress as it
        comes: documents summed over the latest count of every shard."""
        shards = sorted(self.view.require().ring.shards)
        counts: dict[str, int] = {}
        updates: asyncio.Queue[tuple[str, int, bool]] = asyncio.Queue()

        async def ensure(shard: str) -> None:
            async def call(stub, shard_id, epoch):
                req = node_pb2.EnsureSearchIndexRequest(shard_id=shard_id, index=wire)
                async for part in stub.EnsureSearchIndex(req, timeout=BUILD_TIMEOUT_S):
                    updates.put_nowait((shard, part.documents, part.done))
            await self.dispatcher.by_shard(shard, call)
            updates.put_nowait((shard, counts.get(shard, 0), True))

        tasks = [asyncio.ensure_future(ensure(s)) for s in shards]
        done: set[str] = set()
        try:
            while len(done) < len(shards):
                shard, documents, finished = await _next_update(updates, tasks)
                if finished and shard in done:
                    continue  # the closing note after the shard's own last message
                counts[shard] = documents
                done.update([shard] if finished else [])
                yield router_pb2.SearchIndexProgress(
                    shards_done=len(done), shards_total=len(shards),
                    documents=sum(counts.values()), done=len(done) == len(shards), index=wire)
        finally:
            for task in tasks:
                task.cancel()

    async def ensure_on(self, shard: str, name: str) -> None:
        """Build one index on one shard (a shard that lacks it), to the end of its stream."""
        wire = to_wire(name, self.get(name))

        async def call(stub, shard_id, epoch):
            req = node_pb2.EnsureSearchIndexRequest(shard_id=shard_id, index=wire)
            async for _ in stub.EnsureSearchIndex(req, timeout=BUILD_TIMEOUT_S):
                pass

        await self.dispatcher.by_shard(shard, call)

    def _check_free(self, name: str, record: dict) -> None:
        """The name is free or holds this very definition (creating it again is idempotent)."""
        existing = self.view.search_indexes.get(name)
        if existing is not None and existing != record:
            raise AlreadyExistsError(f"search index {name!r} exists with another definition: "
                                     f"{existing}")

    async def _record(self, name: str, record: dict) -> None:
        created = await self.view.create_only(self.view.keys.search_index(name),
                                              json.dumps(record).encode())
        if not created:
            self._check_free(name, record)

    async def drop(self, name: str) -> None:
        """Drop on every shard, then forget the definition."""
        self.get(name)

        async def drop(stub, shard, epoch):
            req = node_pb2.DropShardSearchIndexRequest(shard_id=shard, name=name)
            return await stub.DropShardSearchIndex(req, timeout=NODE_TIMEOUT_S)

        await self.dispatcher.every_shard(drop)
        await self.view.delete(self.view.keys.search_index(name))

    def listing(self, collection: str) -> list[router_pb2.SearchIndex]:
        """Definitions sorted by name, of one collection or all."""
        return [to_wire(n, r) for n, r in sorted(self.view.search_indexes.items())
                if not collection or r["collection"] == collection]


async def _next_update(updates: asyncio.Queue, tasks: Sequence[asyncio.Future]
                       ) -> tuple[str, int, bool]:
    """The next shard update; a shard's failure ends the build with its error."""
    getter = asyncio.ensure_future(updates.get())
    while True:
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
        if failed:
            getter.cancel()
            raise failed[0].exception()  # type: ignore[misc]
        running = [t for t in tasks if not t.done()]
        done, _ = await asyncio.wait([getter, *running], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
