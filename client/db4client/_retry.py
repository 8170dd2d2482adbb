"""When a failed call is tried again: on UNAVAILABLE only, with backoff, within a time budget.

A call that found no router to send to (the client's own channel could not connect: "failed to
connect", "connection refused", and no db4 server answered) never left the client, so nothing
can have been applied: it is tried again, read or write, for `unary_budget_s` seconds. Resumable
streams (Iterate, IterateRange) are asked again from their last cursor for `stream_budget_s`
seconds without progress. Both outlast a router restart (a process start and an etcd read:
seconds), which three quick tries (~150 ms) never did.

Any other UNAVAILABLE (the router answered that it could not reach a node) is tried again
`attempts` times, for idempotent calls (reads) only. A write that timed out or lost its
connection after it was sent may have been applied; sending it again could apply it twice (a
create becomes ALREADY_EXISTS, an update with no expected_version applies its patch twice from
the caller's point of view), so the caller decides.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

from db4client._wire import Call, StreamCall
from db4client.errors import (
    Db4Error,
    DeadlineExceededError,
    InvalidArgumentError,
    StreamIdleError,
    UnavailableError,
    from_rpc_error,
)
from db4rpc.status import never_sent

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "full_jitter_s", "never_sent", "retry_settings"]


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, `attempts` tries in all; resumable streams keep
    trying for `stream_budget_s` seconds without progress, however many tries that takes."""

    attempts: int = 3
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    stream_budget_s: float = 15.0
    unary_budget_s: float = 10.0

    def backoff_s(self, attempt: int) -> float:
        """Sleep before try `attempt + 1` (attempt counts from 0); half to full jitter."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * (2 ** attempt))
        return ceiling * random.uniform(0.5, 1.0)

    def delay_for(self, call: Call | StreamCall, err: Db4Error, attempt: int,
                  failing_s: float = 0.0, unsent: bool = False,
                  remaining_s: float | None = None) -> float | None:
        """Seconds to wait before retrying `call` after `err`, None when it must not retry.
        `attempt` counts the failures so far (from 0), `failing_s` the seconds since the
        first; `unsent` says the request never left the client (`never_sent`). Such a call is
        tried again, read or write, for `unary_budget_s`; another UNAVAILABLE (the router could
        not reach a node) is tried again `attempts` times, reads only. `remaining_s`: what is
        left of the call's timeout (no retry outlasts it)."""
        if not isinstance(err, UnavailableError):
            return None
        delay = self.backoff_s(attempt)
        if remaining_s is not None and delay >= remaining_s:
            return None
        if unsent:
            return delay if failing_s + delay <= self.unary_budget_s else None
        if call.idempotent and attempt + 1 < self.attempts:
            return delay
        return None

    def resume_delay(self, call: StreamCall, err: Db4Error, attempt: int,
                     failing_s: float) -> float | None:
        """Seconds to wait before asking a stream again after `err`, None when it must not.
        `attempt` counts failures since the last message, `failing_s` the seconds since the
        first of them. Resumable streams retry UNAVAILABLE while within `attempts` tries or
        within `stream_budget_s` seconds (time the caller spends between messages is free)."""
        if call.resume is not None and isinstance(err, StreamIdleError):
            return 0.0  # the router let go of a stream we were slow to read: ask again now
        if call.resume is None or not isinstance(err, UnavailableError):
            return None
        delay = self.backoff_s(attempt)
        if attempt + 1 < self.attempts or failing_s + delay <= self.stream_budget_s:
            return delay
        return None


DEFAULT_POLICY = RetryPolicy()



# Longest sleep between two tries of a whole transaction or read-modify-write round.
MAX_ROUND_BACKOFF_S = 2.0


def full_jitter_s(initial_backoff_ms: float, retry: int) -> float:
    """Sleep before retry number `retry` (from 0) of a transaction or an optimistic update:
    anywhere from 0 to initial * 2**retry (capped), "full jitter", so writers that collided
    spread out instead of colliding again in step."""
    ceiling = min(MAX_ROUND_BACKOFF_S, initial_backoff_ms / 1000.0 * (2 ** min(retry, 30)))
    return random.uniform(0.0, ceiling)


def retry_settings(max_retries: Any, initial_backoff_ms: Any) -> tuple[int, float]:
    """`max_retries` (an int >= 0) and `initial_backoff_ms` (a number >= 0), checked."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidArgumentError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if (isinstance(initial_backoff_ms, bool) or not isinstance(initial_backoff_ms, (int, float))
            or not math.isfinite(initial_backoff_ms) or initial_backoff_ms < 0):
        raise InvalidArgumentError(
            f"initial_backoff_ms must be a finite number >= 0, got {initial_backoff_ms!r}")
    return max_retries, float(initial_backoff_ms)


class Tries:
    """The tries of one unary call: each one's gRPC deadline, and after a failure, how long to
    wait before the next or the failure to raise. The call's timeout bounds them all: the
    first gets the whole timeout, a retry what is left of it, and none is made whose backoff
    would end past it (`RetryPolicy.delay_for`)."""

    def __init__(self, policy: RetryPolicy, call: Call, timeout: float | None) -> None:
        self.policy, self.call = policy, call
        self.deadline = call.deadline(timeout)
        self.ends = None if self.deadline is None else time.monotonic() + self.deadline
        self.attempt = 0
        self.first_failure = 0.0
        self.before: tuple[Db4Error, Any] | None = None  # the failure being retried

    def timeout(self) -> float | None:
        """The next try's gRPC deadline."""
        if self.attempt == 0 or self.ends is None:
            return self.deadline
        return max(self.ends - time.monotonic(), 0.001)

    def after(self, err: Any) -> tuple[float | None, tuple[Db4Error, Any]]:
        """(seconds to wait before the next try, or None for none; the failure to raise then)
        after the gRPC error `err`. A retry that ran out of what was left of the timeout
        raises the failure it retried (UNAVAILABLE: a node down), not the clock."""
        domain = from_rpc_error(err)
        now = time.monotonic()
        if self.attempt == 0:
            self.first_failure = now
        if self.before is not None and isinstance(domain, DeadlineExceededError):
            return None, self.before
        self.before = (domain, err)
        delay = self.policy.delay_for(self.call, domain, self.attempt, now - self.first_failure,
                                      never_sent(err),
                                      None if self.ends is None else self.ends - now)
        self.attempt += 1
        return delay, (domain, err)
