"""FTS5's bm25() computed from figures that may come from many shards.

The same arithmetic, in the same order, as SQLite's fts5_aux.c (fts5Bm25GetData and
fts5Bm25Function), so one shard with local figures gives bit-identical scores to FTS5's own
bm25(), and global figures give the score one FTS5 table over the whole collection would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

K1: Final = 1.2
B: Final = 0.75
MIN_IDF: Final = 1e-6  # FTS5's floor: a phrase in more than half of the rows still counts a bit


def idf(rows: int, hits: int) -> float:
    """ln((N - n + 0.5) / (n + 0.5)) for N rows of which n hold the phrase; 1e-6 if not > 0."""
    value = math.log((rows - hits + 0.5) / (hits + 0.5))
    return MIN_IDF if value <= 0.0 else value


def average_size(total_tokens: int, rows: int) -> float:
    """avgdl: tokens per row over the whole index (every column, unweighted); rows > 0."""
    if rows <= 0:
        raise ValueError("average_size needs at least one row")
    return float(total_tokens) / float(rows)


def phrase_frequencies(
    instances: Iterable[tuple[int, int]], phrase_count: int, weights: Sequence[float] = ()
) -> list[float]:
    """f(p) per phrase: each (phrase, column) instance adds its column's weight (1.0 if absent)."""
    freqs = [0.0] * phrase_count
    for phrase, column in instances:
        freqs[phrase] += float(weights[column]) if column < len(weights) else 1.0
    return freqs


def bm25(idfs: Sequence[float], freqs: Sequence[float], size: int, avgdl: float) -> float:
    """FTS5's bm25 of one row (negative: lower is better) of `size` tokens (every column)."""
    d = float(size)
    score = 0.0
    for weight, f in zip(idfs, freqs, strict=True):
        score += weight * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * d / avgdl)))
    return -1.0 * score
