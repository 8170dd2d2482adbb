"""SQL fragments with their bound parameters, and JSON locations inside a document column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

Frag = tuple[str, list[Any]]

TRUE: Final[Frag] = ("1", [])
FALSE: Final[Frag] = ("0", [])

_TOKEN: Final = re.compile(r"(\{[TVSF]\}|\?)")
_PATH_UNSAFE: Final = frozenset('"\\')
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True, slots=True)
class Loc:
    """A JSON value inside a row: the JSON path `path` (bound) within the JSON text `base`.

    `row` names a json_each alias whose current row is exactly this value; its type and value
    columns are then used directly.
    """

    base: str
    path: str
    row: str | None = None

    def expr(self, part: str) -> Frag:
        """Return SQL for part T (json type), V (scalar value) or S (json_each arguments)."""
        if part == "S":
            return f"{self.base}, ?", [self.path]
        if self.row is not None:
            return f"{self.row}.{'type' if part == 'T' else 'value'}", []
        function = "json_type" if part == "T" else "json_extract"
        return f"{function}({self.base}, ?)", [self.path]

    def member(self, key: str | int) -> Loc:
        """Return the location of an object member or array element of this value."""
        return Loc(self.base, self.path + path_label(key))


def column_loc(column: str, json_path: str) -> Loc:
    """Return the location of a JSON path inside a JSON text column."""
    return Loc(column, json_path)


def each_loc(alias: str) -> Loc:
    """Return the location of the current row of `json_each(...) AS alias`."""
    # For a text element `value` is the raw string, which is not JSON; only containers are
    # handed to the JSON functions, so 'abc' can never raise "malformed JSON".
    base = f"iif({alias}.type IN ('object', 'array'), {alias}.value, '[]')"
    return Loc(base, "$", alias)


def path_label(key: str | int) -> str:
    """Return the JSON path step for an array index or for any object key, escaped."""
    if isinstance(key, int):
        return f"[{key}]"
    # A quoted label ends at the first '"', and a path is a C string; SQLite decodes JSON
    # escapes in a label that holds a backslash, so every awkward character becomes \uXXXX.
    return '."' + "".join(_escape(char) for char in key) + '"'


def _escape(char: str) -> str:
    """Return one key character as it may appear inside a quoted path label."""
    code = ord(char)
    if char not in _PATH_UNSAFE and code >= 0x20:
        return char
    return f"\\u{code:04x}"


def render(template: str, loc: Loc | None = None, *args: Any) -> Frag:
    """Fill {T}/{V}/{S} from loc, '?' from the next arg, {F} from the next arg (a Frag)."""
    sql: list[str] = []
    params: list[Any] = []
    pending = iter(args)
    for piece in _TOKEN.split(template):
        if piece in ("{T}", "{V}", "{S}", "{F}"):
            frag_sql, frag_params = next(pending) if piece == "{F}" else _loc_expr(loc, piece)
            sql.append(frag_sql)
            params.extend(frag_params)
        else:
            if piece == "?":
                params.append(next(pending))
            sql.append(piece)
    return "".join(sql), params


def _loc_expr(loc: Loc | None, piece: str) -> Frag:
    """Return the expression a {T}/{V}/{S} placeholder stands for."""
    if loc is None:
        raise ValueError(f"template uses {piece} without a location")
    return loc.expr(piece[1])


def join(op: str, frags: list[Frag], empty: Frag) -> Frag:
    """Join fragments with AND/OR as a balanced tree (SQLite caps expression depth at 1000)."""
    if not frags:
        return empty
    if len(frags) == 1:
        return frags[0]
    middle = len(frags) // 2
    left = join(op, frags[:middle], empty)
    right = join(op, frags[middle:], empty)
    return render(f"({{F}} {op} {{F}})", None, left, right)


def all_of(frags: list[Frag]) -> Frag:
    """AND of fragments; TRUE when there are none."""
    return join("AND", frags, TRUE)


def any_of(frags: list[Frag]) -> Frag:
    """OR of fragments; FALSE when there are none."""
    return join("OR", frags, FALSE)


def negate(frag: Frag) -> Frag:
    """NOT of a fragment that never evaluates to NULL."""
    return render("(NOT {F})", None, frag)


def check_column(column: str) -> str:
    """Return column if it is a plain (optionally table-qualified) identifier."""
    if not _IDENTIFIER.fullmatch(column):
        raise ValueError(f"not a plain SQL identifier: {column!r}")
    return column
