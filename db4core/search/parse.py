"""Parse the user's search query text into a tree (see README.md for the language)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from db4core.errors import InvalidArgumentError
from db4core.search.tree import And, Leaf, Node, Not, Or, Phrase, Term, is_searchable

MAX_QUERY_BYTES: Final = 4096
# FTS5's expression parser has a fixed stack (about 100 entries, a few per level); 16 levels of
# parentheses compile to at most 16 levels in the FTS5 expression, well inside it.
MAX_DEPTH: Final = 16
OPERATORS: Final = frozenset({"AND", "OR", "NOT"})
_BREAK: Final = frozenset('()"')


@dataclass(frozen=True, slots=True)
class _Token:
    """kind: 'word', 'phrase', 'op', '(' or ')'; pos: character offset in the query."""

    kind: str
    pos: int
    text: str = ""
    prefix: bool = False
    field: str | None = None


def parse_search_query(text: object, fields: Sequence[str] | None = None) -> Node:
    """Parse text into a tree of searchable terms, or raise InvalidArgumentError saying where."""
    query = _check_text(text)
    parser = _Parser(_lex(query), fields)
    tree = parser.parse()
    pruned = _prune(tree)
    if pruned is None:
        raise InvalidArgumentError(
            "the query has no searchable words (only punctuation, or terms that only exclude)"
        )
    return pruned


def _check_text(text: object) -> str:
    """Return text with control characters as spaces, after the type, size and emptiness checks."""
    if not isinstance(text, str):
        raise InvalidArgumentError(f"the search query must be a string, got {type(text).__name__}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_QUERY_BYTES:
        raise InvalidArgumentError(
            f"the search query is {size} bytes (UTF-8); at most {MAX_QUERY_BYTES}"
        )
    # A NUL would end FTS5's copy of a quoted string early; every tokenizer splits on control
    # characters anyway, so a space in their place (same offsets) changes no match.
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    if not cleaned.strip():
        raise InvalidArgumentError("the search query is empty")
    return cleaned


def _lex(query: str) -> list[_Token]:
    """Split the query into words, phrases, operators and parentheses."""
    tokens: list[_Token] = []
    i = 0
    while i < len(query):
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(_Token(ch, i))
            i += 1
        elif ch == '"':
            text, i = _read_phrase(query, i)
            tokens.append(_Token("phrase", i - len(text) - 2, text))
        else:
            i = _read_word(query, i, tokens)
    return tokens


def _read_phrase(query: str, start: int) -> tuple[str, int]:
    """Return the phrase opened at start and the offset after its closing quote."""
    end = query.find('"', start + 1)
    if end < 0:
        raise InvalidArgumentError(f"unbalanced quote: the '\"' at position {start} is not closed")
    text = query[start + 1 : end]
    if not text.strip():
        raise InvalidArgumentError(f"empty phrase at position {start}")
    if query[end + 1 : end + 2] == "*":
        raise InvalidArgumentError(
            f"'*' at position {end + 1}: a prefix search applies to a bare word, not a phrase"
        )
    return text, end + 1


def _read_word(query: str, start: int, tokens: list[_Token]) -> int:
    """Append the bare word (operator, term, field:term or field:"phrase") at start."""
    end = start
    while end < len(query) and not query[end].isspace() and query[end] not in _BREAK:
        end += 1
    word = query[start:end]
    if word in OPERATORS:
        tokens.append(_Token("op", start, word))
        return end
    field, colon, rest = word.partition(":")
    if not colon:
        tokens.append(_word_token(word, start, None))
        return end
    if not field:
        raise InvalidArgumentError(f"a field name is missing before ':' at position {start}")
    if rest:
        tokens.append(_word_token(rest, start, field))
        return end
    if query[end : end + 1] != '"':
        raise InvalidArgumentError(
            f"the field filter '{field}:' at position {start} needs a word or a quoted phrase "
            "right after the ':'"
        )
    text, after = _read_phrase(query, end)
    tokens.append(_Token("phrase", start, text, field=field))
    return after


def _word_token(word: str, pos: int, field: str | None) -> _Token:
    """A term token; a trailing '*' makes it a prefix search."""
    if word.endswith("*"):
        return _Token("word", pos, word[:-1], prefix=True, field=field)
    return _Token("word", pos, word, field=field)


class _Parser:
    """Recursive descent; precedence as FTS5: adjacency (implicit AND), then NOT, AND, OR."""

    def __init__(self, tokens: list[_Token], fields: Sequence[str] | None) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0
        self.fields = None if fields is None else frozenset(fields)
        self.field_list = fields

    def parse(self) -> Node:
        """The whole query; anything left over is an unbalanced ')'."""
        node = self.or_expr()
        if self.at < len(self.tokens):
            tok = self.tokens[self.at]
            raise InvalidArgumentError(f"unbalanced ')' at position {tok.pos}")
        return node

    def peek(self) -> _Token | None:
        """The next token, or None at the end."""
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take_op(self, name: str) -> _Token | None:
        """Consume and return the operator `name` when it comes next."""
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text == name:
            self.at += 1
            return tok
        return None

    def or_expr(self) -> Node:
        """and_expr (OR and_expr)*"""
        children = [self.and_expr()]
        while (op := self.take_op("OR")) is not None:
            children.append(self.and_expr(op))
        return _join(Or, children)

    def and_expr(self, after: _Token | None = None) -> Node:
        """not_expr (AND not_expr)*"""
        children = [self.not_expr(after)]
        while (op := self.take_op("AND")) is not None:
            children.append(self.not_expr(op))
        return _join(And, children)

    def not_expr(self, after: _Token | None) -> Node:
        """sequence (NOT sequence)*: `a NOT b` keeps the rows of a that do not match b."""
        children = [self.sequence(after)]
        while (op := self.take_op("NOT")) is not None:
            children.append(Not(self.sequence(op)))
        return _join(And, children)

    def sequence(self, after: _Token | None) -> Node:
        """primary primary*: words side by side must all match."""
        children = [self.primary(after)]
        while (tok := self.peek()) is not None and tok.kind in ("word", "phrase", "("):
            children.append(self.primary(None))
        return _join(And, children)

    def primary(self, after: _Token | None) -> Node:
        """A term, a phrase or a parenthesised query."""
        tok = self.peek()
        if tok is None or tok.kind in ("op", ")"):
            raise self.missing_operand(tok, after)
        self.at += 1
        if tok.kind == "(":
            return self.group(tok)
        return self.leaf(tok)

    def group(self, open_tok: _Token) -> Node:
        """The inside of '(' ... ')'."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidArgumentError(
                f"parentheses nested deeper than {MAX_DEPTH} levels at position {open_tok.pos}"
            )
        if (tok := self.peek()) is not None and tok.kind == ")":
            raise InvalidArgumentError(f"empty parentheses at position {open_tok.pos}")
        node = self.or_expr()
        tok = self.peek()
        if tok is None or tok.kind != ")":
            raise InvalidArgumentError(
                f"unbalanced '(' at position {open_tok.pos}: no matching ')'"
            )
        self.at += 1
        self.depth -= 1
        return node

    def leaf(self, tok: _Token) -> Leaf:
        """A Term or Phrase, with its field checked against the index's fields."""
        if tok.field is not None and self.fields is not None and tok.field not in self.fields:
            known = ", ".join(self.field_list or ())
            raise InvalidArgumentError(
                f"unknown field {tok.field!r} at position {tok.pos}; this index searches: "
                f"{known} (quote the word to search for it as text)"
            )
        if tok.kind == "phrase":
            return Phrase(tok.text, tok.field)
        return Term(tok.text, tok.prefix, tok.field)

    def missing_operand(self, tok: _Token | None, after: _Token | None) -> InvalidArgumentError:
        """The error for an operator or ')' where a term belongs."""
        if tok is not None and tok.kind == "op" and tok.text == "NOT":
            return InvalidArgumentError(
                f"'NOT' at position {tok.pos} needs a term on its left: it removes rows from "
                "what comes before it (write 'a NOT b')"
            )
        if after is not None:
            where = "at the end" if tok is None else f"before position {tok.pos}"
            return InvalidArgumentError(
                f"'{after.text}' at position {after.pos} needs a term after it ({where})"
            )
        if tok is None:
            return InvalidArgumentError("a term is missing at the end of the query")
        if tok.kind == ")":
            return InvalidArgumentError(f"unbalanced ')' at position {tok.pos}")
        return InvalidArgumentError(f"'{tok.text}' at position {tok.pos} needs a term on each side")


def _join(kind: type[And] | type[Or], children: list[Node]) -> Node:
    """One child as itself; otherwise kind(children), flattening nested nodes of the same kind."""
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for child in children:
        if isinstance(child, (And, Or)) and type(child) is kind:
            flat.extend(child.children)
        else:
            flat.append(child)
    return kind(tuple(flat))


def _prune(node: Node) -> Node | None:
    """Drop terms with no searchable character; None when nothing positive is left."""
    if isinstance(node, (Term, Phrase)):
        return node if is_searchable(node.text) else None
    if isinstance(node, Not):
        child = _prune(node.child)
        return None if child is None else Not(child)
    assert isinstance(node, (And, Or))
    kept = [c for c in (_prune(child) for child in node.children) if c is not None]
    if isinstance(node, And) and not any(not isinstance(c, Not) for c in kept):
        return None
    if not kept:
        return None
    return _join(type(node), kept)
