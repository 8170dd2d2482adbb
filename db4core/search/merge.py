"""Merging ranked pages of hits from several shards into one page.

Each page is a shard's best hits after the same position, best first, and whether it has more.
A shard that has more may hold hits ranking anywhere after its last one sent, so the merged page
keeps only hits that rank no later than the earliest such last hit; then the best `limit`, and
no more than `max_bytes` of them (always at least one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

H = TypeVar("H")


def merge_ranked(pages: Sequence[tuple[Sequence[H], bool]], limit: int,
                 key: Callable[[H], Any], size: Callable[[H], int],
                 max_bytes: int) -> tuple[list[H], bool]:
    """The best `limit` hits of every page by `key` (smaller ranks first), and whether more
    follow."""
    pool = sorted((hit for hits, _ in pages for hit in hits), key=key)
    more = any(has_more for _, has_more in pages)
    cuts = [key(hits[-1]) for hits, has_more in pages if has_more and hits]
    if cuts:
        bound = min(cuts)
        pool = [hit for hit in pool if key(hit) <= bound]
    page: list[H] = []
    used = 0
    for hit in pool[:limit]:
        used += size(hit)
        if page and used > max_bytes:
            return page, True
        page.append(hit)
    return page, more or len(pool) > limit
