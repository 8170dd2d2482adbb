"""Operation counters and a sample of the tokens operations touch, per shard, between reports.

The sample is a reservoir (Vitter's algorithm R) of the ring tokens of point operations: every
token counted has the same chance to be in it, so its median is where a split would halve the
shard's load, and the share of its most frequent token says when one partition key carries most
of the load (no split can spread that). Scatter queries touch no one token and are not sampled.
Touched on the event loop only.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable

SAMPLE_SIZE = 128


class TokenSample:
    """A uniform sample of at most `size` tokens out of every token added."""

    def __init__(self, size: int = SAMPLE_SIZE, rng: random.Random | None = None) -> None:
        self.size = size
        self.items: list[int] = []
        self.seen = 0
        self._rng = rng or random.Random()

    def add(self, token: int) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(token)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.items[j] = token

    def summary(self) -> dict | None:
        """The sample's median token, its most frequent token and that token's share."""
        if not self.items:
            return None
        ordered = sorted(self.items)
        top, count = Counter(self.items).most_common(1)[0]
        return {"samples": len(ordered), "median_token": ordered[len(ordered) // 2],
                "top_token": top, "top_share": round(count / len(ordered), 4)}


class LoadMeter:
    """Counts reads and writes per shard, and samples their tokens, since the last take."""

    def __init__(self, sample_size: int = SAMPLE_SIZE) -> None:
        self.sample_size = sample_size
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.samples: dict[str, TokenSample] = {}
        self.since = time.monotonic()

    def read(self, shard_id: str, n: int = 1, tokens: Iterable[int] = ()) -> None:
        self.reads[shard_id] += n
        self._sample(shard_id, tokens)

    def write(self, shard_id: str, n: int = 1, tokens: Iterable[int] = ()) -> None:
        self.writes[shard_id] += n
        self._sample(shard_id, tokens)

    def _sample(self, shard_id: str, tokens: Iterable[int]) -> None:
        sample = None
        for token in tokens:
            if sample is None:
                sample = self.samples.get(shard_id)
                if sample is None:
                    sample = self.samples[shard_id] = TokenSample(self.sample_size)
            sample.add(token)

    def take(self) -> tuple[Counter[str], Counter[str], dict[str, TokenSample], float]:
        """The counts and samples since the last take, and the seconds they cover; starts
        afresh."""
        now = time.monotonic()
        taken = (self.reads, self.writes, self.samples, max(now - self.since, 1e-9))
        self.reads, self.writes, self.samples, self.since = Counter(), Counter(), {}, now
        return taken
