"""Compile a parsed search query into an FTS5 expression in which no user text is syntax."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from db4core.errors import InvalidArgumentError
from db4core.search.parse import parse_search_query
from db4core.search.tree import And, Leaf, Node, Not, Or, Phrase, Term


@dataclass(frozen=True, slots=True)
class Compiled:
    """An FTS5 MATCH expression and its phrases, each as a standalone expression.

    `phrases[i]` is the phrase FTS5 numbers i in `expression` (left to right), with its column
    filter, so `MATCH phrases[i]` counts the rows that phrase occurs in.
    """

    expression: str
    phrases: list[str] = field(default_factory=list)


def fts5_column(index: int) -> str:
    """The FTS5 column name of the index's field number `index` (fields in definition order)."""
    return f"c{index}"


def fts5_string(text: str) -> str:
    """text as an FTS5 string: between double quotes, a quote inside doubled."""
    return '"' + text.replace('"', '""') + '"'


def compile_query(tree: Node, fields: Sequence[str] | None) -> Compiled:
    """The FTS5 expression of tree for an index whose columns are c0.. in `fields` order."""
    columns = None if fields is None else {name: fts5_column(i) for i, name in enumerate(fields)}
    phrases: list[str] = []
    expression = _emit(tree, columns, phrases)
    return Compiled(expression, phrases)


def query_to_fts5(tree: Node | str, fields: Sequence[str] | None = None) -> str:
    """The FTS5 expression of a tree (or query text); field filters need `fields`."""
    if isinstance(tree, str):
        tree = parse_search_query(tree, fields)
    return compile_query(tree, fields).expression


def _emit(node: Node, columns: dict[str, str] | None, phrases: list[str]) -> str:
    """Append node's phrases in text order and return its expression."""
    if isinstance(node, (Term, Phrase)):
        text = _leaf(node, columns)
        phrases.append(text)
        return text
    if isinstance(node, Or):
        _check_arity(node)
        return " OR ".join(_emit_in(child, columns, phrases, Or) for child in node.children)
    if isinstance(node, And):
        return _emit_and(node, columns, phrases)
    raise InvalidArgumentError("NOT needs a term on its left: write 'a NOT b'")


def _emit_and(node: And, columns: dict[str, str] | None, phrases: list[str]) -> str:
    """Positives joined by AND, then each excluded part after NOT (left-associative in FTS5)."""
    _check_arity(node)
    positives = [child for child in node.children if not isinstance(child, Not)]
    negatives = [child for child in node.children if isinstance(child, Not)]
    if not positives:
        raise InvalidArgumentError("NOT needs a term on its left: write 'a NOT b'")
    # NOT binds tighter than AND in FTS5, so `p1 AND p2 NOT n` is p1 AND (p2 NOT n): the same
    # rows as (p1 AND p2) NOT n, with no extra nesting for FTS5's parser stack.
    text = " AND ".join(_emit_in(child, columns, phrases, And) for child in positives)
    for neg in negatives:
        text += " NOT " + _emit_in(neg.child, columns, phrases, Not)
    return text


def _emit_in(
    node: Node, columns: dict[str, str] | None, phrases: list[str], parent: type[Node]
) -> str:
    """node's expression, in parentheses unless FTS5's precedence already groups it."""
    text = _emit(node, columns, phrases)
    if isinstance(node, (Term, Phrase)):
        return text
    if parent is Or and isinstance(node, And):
        return text
    return "(" + text + ")"


def _leaf(node: Leaf, columns: dict[str, str] | None) -> str:
    """One phrase: quoted text, ' *' for a prefix, 'cN : ' for a field filter."""
    text = fts5_string(node.text)
    if isinstance(node, Term) and node.prefix:
        text += " *"
    if node.field is None:
        return text
    if columns is None:
        raise InvalidArgumentError(
            f"field filter {node.field!r}: field filters need the index's list of fields"
        )
    column = columns.get(node.field)
    if column is None:
        known = ", ".join(columns)
        raise InvalidArgumentError(f"unknown field {node.field!r}; this index searches: {known}")
    return f"{column} : {text}"


def _check_arity(node: And | Or) -> None:
    """A hand-built node with no children has no FTS5 form."""
    if not node.children:
        raise InvalidArgumentError(f"an empty {type(node).__name__} has no terms to search")
