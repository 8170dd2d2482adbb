"""Full-text reads of one shard: BM25 statistics, and pages scored with corpus-wide ones.

A search makes two rounds over the shards (db4router/DESIGN.md, "Full-text search"): the router
sums each shard's row count, token count and per-phrase matching rows, then every shard scores
its matching rows with the corpus-wide IDFs and average row length. The scoring is an FTS5
auxiliary function, `db4_score`, registered on every connection of the shard: it reads each
row's phrase hits and length from FTS5 and computes what FTS5's own bm25() would for one index
over the whole collection.

`db4_score` is Python (~10 us a row), FTS5's bm25() is C (~1 us). A page therefore scores
exactly only the rows that can make it, bounded by the local bm25 (`Bounds`):

- With the shard's own figures FTS5 computes, per phrase i, l_i * t(f_i, d, avgdl_l); the
  corpus-wide score is the sum of g_i * t(f_i, d, avgdl_g), the same frequencies f_i and row
  length d. Since t(f, d, a) = f(k1+1) / (f + k1(1-b) + k1 b d / a), and with
  r = avgdl_l / avgdl_g, the corpus-wide term lies between t_l / max(1, r) and t_l / min(1, r).
  So a row's corpus-wide score (positive: -bm25) lies between `low` and `up` times its local
  one, with up = max(g_i / l_i) / min(1, r) and low = min(g_i / l_i) / max(1, r).
- Pass 1 walks the matching rows (with the where) in local-score order, in C, to the k-th
  (k = limit + 1) row that is surely after the cursor (up x local < the cursor's score). The
  k-th best corpus-wide score is then at least T = low x that row's local score. The walk goes
  on while local scores reach T / up, naming those rows: any row below cannot reach T.
- Pass 2 scores exactly, with db4_score, only the rows pass 1 named. The page is the best k.
- Highlights and snippets come last, for the hits of the page only (after the merge of a node's
  shards): FTS5 makes them by tokenizing the row again, which costs more than the score.
- A shard whose phrases match few rows (at most limit + FEW_MATCHES, the sum of its per-phrase
  counts: every hit matches a phrase) skips pass 1 and scores every match: one walk of the
  matches less costs more than scoring a few dozen rows in Python. A shard where no phrase
  matches answers no hits without a statement.

Each search first needs the shard's statistics of its phrases (the router's figures are checked
against them), one count of matches per phrase. A read-only connection keeps them, and the
index's definition, for as long as it sees no commit: `PRAGMA data_version`, read in the
search's snapshot, changes once any other connection has committed, and a query_only connection
commits nothing itself. So a search repeated over a quiet shard counts nothing, and after any
write (or merge, or cleanup) the figures are counted afresh.

With shards of similar content, r and the IDF ratios are close to 1 and pass 2 scores little
more than k rows. Scores stay exactly those of one FTS5 index (tests/integration/
test_search_exact.py); every bound is widened by 1e-9 against rounding.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import apsw

from db4core.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from db4core.query import compile_where
from db4core.search import K1, B, merge_ranked
from db4core.search import idf as fts5_idf
from db4node import search_index
from db4node.queries import PAGE_BYTES
from db4node.search_index import SearchDef
from db4node.sql import scalar, transaction

SCORE_FUNCTION = "db4_score"
T = TypeVar("T")
MAX_SNIPPET_TOKENS = 64  # FTS5's own limit
DEFAULT_SNIPPET_TOKENS = 32
ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Scoring:
    """The corpus-wide figures one page is scored with."""

    idf: tuple[float, ...]
    avgdl: float
    weights: tuple[float, ...]


@dataclass
class Hit:
    """One matching document."""

    id: str
    score: float
    body: str
    highlights: dict[str, str] = field(default_factory=dict)
    snippet: str = ""
    rid: int = -1  # the row in the shard's index, for its marks


# A shard's BM25 statistics of a query: rows, tokens over all rows and columns, and the rows
# each phrase matches (what SearchStats answers).
LocalStats = tuple[int, int, tuple[int, ...]]


@dataclass
class SearchPage:
    """A shard's best hits after a position, best first, and whether more follow; or, when
    `stale` names any shard (by its position among the connections searched), no hits and
    those shards' statistics now, which differ from what the caller expected."""

    hits: list[Hit]
    has_more: bool
    stale: dict[int, LocalStats] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchArgs:
    """What one shard's part of a search page asks for."""

    index: str
    expression: str
    scoring_idf: tuple[float, ...]
    avgdl: float
    limit: int
    after: tuple[float, str] | None = None
    where: dict | None = None
    marks: tuple[str, str] = ("<b>", "</b>")
    snippet_tokens: int = DEFAULT_SNIPPET_TOKENS
    # The expression's phrases, each alone (what SearchStats counts): with them, pages are
    # bounded by FTS5's own bm25 first (see the module's docstring); without, every match is
    # scored exactly.
    phrases: tuple[str, ...] = ()


# Relative widening of every bound against floating-point rounding.
BOUND_SLACK = 1e-9
# Matches (with the where) few enough to score and mark all in one statement.
SMALL_MATCH_SET = 200
# Matches beyond the page's limit + 1 that a shard scores all rather than bound them by a walk
# of its matches in local order first (the module's docstring).
FEW_MATCHES = 64
# Hits of a page a shard marks one by one, each found by its rowid (~0.05-0.1 ms each), rather
# than with a scan of every match (~0.2-0.7 ms for a phrase of common words).
MARK_BY_ROWID = 3
# Statistics and definitions kept per read-only connection (`_Kept`), least recently used out;
# statistics of phrases longer than KEPT_PHRASE_CHARS in all are counted each time instead, so
# a connection keeps at most about 64 KiB.
KEPT_PER_CONNECTION = 64
KEPT_PHRASE_CHARS = 1024


@dataclass(frozen=True)
class Bounds:
    """A row's corpus-wide score (positive) lies within [low, up] x its local one."""

    up: float
    low: float


class PhraseCountError(Exception):
    """The query has another number of phrases than IDFs were given."""


# The scoring of the statement running on this thread: the auxiliary function is called on the
# thread that steps the statement, which set it just before.
_current = threading.local()


def bm25(api: apsw.FTS5ExtensionApi, scoring: Scoring) -> float:
    """The row's score, −(FTS5's bm25) with the given IDFs and avgdl: db4core.search's
    phrase_frequencies and bm25 inlined (this runs for every row scored). Each phrase's hits
    are added column by column, offset by offset: the order in which fts5Bm25Function adds them
    (xInst lists a phrase's hits by position), so its frequencies are the same doubles, and
    each term is computed as FTS5 computes it."""
    if api.phrase_count != len(scoring.idf):
        raise PhraseCountError(f"the expression has {api.phrase_count} phrases, "
                               f"{len(scoring.idf)} IDFs were given")
    weights = scoring.weights
    columns = len(weights)
    d = float(api.column_size(-1))
    score = 0.0
    for i, phrase_idf in enumerate(scoring.idf):
        f = 0.0
        for column, offsets in enumerate(api.phrase_locations(i)):
            if offsets:
                weight = float(weights[column]) if column < columns else 1.0
                for _ in offsets:
                    f += weight
        score += phrase_idf * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * d / scoring.avgdl)))
    return score


def _score(api: apsw.FTS5ExtensionApi, *args: object) -> float:
    scoring = getattr(_current, "scoring", None)
    if scoring is None:
        raise RuntimeError(f"{SCORE_FUNCTION} called outside a search")
    return bm25(api, scoring)


def register(conn: apsw.Connection) -> None:
    """Make db4_score available on a connection (once, when the connection is opened)."""
    conn.register_fts5_function(SCORE_FUNCTION, _score)


@contextlib.contextmanager
def _scoring(scoring: Scoring) -> Iterator[None]:
    _current.scoring = scoring
    try:
        yield
    finally:
        _current.scoring = None


# ---- kept per connection -----------------------------------------------------------------------


@dataclass
class _Kept:
    """What one read-only connection computed in snapshots of one data version."""

    version: int
    entries: OrderedDict = field(default_factory=OrderedDict)


_kept: weakref.WeakKeyDictionary[apsw.Connection, _Kept] = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def kept(conn: apsw.Connection) -> OrderedDict | None:
    """The entries this connection keeps for its current snapshot (call it inside the read
    transaction: the pragma starts the snapshot when nothing has yet), emptied when the
    connection has seen a commit since they were made; None for a connection that may write,
    whose own commits would not show."""
    if not scalar(conn, "PRAGMA query_only"):
        return None
    version = int(scalar(conn, "PRAGMA data_version"))
    with _kept_lock:
        found = _kept.get(conn)
        if found is None or found.version != version:
            found = _Kept(version)
            _kept[conn] = found
    return found.entries


def _remembered(entries: OrderedDict | None, key: tuple, make: Callable[[], T]) -> T:
    """entries[key], made (and kept, the least recently used dropped) when missing."""
    if entries is None:
        return make()
    if key in entries:
        entries.move_to_end(key)
        return entries[key]
    value = make()
    entries[key] = value
    while len(entries) > KEPT_PER_CONNECTION:
        entries.popitem(last=False)
    return value


# ---- statistics --------------------------------------------------------------------------------


def stats(conn: apsw.Connection, name: str, phrases: Sequence[str]) -> tuple[int, int, list[int]]:
    """(rows, tokens over all rows and columns, rows matching each phrase), one snapshot."""
    with transaction(conn, "BEGIN"):
        entries = kept(conn)
        rows, tokens, counts = local_stats(conn, ready_index(conn, name, entries), phrases,
                                           entries)
    return rows, tokens, list(counts)


def local_stats(conn: apsw.Connection, d: SearchDef, phrases: Sequence[str],
                entries: OrderedDict | None = None) -> LocalStats:
    """The shard's statistics of the phrases, in the caller's snapshot (`entries`: what the
    connection keeps for that snapshot, see `kept`)."""

    def count() -> LocalStats:
        rows, tokens = totals(conn, d)
        return rows, tokens, tuple(_match_count(conn, d, p) for p in phrases)

    if entries is None or sum(len(p) for p in phrases) > KEPT_PHRASE_CHARS:
        return count()
    return _remembered(entries, ("stats", d.name, tuple(phrases)), count)


def totals(conn: apsw.Connection, d: SearchDef) -> tuple[int, int]:
    """FTS5's own row count and total token count (what xRowCount and xColumnTotalSize(-1)
    return): the averages record of the index, rowid 1 of its data table, holds the row count
    then each column's token total, as varints."""
    data = '"' + f"fts:{d.name}_data".replace('"', '""') + '"'
    row = conn.execute(f"SELECT block FROM {data} WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return 0, 0
    values = _varints(bytes(row[0]))
    return values[0], sum(values[1:1 + len(d.fields)])


def _varints(blob: bytes) -> list[int]:
    """SQLite's varints (big-endian 7-bit groups; a 9th byte carries 8 bits) in a blob."""
    out: list[int] = []
    i = 0
    while i < len(blob):
        value = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        out.append(value)
    return out


def _match_count(conn: apsw.Connection, d: SearchDef, expression: str) -> int:
    with _fts_errors(expression):
        return int(scalar(conn, f"SELECT count(*) FROM {d.table} WHERE {d.table} MATCH ?",
                          (expression,)))


# ---- pages -------------------------------------------------------------------------------------


def search(conn: apsw.Connection, args: SearchArgs,
           expect: LocalStats | None = None) -> SearchPage:
    """Up to `limit` hits strictly after `after`, by score descending then id, in one snapshot;
    each with its document, per-field highlights and a snippet. With `expect` (the statistics
    the figures were summed from), a shard whose own differ answers them instead (`stale`)."""
    return search_merged([conn], args, [expect])


def search_merged(conns: list[apsw.Connection], args: SearchArgs,
                  expect: Sequence[LocalStats | None] | None = None) -> SearchPage:
    """`search` on several shards (in turn, each in its own snapshot, all held until the page
    is marked), their pages merged into the best `limit` hits. Only the hits of the merged page
    get highlights and a snippet: FTS5 makes them by tokenizing the row again, which costs more
    than scoring it. `expect[i]`, when given, is what conns[i]'s statistics must be."""
    check_args(args)
    expect = list(expect) if expect is not None else [None] * len(conns)
    if len(expect) != len(conns):
        raise ValueError("one expectation per connection")
    with contextlib.ExitStack() as stack:
        ranked: list[tuple[apsw.Connection, SearchDef, SearchPage]] = []
        stale: dict[int, LocalStats] = {}
        for i, conn in enumerate(conns):
            stack.enter_context(transaction(conn, "BEGIN"))
            entries = kept(conn)
            d = ready_index(conn, args.index, entries)
            own = local_stats(conn, d, args.phrases, entries)
            if expect[i] is not None and own != expect[i]:
                stale[i] = own
            if not stale:  # once any is stale no page is made; the others are still checked
                ranked.append((conn, d, _ranked(conn, d, args, own)))
        if stale:
            return SearchPage([], False, stale)
        hits, more = merge_ranked([(page.hits, page.has_more) for _, _, page in ranked],
                                  args.limit, key=lambda h: (-h.score, h.id), size=_hit_size,
                                  max_bytes=PAGE_BYTES)
        chosen = {id(h) for h in hits}
        for conn, d, page in ranked:
            _mark(conn, d, args, [h for h in page.hits if id(h) in chosen])
    size = 0
    for n, hit in enumerate(hits):
        size += _hit_size(hit)
        if n and size > PAGE_BYTES:
            return SearchPage(hits[:n], True)  # the rest would not fit: asked for again
    return SearchPage(hits, more)


def _hit_size(hit: Hit) -> int:
    return len(hit.body) + sum(len(h) for h in hit.highlights.values()) + len(hit.snippet)


def _ranked(conn: apsw.Connection, d: SearchDef, args: SearchArgs,
            own: LocalStats) -> SearchPage:
    """A shard's best limit hits after the position, scored exactly, without marks (`own`:
    its statistics of args.phrases)."""
    if args.phrases and not any(own[2]):
        return SearchPage([], False)  # every hit matches a phrase: none here
    few = args.phrases and sum(own[2]) <= args.limit + FEW_MATCHES
    candidates = None if few else _candidates(conn, d, args, own)
    sql, params = _page_sql(d, args, candidates)
    with _scoring(Scoring(args.scoring_idf, args.avgdl, d.weights)), \
            _fts_errors(args.expression):
        try:
            found = list(conn.execute(sql, params))
        except PhraseCountError as err:
            raise InvalidArgumentError(f"idf does not fit the expression: {err}") from None
    hits = [Hit(doc_id, score, body, rid=rid) for rid, doc_id, body, score in found[:args.limit]]
    return SearchPage(hits, len(found) > args.limit)


def bounds(args: SearchArgs, own: LocalStats) -> Bounds | None:
    """How far a row's corpus-wide score can be from its local one (`own`: the shard's
    statistics of args.phrases); None without phrases or rows (then every match is scored)."""
    if not args.phrases or len(args.phrases) != len(args.scoring_idf):
        return None
    rows, tokens, counts = own
    if rows <= 0 or tokens <= 0:
        return None
    local_idf = [fts5_idf(rows, n) for n in counts]
    ratios = [g / local for g, local in zip(args.scoring_idf, local_idf, strict=True)]
    r = (float(tokens) / float(rows)) / args.avgdl
    return Bounds(up=max(ratios) / min(1.0, r) * (1 + BOUND_SLACK),
                  low=min(ratios) / max(1.0, r) * (1 - BOUND_SLACK))


def _candidates(conn: apsw.Connection, d: SearchDef, args: SearchArgs,
                own: LocalStats) -> list[int] | None:
    """The rows (rowids) that can make the page: every row whose local score (-bm25 with the
    shard's own figures) reaches the floor of pass 1 in the module's docstring; None when every
    match must be scored."""
    b = bounds(args, own)
    if b is None or b.up <= 0 or b.low <= 0:
        return None
    after_score = args.after[0] if args.after is not None else None
    where_sql, where_params = compile_where(args.where, "d.body")
    local = f"-bm25({d.table}, {', '.join('?' * len(d.weights))})"
    sql = (f"SELECT {d.table}.rowid, {local} AS pl FROM {d.table} "
           f"CROSS JOIN {d.rows} r ON r.rid = {d.table}.rowid "
           f"CROSS JOIN docs d ON d.collection = ? AND d.id = r.id "
           f"WHERE {d.table} MATCH ? AND {where_sql} ORDER BY pl DESC"
           if args.where else
           f"SELECT rowid, {local} AS pl FROM {d.table} WHERE {d.table} MATCH ? "
           "ORDER BY pl DESC")
    params = ([*d.weights, d.collection, args.expression, *where_params] if args.where
              else [*d.weights, args.expression])
    wanted = args.limit + 1
    seen = 0
    floor: float | None = None
    rows: list[int] = []
    with _fts_errors(args.expression):
        cursor = conn.execute(sql, params)
        try:
            for rid, pl in cursor:
                if floor is not None:
                    if pl < floor:
                        return rows
                    rows.append(rid)
                    continue
                rows.append(rid)
                if after_score is not None and pl * b.up >= after_score:
                    continue  # may rank before the cursor: not surely on this page or after
                seen += 1
                if seen == wanted:
                    # The k-th best corpus-wide score is at least low x pl: a row whose local
                    # score is under floor cannot reach it.
                    floor = pl * b.low / b.up * (1 - BOUND_SLACK)
        finally:
            cursor.close()
    # Every match walked: each is a candidate, named when they are few.
    return rows if len(rows) <= SMALL_MATCH_SET else None


def check_args(args: SearchArgs) -> None:
    """Raise InvalidArgumentError for figures no router would send."""
    if not args.expression:
        raise InvalidArgumentError("the search expression is empty")
    if not (args.avgdl > 0 and math.isfinite(args.avgdl)):
        raise InvalidArgumentError(f"avgdl must be a positive number, got {args.avgdl}")
    if not all(math.isfinite(x) for x in args.scoring_idf):
        raise InvalidArgumentError("every idf must be a finite number")
    if args.limit < 1:
        raise InvalidArgumentError(f"limit must be at least 1, got {args.limit}")
    if not 1 <= args.snippet_tokens <= MAX_SNIPPET_TOKENS:
        raise InvalidArgumentError(
            f"snippet_tokens must be 1 to {MAX_SNIPPET_TOKENS}, got {args.snippet_tokens}")


def _page_sql(d: SearchDef, args: SearchArgs,
              candidates: list[int] | None = None) -> tuple[str, list]:
    """The page statement: every match (of `candidates`, when given) scored once (a
    materialized CTE), joined to its document, filtered by `where` and the position, ordered
    and limited to limit + 1."""
    where_sql, where_params = compile_where(args.where, "d.body")
    after_sql, after_params = "1", []
    if args.after is not None:
        score, doc_id = args.after
        # The same double the previous page returned: compared exactly, never rounded.
        after_sql = "(m.score < ? OR (m.score = ? AND r.id > ?))"
        after_params = [score, score, doc_id]
    only_sql, only_params = _only(candidates)
    sql = (
        f"WITH m AS MATERIALIZED (SELECT rowid AS rid, {SCORE_FUNCTION}({d.table}) AS score "
        f"FROM {d.table} WHERE {d.table} MATCH ?{only_sql}) "
        # CROSS JOIN keeps this order: left to itself the planner may scan the collection's
        # documents and probe the matches, costing the whole collection for a rare term.
        f"SELECT m.rid, r.id, d.body, m.score FROM m "
        f"CROSS JOIN {d.rows} r ON r.rid = m.rid "
        f"CROSS JOIN docs d ON d.collection = ? AND d.id = r.id "
        f"WHERE {where_sql} AND {after_sql} ORDER BY m.score DESC, r.id LIMIT ?")
    return sql, [args.expression, *only_params, d.collection, *where_params, *after_params,
                 args.limit + 1]


def _only(rowids: list[int] | None) -> tuple[str, list]:
    """A filter of the match scan to some rows. `+rowid` keeps SQLite from handing the IN to
    FTS5, which would run the whole query again for each row (~0.1 ms a row); checked on the
    scan, it costs a lookup in a list built once."""
    if rowids is None:
        return "", []
    return " AND +rowid IN (SELECT value FROM json_each(?))", [json.dumps(rowids)]


def _mark(conn: apsw.Connection, d: SearchDef, args: SearchArgs, hits: list[Hit]) -> None:
    """Fill the hits' highlights (string fields only) and snippets, all of one shard: a few
    hits (at most MARK_BY_ROWID) each by its rowid, which FTS5 finds by seeking its lists,
    more with one more scan of the matches."""
    if not hits:
        return
    opening, closing = args.marks
    cols = [f"highlight({d.table}, {i}, ?, ?)" for i in range(len(d.fields))]
    cols.append(f"snippet({d.table}, -1, ?, ?, ?, ?)")
    params = [opening, closing] * len(d.fields) + [opening, closing, ELLIPSIS,
                                                    args.snippet_tokens]
    select = f"SELECT rowid, {', '.join(cols)} FROM {d.table} WHERE {d.table} MATCH ?"
    by_rid = {h.rid: h for h in hits}
    with _fts_errors(args.expression):
        if len(hits) <= MARK_BY_ROWID:
            rows = [row for h in hits for row in conn.execute(
                f"{select} AND rowid = ?", [*params, args.expression, h.rid])]
        else:
            only_sql, only_params = _only([h.rid for h in hits])
            rows = list(conn.execute(f"{select}{only_sql}",
                                     [*params, args.expression, *only_params]))
    for rid, *values in rows:
        hit = by_rid[rid]
        hit.highlights = {f.path: text for f, text in zip(d.fields, values[:-1], strict=True)
                          if text is not None}
        hit.snippet = values[-1] or ""


# ---- shared --------------------------------------------------------------------------------


def ready_index(conn: apsw.Connection, name: str,
                entries: OrderedDict | None = None) -> SearchDef:
    """The definition of a complete index hosted here; NOT_FOUND or FAILED_PRECONDITION
    (`entries`: what the connection keeps for its snapshot, see `kept`)."""
    found = _remembered(entries, ("index", name), lambda: search_index.lookup(conn, name))
    if found is None:
        raise NotFoundError(f"search index {name!r} does not exist on this shard")
    d, ready = found
    if not ready:
        raise FailedPreconditionError(
            f"search index {name!r} is still being built on this shard; try again once "
            "create_search_index has finished")
    return d


@contextlib.contextmanager
def _fts_errors(expression: str) -> Iterator[None]:
    """An expression FTS5 rejects is INVALID_ARGUMENT naming it."""
    try:
        yield
    except apsw.SQLError as err:
        text = str(err)
        if "fts5" not in text and "no such column" not in text:
            raise
        raise InvalidArgumentError(
            f"search expression {expression[:200]!r} is not a valid FTS5 query "
            f"({text.removeprefix('SQLError: ')})") from None
