"""A batch spanning shards is wholly present or wholly absent after kill -9 mid-batch.

insert_many of 5000 documents over 8 shards commits through two-phase commit. Killing the router
or a node while it runs leaves, once the in-doubt transactions are resolved, either every
document or none, and the change log holds records for exactly the documents present (a failed
batch leaves no insert/delete pairs).
"""

from __future__ import annotations

import threading
import time

import pytest

from db4client import Client, errors

DOCS = 5000
SETTLE_S = 5.0


def batch(tag: str) -> list[dict]:
    return [{"$id": f"{tag}-{i}", "i": i, "pad": "x" * 100} for i in range(DOCS)]


def settled_count(client: Client, collection: str) -> int:
    """The collection's count once in-doubt transactions are resolved (two equal counts
    after the in-doubt timeout)."""
    deadline = time.monotonic() + SETTLE_S + 10
    time.sleep(SETTLE_S)
    last = None
    while time.monotonic() < deadline:
        try:
            n = client.collection(collection).count()
        except (errors.UnavailableError, errors.DeadlineExceededError):
            time.sleep(0.2)
            continue
        if n == last:
            return n
        last = n
        time.sleep(0.5)
    raise AssertionError(f"{collection} did not settle: last count {last}")


@pytest.mark.parametrize("victim,delay", [("router", 0.15), ("router", 0.4), ("n2", 0.15),
                                          ("n2", 0.4)])
def test_insert_many_killed_midway(fresh_cluster, victim, delay):
    c = fresh_cluster
    collection = f"bulk_{victim}_{int(delay * 100)}"
    outcome: list[object] = []

    def run() -> None:
        with Client(c.address, timeout=30) as client:
            try:
                outcome.append(len(client.collection(collection).insert_many(batch("d"))))
            except errors.Db4Error as err:
                outcome.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(delay)
    if victim == "router":
        c.restart_router(graceful=False)
    else:
        c.restart_node(victim, graceful=False)
    worker.join(60)
    assert outcome, "insert_many never returned"
    with Client(c.address, timeout=30) as client:
        present = settled_count(client, collection)
        assert present in (0, DOCS), f"{present} of {DOCS} documents after the kill"
        if outcome[0] == DOCS:
            assert present == DOCS  # acknowledged: nothing of it may be lost
        assert c.change_count(collection) == present  # no insert/delete pairs of a failed batch
