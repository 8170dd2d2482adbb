"""Splits and moves with real processes: the documents afterwards, each at its latest version,
none twice, on the shard the new ring names; the change log carries no copy traffic."""

from __future__ import annotations

import threading
import time

import pytest

from db4client import Client
from db4client.errors import Db4Error, FailedPreconditionError, TransactionAbortedError
from tests.support.cluster import Cluster
from tests.support.procs import Node

TENANTS = [f"t{i}" for i in range(30)]


def fill(client: Client, name: str, per_tenant: int = 20) -> dict[str, dict]:
    client.create_collection(name, partition_key="tenant")
    coll = client.collection(name)
    docs = [{"$id": f"{t}-{i}", "tenant": t, "n": i} for t in TENANTS for i in range(per_tenant)]
    coll.insert_many(docs)
    return {d["$id"]: d for d in docs}


def check_all(client: Client, name: str, want: dict[str, dict]) -> None:
    coll = client.collection(name)
    found = list(coll.iterate())
    ids = [d["$id"] for d in found]
    assert len(ids) == len(set(ids)), "a document appears twice"
    assert set(ids) == set(want)
    for d in found:
        assert {k: v for k, v in d.items() if not k.startswith("$")} == \
            {k: v for k, v in want[d["$id"]].items() if not k.startswith("$")}
    assert coll.count() == len(want)
    for doc_id in list(want)[::37]:
        assert coll.get(doc_id, partition=want[doc_id]["tenant"])["n"] == want[doc_id]["n"]


def test_a_split_moves_half_of_a_shard_and_loses_nothing(small_cluster):
    with Client(small_cluster.address, timeout=30) as client:
        want = fill(client, "orders")
        before = client.admin.status(with_stats=True)
        source = before["shards"][0]
        # A cursor opened before the split continues across it.
        first = client.collection("orders").find(sort=["n"], limit=100)
        seen: list[str] = []
        op = client.admin.split_shard(source["shard_id"],
                                      progress=lambda o: seen.append(o["state"]))
        assert op["state"] == "done", op
        assert seen[-1] == "done"
        after = client.admin.status(with_stats=True)
        assert after["epoch"] == before["epoch"] + 1
        shards = {s["shard_id"]: s for s in after["shards"]}
        target = shards[op["target_shard"]]
        assert target["node_id"] == source["node_id"]
        assert abs(shards[source["shard_id"]]["ring_share"] + target["ring_share"]
                   - source["ring_share"]) < 1e-9
        assert target["documents"] > 0
        assert shards[source["shard_id"]]["documents"] + target["documents"] == \
            source["documents"]
        check_all(client, "orders", want)
        paged = [d["$id"] for d in first.items]
        page = first
        while page.cursor:
            page = client.collection("orders").find(sort=["n"], limit=100, cursor=page.cursor)
            paged += [d["$id"] for d in page.items]
        assert sorted(paged) == sorted(want) and len(paged) == len(set(paged))
        # Writes after the split land on the new ring.
        coll = client.collection("orders")
        for t in TENANTS:
            coll.update(f"{t}-0", {"n": 100}, partition=t)
            want[f"{t}-0"]["n"] = 100
        check_all(client, "orders", want)
        # The copy wrote no change-log record: the feed still holds one per write.
        assert small_cluster.change_count("orders") == len(want) + len(TENANTS)


def test_a_move_puts_the_shard_on_another_node(small_cluster):
    with Client(small_cluster.address, timeout=30) as client:
        want = fill(client, "moved")
        status = client.admin.status()
        shard = status["shards"][0]
        other = next(n["node_id"] for n in status["nodes"] if n["node_id"] != shard["node_id"])
        op = client.admin.move_shard(shard["shard_id"], other)
        assert op["state"] == "done", op
        with pytest.raises(FailedPreconditionError, match="already finished; nothing was "
                                                          "aborted"):
            client.admin.abort_operation(op["op_id"])
        shards = {s["shard_id"]: s for s in client.admin.status(with_stats=True)["shards"]}
        assert shard["shard_id"] not in shards
        assert shards[op["target_shard"]]["node_id"] == other
        check_all(client, "moved", want)
        with pytest.raises(Db4Error, match="no shard"):
            client.admin.split_shard(shard["shard_id"])


def test_a_split_and_a_move_under_mixed_writes_keep_every_acknowledged_write(small_cluster):
    """Updates, creates and cross-shard transactions run through a split and then a move: every
    acknowledged one is there, transfers keep the total, and no client saw an error."""
    with Client(small_cluster.address, timeout=30) as client:
        want = fill(client, "busy", per_tenant=10)
        client.create_collection("acct", partition_key="tenant")
        accounts = [(t, f"acct-{t}") for t in TENANTS]
        client.collection("acct").insert_many(
            [{"$id": i, "tenant": t, "balance": 100} for t, i in accounts])
        stop = threading.Event()
        errors: list[BaseException] = []
        acked: dict[str, int] = {}
        created: dict[str, dict] = {}

        def updater(k: int) -> None:
            with Client(small_cluster.address, timeout=30) as c:
                wc = c.collection("busy")
                i = 0
                while not stop.is_set():
                    t = TENANTS[(i * 7 + k) % len(TENANTS)]
                    doc_id = f"{t}-{i % 10}"
                    try:
                        wc.update(doc_id, {"n": 1000 + i}, partition=t)
                        acked[doc_id] = 1000 + i
                    except Db4Error as err:  # noqa: PERF203
                        errors.append(err)
                    i += 1

        def creator() -> None:
            with Client(small_cluster.address, timeout=30) as c:
                wc = c.collection("busy")
                i = 0
                while not stop.is_set():
                    t = TENANTS[i % len(TENANTS)]
                    d = {"$id": f"{t}-new{i}", "tenant": t, "n": i}
                    try:
                        wc.create(d)
                        created[d["$id"]] = d
                    except Db4Error as err:  # noqa: PERF203
                        errors.append(err)
                    i += 1

        def transferrer() -> None:
            with Client(small_cluster.address, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    (ta, a), (tb, b) = accounts[i % len(accounts)], accounts[(i * 5 + 1)
                                                                           % len(accounts)]
                    i += 1
                    if a == b:
                        continue
                    try:
                        with c.transaction() as tx:
                            x = tx.get("acct", a, partition=ta)
                            y = tx.get("acct", b, partition=tb)
                            tx.update("acct", a, {"balance": x["balance"] - 1}, partition=ta)
                            tx.update("acct", b, {"balance": y["balance"] + 1}, partition=tb)
                    except TransactionAbortedError:
                        pass  # a conflict between two transfers: the retry is the caller's
                    except Db4Error as err:
                        errors.append(err)

        threads = [threading.Thread(target=updater, args=(k,)) for k in range(2)]
        threads += [threading.Thread(target=creator), threading.Thread(target=transferrer)]
        for th in threads:
            th.start()
        time.sleep(0.5)
        status = client.admin.status()
        shard = status["shards"][1]
        split = client.admin.split_shard(shard["shard_id"])
        other = next(n["node_id"] for n in status["nodes"] if n["node_id"] != shard["node_id"])
        move = client.admin.move_shard(split["target_shard"], other)
        time.sleep(0.5)
        stop.set()
        for th in threads:
            th.join()
        assert split["state"] == "done" and move["state"] == "done", (split, move)
        assert errors == []
        for doc_id, n in acked.items():
            want[doc_id]["n"] = n
        want.update(created)
        assert created
        check_all(client, "busy", want)
        balances = [d["balance"] for d in client.collection("acct").iterate()]
        assert len(balances) == len(accounts) and sum(balances) == 100 * len(accounts)
        assert balances != [100] * len(accounts)  # some transfers committed


def test_a_change_feed_sees_every_change_once_and_in_order_across_a_split_and_a_move(
        small_cluster):
    with Client(small_cluster.address, timeout=30) as client:
        fill(client, "feed", per_tenant=5)
        events: list = []
        opened = threading.Event()
        done = threading.Event()

        def subscriber() -> None:
            with Client(small_cluster.address, timeout=30) as c, \
                    c.subscribe(collections=["feed"], heartbeat_ms=100) as sub:
                opened.set()
                for event in sub:
                    events.append(event)
                    if done.is_set():
                        break

        reader = threading.Thread(target=subscriber)
        reader.start()
        assert opened.wait(10)
        stop = threading.Event()
        errors: list[BaseException] = []
        updates = [0]

        def writer() -> None:
            with Client(small_cluster.address, timeout=30) as c:
                wc = c.collection("feed")
                i = 0
                while not stop.is_set():
                    t = TENANTS[i % len(TENANTS)]
                    try:
                        wc.update(f"{t}-{i % 5}", {"n": i}, partition=t)
                        updates[0] += 1
                    except Db4Error as err:  # noqa: PERF203
                        errors.append(err)
                    i += 1

        th = threading.Thread(target=writer)
        th.start()
        status = client.admin.status()
        first = status["shards"][0]["shard_id"]
        split = client.admin.split_shard(first)
        other = next(n["node_id"] for n in status["nodes"]
                     if n["node_id"] != status["shards"][0]["node_id"])
        move = client.admin.move_shard(split["target_shard"], other)
        time.sleep(0.5)
        stop.set()
        th.join()
        assert split["state"] == "done" and move["state"] == "done", (split, move)
        assert errors == []
        expected = len(TENANTS) * 5 + updates[0]
        deadline = time.monotonic() + 20
        while len(events) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        done.set()
        client.collection("feed").update(f"{TENANTS[0]}-0", {"n": -1}, partition=TENANTS[0])
        reader.join(10)
        got = events[:expected]
        assert len(got) == expected
        per_doc: dict[str, list[int]] = {}
        for e in got:
            per_doc.setdefault(e.id, []).append(e.version)
        for doc_id, versions in per_doc.items():
            assert versions == list(range(1, len(versions) + 1)), (doc_id, versions)
        # A token from before the split resumes across the split and the move: the rest of
        # the changes, each once.
        cut = len(TENANTS) * 5 + 3
        wanted = {(e.id, e.version) for e in got[cut:]}
        rest: list[tuple[str, int]] = []
        with client.subscribe(collections=["feed"], from_token=got[cut - 1].token,
                              heartbeat_ms=100) as again:
            for e in again:  # the poke below may come in between: one more event at most
                rest.append((e.id, e.version))
                if wanted <= set(rest) or len(rest) > len(wanted) + 1:
                    break
        assert wanted <= set(rest) and len(rest) == len(set(rest))
        assert not {(e.id, e.version) for e in got[:cut]} & set(rest)
        final = {d["$id"]: d["$version"] for d in client.collection("feed").iterate()}
        assert {d: v[-1] for d, v in per_doc.items()} == \
            {**final, f"{TENANTS[0]}-0": final[f"{TENANTS[0]}-0"] - 1}


def test_a_joined_node_gets_shards_by_a_rebalance_and_a_drain_empties_a_node(tmp_path):
    c = Cluster(tmp_path, nodes=2, shards=4)
    try:
        c.start()
        with Client(c.address, timeout=60) as client:
            want = fill(client, "spread", per_tenant=5)
            joined = Node("n3", c.root, c.etcd.url)
            c.nodes.append(joined)
            joined.start().wait_ready()
            before = client.admin.status()
            plan = client.admin.rebalance(dry_run=True)
            assert plan["plan_id"] is None and plan["moves"] and plan["state"] == "planned"
            assert {m["node_id"] for m in plan["moves"]} >= {"n3"}
            assert client.admin.status()["epoch"] == before["epoch"]  # nothing moved
            done = client.admin.rebalance()
            assert done["state"] == "done"
            assert [m["result"] for m in done["moves"]] == ["done"] * len(done["moves"])
            placed = {s["node_id"] for s in client.admin.status()["shards"]}
            assert "n3" in placed
            check_all(client, "spread", want)
            dry = client.admin.drain_node("n1", dry_run=True)
            assert dry["state"] == "planned" and dry["moves"], dry
            assert all(m["result"] == "pending" and m["op_id"] is None for m in dry["moves"])
            drained = client.admin.drain_node("n1")
            assert drained["state"] == "done", drained
            shards = client.admin.status()["shards"]
            assert shards and all(s["node_id"] != "n1" for s in shards)
            check_all(client, "spread", want)
    finally:
        c.stop()


def auto_splitting(tmp_path, monkeypatch, **env: str) -> Cluster:
    """A 2-node, 2-shard cluster whose nodes report load every half second and whose leader
    splits hot shards; `env`: the hot limits (DB4_* settings)."""
    for name, value in {"DB4_LOAD_REPORT_SECONDS": "0.5", "DB4_AUTO_SPLIT": "true",
                        **env}.items():
        monkeypatch.setenv(name, value)
    return Cluster(tmp_path, nodes=2, shards=2)


def test_auto_split_splits_a_shard_over_its_size_limit(tmp_path, monkeypatch):
    c = auto_splitting(tmp_path, monkeypatch, DB4_HOT_MAX_DOCUMENTS="150")
    try:
        c.start()
        with Client(c.address, timeout=30) as client:
            want = fill(client, "grow", per_tenant=12)  # 360 documents on 2 shards
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                shards = client.admin.status(with_stats=True)["shards"]
                if len(shards) > 2 and not client.admin.operations():
                    break
                time.sleep(0.5)
            ops = client.admin.operations(all=True)
            assert ops and all(o["op_id"].startswith("auto-") for o in ops), ops
            assert any(o["state"] == "done" for o in ops), ops
            assert len(client.admin.status()["shards"]) > 2
            check_all(client, "grow", want)
    finally:
        c.stop()


def test_auto_split_reports_a_shard_hot_from_one_key_and_does_not_split_it(tmp_path,
                                                                            monkeypatch):
    """One partition key carries all of a hot shard's load: a split cannot help, so the mark
    says why and the leader plans no operation, round after round."""
    c = auto_splitting(tmp_path, monkeypatch, DB4_HOT_SHARD_THRESHOLD="40",
                       DB4_HOT_WINDOW_SECONDS="1")
    try:
        c.start()
        with Client(c.address, timeout=30) as client:
            client.create_collection("heat", partition_key="tenant")
            coll = client.collection("heat")
            coll.insert_many([{"$id": f"b{i}", "tenant": "blaze"} for i in range(10)])
            hot = client.shard_for("heat", "blaze")

            def mark() -> dict | None:
                shards = client.admin.status()["shards"]
                return next(s for s in shards if s["shard_id"] == hot)["hot"]

            deadline = time.monotonic() + 30
            marked_at = None
            # Marked, then kept hot for 5 s more: the leader's rounds run every 2 s, and each
            # one that finds the mark may split (CONTROLLER_INTERVAL_S).
            while time.monotonic() < deadline:
                for i in range(10):  # far over 40 ops/s, all on one partition key
                    coll.get(f"b{i}", partition="blaze")
                m = mark()
                if m is not None:
                    assert "one partition key" in m["cannot_split"], m
                    marked_at = marked_at or time.monotonic()
                if marked_at and time.monotonic() - marked_at > 5:
                    break
            assert marked_at is not None, "the shard was never marked hot"
            assert mark() is not None
            assert client.admin.operations(all=True) == []
            assert len(client.admin.status()["shards"]) == 2
    finally:
        c.stop()


def first_event_after_write(client: Client, coll, doc_id: str, **start) -> tuple[str, str]:
    """Open a feed, write one document once the stream is open (its first heartbeat), and
    answer the id of the first event and the token after it."""
    with client.subscribe(**start) as sub:
        sub.on_heartbeat = lambda token: coll.upsert({"$id": doc_id})
        first = next(sub)
        return first.id, first.token


def test_change_feeds_go_on_after_a_drained_node_is_stopped(tmp_path):
    """A drained node still hosts the shards its moves left without tokens (their logs end at
    the move's fence). Once it is stopped for good, a feed that does not need those logs (from
    "now", or from a token past their fences) must not need the node either."""
    c = Cluster(tmp_path, nodes=2, shards=4)
    try:
        c.start()
        with Client(c.address, timeout=30) as client:
            coll = client.collection("feed")
            for i in range(40):
                coll.create({"$id": f"before-{i}"})
            assert client.admin.drain_node("n1")["state"] == "done"
            got, token = first_event_after_write(client, coll, "marker", start="now")
            assert got == "marker"
            next(n for n in c.nodes if n.node_id == "n1").stop()
            assert first_event_after_write(client, coll, "after-now", start="now")[0] \
                == "after-now"
            # from the marker's token: the next change is the one made after it, on n2
            assert first_event_after_write(client, coll, "after-token", from_token=token)[0] \
                == "after-now"
    finally:
        c.stop()


def test_status_with_stats_answers_while_a_node_is_down(tmp_path):
    c = Cluster(tmp_path, nodes=2, shards=2)
    try:
        c.start()
        with Client(c.address, timeout=30) as client:
            coll = client.collection("st")
            for i in range(10):
                coll.create({"$id": f"d{i}"})
            next(n for n in c.nodes if n.node_id == "n1").stop(graceful=False)
            status = client.admin.status(with_stats=True)
            by_node = {s["node_id"] for s in status["shards"]}
            assert by_node == {"n1", "n2"}, status
            up = [s for s in status["shards"] if s["node_id"] == "n2"]
            assert all(s["documents"] is not None for s in up), status
    finally:
        c.stop()


def _difference(now, before) -> str:
    """What a read answered against what it answered before, briefly."""
    if isinstance(now, int):
        return f"{now} instead of {before}"
    if None in now:
        return f"{now.count(None)} of {len(now)} not found"
    extra = [x for x in now if x not in before]
    missing = [x for x in before if x not in now]
    return f"{len(now)} items instead of {len(before)}: extra {extra[:3]}, missing {missing[:3]}"


def test_searches_finds_and_counts_through_a_split_and_a_move_answer_as_before(small_cluster):
    """Reads of the whole collection (search, iterate, count, and get without the partition
    value) running while a shard splits, another moves and a new one splits again: the search
    hits and scores, iterated ids, counts and gets answer what they answered before, and none
    fails (a node that closes a shard under a running read answers UNAVAILABLE, which the
    router asks again). Three defects made them differ: the router asked the shards it had
    planned again at the new epoch, missing what a split or a move had put on a new shard (a
    count of 600 documents answered 420); a node checked a read's epoch only before the read,
    so a read at the old epoch could see a shard its cleanup had emptied meanwhile (a count of
    150 answered 120); and a later round of a page (or a search) asked a shard at the epoch
    the router's view had moved to meanwhile, where a shard that split answers for half its
    rows (an iterate missed a block of ids, about once in 77 runs)."""
    words = ["amber", "basalt", "cobalt", "dune", "ember", "fjord"]
    with Client(small_cluster.address, timeout=60) as client:
        client.create_collection("notes", partition_key="tenant")
        coll = client.collection("notes")
        coll.insert_many([
            {"$id": f"{t}-{i}", "tenant": t, "n": i,
             "text": " ".join(words[(i + k) % len(words)] for k in range(1 + i % 5))}
            for t in TENANTS for i in range(20)])
        client.create_search_index("notes_text", "notes", {"text": 1.0})

        def answers() -> tuple:
            found = [(h.id, h.score, h.snippet) for h in
                     client.search("notes_text", "amber OR dune", limit=50).hits]
            phrase = [(h.id, h.score) for h in client.search("notes_text", '"basalt cobalt"',
                                                             limit=20).hits]
            ids = sorted(d["$id"] for d in coll.iterate(page_size=200))
            by_id = [(coll.get(f"{t}-7") or {}).get("n")  # no partition: every shard
                     for t in TENANTS[::3]]
            return found, phrase, ids, coll.count(), coll.count({"n": {"$lt": 5}}), by_id

        before = answers()
        assert len(before[0]) == 50 and before[1] and len(before[2]) == 600
        differ: list[str] = []
        failures: list[BaseException] = []
        stop = threading.Event()
        rounds = [0]

        def read_all() -> None:
            while not stop.is_set():
                try:
                    now = answers()
                except BaseException as err:  # noqa: BLE001 - every failure is reported
                    failures.append(err)
                    return
                if now != before:
                    differ.append(f"round {rounds[0]}: " + ", ".join(
                        f"{name} {_difference(a, b)}" for name, a, b in zip(
                            ("search", "phrase", "iterate", "count", "count n<5", "get"),
                            now, before, strict=True) if a != b))
                rounds[0] += 1

        readers = [threading.Thread(target=read_all) for _ in range(3)]
        for reader in readers:
            reader.start()
        try:
            status = client.admin.status()
            first, second = status["shards"][0], status["shards"][1]
            split = client.admin.split_shard(first["shard_id"])
            assert split["state"] == "done"
            other = next(n["node_id"] for n in status["nodes"]
                         if n["node_id"] != second["node_id"])
            assert client.admin.move_shard(second["shard_id"], other)["state"] == "done"
            assert client.admin.split_shard(split["target_shard"])["state"] == "done"
            time.sleep(1.0)  # reads after the last cleanup too
        finally:
            stop.set()
            for reader in readers:
                reader.join(60)
        assert not failures, failures
        assert not differ, differ
        assert rounds[0] >= 6, rounds
        assert answers() == before
