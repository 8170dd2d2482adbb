"""What queries return: `Page`, one page of documents and the cursor of the next."""

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
