"""bulk_load: a stream of documents written as consecutive insert_many batches, a few in flight.

Each batch commits whole or not at all (insert_many). When one fails, nothing more is read from
the input, the batches in flight finish, and those after the failed one that committed are
deleted again: what stays loaded is exactly the input before the failed batch, and the error
says how many documents that is (`err.loaded`) and which document failed (`documents[i]`,
numbered in the whole input).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from db4client.collection import _shift_index
from db4client.errors import (
    Db4Error,
    DeadlineExceededError,
    InvalidArgumentError,
    UnavailableError,
)
from db4client.results import BulkLoadResult
from db4core.documents import MAX_BATCH_ITEMS

Document = dict[str, Any]
Progress = Callable[[int], None]
MAX_IN_FLIGHT = 64


def check_options(batch_size: int, in_flight: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) \
            or not 1 <= batch_size <= MAX_BATCH_ITEMS:
        raise InvalidArgumentError(f"batch_size must be an int from 1 to {MAX_BATCH_ITEMS}, "
                                   f"got {batch_size!r}")
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) \
            or not 1 <= in_flight <= MAX_IN_FLIGHT:
        raise InvalidArgumentError(f"in_flight must be an int from 1 to {MAX_IN_FLIGHT}, "
                                   f"got {in_flight!r}")


def batches(docs: Iterable[Any], batch_size: int) -> Iterator[tuple[int, list[Any]]]:
    """(position of the first document in the input, the documents) per batch, read lazily."""
    if isinstance(docs, (str, bytes, bytearray, dict)) or not hasattr(docs, "__iter__"):
        raise InvalidArgumentError(f"documents must be an iterable of dicts, got "
                                   f"{type(docs).__name__}")
    it = iter(docs)
    start = 0
    while batch := list(itertools.islice(it, batch_size)):
        yield start, batch
        start += len(batch)


def failed(err: Db4Error, start: int | None, loaded: int) -> Db4Error:
    """The error of the batch at input position `start` (None: reading the input failed),
    renumbered to the whole input and saying what stays loaded."""
    if start is not None:
        err = _shift_index(err, start)
    err.loaded = loaded
    err.message = f"{err.message} (bulk_load: the first {loaded} documents are loaded, " \
                  "none after them)"
    err.args = (err.message,)
    return err


def ids(stored: list[Document]) -> list[str]:
    return [d["$id"] for d in stored]


class _State:
    """What a bulk load has done so far. Batches are taken in input order: a batch that
    fails is the first failure unless the input failed before it was read; batches before the
    input failed (all of those sent) are kept when they commit."""

    def __init__(self) -> None:
        self.loaded = 0
        self.batches = 0
        self.error: Db4Error | None = None
        self.start: int | None = None  # the failed batch's input position; None: the input
        self.left: list[str] = []  # later batches that committed and could not be deleted
        # Batches that failed after they were sent (UNAVAILABLE, DEADLINE_EXCEEDED): they may
        # have committed, and are neither counted nor undone: (first, end) input positions.
        self.unknown: list[tuple[int, int]] = []

    def input_failed(self, err: Db4Error) -> None:
        self.error, self.start = err, None

    def batch_failed(self, err: Db4Error, start: int, n: int) -> None:
        if isinstance(err, (UnavailableError, DeadlineExceededError)):
            self.unknown.append((start, start + n))
        if self.error is None or self.start is None:  # before the bad input: it comes first
            self.error, self.start = err, start

    def keeps(self) -> bool:
        """Whether a batch that committed now stays loaded."""
        return self.error is None or self.start is None

    def loaded_batch(self, n: int, progress: Progress | None) -> None:
        self.loaded += n
        self.batches += 1
        if progress is not None:
            progress(self.loaded)

    def not_undone(self, n: int, why: str) -> None:
        self.left.append(f"{n} documents of a later batch stay loaded: deleting them failed "
                         f"({why})")

    def result(self, begin: float, clock: Callable[[], float]) -> BulkLoadResult:
        if self.error is None:
            return BulkLoadResult(self.loaded, self.batches, clock() - begin)
        err = failed(self.error, self.start, self.loaded)
        unknown: list[tuple[int, int]] = []
        for a, b in sorted(self.unknown):  # adjacent batches as one span
            if unknown and unknown[-1][1] == a:
                unknown[-1] = (unknown[-1][0], b)
            else:
                unknown.append((a, b))
        err.unknown = unknown  # type: ignore[attr-defined]
        if unknown:
            spans = ", ".join(f"documents[{a}] to documents[{b - 1}]" for a, b in unknown)
            err.message = (f"{err.message}; except that {spans} may be loaded: their batches "
                           "failed after they were sent, so whether they were written is "
                           "unknown (check before loading them again)")
            err.args = (err.message,)
        if self.left:
            err.message = f"{err.message}; " + "; ".join(self.left)
            err.args = (err.message,)
        raise err from self.error.__cause__


def run(insert: Callable[[list[Any]], list[Document]], delete: Callable[[list[str]], Any],
        docs: Iterable[Any], batch_size: int, in_flight: int, progress: Progress | None,
        clock: Callable[[], float]) -> BulkLoadResult:
    """The blocking bulk load: `in_flight` insert_many calls on threads, results in order."""
    check_options(batch_size, in_flight)
    begin = clock()
    pending: deque[tuple[int, int, Future]] = deque()
    state = _State()
    # Ctrl-C (KeyboardInterrupt): nothing more is read, the batches in flight finish and are
    # counted as any others, then it is raised again carrying `loaded`. A second Ctrl-C stops
    # at once: it carries `loaded` None and `at_least`, since batches then in flight may or may
    # not commit.
    stop: KeyboardInterrupt | None = None
    pool = ThreadPoolExecutor(in_flight, thread_name_prefix="db4-bulk")
    waits = True  # the pool's end waits for its batches (not after a second Ctrl-C)
    try:
        source = batches(docs, batch_size)
        while True:
            undoing = 0
            try:
                if state.error is None and stop is None and len(pending) < in_flight:
                    try:
                        nxt = next(source, None)
                    except Db4Error as err:  # the input itself is bad (db4 import: a bad line)
                        state.input_failed(err)
                        nxt = None
                    if nxt is not None:
                        pending.append((nxt[0], len(nxt[1]), pool.submit(insert, nxt[1])))
                        continue
                if not pending:
                    break
                start, n, fut = pending[0]
                try:
                    stored = fut.result()
                except Db4Error as err:
                    pending.popleft()
                    state.batch_failed(err, start, n)
                    continue
                pending.popleft()
                if state.keeps():
                    state.loaded_batch(len(stored), progress)  # counted before progress runs
                    continue
                undoing = len(stored)  # committed after the failed batch: undone
                try:
                    delete(ids(stored))
                except Db4Error as err:
                    state.not_undone(len(stored), f"{err.code}: {err.message}")
            except KeyboardInterrupt as err:
                if undoing:
                    state.not_undone(undoing, "interrupted")
                if stop is not None:
                    waits = False
                    pool.shutdown(wait=False, cancel_futures=True)
                    err.loaded = None  # type: ignore[attr-defined]
                    err.at_least = state.loaded  # type: ignore[attr-defined]
                    raise
                stop = err
    finally:
        pool.shutdown(wait=waits)
    if stop is not None and state.error is None:
        stop.loaded = state.loaded  # type: ignore[attr-defined]
        raise stop
    return state.result(begin, clock)


async def arun(insert: Callable[[list[Any]], Awaitable[list[Document]]],
               delete: Callable[[list[str]], Awaitable[Any]], docs: Iterable[Any],
               batch_size: int, in_flight: int, progress: Progress | None,
               clock: Callable[[], float]) -> BulkLoadResult:
    """The asyncio bulk load: `in_flight` insert_many tasks, results in order."""
    check_options(batch_size, in_flight)
    begin = clock()
    pending: deque[tuple[int, int, asyncio.Task]] = deque()
    state = _State()
    source = batches(docs, batch_size)
    try:
        while True:
            if state.error is None and len(pending) < in_flight:
                try:
                    nxt = next(source, None)
                except Db4Error as err:  # the input itself is bad (db4 import: a bad line)
                    state.input_failed(err)
                    nxt = None
                if nxt is not None:
                    pending.append((nxt[0], len(nxt[1]), asyncio.ensure_future(insert(nxt[1]))))
                    continue
            if not pending:
                break
            start, n, task = pending.popleft()
            try:
                stored = await task
            except Db4Error as err:
                state.batch_failed(err, start, n)
                continue
            if state.keeps():
                state.loaded_batch(len(stored), progress)
                continue
            try:  # committed after the failed batch: undone
                await delete(ids(stored))
            except Db4Error as err:
                state.not_undone(len(stored), f"{err.code}: {err.message}")
    finally:
        for _, _, task in pending:  # cancelled from outside: nothing left running
            task.cancel()
    return state.result(begin, clock)
