"""The background round runner: rounds go on after a failure, expected or not, until stopped."""

from __future__ import annotations

import asyncio
import logging

from db4core.periodic import Periodic


def test_rounds_go_on_after_failures_and_stop_ends_them(caplog):
    calls: list[int] = []

    async def work() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ConnectionError("etcd away")
        if len(calls) == 2:
            raise KeyError("a bug")

    async def main() -> int:
        loop = Periodic("test round", work, 0.01, logging.getLogger("t"), (ConnectionError,),
                        wait_first=False)
        loop.start()
        while len(calls) < 4:
            await asyncio.sleep(0.01)
        await loop.stop()
        stopped_at = len(calls)
        await asyncio.sleep(0.05)
        return stopped_at

    with caplog.at_level(logging.WARNING):
        stopped_at = asyncio.run(main())
    assert len(calls) == stopped_at  # nothing ran after stop()
    assert "test round failed (etcd away)" in caplog.text
    assert "[BUG] test round failed" in caplog.text


def test_wait_first_delays_the_first_round():
    calls: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def work() -> None:
            calls.append(loop.time() - started)

        runner = Periodic("delayed", work, 0.05, logging.getLogger("t"))
        runner.start()
        await asyncio.sleep(0.02)
        assert calls == []
        await asyncio.sleep(0.06)
        await runner.stop()

    asyncio.run(main())
    assert calls and calls[0] >= 0.05
