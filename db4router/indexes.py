"""Range indexes: definitions in etcd, built on every shard, read through the query path.

A definition is `indexes/<name>` = {"collection", "fields": [[path, "asc"|"desc"], ...]}, written
with a create-only etcd transaction: creating the same definition again is idempotent (and
re-ensures every shard), another definition under the name is ALREADY_EXISTS. Each shard builds
a SQLite expression index over the same sort expressions a Find uses, so a range query is a Find
whose sort is the index's keys and whose bounds become sort positions: SQLite seeks in the index.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from db4.v1 import node_pb2, router_pb2
from db4core import documents
from db4core.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from db4core.names import validate_collection
from db4core.query import (
    bound_position,
    query_fingerprint,
    sort_pairs,
    validate_limit,
    validate_sort,
)
from db4core.query.rangescan import within_type
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4router.queries import Plan

INDEX_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MAX_INDEX_FIELDS = 8


def validate_index(index: router_pb2.Index) -> dict:
    """A wire index definition as the etcd record, validated."""
    if not INDEX_NAME.fullmatch(index.name):
        raise InvalidArgumentError(
            f"index name must be 1-64 characters of [A-Za-z0-9_] starting with a letter, "
            f"got {index.name!r}")
    validate_collection(index.collection)
    if not 1 <= len(index.fields) <= MAX_INDEX_FIELDS:
        raise InvalidArgumentError(f"an index has 1 to {MAX_INDEX_FIELDS} fields, "
                                   f"got {len(index.fields)}")
    return {"collection": index.collection,
            "fields": [list(pair) for pair in sort_pairs(index.fields)]}


def to_wire(name: str, record: dict) -> router_pb2.Index:
    """An etcd record as a wire Index."""
    fields = [router_pb2.IndexField(path=p, descending=d == "desc") for p, d in record["fields"]]
    return router_pb2.Index(name=name, collection=record["collection"], fields=fields)


class Indexes:
    """Create, drop, list and read range indexes."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @property
    def view(self):
        return self.dispatcher.view

    def get(self, name: str) -> dict:
        record = self.view.indexes.get(name)
        if record is None:
            raise NotFoundError(f"index {name!r} does not exist")
        return record

    async def create(self, index: router_pb2.Index) -> AsyncIterator[router_pb2.IndexProgress]:
        """Record the definition, then build it shard by shard, yielding progress."""
        record = validate_index(index)
        self._check_free(index.name, record)
        if record["collection"] not in self.view.collections:
            # An index on a name nobody writes to is almost always a typo; say so, don't build.
            raise NotFoundError(
                f"collection {record['collection']!r} does not exist: create it "
                "(create_collection, or a first write) before indexing it")
        await self._record(index.name, record)
        wire = to_wire(index.name, record)
        shards = sorted(self.view.require().ring.shards)
        total, docs = len(shards), 0

        async def ensure(stub, shard, epoch):
            req = node_pb2.EnsureIndexRequest(shard_id=shard, index=wire)
            return await stub.EnsureIndex(req, timeout=NODE_TIMEOUT_S * 20)

        pending = [asyncio.ensure_future(self.dispatcher.by_shard(s, ensure)) for s in shards]
        try:
            for done, next_done in enumerate(asyncio.as_completed(pending), start=1):
                docs += (await next_done).documents
                yield router_pb2.IndexProgress(shards_done=done, shards_total=total,
                                               documents=docs, done=done == total, index=wire)
        finally:
            for task in pending:
                task.cancel()

    def _check_free(self, name: str, record: dict) -> None:
        """The name is free or holds this very definition (creating it again is idempotent)."""
        existing = self.view.indexes.get(name)
        if existing is not None and existing != record:
            raise AlreadyExistsError(f"index {name!r} exists with another definition: "
                                     f"{existing}")

    async def _record(self, name: str, record: dict) -> None:
        created = await self.view.create_only(self.view.keys.index(name),
                                              json.dumps(record).encode())
        if not created:
            self._check_free(name, record)

    async def drop(self, name: str) -> None:
        """Drop on every shard, then forget the definition."""
        self.get(name)

        async def drop(stub, shard, epoch):
            req = node_pb2.DropShardIndexRequest(shard_id=shard, name=name)
            return await stub.DropShardIndex(req, timeout=NODE_TIMEOUT_S)

        await self.dispatcher.every_shard(drop)
        await self.view.delete(self.view.keys.index(name))

    def listing(self, collection: str) -> list[router_pb2.Index]:
        return [to_wire(n, r) for n, r in sorted(self.view.indexes.items())
                if not collection or r["collection"] == collection]

    def plan(self, request: router_pb2.QueryRangeRequest) -> tuple[Plan, list | None]:
        """A range query as a query plan over the index's keys, and its start position."""
        record = self.get(request.index)
        sort = [(p, d) for p, d in record["fields"]]
        fields = validate_sort(sort)
        bounds = {side: _bound_json(request, side) for side in ("start", "end")}
        start, end = within_type(fields, _bound(bounds["start"], "start", fields),
                                 _bound(bounds["end"], "end", fields))
        extra = {"index": request.index, **bounds}
        plan = Plan(record["collection"], b"", sort, validate_limit(request.limit or None),
                    None, query_fingerprint(record["collection"], None, sort, extra=extra),
                    index=request.index, until=end, pin=_range_pin(fields, bounds))
        return plan, start


def _range_pin(fields, bounds: dict[str, list | None]) -> dict | None:
    """A where that every key of the range matches: both ends share their first key value, so
    each row in between has that value in the index's first field ({field: value}). When that
    field is the partition key, the router asks only the value's shard (`Queries.pruned`
    applies the pruning rule: strings and booleans pin, numbers do not)."""
    firsts = []
    for side in ("start", "end"):
        decoded = bounds[side]
        if decoded is None:
            return None
        value = decoded[0]
        values = value if isinstance(value, list) else [value]
        if not values:
            return None
        firsts.append(values[0])
    if not isinstance(firsts[0], (str, bool)) or type(firsts[0]) is not type(firsts[1]) \
            or firsts[0] != firsts[1]:
        return None
    return {fields[0].path: firsts[0]}


def _bound_json(request: router_pb2.QueryRangeRequest, side: str) -> list | None:
    if not request.HasField(side):
        return None
    bound = getattr(request, side)
    return [documents.decode(bound.value, f"{side} value"), bound.inclusive]


def _bound(decoded: list | None, side: str, fields) -> list | None:
    """A decoded range bound as a sort position (None for an open end)."""
    if decoded is None:
        return None
    value, inclusive = decoded
    values = value if isinstance(value, list) else [value]
    return bound_position(fields, values, inclusive, side)
