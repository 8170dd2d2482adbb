"""Regression: create_collection racing a collection's first implicit write stranded documents.

Both calls used to succeed: the write created the collection partitioned by `$id`, then
create_collection, finding it empty, switched it to `tenant` while the document was still on
its way, so the document sat on the shard of its `$id` in a collection partitioned by tenant
(unreadable by partition, refused by update). Now creation is one create-only etcd write whose
options every later write obeys, and the loser of the race gets FailedPreconditionError when
its options differ.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from db4client import Client, errors
from tests.support.procs import Router

RACES = 100


@pytest.fixture(scope="module")
def second_router(cluster):
    """Another router on the shared cluster (its own process, stopped after the module)."""
    router = Router(cluster.root, cluster.etcd.url, shards=cluster.shards,
                    min_nodes=len(cluster.nodes), name=f"router-race{os.getpid()}")
    try:
        yield router.start().wait_ready()
    finally:
        router.stop()


def race_once(admin: Client, writer: Client, name: str, pool: ThreadPoolExecutor):
    """create_collection(tenant) on `admin` and the first write on `writer`, released together.
    Returns (what create_collection returned or raised, the written document)."""
    gate = threading.Barrier(2)

    def create_collection():
        gate.wait()
        try:
            return admin.create_collection(name, partition_key="tenant")
        except errors.Db4Error as err:
            return err

    def first_write():
        gate.wait()
        return writer.collection(name).create({"$id": "d1", "tenant": "acme", "n": 1})

    created, written = pool.submit(create_collection), pool.submit(first_write)
    return created.result(30), written.result(30)


def check_race(client: Client, name: str, created, doc: dict) -> str:
    """The collection has one partition key, the loser was told, the document obeys it."""
    pk = client.get_collection(name)["partition_key"]
    coll = client.collection(name)
    if isinstance(created, errors.Db4Error):
        assert isinstance(created, errors.FailedPreconditionError), repr(created)
        assert pk == "$id" and "partition" in str(created), (pk, str(created))
        partition = None
    else:
        assert created["partition_key"] == pk == "tenant", (created, pk)
        partition = "acme"
    # Readable and updatable through the options that won: nothing stranded.
    assert coll.get("d1", partition=partition) == doc, f"{name}: document stranded under {pk}"
    assert coll.update("d1", {"n": 2}, partition=partition)["n"] == 2
    return pk


@pytest.mark.parametrize("routers", ["one_router", "two_routers"])
def test_create_collection_races_first_write(client, cluster, coll_name, routers, request):
    writer_address = cluster.address
    if routers == "two_routers":
        writer_address = request.getfixturevalue("second_router").address
    winners: dict[str, int] = {}
    with Client(writer_address) as writer, ThreadPoolExecutor(2) as pool:
        for i in range(RACES):
            name = f"{coll_name}{i}"
            created, doc = race_once(client, writer, name, pool)
            pk = check_race(client, name, created, doc)
            check_race(writer, name, created, coll_doc(writer, name, pk))
            winners[pk] = winners.get(pk, 0) + 1
    print(f"{routers}: partition key that won each of {RACES} races: {winners}")


def coll_doc(client: Client, name: str, pk: str) -> dict:
    """The document as stored now (after the first check's update)."""
    doc = client.collection(name).get("d1", partition="acme" if pk == "tenant" else None)
    assert doc is not None
    return doc


def test_create_collection_after_first_write_names_the_options(client, coll_name):
    client.collection(coll_name).create({"$id": "x", "tenant": "acme"})
    client.collection(coll_name).delete("x")
    with pytest.raises(errors.FailedPreconditionError) as info:
        client.create_collection(coll_name, partition_key="tenant")
    assert "'$id'" in str(info.value) and "'tenant'" in str(info.value)
    assert client.create_collection(coll_name)["partition_key"] == "$id"  # same options: ok
