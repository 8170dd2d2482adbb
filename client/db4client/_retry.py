"""When a failed call is tried again: idempotent calls only, on UNAVAILABLE, with backoff.

A resumable stream (Iterate, IterateRange) gets a budget in time as well as in tries: it is asked
again from its last cursor for at least `stream_budget_s` seconds without progress, long enough
to outlast a router restart (a process start and an etcd read: seconds), which three quick
tries (~150 ms) never did.

Writes are never retried. A write that timed out or lost its connection may have been applied;
sending it again could apply it twice (a create becomes ALREADY_EXISTS, an update with no
expected_version applies its patch twice from the caller's point of view). The caller decides.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from db4client._wire import Call, StreamCall
from db4client.errors import Db4Error, StreamIdleError, UnavailableError


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, `attempts` tries in all; resumable streams keep
    trying for `stream_budget_s` seconds without progress, however many tries that takes."""

    attempts: int = 3
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    stream_budget_s: float = 15.0

    def backoff_s(self, attempt: int) -> float:
        """Sleep before try `attempt + 1` (attempt counts from 0); half to full jitter."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * (2 ** attempt))
        return ceiling * random.uniform(0.5, 1.0)

    def delay_for(self, call: Call | StreamCall, err: Db4Error, attempt: int) -> float | None:
        """Seconds to wait before retrying `call` after `err`, None when it must not retry."""
        if not call.idempotent or not isinstance(err, UnavailableError):
            return None
        if attempt + 1 >= self.attempts:
            return None
        return self.backoff_s(attempt)

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
