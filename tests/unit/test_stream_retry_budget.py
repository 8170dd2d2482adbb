"""Resumable streams outlast a router restart: their retry budget is time (>= 10 s), not three
quick tries (~150 ms, which a 0.5 s restart used to exhaust)."""

from __future__ import annotations

import asyncio

import pytest

from db4client import RetryPolicy, _query, errors
from tests.unit.test_client_query import (
    Stream,
    find_response,
    make_async_client,
    make_client,
    no_sockets,  # noqa: F401 - autouse: no real channels
    unavailable,
)

UNAVAILABLE = errors.UnavailableError("router restarting")
ITERATE = _query.iterate("users", None, None, 10)
CREATE_INDEX = _query.create_index("by_n", "users", [("n", "asc")])


def test_default_budget_covers_at_least_ten_seconds():
    policy = RetryPolicy()
    assert policy.stream_budget_s >= 10
    failing = 0.0
    for attempt in range(100):  # keep trying, with backoff, until 10 s of failures
        delay = policy.resume_delay(ITERATE, UNAVAILABLE, attempt, failing)
        assert delay is not None, f"gave up after {failing:.2f} s ({attempt} tries)"
        assert delay <= policy.max_backoff_s
        failing += delay
        if failing >= 10:
            break
    assert failing >= 10


def test_budget_ends_and_attempts_are_a_floor():
    policy = RetryPolicy(attempts=3, initial_backoff_s=0.05, max_backoff_s=1.0,
                         stream_budget_s=10.0)
    assert policy.resume_delay(ITERATE, UNAVAILABLE, 40, 10.0) is None
    assert policy.resume_delay(ITERATE, UNAVAILABLE, 1, 60.0) is not None  # within attempts
    assert RetryPolicy(stream_budget_s=0).resume_delay(ITERATE, UNAVAILABLE, 2, 0.0) is None


def test_only_unavailable_on_resumable_streams_is_retried():
    policy = RetryPolicy()
    assert policy.resume_delay(CREATE_INDEX, UNAVAILABLE, 0, 0.0) is None  # a write
    assert policy.resume_delay(ITERATE, errors.InvalidArgumentError("x"), 0, 0.0) is None
    assert policy.resume_delay(ITERATE, errors.DeadlineExceededError("x"), 0, 0.0) is None


NO_WAIT_LONG_BUDGET = RetryPolicy(attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0,
                                  stream_budget_s=15.0)


def scripted_restart():
    """A page, then ten refused connections (a restarting router), then the rest."""
    return [Stream(find_response({"$id": "a"}, cursor="c1", has_more=True), unavailable()),
            *[Stream(unavailable()) for _ in range(10)],
            Stream(find_response({"$id": "b"}))]


def test_iterate_keeps_resuming_past_three_tries_within_the_budget():
    client, db4 = make_client(retry=NO_WAIT_LONG_BUDGET)
    db4.script += scripted_restart()
    assert [d["$id"] for d in client.collection("users").iterate()] == ["a", "b"]
    assert [c[1].cursor for c in db4.calls] == ["", *["c1"] * 11]


def test_async_iterate_keeps_resuming_past_three_tries_within_the_budget():
    client, db4 = make_async_client(retry=NO_WAIT_LONG_BUDGET)
    db4.script += scripted_restart()

    async def run():
        return [d["$id"] async for d in client.collection("users").iterate()]

    assert asyncio.run(run()) == ["a", "b"]
    assert len(db4.calls) == 12


def test_iterate_gives_up_once_the_budget_is_spent():
    client, db4 = make_client(retry=RetryPolicy(attempts=3, initial_backoff_s=0.01,
                                                max_backoff_s=0.01, stream_budget_s=0.05))
    db4.script += [Stream(unavailable()) for _ in range(200)]
    with pytest.raises(errors.UnavailableError):
        list(client.collection("users").iterate())
    assert 3 <= len(db4.calls) < 200
