"""Named failpoints for fault tests: `DB4_FAILPOINTS=name[,name...]` in a process's environment
makes it kill itself with SIGKILL when it reaches one of those points (as a crash would, with no
clean-up), after logging the name to stderr.

Every failpoint of the product is listed in FAILPOINTS, so a test naming an unknown one fails
loudly instead of testing nothing. Unset, `hit` costs one frozenset lookup.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "DB4_FAILPOINTS"

FAILPOINTS = frozenset({
    # the router coordinating a cross-shard commit
    "coordinator.before_prepare",  # ops placed, nothing sent
    "coordinator.after_some_prepares",  # the first participant voted yes, the others not asked
    "coordinator.after_decision",  # COMMIT recorded in etcd, no participant told
    "coordinator.after_one_commit",  # one participant committed, the others not told
    # a node taking part in one
    "participant.after_intent",  # intents persisted, vote not sent
    "participant.after_commit",  # commit applied, acknowledgement not sent
    # the leader router driving a split or move
    "operation.before_snapshot",  # log pinned, nothing copied
    "operation.after_install",  # the follower installed, the record still says copying
    "operation.catching_up",  # some records applied to the follower
    "operation.after_fence",  # the source fenced, the ring not changed
    "operation.after_commit",  # the new ring committed, the pin not removed
    # a node taking part in one
    "source.mid_snapshot",  # part of the snapshot sent
    "source.after_fence",  # the fence persisted, not acknowledged
    "follower.after_install",  # the follower's file in place, not acknowledged
    "follower.after_apply",  # some of the parent's records applied, not acknowledged
})


def _armed() -> frozenset[str]:
    names = frozenset(n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip())
    unknown = names - FAILPOINTS
    if unknown:
        raise SystemExit(f"{ENV} names unknown failpoints: {', '.join(sorted(unknown))}")
    return names


ARMED = _armed()


def hit(name: str) -> None:
    """Die here (SIGKILL) when `name` is armed."""
    if name not in FAILPOINTS:
        raise ValueError(f"unknown failpoint {name!r}")
    if name in ARMED:
        sys.stderr.write(f"failpoint {name}: killing process {os.getpid()}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
