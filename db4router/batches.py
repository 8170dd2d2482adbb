"""insert_many, get_many, delete_many: group by shard, pack under the message limit, send shards
in parallel, answer in input order.

insert_many is all or nothing. Before writing, every id is checked: a duplicate inside the batch
or an id that already exists anywhere fails the whole batch with ALREADY_EXISTS and nothing is
written. Each shard's part then commits in one Write (one SQLite transaction) per packed chunk.
If a chunk still fails (a concurrent create of the same id, a node lost mid-batch), the chunks
that did commit are deleted again, guarded by `expected_version=1`, so the batch leaves no
document behind; their insert and delete records stay in the change log. Cross-shard atomicity
with no window at all comes with two-phase commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

from db4.v1 import node_pb2
from db4core.documents import MAX_BATCH_ITEMS
from db4core.errors import AlreadyExistsError, Db4Error, InvalidArgumentError
from db4core.hashing import token_for
from db4core.ids import new_id, validate_id
from db4router.collections import CollectionInfo, Collections
from db4router.dispatch import Dispatcher, gather_all, raise_most_severe
from db4router.docops import (
    LOOKUP_CHUNK,
    DocOps,
    parse_document,
    partition_value,
    read_all,
    write_op,
)
from db4rpc.options import MAX_MESSAGE_BYTES

log = logging.getLogger("db4.router.batches")

MAX_BATCH = MAX_BATCH_ITEMS
FIRST_WINDOW = 128  # ids get_many reads before it knows how large the documents are
ITEM_OVERHEAD = 8  # protobuf framing of one GetResponse item besides its document
OP_OVERHEAD = 64  # bytes of a WriteOp besides its body, id, collection and partition key


@dataclass
class Item:
    """One document of a batch, placed."""

    index: int
    id: str
    token: int
    body: bytes
    chosen_id: bool = True  # False when the router generated the id


def pack(items: list[Item], limit: int = MAX_MESSAGE_BYTES, per_op: int = 0) -> list[list[Item]]:
    """Split items into chunks whose encoded size stays under limit (first-fit decreasing);
    per_op counts what every op repeats (collection name, partition key path)."""
    bins: list[tuple[int, list[Item]]] = []
    for item in sorted(items, key=lambda i: len(i.body), reverse=True):
        size = len(item.body) + len(item.id) + OP_OVERHEAD + per_op
        for n, (used, chunk) in enumerate(bins):
            if used + size <= limit:
                chunk.append(item)
                bins[n] = (used + size, chunk)
                break
        else:
            bins.append((size, [item]))
    return [sorted(chunk, key=lambda i: i.index) for _, chunk in bins]


def check_batch_size(n: int) -> None:
    if n > MAX_BATCH:
        raise InvalidArgumentError(f"a batch holds at most {MAX_BATCH} items, got {n}")


class Batches:
    """Batch operations through the dispatcher."""

    def __init__(self, dispatcher: Dispatcher, collections: Collections, ops: DocOps) -> None:
        self.dispatcher = dispatcher
        self.collections = collections
        self.ops = ops

    # ---- insert_many -------------------------------------------------------------------------

    async def insert_many(self, collection: str, raws: list[bytes]) -> list[bytes]:
        """Create every document or none; stored documents in input order."""
        check_batch_size(len(raws))
        info = await self.collections.ensure(collection)
        items = [self._place(info, i, raw) for i, raw in enumerate(raws)]
        self._check_unique(items)
        taken = await self._taken(info, items)
        if taken:
            raise AlreadyExistsError(f"{len(taken)} documents already exist in {collection!r}, "
                                     f"e.g. {taken[0]!r}; nothing was inserted")
        return await self._write_all(info, items)

    async def _taken(self, info: CollectionInfo, items: list[Item]) -> list[str]:
        """Ids of the batch that exist already: on their own shard when the collection is
        partitioned by `$id`, else on any shard (caller-chosen ids only; generated ones are
        unique by construction)."""
        if info.partition_key == "$id":
            existing = await self.get_many_placed(info, items)
            return [it.id for it, got in zip(items, existing, strict=True) if got is not None]
        chosen = [it.id for it in items if it.chosen_id]
        found = await self.ops.lookup_many(info, chosen) if chosen else {}
        return [i for i in chosen if i in found]

    def _place(self, info: CollectionInfo, index: int, raw: bytes) -> Item:
        try:
            doc = parse_document(raw)
            doc_id = validate_id(doc["$id"]) if "$id" in doc else new_id()
            token = token_for(partition_value(info, doc, doc_id))
            return Item(index, doc_id, token, raw, chosen_id="$id" in doc)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(f"documents[{index}]: {err.message}") from None

    @staticmethod
    def _check_unique(items: list[Item]) -> None:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise AlreadyExistsError(f"$id {item.id!r} appears twice in the batch; "
                                         "nothing was inserted")
            seen.add(item.id)

    async def _write_all(self, info: CollectionInfo, items: list[Item]) -> list[bytes]:
        chunks = self._chunks(info, items)
        results = await asyncio.gather(*(self._write_chunk(info, c) for c in chunks),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            done = [c for c, r in zip(chunks, results, strict=True)
                    if not isinstance(r, BaseException)]
            await self._undo(info, done)
            raise_most_severe(failed)
        out: list[bytes] = [b""] * len(items)
        for chunk, written in zip(chunks, results, strict=True):
            assert not isinstance(written, BaseException)  # failures were handled above
            for item, result in zip(chunk, written, strict=True):
                out[item.index] = result.document
        return out

    def _chunks(self, info: CollectionInfo, items: list[Item]) -> list[list[Item]]:
        """Items grouped by owning shard, each group packed under the message limit."""
        per_op = len(info.name) + len(info.partition_key)
        return [c for group in self._by_shard(items).values() for c in pack(group, per_op=per_op)]

    def _by_shard(self, items: list[Item]) -> dict[str, list[Item]]:
        topo = self.dispatcher.view.require()
        groups: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            groups[self.dispatcher.cache.shard_for(topo, item.token)].append(item)
        return groups

    async def _write_chunk(self, info: CollectionInfo, chunk: list[Item], kind: str = "create",
                           expected: int | None = None) -> list[node_pb2.WriteResult]:
        """One chunk (all on one shard) in one Write."""
        body = kind != "delete"
        ops = [write_op(info, kind, it.id, it.token, it.body if body else b"", expected)
               for it in chunk]
        what = "ids" if kind == "delete" else "documents"
        return await self.ops.send_ops(chunk[0].token, ops,
                                       name_op=lambda i: f"{what}[{chunk[i].index}]")

    async def _undo(self, info: CollectionInfo, chunks: list[list[Item]]) -> None:
        """Delete what a failed batch did write (only documents still at version 1)."""
        for chunk in chunks:
            try:
                await self._write_chunk(info, chunk, "delete", expected=1)
            except Db4Error as err:
                log.error("could not undo %d inserts of a failed batch in %s: %s",
                          len(chunk), info.name, err)

    # ---- get_many / delete_many --------------------------------------------------------------

    async def get_many(self, collection: str, ids: list[str],
                       max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes | None]:
        """Documents by id in input order, None where missing: all of them, or a prefix (at
        least one) when the whole answer would pass `max_bytes`; the client asks again for the
        rest. Ids are read in windows sized by the documents seen so far, so the router never
        holds much more than one answer."""
        check_batch_size(len(ids))
        info = await self.collections.current(collection)
        for doc_id in ids:
            validate_id(doc_id)
        out: list[bytes | None] = []
        used, window = 0, FIRST_WINDOW
        while len(out) < len(ids):
            for doc in await self._read_ids(info, ids[len(out):len(out) + window]):
                used += len(doc or b"") + ITEM_OVERHEAD
                if out and used > max_bytes:
                    return out
                out.append(doc)
            window = max(FIRST_WINDOW, (max_bytes - used) * len(out) // max(used, 1) + 1)
        return out

    async def _read_ids(self, info: CollectionInfo, ids: list[str]) -> list[bytes | None]:
        if info.partition_key != "$id":
            found = await self.ops.lookup_many(info, ids)
            return [found[i][0] if i in found else None for i in ids]
        items = [Item(i, d, token_for(d), b"") for i, d in enumerate(ids)]
        return await self.get_many_placed(info, items)

    async def get_many_placed(self, info: CollectionInfo, items: list[Item]) -> list[bytes | None]:
        """Read placed items, LOOKUP_CHUNK ids per request, every shard in parallel."""
        out: list[bytes | None] = [None] * len(items)
        chunks = [g[i:i + LOOKUP_CHUNK] for g in self._by_shard(items).values()
                  for i in range(0, len(g), LOOKUP_CHUNK)]

        async def read(chunk: list[Item]) -> None:
            async def send(stub, shard, epoch):
                return await read_all(stub, shard, epoch, info.name, [it.id for it in chunk],
                                      [it.token for it in chunk])

            got_items = await self.dispatcher.by_token(chunk[0].token, send)
            for item, got in zip(chunk, got_items, strict=True):
                out[item.index] = got.document if got.found else None

        await gather_all(read(c) for c in chunks)
        return out

    async def delete_many(self, collection: str, ids: list[str]) -> list[bool]:
        """Delete by id; per id whether a document was removed, in input order."""
        check_batch_size(len(ids))
        info = await self.collections.current(collection)
        for doc_id in ids:
            validate_id(doc_id)
        if info.partition_key == "$id":
            items = [Item(i, d, token_for(d), b"") for i, d in enumerate(ids)]
        else:  # where each id lives is known only to the shards: one lookup for all of them
            found = await self.ops.lookup_many(info, ids)
            items = [Item(i, d, found[d][1], b"") for i, d in enumerate(ids) if d in found]
        out = [False] * len(ids)

        async def run(chunk: list[Item]) -> None:
            for item, result in zip(chunk, await self._write_chunk(info, chunk, "delete"),
                                    strict=True):
                out[item.index] = result.found

        await gather_all(run(c) for c in self._chunks(info, items))
        return out
