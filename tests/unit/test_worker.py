"""A shard's worker threads on a temporary file: deadlines, cancellation and the query ceiling
interrupt a running statement, and a point read never makes the event loop wait for a lock."""

from __future__ import annotations

import asyncio
import resource
import threading
import time

import apsw
import pytest

from db4core.errors import DeadlineExceededError, ResourceExhaustedError, UnavailableError
from db4core.hashing import token_for
from db4node.shard import Op, Shard, read_rows
from db4node.worker import ScatterPool, ShardWorker

# A statement that runs for as long as it is let: a recursive count to a billion.
ENDLESS = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1e9) "
           "SELECT count(*) FROM n")


def endless(conn: apsw.Connection) -> int:
    return conn.execute(ENDLESS).fetchone()[0]


@pytest.fixture
def worker(tmp_path):
    w = ShardWorker(Shard("s1", str(tmp_path / "s1.db")), query_ceiling_s=0.3)
    token = token_for("d1")
    asyncio.run(w.write(lambda s: s.write([Op("create", "c", "d1", token, b'{"a": 1}')]),
                        None, "seed"))
    yield w
    w.close()


def test_the_query_ceiling_interrupts_and_names_itself(worker):
    t = time.monotonic()
    with pytest.raises(ResourceExhaustedError, match="query ceiling of 0.3 s"):
        asyncio.run(worker.query(endless, None, "endless count"))
    assert time.monotonic() - t < 1.0


def test_a_deadline_interrupts_a_running_read(worker):
    t = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="deadline"):
        asyncio.run(worker.read(endless, time.monotonic() + 0.2, "endless read"))
    assert time.monotonic() - t < 1.0


def test_work_past_its_deadline_never_starts(worker):
    started = []
    with pytest.raises(DeadlineExceededError):
        asyncio.run(worker.write(lambda s: started.append(1), time.monotonic() - 1, "late"))
    assert started == []


def test_cancelling_the_caller_stops_the_statement(worker):
    async def go() -> float:
        task = asyncio.ensure_future(worker.read(endless, None, "endless read"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        t = time.monotonic()
        # the reader threads are free again: a point read on them answers at once
        rows = await worker.read(lambda c: read_rows(c, "c", ["d1"]), None, "read")
        assert rows[0] is not None
        return time.monotonic() - t

    assert asyncio.run(go()) < 0.5


def test_a_point_read_runs_inline_and_moves_to_a_thread_when_it_would_wait(worker):
    """A point read runs on the loop's own connection, which never waits for a lock: where
    SQLite answers SQLITE_BUSY (WAL recovery or reset under way) it is run again on a reader
    thread. The read here meets BUSY on the loop thread only, as such a read would."""
    loop_thread = threading.get_ident()
    ran_on = []

    def read(conn: apsw.Connection):
        ran_on.append(threading.get_ident())
        if threading.get_ident() == loop_thread and len(ran_on) > 1:
            raise apsw.BusyError("database is locked")
        return read_rows(conn, "c", ["d1"])

    async def go():
        first = await worker.point_read(read, None, "read")  # inline
        second = await worker.point_read(read, None, "read")  # BUSY inline, then a thread
        return first, second

    first, second = asyncio.run(go())
    assert first == second and first[0] is not None
    assert ran_on[0] == loop_thread and ran_on[1] == loop_thread and ran_on[2] != loop_thread
    loop_conn, _ = worker._reader(wait_for_locks=False)  # this thread ran the loop
    assert loop_conn.execute("PRAGMA query_only").fetchone()[0] == 1



def test_a_disk_that_refuses_writes_is_unavailable_naming_the_shard_not_a_bug(worker):
    """A write the file system refuses (here: past the process's file-size limit, EFBIG; a
    full disk is SQLITE_FULL, RESOURCE_EXHAUSTED) answers what is wrong with the machine,
    naming the shard, with nothing written; once the disk takes writes again, so does the
    shard."""
    big = b'{"pad": "' + b"x" * 600_000 + b'"}'

    def create(doc_id: str):
        op = Op("create", "c", doc_id, token_for(doc_id), big)
        return asyncio.run(worker.write(lambda s: s.write([op]), None, "write"))

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(UnavailableError, match="shard s1: its files could not be") as err:
            for i in range(4):  # the WAL passes 1 MiB on the second
                create(f"big{i}")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "disk" in err.value.message
    stored = worker.shard.read("c", [f"big{i}" for i in range(4)])
    failed_at = next(i for i, row in enumerate(stored) if row is None)
    assert all(row is None for row in stored[failed_at:])  # the failed write left nothing
    create("after")
    assert worker.shard.read("c", ["after"])[0] is not None


def test_a_scatter_read_of_a_closed_shard_is_unavailable_and_opens_no_connection(tmp_path):
    w = ShardWorker(Shard("s2", str(tmp_path / "s2.db")))
    pool = ScatterPool()
    try:
        w.close()
        with pytest.raises(UnavailableError, match="s2"):
            asyncio.run(pool.run([w], lambda conns: conns[0].execute("SELECT 1").fetchall(),
                                 None, "a scatter read"))
        assert w._reader_conns == []
    finally:
        pool.close()


def test_a_scatter_read_whose_shard_is_closed_meanwhile_is_unavailable_naming_it(tmp_path):
    """A shard moved away closes its connections while a scatter thread may be reading it
    (ScatterPool threads are shared by every shard, so close() does not wait for them)."""
    w = ShardWorker(Shard("s3", str(tmp_path / "s3.db")))
    asyncio.run(w.write(lambda s: s.write([Op("create", "c", f"d{i}", token_for(f"d{i}"),
                                               b'{"a": 1}') for i in range(200)]),
                        None, "seed"))
    pool = ScatterPool()
    reading, closed = threading.Event(), threading.Event()

    def scan(conns):
        for i, _ in enumerate(conns[0].execute("SELECT id FROM docs")):
            if i == 0:
                reading.set()
                closed.wait(10)

    async def run():
        task = asyncio.create_task(pool.run([w], scan, None, "a scatter read"))
        await asyncio.to_thread(reading.wait, 10)
        w.close()
        closed.set()
        return await task

    try:
        with pytest.raises(UnavailableError, match="s3"):
            asyncio.run(run())
    finally:
        closed.set()
        pool.close()


def test_work_on_a_closed_shard_or_queued_when_it_closes_is_unavailable(tmp_path):
    """A request that reaches a shard closed meanwhile (moved away, dropped), or whose work
    was still queued behind the writer when the shard closed, is UNAVAILABLE naming it (was:
    RuntimeError, INTERNAL; or the queued call cancelled, CANCELLED)."""
    w = ShardWorker(Shard("s4", str(tmp_path / "s4.db")))
    release = threading.Event()

    def blocked(_shard):
        release.wait(10)
        return "first"

    async def run():
        first = asyncio.create_task(w.write(blocked, None, "a slow write"))
        await asyncio.sleep(0.05)  # the writer thread holds the first
        queued = asyncio.create_task(w.write(lambda _s: "second", None, "a queued write"))
        await asyncio.sleep(0.05)
        closing = asyncio.create_task(asyncio.to_thread(w.close))
        await asyncio.sleep(0.1)  # close() cancelled the queued one and waits for the first
        release.set()
        await closing
        results = await asyncio.gather(first, queued, return_exceptions=True)
        later = []
        for call in (w.read, w.query):
            try:
                await call(lambda c: c.execute("SELECT 1").fetchall(), None, "a read")
            except UnavailableError as err:
                later.append(err)
        try:
            await w.write(lambda _s: 1, None, "a write")
        except UnavailableError as err:
            later.append(err)
        return results, later

    try:
        (first, queued), later = asyncio.run(run())
    finally:
        release.set()
    assert first == "first"
    assert isinstance(queued, UnavailableError) and "s4" in str(queued), repr(queued)
    assert len(later) == 3 and all("s4" in str(e) for e in later)
