"""bulk_load's bookkeeping (client/db4client/_bulk.py) with stand-in insert and delete calls:
what stays loaded when a batch or the input fails while other batches are in flight."""

from __future__ import annotations

import threading
import time

import pytest

from db4client import _bulk
from db4core.errors import AlreadyExistsError, InvalidArgumentError, UnavailableError


class Store:
    """insert_many and delete_many over a dict; batches finish after `delay` seconds."""

    def __init__(self, fail_at: set[str] = frozenset(), delay: float = 0.02,
                 delete_fails: bool = False) -> None:
        self.docs: dict[str, dict] = {}
        self.fail_at, self.delay, self.delete_fails = fail_at, delay, delete_fails
        self.lock = threading.Lock()

    def insert(self, batch: list[dict]) -> list[dict]:
        time.sleep(self.delay)
        for i, d in enumerate(batch):
            if d["$id"] in self.fail_at:
                raise AlreadyExistsError(f"documents[{i}]: document {d['$id']!r} already exists")
        with self.lock:
            self.docs.update((d["$id"], d) for d in batch)
        return batch

    def delete(self, ids: list[str]) -> list[bool]:
        if self.delete_fails:
            raise UnavailableError("no router")
        with self.lock:
            return [self.docs.pop(i, None) is not None for i in ids]


def docs(n: int, bad_at: int | None = None):
    for i in range(n):
        if i == bad_at:
            raise InvalidArgumentError(f"line {i + 1}: not JSON")
        yield {"$id": f"d{i:03d}"}


def test_a_bad_input_line_keeps_every_batch_read_before_it():
    store = Store()
    with pytest.raises(InvalidArgumentError) as err:
        _bulk.run(store.insert, store.delete, docs(35, bad_at=25), 10, 4, None, time.monotonic)
    assert err.value.loaded == 20 and "line 26" in err.value.message
    assert sorted(store.docs) == [f"d{i:03d}" for i in range(20)]


def test_a_failed_batch_undoes_the_later_batches_that_committed():
    store = Store(fail_at={"d025"})
    seen: list[int] = []
    with pytest.raises(AlreadyExistsError, match=r"documents\[25\]") as err:
        _bulk.run(store.insert, store.delete, docs(100), 10, 4, seen.append, time.monotonic)
    assert err.value.loaded == 20 and seen == [10, 20]
    assert sorted(store.docs) == [f"d{i:03d}" for i in range(20)]


def test_a_failed_undo_is_reported_with_the_first_error():
    store = Store(fail_at={"d005"}, delete_fails=True)
    with pytest.raises(AlreadyExistsError) as err:
        _bulk.run(store.insert, store.delete, docs(40), 10, 4, None, time.monotonic)
    assert err.value.loaded == 0
    assert "deleting them failed (UNAVAILABLE: no router)" in err.value.message


def interrupted_at(n: int, stop_at: int):
    """Documents, then Ctrl-C while the next one is read."""
    for i in range(n):
        if i == stop_at:
            raise KeyboardInterrupt
        yield {"$id": f"d{i:03d}"}


def test_ctrl_c_lets_the_batches_in_flight_finish_and_says_what_is_loaded():
    store = Store(delay=0.05)
    seen: list[int] = []
    with pytest.raises(KeyboardInterrupt) as stop:
        _bulk.run(store.insert, store.delete, interrupted_at(100, 45), 10, 4, seen.append,
                  time.monotonic)
    assert stop.value.loaded == 40 and seen[-1] == 40  # 4 batches read, all committed
    assert sorted(store.docs) == [f"d{i:03d}" for i in range(40)]


def test_ctrl_c_after_a_failed_batch_reports_the_failure():
    store = Store(delay=0.05, fail_at={"d015"})
    with pytest.raises(AlreadyExistsError) as err:
        _bulk.run(store.insert, store.delete, interrupted_at(100, 35), 10, 4, None,
                  time.monotonic)
    assert err.value.loaded == 10
    assert sorted(store.docs) == [f"d{i:03d}" for i in range(10)]


def test_a_second_ctrl_c_stops_at_once_saying_what_is_loaded_at_least():
    store = Store(delay=0.0)
    finished = threading.Event()

    def insert(batch: list[dict]) -> list[dict]:
        slow = int(batch[0]["$id"][1:]) >= 20  # batches after the first two take 2 s
        time.sleep(2.0 if slow else 0.1)
        if slow:
            finished.set()
        return store.insert(batch)

    def progress(loaded: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C as each batch is shown: the second stops at once

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as stop:
        _bulk.run(insert, store.delete, docs(100), 10, 4, progress, time.monotonic)
    assert stop.value.loaded is None and stop.value.at_least == 20
    assert not finished.is_set(), "it waited for the batches in flight"
    assert time.monotonic() - began < 1.5


def test_batches_that_failed_after_being_sent_are_named_as_maybe_loaded():
    """A router killed under a bulk load answers the batches in flight UNAVAILABLE, though
    they may have committed: they are neither counted nor called absent."""
    store = Store(delay=0.05)

    def insert(batch: list[dict]) -> list[dict]:
        first = int(batch[0]["$id"][1:])
        if first >= 20:
            if first < 40:  # committed, then the answer was lost
                store.insert(batch)
            raise UnavailableError("Stream removed (Socket closed)")
        return store.insert(batch)

    with pytest.raises(UnavailableError) as err:
        _bulk.run(insert, store.delete, docs(100), 10, 4, None, time.monotonic)
    assert err.value.loaded == 20
    assert err.value.unknown == [(20, 60)]  # the four batches in flight when it failed
    assert "documents[20] to documents[59] may be loaded" in err.value.message
    assert sorted(store.docs) == [f"d{i:03d}" for i in range(40)]  # what the message allows
