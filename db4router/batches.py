"""insert_many, get_many, delete_many: group by shard, send shards in parallel, answer in
input order.

insert_many and delete_many are all or nothing. A duplicate inside the batch fails insert_many
before anything is sent; an id that exists already fails it on its shard. Either way the whole
batch is ALREADY_EXISTS and nothing is written: the batch commits as one transaction
(commit.py): all of it in one Write when it touches one shard, else two-phase commit with one
participant per shard, each shard's part in one Prepare. A failure (a racing create, a node lost
mid-batch) leaves no document and no change-log record behind.

In a collection partitioned by a field, caller-chosen ids are kept unique by id claims
(claims.py), written in the same transaction as the documents.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from db4core.documents import MAX_BATCH_ITEMS
from db4core.errors import AlreadyExistsError, Db4Error, InvalidArgumentError
from db4core.hashing import token_for
from db4core.ids import new_id, validate_id
from db4router.claims import Wanted, claim_error, needs_claim
from db4router.collections import CollectionInfo, Collections
from db4router.commit import PlacedOp
from db4router.dispatch import Dispatcher, gather_all
from db4router.docops import DocOps, new_txid, parse_document, partition_value, placement_view
from db4router.nodeio import LOOKUP_CHUNK, read_all, write_op
from db4rpc.options import MAX_MESSAGE_BYTES

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
        """Create every document or none; stored documents in input order. Documents are read
        for placement only (placement_view); when the batch fails for any reason, its first
        document a strict read refuses is the error, as if every document had been read
        strictly first (the nodes read them strictly as they write)."""
        check_batch_size(len(raws))
        info = await self.collections.ensure(collection)
        try:
            return await self._insert_many(info, raws)
        except Db4Error:
            for i, raw in enumerate(raws):
                try:
                    parse_document(raw)
                except InvalidArgumentError as err:
                    raise InvalidArgumentError(f"documents[{i}]: {err.message}") from None
            raise

    async def _insert_many(self, info: CollectionInfo, raws: list[bytes]) -> list[bytes]:
        items = [self._place(info, i, raw) for i, raw in enumerate(raws)]
        self._check_unique(items)
        ops = [PlacedOp(it.token, write_op(info, "create", it.id, it.token, it.body))
               for it in items]
        claimed = [it for it in items if needs_claim(info, it.chosen_id)]
        wanted = [Wanted(it.id, it.token, "create") for it in claimed]
        try:
            plans = await self.ops.claims.plan(info, wanted) if wanted else []
        except AlreadyExistsError as err:
            raise AlreadyExistsError(f"{err.message}; nothing was inserted") from None
        ops += [p.claim for p in plans if p.claim is not None]

        def name(err: Db4Error, slot: int | None) -> Db4Error:
            if slot is None:
                return err
            if slot < len(items):
                return _prefixed(err, f"documents[{items[slot].index}]")
            item, want = claimed[slot - len(items)], wanted[slot - len(items)]
            return _prefixed(claim_error(err, info, want), f"documents[{item.index}]")

        outcome = await self.ops.committer.run(new_txid(), ops, [], name)
        return [r.document for r in outcome.results[:len(items)]]

    def _place(self, info: CollectionInfo, index: int, raw: bytes) -> Item:
        try:
            try:
                doc = placement_view(raw)
                doc_id = validate_id(doc["$id"]) if "$id" in doc else new_id()
                token = token_for(partition_value(info, doc, doc_id))
            except (ValueError, TypeError, RecursionError):  # NaN, a number past a double
                parse_document(raw)  # raises what a strict read finds
                raise
            return Item(index, doc_id, token, raw, chosen_id="$id" in doc)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(f"documents[{index}]: {err.message}") from None

    @staticmethod
    def _check_unique(items: list[Item]) -> None:
        seen: dict[str, int] = {}
        for item in items:
            if item.id in seen:
                raise AlreadyExistsError(
                    f"documents[{item.index}]: $id {item.id!r} appears twice in the batch "
                    f"(also documents[{seen[item.id]}]); nothing was inserted")
            seen[item.id] = item.index

    def _by_shard(self, items: list[Item]) -> dict[str, list[Item]]:
        topo = self.dispatcher.view.require()
        groups: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            groups[self.dispatcher.cache.shard_for(topo, item.token)].append(item)
        return groups

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
        """Delete by id, all in one transaction; per id whether a document was removed, in
        input order."""
        check_batch_size(len(ids))
        info = await self.collections.current(collection)
        for doc_id in ids:
            validate_id(doc_id)
        if info.partition_key == "$id":
            items = [Item(i, d, token_for(d), b"") for i, d in enumerate(ids)]
        else:  # where each id lives is known only to the shards: one lookup for all of them
            found = await self.ops.lookup_many(info, ids)
            items = [Item(i, d, found[d][1], b"") for i, d in enumerate(ids) if d in found]
        ops = [PlacedOp(it.token, write_op(info, "delete", it.id, it.token)) for it in items]

        def name(err: Db4Error, slot: int | None) -> Db4Error:
            return err if slot is None else _prefixed(err, f"ids[{items[slot].index}]")

        outcome = await self.ops.committer.run(new_txid(), ops, [], name)
        out = [False] * len(ids)
        for item, result in zip(items, outcome.results, strict=True):
            out[item.index] = result.found
        return out


def _prefixed(err: Db4Error, where: str) -> Db4Error:
    """The same error, its message prefixed with the item it failed on."""
    err.message = f"{where}: {err.message}"
    err.args = (err.message,)
    return err
