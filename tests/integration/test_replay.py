"""Replay: after a mixed workload through the router, every shard's change log, applied from
LSN 1 (insert/update: the `after` document; delete: removal), rebuilds its documents table
exactly. The shard files are read read-only beside the running nodes, each in one snapshot."""

from __future__ import annotations

import grpc
import pytest

from db4client import errors
from db4node import changelog
from tests.integration.txn_support import (
    commit,
    expect_error,
    ids_on_distinct_shards,
    op,
    read,
    txid,
)
from tests.support.cluster import Cluster

Key = tuple[str, str]


def workload(client, raw, coll: str) -> str:
    """Creates, updates, deletes, replace, upsert, insert_many over shards, a committed
    cross-shard transaction, a conflicting one and one rolled back by a failing op; returns
    the committed cross-shard transaction's txid."""
    client.create_collection(coll)
    docs = client.collection(coll)
    made = docs.insert_many([{"$id": f"m{i}", "n": i} for i in range(24)])
    assert len(made) == 24
    one = docs.create({"name": "solo", "n": 0})
    docs.update(one["$id"], {"n": 1, "extra": True})
    docs.update("m1", {"n": None})  # removes a field
    docs.replace("m2", {"whole": "new"})
    docs.upsert({"$id": "m3", "n": 33})
    docs.upsert({"$id": "fresh", "n": -1})
    assert docs.delete("m4") and not docs.delete("m4")
    a, b, c = ids_on_distinct_shards(raw, coll, 3, prefix="acct")
    for doc_id in (a, b, c):
        docs.create({"$id": doc_id, "balance": 100})
    tid = txid()
    done = commit(raw, tid=tid, ops=[op("update", coll, a, {"balance": 70}),
                            op("update", coll, b, {"balance": 130}),
                            op("delete", coll, c),
                            op("create", coll, "ledger1", {"from": a, "to": b})])
    assert len(done.documents) == 4
    expect_error(grpc.StatusCode.ABORTED, commit, raw,
                 reads=[read(coll, a, 1)], ops=[op("update", coll, b, {"balance": 0})])
    expect_error(grpc.StatusCode.ALREADY_EXISTS, commit, raw,
                 ops=[op("update", coll, a, {"balance": 0}), op("create", coll, b, {"x": 1})])
    with pytest.raises(errors.ConflictError):
        docs.update(a, {"balance": 1}, expected_version=1)
    assert docs.get(a)["balance"] == 70 and docs.get(b)["balance"] == 130
    return tid


def replay(records: list[changelog.Change]) -> dict[Key, str]:
    out: dict[Key, str] = {}
    for c in records:
        if c.op == "delete":
            assert (c.collection, c.id) in out, f"delete of a document never written: {c}"
            del out[(c.collection, c.id)]
        else:
            assert c.after is not None
            out[(c.collection, c.id)] = c.after
    return out


def shard_state(path: str) -> tuple[list[changelog.Change], dict[Key, str]]:
    """The whole change log (CRC verified) and the documents, in one read snapshot."""
    import apsw

    conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        with conn:
            records = list(changelog.read(conn, 0, 1 << 40))
            docs = {(c, i): b for c, i, b in conn.execute("SELECT collection, id, body FROM docs")}
        return records, docs
    finally:
        conn.close()


def test_replaying_every_shard_log_rebuilds_its_documents(cluster: Cluster, client, raw,
                                                          coll_name):
    tid = workload(client, raw, coll_name)
    files = cluster.shard_files()
    assert len(files) == cluster.shards
    seen = set()
    cross: dict[str, tuple[str, ...] | None] = {}
    for path in files:
        records, docs = shard_state(path)
        assert [r.lsn for r in records] == list(range(1, len(records) + 1))  # from LSN 1
        assert replay(records) == docs, f"replay of {path} differs from its documents"
        seen |= {i for c, i in docs if c == coll_name}
        shard = path.rsplit("/", 1)[1][:-3]
        cross.update((shard, r.participants) for r in records if r.txid == tid)
    assert {"m0", "m3", "fresh", "ledger1"} <= seen and "m4" not in seen
    # The cross-shard commit's records name every shard it committed on, on each of them.
    assert len(cross) >= 3 and set(cross.values()) == {tuple(sorted(cross))}
