"""What queries return: `Page`, one page of documents and the cursor of the next; a search's
`SearchResult` of `SearchHit`s; the results of transactions and optimistic updates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Page:
    """One page of `find`, `find_in_shard` or `query_range`.

    `items` are the documents in order; `cursor` continues after the last of them (pass it back
    with the same query), None when nothing follows; `has_more` says whether anything follows.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    cursor: str | None = None
    has_more: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The page as JSON-ready data: {"items": [...], "cursor": ..., "has_more": ...}."""
        return {"items": self.items, "cursor": self.cursor, "has_more": self.has_more}


@dataclass(frozen=True)
class CommitResult:
    """What a committed transaction returns (`tx.results`, `tx.commit()`).

    `documents` holds, per buffered write in order, the document after it as stored (None for
    a delete); `found` is False only for a delete of a missing document; `shards` says how many
    shards took part (1: one SQLite transaction; 0: nothing had to be sent).
    """

    txid: str
    documents: list[dict[str, Any] | None] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)
    shards: int = 0


@dataclass(frozen=True)
class TransactionResult:
    """What `run_transaction` returns: `value` is fn's return, `attempts` how many transactions
    it took (1 when the first committed)."""

    value: Any
    attempts: int


@dataclass(frozen=True)
class OptimisticResult:
    """What `update_with_optimistic_lock` returns: the document as stored after the update and
    how many read-modify-write rounds it took."""

    document: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class CasResult:
    """What `compare_and_swap` returns: whether the field held `expected` and was swapped, and
    the document (after the swap; else as it is now, None when it does not exist)."""

    swapped: bool
    doc: dict[str, Any] | None


@dataclass(frozen=True)
class SearchHit:
    """One ranked document of a search.

    `score` is -bm25 computed with corpus-wide statistics (higher is better); `doc` the
    document; `highlights` maps each indexed field (its path) to its text with the matched
    terms between the marks; `snippet` is the best fragment of any field, marked the same way.
    """

    id: str
    score: float
    doc: dict[str, Any]
    highlights: dict[str, str] = field(default_factory=dict)
    snippet: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON-ready data."""
        return {"id": self.id, "score": self.score, "doc": self.doc,
                "highlights": self.highlights, "snippet": self.snippet}


@dataclass(frozen=True)
class SearchResult:
    """One page of `search`: `hits` best first (ties by `$id`), `cursor` to continue with the
    same query (None when nothing follows), `has_more`."""

    hits: list[SearchHit] = field(default_factory=list)
    cursor: str | None = None
    has_more: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The page as JSON-ready data: {"hits": [...], "cursor": ..., "has_more": ...}."""
        return {"hits": [h.to_dict() for h in self.hits], "cursor": self.cursor,
                "has_more": self.has_more}


@dataclass(frozen=True)
class BulkLoadResult:
    """What `bulk_load` wrote: documents, insert_many batches, seconds it took."""

    loaded: int
    batches: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.loaded / self.seconds if self.seconds > 0 else 0.0
