"""The parsed search query: terms and phrases joined by AND, OR and AND-NOT."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Term:
    """One bare word; `prefix` for `word*`; `field` for `field:word` (None: any field)."""

    text: str
    prefix: bool = False
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Phrase:
    """A quoted phrase: its words in order, next to each other; `field` as for Term."""

    text: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class And:
    """Every positive child matches and no Not child does; at least one child is positive."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Only inside And: the row must not match `child` (FTS5 has no unary NOT)."""

    child: Node


Node: TypeAlias = Term | Phrase | And | Or | Not
Leaf: TypeAlias = Term | Phrase


def is_searchable(text: str) -> bool:
    """True when text holds a letter, a digit or a private-use character.

    Those are the characters the unicode61 and porter tokenizers keep (categories L*, N*, Co);
    a string of only punctuation and spaces yields no token, and FTS5 then matches nothing.
    """
    return any(_kept(unicodedata.category(ch)) for ch in text)


def _kept(category: str) -> bool:
    """True for the Unicode categories a unicode61 tokenizer keeps by default."""
    return category[0] in "LN" or category == "Co"
