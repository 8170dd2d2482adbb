"""examples/materialized_view.py as a real process against a real cluster: killed with SIGKILL
mid-way, run again after more writes (updates that change `$type`, deletes), its counts per
`$type` equal what the cluster holds: every change counted exactly once."""

from __future__ import annotations

import collections
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.procs import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "materialized_view.py"
TYPES = ("User", "Order", "Invoice")


def view(cluster, db: Path, coll: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(EXAMPLE), "--router", cluster.address,
                             "--db", str(db), "--collection", coll, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: n for t, n in conn.execute("SELECT type, n FROM counts") if n}
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        conn.close()


def truth(client, coll: str) -> dict[str, int]:
    return dict(collections.Counter(d["$type"] for d in client.collection(coll).iterate()
                                    if "$type" in d))


def test_view_survives_kill_9_and_counts_every_change_once(cluster, client, coll_name,
                                                           tmp_path):
    docs = client.collection(coll_name)
    docs.insert_many([{"$id": f"d{i}", "$type": TYPES[i % 3], "i": i} for i in range(300)])
    docs.create({"$id": "untyped"})
    db = tmp_path / "view.sqlite"
    first = view(cluster, db, coll_name)
    try:
        wait_until(lambda: sum(counts(db).values()) >= 20, 30, "the view to count some")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    partial = sum(counts(db).values())
    assert 20 <= partial < 300, "killed too late to show a resume"
    for i in range(0, 60, 2):
        docs.update(f"d{i}", {"$type": "Archived"})
    for i in range(1, 60, 4):
        docs.delete(f"d{i}")
    docs.update("untyped", {"$type": "User"})
    docs.insert_many([{"$id": f"e{i}", "$type": "Order"} for i in range(20)])
    second = view(cluster, db, coll_name, "--until-idle", "1.5")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    expected = truth(client, coll_name)
    assert expected["Archived"] == 30 and sum(expected.values()) == 301 - 15 + 20
    assert counts(db) == expected
    again = view(cluster, db, coll_name, "--until-idle", "1")  # nothing new: nothing changes
    assert again.wait(60) == 0
    assert counts(db) == expected
