"""No reader sees one half of a committed cross-shard transaction.

A writer commits transactions that set two documents on two shards to the same counter value.
Plain readers (no transaction) read one document and then the other: the second read happens
later, so it must never show an older value than the first, whichever shard commits first. A
read of a key whose transaction is prepared but not yet applied waits for the decision.
"""

from __future__ import annotations

import threading

from db4client import Client


def two_shards(client: Client, collection: str) -> tuple[str, str]:
    first = "pair-0"
    i = 1
    while client.shard_for(collection, f"pair-{i}") == client.shard_for(collection, first):
        i += 1
    return first, f"pair-{i}"


def test_plain_reads_never_see_half_a_transaction(cluster, client, coll_name):
    a, b = two_shards(client, coll_name)
    coll = client.collection(coll_name)
    for doc_id in (a, b):
        coll.create({"$id": doc_id, "n": 0})
    stop = threading.Event()
    fractured: list[tuple[str, int, int]] = []
    reads = [0]

    def reader(first: str, second: str) -> None:
        with Client(cluster.address) as c:
            docs = c.collection(coll_name)
            while not stop.is_set():
                x = docs.get(first)["n"]
                y = docs.get(second)["n"]
                reads[0] += 1
                if y < x:
                    fractured.append((first, x, y))

    readers = [threading.Thread(target=reader, args=order) for order in ((a, b), (b, a))]
    for r in readers:
        r.start()
    try:
        for n in range(1, 151):
            with client.transaction() as tx:
                tx.update(coll_name, a, {"n": n})
                tx.update(coll_name, b, {"n": n})
    finally:
        stop.set()
        for r in readers:
            r.join(30)
    assert reads[0] > 100
    assert not fractured, fractured[:5]
    assert coll.get(a)["n"] == coll.get(b)["n"] == 150
