"""Transactions through the SDK against a real cluster: cross-shard commits are atomic and read
their own writes, an exception or a timeout writes nothing, nested parts undo alone,
run_transaction retries a conflict, and serializable isolation stops write skew that read
committed lets through."""

from __future__ import annotations

import itertools
import time

import pytest

from db4client import errors


def ids_on_two_shards(client, coll: str, prefix: str) -> tuple[str, str]:
    """Two document ids whose documents live on different shards."""
    first = f"{prefix}0"
    shard = client.shard_for(coll, first)
    for i in itertools.count(1):
        other = f"{prefix}{i}"
        if client.shard_for(coll, other) != shard:
            return first, other
    raise AssertionError("unreachable")


def test_cross_shard_transfer_commits_atomically_and_reads_its_own_writes(client, coll_name):
    accounts = client.collection(coll_name)
    a, b = ids_on_two_shards(client, coll_name, "acct")
    accounts.create({"$id": a, "balance": 100})
    accounts.create({"$id": b, "balance": 0})
    with client.transaction() as tx:
        src, dst = tx.get(coll_name, a), tx.get(coll_name, b)
        tx.update(coll_name, a, {"balance": src["balance"] - 30})
        tx.update(coll_name, b, {"balance": dst["balance"] + 30})
        entry = tx.create(coll_name, {"kind": "ledger", "from": a, "to": b, "amount": 30})
        assert tx.get(coll_name, a)["balance"] == 70 and tx.get(coll_name, b)["balance"] == 30
        assert tx.get(coll_name, entry)["amount"] == 30
        assert accounts.get(a)["balance"] == 100  # nothing is visible before commit
    assert tx.results.shards >= 2
    assert [d["$id"] for d in tx.results.documents] == [a, b, entry]
    assert accounts.get(a)["balance"] == 70 and accounts.get(b)["balance"] == 30
    assert accounts.get(entry)["to"] == b
    assert tx.results.documents[0]["$version"] == accounts.get(a)["$version"] == 2


def test_one_failing_write_leaves_every_shard_untouched(client, coll_name):
    accounts = client.collection(coll_name)
    a, b = ids_on_two_shards(client, coll_name, "x")
    accounts.create({"$id": a, "balance": 10})
    accounts.create({"$id": b, "balance": 10})
    with pytest.raises(errors.AlreadyExistsError), client.transaction() as tx:
        tx.update(coll_name, a, {"balance": 0})
        tx.create(coll_name, {"$id": b, "balance": 99})  # taken: the whole commit fails
    assert tx.state == "failed"
    assert accounts.get(a)["balance"] == 10 and accounts.get(a)["$version"] == 1
    assert accounts.get(b)["balance"] == 10


def test_an_exception_inside_writes_nothing(client, coll_name):
    accounts = client.collection(coll_name)
    accounts.create({"$id": "keep", "v": 1})
    with pytest.raises(ZeroDivisionError), client.transaction() as tx:
        tx.update(coll_name, "keep", {"v": 2})
        tx.create(coll_name, {"$id": "never", "v": 1})
        raise ZeroDivisionError("fail inside")
    assert accounts.get("keep")["v"] == 1 and accounts.get("never") is None


def test_nested_failure_undoes_only_the_nested_writes(client, coll_name):
    docs = client.collection(coll_name)
    with client.transaction() as tx:
        tx.create(coll_name, {"$id": "outer", "v": 1})
        with pytest.raises(RuntimeError), tx.nested():
            tx.create(coll_name, {"$id": "inner", "v": 1})
            tx.update(coll_name, "outer", {"v": 99})
            raise RuntimeError("undo the inner part")
        tx.savepoint("s")
        tx.create(coll_name, {"$id": "dropped", "v": 1})
        tx.rollback_to("s")
        with tx.nested():
            tx.create(coll_name, {"$id": "kept", "v": 2})
    assert docs.get("outer")["v"] == 1 and docs.get("kept")["v"] == 2
    assert docs.get("inner") is None and docs.get("dropped") is None


def test_past_its_timeout_nothing_is_written(client, coll_name):
    docs = client.collection(coll_name)
    with pytest.raises(errors.TransactionAbortedError, match="timeout"), \
            client.transaction(timeout=0.3) as tx:
        tx.create(coll_name, {"$id": "late", "v": 1})
        time.sleep(0.4)
    assert docs.get("late") is None


def test_run_transaction_retries_after_a_conflicting_write(client, coll_name):
    docs = client.collection(coll_name)
    a, b = ids_on_two_shards(client, coll_name, "r")
    docs.create({"$id": a, "n": 0})
    docs.create({"$id": b, "n": 0})

    def bump_both(tx):
        x, y = tx.get(coll_name, a), tx.get(coll_name, b)
        if x["n"] == 0:  # first attempt only: another writer gets in after our read
            docs.update(a, {"n": 10})
        tx.update(coll_name, a, {"n": x["n"] + 1})
        tx.update(coll_name, b, {"n": y["n"] + 1})
        return x["n"]

    result = client.run_transaction(bump_both, initial_backoff_ms=1)
    assert result.attempts == 2 and result.value == 10
    assert docs.get(a)["n"] == 11 and docs.get(b)["n"] == 1


def write_skew(client, coll: str, isolation: str) -> list[BaseException | None]:
    """Two doctors on call on different shards; each transaction reads both and takes its own
    doctor off call when the other is still on. Interleaved: both read before either commits."""
    docs = client.collection(coll)
    d1, d2 = ids_on_two_shards(client, coll, "doc")
    docs.create({"$id": d1, "on_call": True})
    docs.create({"$id": d2, "on_call": True})
    t1, t2 = client.transaction(isolation), client.transaction(isolation)
    for tx, mine, other in ((t1, d1, d2), (t2, d2, d1)):
        if tx.get(coll, other)["on_call"] and tx.get(coll, mine)["on_call"]:
            tx.update(coll, mine, {"on_call": False})
    outcomes: list[BaseException | None] = []
    for tx in (t1, t2):
        try:
            tx.commit()
            outcomes.append(None)
        except errors.Db4Error as err:
            outcomes.append(err)
    on_call = [docs.get(d)["on_call"] for d in (d1, d2)]
    return [*outcomes, *on_call]


def test_write_skew_is_stopped_under_serializable(client, coll_name):
    first, second, on1, on2 = write_skew(client, coll_name, "serializable")
    assert first is None and isinstance(second, errors.ConflictError)
    assert (on1, on2) == (False, True)  # one doctor stays on call


def test_write_skew_goes_through_under_read_committed(client, coll_name):
    first, second, on1, on2 = write_skew(client, coll_name, "read_committed")
    assert first is None and second is None
    assert (on1, on2) == (False, False)  # the anomaly read committed allows


def test_a_read_only_transaction_fails_when_what_it_read_moved(client, coll_name):
    docs = client.collection(coll_name)
    a, b = ids_on_two_shards(client, coll_name, "ro")
    docs.create({"$id": a, "v": 1})
    tx = client.transaction()
    tx.get(coll_name, a)
    tx.get(coll_name, b)  # absent: version 0 is validated too
    docs.create({"$id": b, "v": 1})
    with pytest.raises(errors.ConflictError):
        tx.commit()


def test_async_transaction_commits_across_shards(cluster, coll_name):
    import asyncio

    from db4client import AsyncClient, Client

    with Client(cluster.address) as sync:
        a, b = ids_on_two_shards(sync, coll_name, "as")

    async def main():
        async with AsyncClient(cluster.address) as client:
            docs = client.collection(coll_name)
            await docs.create({"$id": a, "n": 1})
            async with client.transaction() as tx:
                doc = await tx.get(coll_name, a)
                tx.update(coll_name, a, {"n": doc["n"] + 1})
                tx.create(coll_name, {"$id": b, "n": 5})
            assert (await docs.get(a))["n"] == 2 and (await docs.get(b))["n"] == 5

    asyncio.run(main())


def test_partitioned_collection_generated_ids_upsert_and_delete(client, coll_name):
    client.create_collection(coll_name, partition_key="tenant")
    docs = client.collection(coll_name)
    old = docs.create({"$id": "old", "tenant": "acme", "v": 1})
    with client.transaction() as tx:
        assert tx.get(coll_name, "old", partition="acme")["v"] == 1
        assert tx.get(coll_name, "old", partition="other") is None  # a boundary here too
        new_id = tx.create(coll_name, {"tenant": "globex", "v": 2})
        tx.upsert(coll_name, {"$id": "up", "tenant": "acme", "v": 3})
        tx.update(coll_name, "old", {"v": 4}, partition="acme",
                  expected_version=old["$version"])
        tx.delete(coll_name, "never-was", partition="acme")
    assert tx.results.found == [True, True, True, False]
    assert docs.get(new_id, partition="globex")["v"] == 2
    assert docs.get("up", partition="acme")["v"] == 3
    assert docs.get("old", partition="acme")["v"] == 4


def test_a_commit_whose_router_dies_is_unavailable_and_a_retry_loop_gets_through(
        cluster, client, coll_name):
    """The router dies after the first participant prepared: the SDK reports UNAVAILABLE (outcome
    unknown) without retrying; the participant's in-doubt timeout aborts the intents, and
    run_transaction on the same keys then commits."""
    from db4client import Client
    from tests.support.procs import Router

    docs = client.collection(coll_name)
    a, b = ids_on_two_shards(client, coll_name, "fp")
    docs.create({"$id": a, "n": 0})
    docs.create({"$id": b, "n": 0})
    doomed = Router(cluster.root, cluster.etcd.url, shards=cluster.shards,
                    min_nodes=len(cluster.nodes), name="router-dies",
                    env={"DB4_FAILPOINTS": "coordinator.after_some_prepares"})
    doomed.start().wait_ready()
    try:
        with Client(doomed.address) as dying, pytest.raises(errors.UnavailableError), \
                dying.transaction() as tx:
            tx.update(coll_name, a, {"n": 100})
            tx.update(coll_name, b, {"n": 100})
    finally:
        doomed.stop(graceful=False)

    def bump(tx):
        tx.update(coll_name, a, {"n": 1})
        tx.update(coll_name, b, {"n": 1})

    # One shard still holds the dead commit's intents.
    with pytest.raises(errors.LockedError), client.transaction() as tx:
        bump(tx)
    result = client.run_transaction(bump, max_retries=30, initial_backoff_ms=100)
    assert result.attempts > 1  # LockedError until the participant gave up on the dead commit
    assert docs.get(a)["n"] == 1 and docs.get(b)["n"] == 1
