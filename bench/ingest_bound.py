#!/usr/bin/env python3
"""The least CPU an `insert_many` document can cost here, next to raw apsw batch inserts.

`bench/ingest.py` measures the real path. This script measures a lower bound for any path that
keeps the guarantees (a strict read of every document, system fields stamped, a change-log
record with CRC32C per document in the same SQLite transaction, two-phase commit over the
shards a batch touches, synchronous=FULL), by running only the work no design can skip, each
step with as little Python per document as Python allows, in one process, with no gRPC:

- client: encode a batch of documents as one JSON array (one C call);
- router: parse the batch (one C call), hash each document's `$id` (db4core.hashing), place it
  on a ring of 8 shards, encode each shard's part (one C call a part);
- node, for each part: the strict read of the whole part (db4core.documents: a key twice,
  NaN, escapes; the depth walk left out), field names checked in SQL, one statement checking
  that no id is stored, the intents (the part's text) written and fsynced (prepare); then the
  rows and their change-log records inserted on the shard schema (its indexes and triggers),
  fsynced (commit), with stamping, encoding and CRC32C left out of the count.

It prints the CPU per document of each step and the rate two cores would reach if all of it
ran in parallel with no other cost, as a ratio to raw apsw inserting the same rows `batch` per
transaction on one core (the floor bench/ingest.py uses). Everything the real path adds (gRPC
and protobuf on three hops, asyncio, the stored documents sent back, one thread per shard)
comes on top of this bound.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import apsw
import crc32c

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import SIZES, doc, raw_rate  # noqa: E402

from db4core import documents  # noqa: E402
from db4core.hashing import to_signed, token_for, vnode_token  # noqa: E402
from db4node.shard import Shard  # noqa: E402

SHARDS = 8
VNODES = 64
NAMES_SQL = ("SELECT 1 FROM json_each(?1) AS d, json_each(d.value) AS f WHERE f.key = '' OR "
             "(f.key GLOB '$*' AND f.key NOT IN ('$id', '$type', '$version', '$createdAt', "
             "'$updatedAt')) LIMIT 1")

def ring() -> tuple[list[int], list[int]]:
    points = sorted((vnode_token(f"s{s}", i), s) for s in range(SHARDS) for i in range(VNODES))
    return [p for p, _ in points], [s for _, s in points]


class Clock:
    """CPU seconds (this process, all threads) by step."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._step = ""
        self._at = 0.0

    def step(self, name: str) -> None:
        now = time.process_time()
        if self._step:
            self.spent[self._step] += now - self._at
        self._step, self._at = name, now


def crc_of(lsn: int, txid: str, collection: str, doc_id: str, after: str, ts: int,
           participants: str, token: int) -> int:
    """The change log's CRC32C (changelog.checksum) of an insert record."""
    return crc32c.crc32c("\x00".join((str(lsn), txid, "insert", collection, doc_id, "", after,
                                      str(ts), participants, f"t{token}")).encode())


def node_part(conn: apsw.Connection, txid: str, text: str, lsn: int, clock: Clock) -> int:
    """Prepare and commit one shard's part ([[token, document], ...]); returns the last LSN."""
    clock.step("node: strict read")
    # db4core.documents' strict read (a key twice, NaN, escapes) of the whole part at once:
    # cheaper than SQLite's RFC 8259 check with json_tree finding a key twice (measured).
    documents.decode(text, "documents")
    clock.step("node: names, existence, intents (prepare)")
    now = int(time.time() * 1000)
    with conn:
        if conn.execute(NAMES_SQL, (text,)).fetchone() is not None:
            raise ValueError("a field name is reserved")
        taken = conn.execute(
            "SELECT 1 FROM docs WHERE collection = 'c' AND id IN "
            "(SELECT value ->> '$[1].\"$id\"' FROM json_each(?)) LIMIT 1", (text,)).fetchone()
        if taken is not None:
            raise ValueError("an id is stored")
        conn.execute("INSERT INTO txn_prepared VALUES (?, '[]', ?, 60000, ?)", (txid, now, text))
    # The rows and change-log records are built off the clock (stamping, encoding, CRC32C
    # left out): the commit step is what SQLite alone costs on the shard schema.
    clock.step("")
    parts = json.dumps(["s0", "s1"])
    rows, records = [], []
    for k, (token, d) in enumerate(json.loads(text), lsn + 1):
        body = documents.compact_json(documents.stamp(d, d["$id"], 1, now, now))
        rows.append(("c", d["$id"], token, 1, body))
        records.append((k, txid, "insert", "c", d["$id"], None, body, now,
                        crc_of(k, txid, "c", d["$id"], body, now, parts, token), parts, token))
    clock.step("node: rows and change log (commit)")
    with conn:
        conn.executemany("INSERT INTO docs(collection, id, token, version, body) "
                         "VALUES (?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO changes(lsn, txid, op, collection, id, before, after, ts, "
                         "crc, participants, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         records)
        conn.execute("DELETE FROM txn_prepared WHERE txid = ?", (txid,))
    return lsn + len(rows)


def bound(tmp: Path, docs: list[dict], batch: int) -> tuple[dict[str, float], int]:
    """CPU per document of each step of the least path; the rows it stored."""
    points, owners = ring()
    shards = [Shard(f"s{s}", str(tmp / f"bound-{batch}-s{s}.db")) for s in range(SHARDS)]
    lsns = [0] * SHARDS
    clock = Clock()
    for k in range(0, len(docs), batch):
        clock.step("client: encode the batch")
        text = documents.compact_json(docs[k:k + batch])
        clock.step("router: parse, hash, place, encode parts")
        by_shard: dict[int, list] = defaultdict(list)
        for d in json.loads(text):
            token = token_for(d["$id"])
            at = bisect.bisect_left(points, token)
            by_shard[owners[at % len(points)]].append([to_signed(token), d])
        texts = {s: documents.compact_json(part) for s, part in by_shard.items()}
        for s, part_text in texts.items():
            lsns[s] = node_part(shards[s].conn, f"tx{k}", part_text, lsns[s], clock)
    clock.step("")
    stored = sum(shard.conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
                 for shard in shards)
    logged = sum(shard.conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
                 for shard in shards)
    assert stored == logged == len(docs), (stored, logged, len(docs))
    for shard in shards:
        shard.close()
    return {name: spent / len(docs) * 1e6 for name, spent in clock.spent.items()}, stored


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=30_000, help="documents of ~200 B")
    ap.add_argument("--big-docs", type=int, default=10_000, help="documents of ~4 KB")
    ap.add_argument("--batch", type=int, default=1_000)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"least CPU per document of insert_many, batches of {args.batch}, {SHARDS} shards, "
          f"{cores} cores; ratio to raw apsw batch inserts (target >= 0.3x)")
    with tempfile.TemporaryDirectory(prefix="db4-bound-") as tmpdir:
        tmp = Path(tmpdir)
        for size, n in (("200B", args.docs), ("4KB", args.big_docs)):
            docs = [doc(i, SIZES[size]) for i in range(n)]
            floor = raw_rate(tmp, docs, args.batch)
            (tmp / size).mkdir()
            steps, _ = bound(tmp / size, docs, args.batch)
            total = sum(steps.values())
            best = cores / total * 1e6
            print(f"{size}: raw apsw {floor:,.0f} rows/s ({1e6 / floor:.1f} us a row)")
            for name, us in steps.items():
                print(f"  {name:45s} {us:6.1f} us")
            print(f"  {'total':45s} {total:6.1f} us -> at most {best:,.0f} docs/s on {cores} "
                  f"cores = {best / floor:.2f}x raw apsw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
