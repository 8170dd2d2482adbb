"""db4router.batches.pack: chunks under the message limit, each item once, input order kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from db4.v1 import node_pb2
from db4router.batches import OP_OVERHEAD, Item, pack
from db4rpc.options import MAX_MESSAGE_BYTES, TRANSPORT_MAX_BYTES


def item(index: int, body_size: int, id_len: int = 4) -> Item:
    return Item(index, f"{index:0{id_len}}", index * 7919, b"x" * body_size)


def cost(it: Item) -> int:
    return len(it.body) + len(it.id) + OP_OVERHEAD


def check(items: list[Item], chunks: list[list[Item]], limit: int) -> None:
    placed = [it.index for chunk in chunks for it in chunk]
    assert sorted(placed) == sorted(it.index for it in items)  # every item, once
    for chunk in chunks:
        assert chunk, "an empty chunk"
        assert [it.index for it in chunk] == sorted(it.index for it in chunk)  # input order
        if len(chunk) > 1:
            assert sum(cost(it) for it in chunk) <= limit
        else:
            assert chunk[0] in items
    # oversized items travel alone
    for it in items:
        if cost(it) > limit:
            assert [it] in chunks
    # first fit never leaves two chunks that would have fitted in one
    used = [sum(cost(it) for it in chunk) for chunk in chunks]
    for i in range(len(used)):
        for j in range(i + 1, len(used)):
            assert used[i] + used[j] > limit, (used[i], used[j])


def test_empty():
    assert pack([]) == []


def test_small_batch_is_one_chunk_in_input_order():
    items = [item(i, 100 * ((i * 37) % 11)) for i in range(50)]
    chunks = pack(items, limit=1 << 20)
    assert chunks == [items]


def test_exact_fit():
    items = [item(i, 1000 - 4 - OP_OVERHEAD) for i in range(6)]  # each costs exactly 1000
    chunks = pack(items, limit=3000)
    assert [[it.index for it in c] for c in chunks] == [[0, 1, 2], [3, 4, 5]]
    check(items, chunks, 3000)


def test_oversized_item_gets_its_own_chunk():
    items = [item(0, 50), item(1, 5000), item(2, 50), item(3, 9000), item(4, 10)]
    chunks = pack(items, limit=1000)
    assert [items[1]] in chunks and [items[3]] in chunks
    assert len(chunks) == 3
    check(items, chunks, 1000)


def test_forty_documents_of_600_kib_need_two_chunks():
    items = [item(i, 600 << 10, id_len=26) for i in range(40)]
    chunks = pack(items)
    assert len(chunks) == 2
    check(items, chunks, MAX_MESSAGE_BYTES)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=60),
       limit=st.integers(min_value=200, max_value=5000))
def test_pack_properties(sizes, limit):
    items = [item(i, s) for i, s in enumerate(sizes)]
    check(items, pack(items, limit=limit), limit)


def test_encoded_write_requests_stay_under_the_limit():
    """The real WriteRequest built from a chunk (as batches._write_chunk does) fits."""
    for body, limit in ((0, 4096), (10, 10_000), (1000, MAX_MESSAGE_BYTES),
                        (100_000, MAX_MESSAGE_BYTES), (600 << 10, MAX_MESSAGE_BYTES)):
        n = min(20_000, (3 * limit) // (body + 100))
        items = [Item(i, f"doc-{i:022}", (i * 0x9E3779B97F4A7C15) % (1 << 64), b"y" * body)
                 for i in range(n)]
        chunks = pack(items, limit=limit)
        assert len(chunks) >= 2
        for chunk in chunks:
            req = node_pb2.WriteRequest(epoch=12, shard_id="s-0001", ops=[
                node_pb2.WriteOp(kind=1, collection="orders_2024", id=it.id, token=it.token,
                                 body=it.body, expected_version=None, partition_key="tenantId")
                for it in chunk])
            assert req.ByteSize() <= limit <= MAX_MESSAGE_BYTES < TRANSPORT_MAX_BYTES, body
