"""One background task that runs a round of work at an interval until it is stopped.

The node's in-doubt resolver and change-log truncation and the router's decision-record janitor
all have this shape. A round that fails with an expected, passing trouble (etcd or a node away)
is logged as a warning; anything else is logged as a bug. Either way the next round runs: the
task only ends when stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    """Runs `work()` every `interval_s` seconds in one task, between start() and stop()."""

    def __init__(self, what: str, work: Callable[[], Awaitable[object]], interval_s: float,
                 log: logging.Logger, transient: tuple[type[BaseException], ...] = (),
                 wait_first: bool = True) -> None:
        self.what = what
        self.work = work
        self.interval_s = interval_s
        self.log = log
        self.transient = transient
        self.wait_first = wait_first  # False: the first round runs at once
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        if self.wait_first:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.work()
            except asyncio.CancelledError:
                raise
            except self.transient as err:
                self.log.warning("%s failed (%s); trying again in %.1f s", self.what, err,
                                 self.interval_s)
            except Exception:  # noqa: BLE001 - one bad round must not end the task
                self.log.exception("[BUG] %s failed", self.what)
            await asyncio.sleep(self.interval_s)
