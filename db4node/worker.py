"""SQLite work of one shard, on threads of the shard's own, bounded by deadlines.

The event loop serves gRPC for every shard of the node and keeps its etcd lease alive, so it must
never wait on SQLite: one slow query would otherwise stall every other shard and let the lease
lapse. Each shard gets one writer thread, which owns the shard's read-write connection (SQLite
allows one writer per file anyway), a few reader threads for point reads and a few low-priority
scanner threads for queries, each with a read-only connection of its own (WAL lets them run
beside the writer and see each committed write).

Every statement runs under a `Job`: the request's deadline, a cancel flag the loop sets when the
caller goes away, and for queries the node's ceiling. SQLite's progress handler checks the job
every few thousand virtual-machine steps and interrupts the statement once any of them is reached.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import apsw

from db4core.errors import (
    Db4Error,
    DeadlineExceededError,
    ResourceExhaustedError,
    UnavailableError,
)
from db4node import pragmas, search_query
from db4node.shard import Shard, WriteItem, Written

T = TypeVar("T")
log = logging.getLogger("db4.node.worker")

# SQLite virtual-machine steps between two looks at the job: ~1 ms of a plain scan here, so a
# statement stops within milliseconds of its limit. Each look takes the GIL; at 20,000 steps a
# scan took it often enough to push point reads on the node's other shards past 3x their idle
# p99 (tests/integration/test_node_isolation.py), at 100,000 it does not.
PROGRESS_STEPS = 100_000
READER_THREADS = 2
SCANNER_THREADS = 2
# Queries and counts may scan a whole collection; on a busy machine they must not take CPU from
# the point reads and writes of other shards, so their threads run at a lower priority (Linux
# lets a thread raise its own nice value: os.setpriority on its thread id).
SCANNER_NICE = 10
DEFAULT_QUERY_CEILING_S = 10.0
# Threads of the node's scatter pool: requests that read several shards (QueryMerged,
# CountShards) run each on one of them, their shards in turn; more wait for a free thread.
SCATTER_THREADS = 4
# Writes one group commit takes at most (Shard.write_group): more wait for the next group.
GROUP_MAX_DEFAULT = 256
GROUP_MAX = GROUP_MAX_DEFAULT


class CancelledByCaller(Exception):
    """The caller went away; nobody reads the answer (the loop raises CancelledError itself)."""


_STORAGE_LOGGED: dict[str, float] = {}  # shard -> when its last storage error was logged
STORAGE_LOG_EVERY_S = 60.0


def storage_error(shard_id: str, err: apsw.Error) -> Db4Error:
    """What a full disk (SQLITE_FULL) or an I/O error of the shard's files answers: not a bug
    (INTERNAL) but the machine's state, named, and logged once a minute per shard rather than
    with a traceback per request."""
    now = time.monotonic()
    if now - _STORAGE_LOGGED.get(shard_id, -STORAGE_LOG_EVERY_S) >= STORAGE_LOG_EVERY_S:
        _STORAGE_LOGGED[shard_id] = now
        log.error("shard %s: %s: %s (the next ones within %g s are not logged)", shard_id,
                  type(err).__name__, err, STORAGE_LOG_EVERY_S)
    if isinstance(err, apsw.FullError):
        return ResourceExhaustedError(
            f"shard {shard_id}: the disk holding its files is full; nothing was written "
            "(reads go on; writes fail until space is freed)")
    return UnavailableError(
        f"shard {shard_id}: its files could not be read or written ({err}); nothing was "
        "written (check the node's disk: space, file-size limits, hardware)")


@dataclass
class Job:
    """The limits of one unit of SQLite work."""

    what: str
    deadline: float | None = None  # time.monotonic() value; the request's deadline
    ceiling_s: float | None = None  # the node's ceiling for one query
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    stopped_by: str = ""

    def check(self) -> bool:
        """True to interrupt the running statement (SQLite's progress handler)."""
        if self.cancelled:
            self.stopped_by = "cancelled"
        else:
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                self.stopped_by = "deadline"
            elif self.ceiling_s is not None and now - self.started >= self.ceiling_s:
                self.stopped_by = "ceiling"
        return bool(self.stopped_by)

    def error(self) -> Exception:
        """The error an interrupted statement answers with."""
        if self.stopped_by == "ceiling":
            return ResourceExhaustedError(
                f"{self.what} ran past the node's query ceiling of {self.ceiling_s:g} s "
                "(db4 node --max-query-seconds); narrow the filter or query a range index"
            )
        if self.stopped_by == "deadline":
            return DeadlineExceededError(f"{self.what} passed the request's deadline")
        return CancelledByCaller(f"{self.what} was cancelled by its caller")


class _Guard:
    """The job currently running on one connection, watched by SQLite's progress handler."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.job: Job | None = None
        conn.set_progress_handler(self._check, PROGRESS_STEPS)

    def _check(self) -> bool:
        job = self.job
        return job is not None and job.check()


def lower_priority() -> None:
    """Raise this thread's nice value (a no-op where threads cannot have their own)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SCANNER_NICE)
    except OSError:
        pass


def idle_priority() -> None:
    """Run this thread only when a CPU has nothing else to run (Linux SCHED_IDLE: a waking
    request thread takes the CPU from it at once, where a high nice value still shares time
    slices); lower_priority where that is not allowed."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        lower_priority()


class Pulse:
    """Wakes every waiter at once, on the event loop. A waiter takes the current event before
    it looks at the shard, so a pulse between its look and its wait is not lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """The event the next fire() sets."""
        return self._event

    def fire(self) -> None:
        """Wake everyone waiting now; later waiters wait for the next fire()."""
        self._event.set()
        self._event = asyncio.Event()


class ShardWorker:
    """Runs one shard's reads and writes on its own threads.

    `log_changed` fires on the loop after every writer job that moved the change log (records
    appended by a write or a commit of a prepared transaction, or records truncated), also when
    the caller that asked for the job has gone: tails wait on it, never polling.
    """

    def __init__(self, shard: Shard, readers: int = READER_THREADS,
                 query_ceiling_s: float | None = DEFAULT_QUERY_CEILING_S) -> None:
        self.shard = shard
        self.query_ceiling_s = query_ceiling_s
        self._writer_guard = _Guard(shard.conn)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{shard.shard_id}-w")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix=f"{shard.shard_id}-r")
        self._scanners = ThreadPoolExecutor(SCANNER_THREADS, initializer=lower_priority,
                                            thread_name_prefix=f"{shard.shard_id}-q")
        self._local = threading.local()
        self._reader_conns: list[apsw.Connection] = []
        self._lock = threading.Lock()
        self.log_changed = Pulse()
        self._announced = self._log_position()
        # Group commit: writes waiting for the writer thread, and whether a drain is under way.
        self._queued: list[tuple[WriteItem, Job, asyncio.Future]] = []
        self._draining = False  # a group's job is queued or running on the writer thread
        self._closed = False

    async def write(self, fn: Callable[[Shard], T], deadline: float | None, what: str) -> T:
        """Run fn(shard) on the writer thread (fn owns shard.conn while it runs)."""
        job = Job(what, deadline)
        loop = asyncio.get_running_loop()

        def call() -> T:
            try:
                return self._on_writer(job, fn)
            finally:
                # From the thread: the job may outlive its caller (cancelled), not its effect.
                try:
                    loop.call_soon_threadsafe(self._announce)
                except RuntimeError:  # the loop closed: nobody is waiting any more
                    pass

        return await self._submit(self._writer, job, call)

    async def write_grouped(self, item: WriteItem, deadline: float | None, what: str
                            ) -> Written:
        """A plain write through group commit: queued, and applied with whatever other writes
        are queued when the writer thread takes them, in one SQLite transaction and one fsync
        (Shard.write_group). Answered, as alone, only once its transaction committed."""
        job = Job(what, deadline)
        if job.check():
            raise job.error()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()
        entry = (item, job, answer)
        with self._lock:
            if self._closed:
                raise UnavailableError(f"shard {self.shard.shard_id} was closed")
            self._queued.append(entry)
            start = not self._draining
            self._draining = True
        if start:
            self._next_group(loop)
        try:
            return await answer
        except asyncio.CancelledError:
            job.cancelled = True  # skipped if the writer has not taken it yet
            raise

    def _next_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue the next group's job on the writer thread (one group per job, so that the
        other writer work, prepares, fences, cleanups, takes its turn between groups); fail
        what is queued when the shard is being closed."""
        try:
            self._writer.submit(self._group, loop)
        except RuntimeError:  # the writer was shut down
            self._fail_queued(loop)

    def _fail_queued(self, loop: asyncio.AbstractEventLoop | None) -> None:
        with self._lock:
            left, self._queued = self._queued, []
            self._draining = False
        for _, _, answer in left:
            _settle(loop or answer.get_loop(), answer,
                    UnavailableError(f"shard {self.shard.shard_id} was closed"))

    def _group(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: apply one group of queued writes, then queue the next group's
        job if more wait (else the next write starts one)."""
        with self._lock:
            group = self._queued[:GROUP_MAX]
            del self._queued[:GROUP_MAX]
        try:
            live = []
            for item, job, answer in group:
                if job.check():  # cancelled or timed out while it waited
                    _settle(loop, answer, job.error())
                else:
                    live.append((item, answer))
            outcomes: list = []
            if live:
                try:
                    outcomes = self._guarded(
                        self._writer_guard, Job(f"a group of {len(live)} writes"),
                        functools.partial(self.shard.write_group, [item for item, _ in live]))
                except Exception as err:  # noqa: BLE001 - every write of the group gets it
                    outcomes = [err] * len(live)
            for (_, answer), outcome in zip(live, outcomes, strict=True):
                _settle(loop, answer, outcome)
        except BaseException as err:  # no waiter of this group may hang
            for _, _, answer in group:
                _settle(loop, answer, err if isinstance(err, Exception)
                        else UnavailableError(f"shard {self.shard.shard_id} was closed"))
            raise
        finally:
            with self._lock:
                more = bool(self._queued)
                self._draining = more
            if more:
                self._next_group(loop)
            try:
                loop.call_soon_threadsafe(self._announce)
            except RuntimeError:  # the loop closed: nobody is waiting any more
                pass

    def _log_position(self) -> tuple[int, int]:
        return self.shard.last_lsn, self.shard.truncated_through

    def _announce(self) -> None:
        """Fire log_changed when the change log moved since the last announcement (loop)."""
        position = self._log_position()
        if position != self._announced:
            self._announced = position
            self.log_changed.fire()

    async def read(self, fn: Callable[[apsw.Connection], T], deadline: float | None,
                   what: str) -> T:
        """Run fn(conn), a point read, on a reader thread's read-only connection."""
        job = Job(what, deadline)
        return await self._submit(self._readers, job, lambda: self._on_reader(job, fn))

    async def point_read(self, fn: Callable[[apsw.Connection], T], deadline: float | None,
                         what: str) -> T:
        """Run fn(conn), a read of a few ids by primary key, right here on the event loop.

        A few B-tree seeks take ~10 us, the hop to a thread and back ~150 us (measured on the
        2-core machine), so bounded work this small stays inline, on a read-only connection of
        the loop's own that never waits for a lock: a read that would wait (SQLITE_BUSY, during
        WAL recovery or a WAL reset) moves to a reader thread instead.
        """
        job = Job(what, deadline)
        conn, guard = self._reader(wait_for_locks=False)
        try:
            return self._guarded(guard, job, lambda: fn(conn))
        except apsw.BusyError:
            return await self.read(fn, deadline, what)

    async def query(self, fn: Callable[[apsw.Connection], T], deadline: float | None,
                    what: str) -> T:
        """Run fn(conn), a query that may scan, on a low-priority thread under the ceiling."""
        job = Job(what, deadline, self.query_ceiling_s)
        return await self._submit(self._scanners, job, lambda: self._on_reader(job, fn))

    async def _submit(self, pool: ThreadPoolExecutor, job: Job, call: Callable[[], T]) -> T:
        if job.check():  # already past its deadline: do not start it at all
            raise job.error()
        self.check_open()
        try:
            future = asyncio.get_running_loop().run_in_executor(pool, call)
        except RuntimeError:  # the pool shut down meanwhile: the shard is closing
            self.check_open()
            raise
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._closed and task is not None and not task.cancelling():
                # Not the caller: close() cancelled this work while it was still queued.
                self.check_open()
            job.cancelled = True  # the running statement stops at its next progress check
            raise

    def _on_writer(self, job: Job, fn: Callable[[Shard], T]) -> T:
        return self._guarded(self._writer_guard, job, lambda: fn(self.shard))

    def _on_reader(self, job: Job, fn: Callable[[apsw.Connection], T]) -> T:
        conn, guard = self._reader()
        return self._guarded(guard, job, lambda: fn(conn))

    def _guarded(self, guard: _Guard, job: Job, call: Callable[[], T]) -> T:
        if job.check():  # cancelled or timed out while it waited for the thread
            raise job.error()
        guard.job = job
        try:
            return call()
        except apsw.InterruptError as err:
            raise job.error() from err
        except (apsw.FullError, apsw.IOError) as err:
            raise storage_error(self.shard.shard_id, err) from err
        finally:
            guard.job = None

    def reader_here(self) -> tuple[apsw.Connection, _Guard]:
        """This thread's read-only connection to the shard and its guard (a scatter thread
        reading several shards keeps one of each, like the shard's own threads)."""
        return self._reader()

    def _reader(self, wait_for_locks: bool = True) -> tuple[apsw.Connection, _Guard]:
        """This thread's read-only connection, opened on first use; the event loop's (opened
        with wait_for_locks=False) never waits for a lock."""
        mine = getattr(self._local, "conn", None)
        if mine is None or self._closed:
            self.check_open()
            conn = apsw.Connection(self.shard.path, flags=apsw.SQLITE_OPEN_READWRITE)
            pragmas.apply_reader(conn)
            search_query.register(conn)
            if not wait_for_locks:
                conn.set_busy_timeout(0)
            mine = (conn, _Guard(conn))
            with self._lock:
                if self._closed:  # closed while this one opened: it is not kept
                    conn.close()
                    self.check_open()
                self._reader_conns.append(conn)
            self._local.conn = mine
        return mine

    def check_open(self) -> None:
        """UNAVAILABLE naming the shard once it is closed."""
        if self._closed:
            raise UnavailableError(f"shard {self.shard.shard_id} was closed (moved, dropped or "
                                   "the node is stopping); try again")

    def close(self) -> None:
        """Wait for running work, then close every connection; queued writes fail."""
        with self._lock:
            self._closed = True
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._fail_queued(None)
        self._readers.shutdown(wait=True, cancel_futures=True)
        self._scanners.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self.shard.close()


def _settle(loop: asyncio.AbstractEventLoop, answer: asyncio.Future, outcome: object) -> None:
    """Resolve a future of the loop from another thread (an exception outcome is raised)."""

    def settle() -> None:
        if answer.done():
            return
        if isinstance(outcome, BaseException):
            answer.set_exception(outcome)
        else:
            answer.set_result(outcome)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop closed: nobody is waiting any more
        pass


class ScatterPool:
    """Reads of several shards of the node by one request, on one low-priority thread.

    A scatter query over 21 shards of a node used to run on 21 scanner threads at once: 21
    thread hops and 21 threads taking turns at the GIL for every row they return. One thread
    running the shards' statements in turn (interleaved, for a merge) costs one hop; each
    shard's statements still run on a read-only connection of that shard (this thread's own)
    whose progress handler watches the request's job: deadline, cancel and the node's ceiling.
    At most `threads` such requests run at once; more wait for a thread (their deadline still
    counts while they wait).
    """

    def __init__(self, threads: int = SCATTER_THREADS,
                 query_ceiling_s: float | None = DEFAULT_QUERY_CEILING_S) -> None:
        self.query_ceiling_s = query_ceiling_s
        self._pool = ThreadPoolExecutor(threads, initializer=lower_priority,
                                        thread_name_prefix="scatter")

    async def run(self, workers: list[ShardWorker],
                  fn: Callable[[list[apsw.Connection]], T], deadline: float | None,
                  what: str) -> T:
        """fn(connections, one per worker, in order) on a scatter thread, under one job."""
        job = Job(what, deadline, self.query_ceiling_s)

        def call() -> T:
            if job.check():  # cancelled or timed out while it waited for the thread
                raise job.error()
            pairs = [w.reader_here() for w in workers]
            for _, guard in pairs:
                guard.job = job
            try:
                return fn([conn for conn, _ in pairs])
            except apsw.InterruptError as err:
                raise job.error() from err
            except (apsw.ConnectionClosedError, apsw.CursorClosedError):
                # close() does not wait for these shared threads: a shard moved away or
                # dropped meanwhile closed its connection under the statement.
                for w in workers:
                    w.check_open()
                raise
            finally:
                for _, guard in pairs:
                    guard.job = None

        if job.check():
            raise job.error()
        future = asyncio.get_running_loop().run_in_executor(self._pool, call)
        try:
            return await future
        except asyncio.CancelledError:
            job.cancelled = True  # the running statement stops at its next progress check
            raise

    def close(self) -> None:
        """Wait for running work (its statements stop at their deadlines)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
