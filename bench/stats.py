"""Latency and rate summaries for the benchmark scripts."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable


def percentile(samples: list[float], q: float) -> float:
    """q-th percentile (0-100) by nearest rank."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> dict:
    """Call fn() repeat times after `warmup` untimed calls: p50 and p99 in ms."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99)}


def sequential(fn: Callable[[int], object], n: int, warmup: int = 200) -> dict:
    """Call fn(i) n times one after another: p50, p99 (ms) and rate (/s)."""
    for i in range(n, n + warmup):  # indexes the timed run does not use
        fn(i)
    samples = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99),
            "mean": statistics.fmean(samples), "rate": n / elapsed, "samples": samples,
            "elapsed": elapsed}


async def concurrent(fn: Callable[[int], Awaitable[object]], n: int, in_flight: int) -> dict:
    """n calls with in_flight outstanding at any time: p50, p99 (ms) and rate (/s)."""
    samples: list[float] = []

    async def worker(counter) -> None:
        for i in counter:
            t0 = time.perf_counter()
            await fn(i)
            samples.append((time.perf_counter() - t0) * 1000)

    warm = iter(range(n, n + min(n, 500)))  # indexes the timed run does not use
    await asyncio.gather(*(worker(warm) for _ in range(in_flight)))
    samples.clear()
    counter = iter(range(n))
    start = time.perf_counter()
    await asyncio.gather(*(worker(counter) for _ in range(in_flight)))
    elapsed = time.perf_counter() - start
    return {"p50": percentile(samples, 50), "p99": percentile(samples, 99),
            "mean": statistics.fmean(samples), "rate": n / elapsed, "samples": samples,
            "elapsed": elapsed}


class Series:
    """Samples (ms) and busy time gathered over several interleaved rounds."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.elapsed = 0.0
        self.ops = 0

    def add(self, m: dict) -> None:
        self.samples += m["samples"]
        self.elapsed += m["elapsed"]
        self.ops += len(m["samples"])

    def summary(self) -> dict:
        return {"p50": percentile(self.samples, 50), "p99": percentile(self.samples, 99),
                "mean": statistics.fmean(self.samples), "rate": self.ops / self.elapsed}


def row(name: str, m: dict, floor: dict, target: str = "") -> str:
    """One printed line: figures and the ratios to the floor."""
    return (f"{name:<34} p50 {m['p50']:7.3f} ms ({m['p50'] / floor['p50']:5.2f}x floor)  "
            f"p99 {m['p99']:7.3f} ms ({m['p99'] / floor['p99']:5.2f}x)  "
            f"rate {m['rate']:8.0f}/s ({m['rate'] / floor['rate']:5.2f}x)  {target}")
