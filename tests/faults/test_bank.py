"""The bank: serializable transfers across shards while nodes and the router are killed -9.

10 accounts over at least 4 shards on 3 nodes. Eight clients transfer random amounts for 60 s
(longer, up to 150 s, until 10 audits have committed); each transfer also creates a ledger entry
(its own id) in the same transaction, so that a transfer whose commit answer was lost in a crash
(outcome unknown) can be told apart afterwards. A fault thread kills -9 and restarts a random
node or the router every few seconds. Auditors read every balance in one transaction
throughout.

Checked: every audit that committed sums to the total and sees no negative balance; at the end
the balances equal the replay of the ledger, every acknowledged transfer is in the ledger, and
every ledger entry is an acknowledged transfer or one whose outcome was unknown.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest

from db4client import Client, errors
from tests.support.cluster import Cluster

ACCOUNTS = 10
START_BALANCE = 1000
TOTAL = ACCOUNTS * START_BALANCE
RUN_S = 60.0
# The run goes on past RUN_S, up to MAX_RUN_S, until this many audits committed (a busy machine,
# or the suite's other worker, slows them: the check is that audits commit under the kills, not
# how many fit in a minute).
MIN_AUDITS = 10
MAX_RUN_S = 150.0
CLIENTS = 8
AUDITORS = 2
TRANSIENT = (errors.UnavailableError, errors.DeadlineExceededError,
             errors.TransactionAbortedError)


def account_ids(client: Client) -> list[str]:
    """Ten account ids spread over at least four shards."""
    ids, shards = [], set()
    i = 0
    while len(ids) < ACCOUNTS or len(shards) < 4:
        doc_id = f"acct-{i}"
        shard = client.shard_for("accounts", doc_id)
        if len(ids) < ACCOUNTS and (shard not in shards or len(shards) >= 4):
            ids.append(doc_id)
            shards.add(shard)
        elif len(ids) >= ACCOUNTS:
            raise AssertionError("could not spread the accounts over 4 shards")
        i += 1
    return ids


class Bank:
    def __init__(self, address: str, ids: list[str]) -> None:
        self.address = address
        self.ids = ids
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked: dict[str, tuple[str, str, int]] = {}
        self.unknown: set[str] = set()
        self.audits = 0
        self.audits_given_up = 0
        self.bad_audits: list[str] = []
        self.errors: list[BaseException] = []

    def transfers(self, seed: int) -> None:
        rng = random.Random(seed)
        with Client(self.address, timeout=10) as client:
            while not self.stop.is_set():
                src, dst = rng.sample(self.ids, 2)
                entry = uuid.uuid4().hex
                want = rng.randint(1, 50)

                def move(tx, src=src, dst=dst, entry=entry, want=want):
                    a = tx.get("accounts", src)["balance"]
                    b = tx.get("accounts", dst)["balance"]
                    amount = min(want, a)
                    tx.update("accounts", src, {"balance": a - amount})
                    tx.update("accounts", dst, {"balance": b + amount})
                    tx.create("ledger", {"$id": entry, "src": src, "dst": dst,
                                         "amount": amount})
                    return amount

                try:
                    amount = client.run_transaction(move, max_retries=20).value
                except TRANSIENT:
                    with self.lock:
                        self.unknown.add(entry)  # the commit may or may not have happened
                    time.sleep(0.05)
                    continue
                except BaseException as err:  # anything else is a defect: keep it
                    self.errors.append(err)
                    return
                with self.lock:
                    self.acked[entry] = (src, dst, amount)
                time.sleep(rng.uniform(0, 0.02))  # a busy bank, not a hot loop

    def audits_loop(self) -> None:
        with Client(self.address, timeout=10) as client:
            while not self.stop.is_set():
                def read_all(tx):
                    return [d["balance"] for d in tx.get_many("accounts", self.ids)]

                try:
                    balances = client.run_transaction(read_all, max_retries=50,
                                                      initial_backoff_ms=5).value
                except TRANSIENT:
                    with self.lock:
                        self.audits_given_up += 1
                    time.sleep(0.05)
                    continue
                except BaseException as err:
                    self.errors.append(err)
                    return
                with self.lock:
                    self.audits += 1
                    if sum(balances) != TOTAL or min(balances) < 0:
                        self.bad_audits.append(repr(balances))


def settled_balances(client: Client, ids: list[str]) -> dict[str, int]:
    """Every balance, read in one transaction once the last kill has been ridden out (the
    restarted process reachable again, transactions it left in doubt resolved)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.run_transaction(
                lambda tx: {i: tx.get("accounts", i)["balance"] for i in ids},
                max_retries=50).value
        except TRANSIENT:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def faults(cluster: Cluster, stop: threading.Event, seed: int) -> list[str]:
    rng = random.Random(seed)
    done = []
    while not stop.wait(rng.uniform(3.0, 5.0)):
        victim = rng.choice([n.node_id for n in cluster.nodes] + ["router"])
        if victim == "router":
            cluster.restart_router(graceful=False)
        else:
            cluster.restart_node(victim, graceful=False)
        done.append(victim)
    return done


@pytest.mark.slow
def test_bank_survives_kills(tmp_path):
    cluster = Cluster(tmp_path, nodes=3, shards=8)
    try:
        cluster.start()
        with Client(cluster.address, timeout=10) as client:
            ids = account_ids(client)
            for doc_id in ids:
                client.collection("accounts").create({"$id": doc_id, "balance": START_BALANCE})
            bank = Bank(cluster.address, ids)
            workers = [threading.Thread(target=bank.transfers, args=(i,)) for i in range(CLIENTS)]
            workers += [threading.Thread(target=bank.audits_loop) for _ in range(AUDITORS)]
            for w in workers:
                w.start()
            killed: list[str] = []
            fault_thread = threading.Thread(
                target=lambda: killed.extend(faults(cluster, bank.stop, 7)))
            fault_thread.start()
            started = time.monotonic()
            while (time.monotonic() - started < RUN_S
                   or (bank.audits < MIN_AUDITS and time.monotonic() - started < MAX_RUN_S)):
                time.sleep(0.5)
            bank.stop.set()
            fault_thread.join()
            for w in workers:
                w.join(60)
            assert not any(w.is_alive() for w in workers)
            assert not bank.errors, bank.errors[:3]
            print(f"bank: {len(bank.acked)} transfers acknowledged, {len(bank.unknown)} of "
                  f"unknown outcome, {bank.audits} audits ({bank.audits_given_up} given up), "
                  f"kills: {killed}")
            assert len(killed) >= 8, killed
            assert bank.audits >= MIN_AUDITS and not bank.bad_audits, (bank.audits,
                                                                   bank.bad_audits[:3])
            assert len(bank.acked) > 50

            final = settled_balances(client, ids)
            ledger = {d["$id"]: d for d in client.collection("ledger").iterate()}
            assert set(bank.acked) <= set(ledger)  # no acknowledged transfer lost
            assert set(ledger) <= set(bank.acked) | bank.unknown
            replay = dict.fromkeys(ids, START_BALANCE)
            for entry in ledger.values():
                replay[entry["src"]] -= entry["amount"]
                replay[entry["dst"]] += entry["amount"]
            assert final == replay
            assert sum(final.values()) == TOTAL and min(final.values()) >= 0
    finally:
        cluster.stop()
