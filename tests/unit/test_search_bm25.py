"""db4core.search.bm25 against FTS5's own bm25(), on one table and summed over two shards."""

from __future__ import annotations

import json
import math
import random

import apsw
import pytest

from db4core.search import (
    average_size,
    bm25,
    compile_query,
    idf,
    parse_search_query,
    phrase_frequencies,
)

FIELDS = ["title", "body"]
WEIGHTS = (2.5, 0.7)
WORDS = [
    "edge",
    "data",
    "base",
    "store",
    "key",
    "value",
    "fast",
    "slow",
    "node",
    "shard",
    "query",
    "index",
    "row",
    "column",
]
QUERIES = [
    "edge",
    "edge data",
    "edge OR store",
    'title:key OR "key value"',
    "dat* NOT slow",
    "(node OR shard) index",
    "fast OR slow OR edge OR query",
    "body:value title:key",
    "row NOT (column OR edge)",
]


def _documents(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, n)))

    return [(text(6), text(30)) for _ in range(count)]


def _table(rows: list[tuple[str, str]]) -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(c0, c1, tokenize='porter')")
    for row in rows:
        conn.execute("INSERT INTO t(c0, c1) VALUES (?, ?)", row)
    conn.register_fts5_function("row_figures", _row_figures)
    conn.register_fts5_function("size", lambda api, *args: api.column_size(-1))
    return conn


def _row_figures(api: apsw.FTS5ExtensionApi, *args: object) -> str:
    """What the node reads per row: (phrase, column) instances and the row's token count."""
    instances = [
        (phrase, column)
        for phrase in range(api.phrase_count)
        for column, offsets in enumerate(api.phrase_locations(phrase))
        for _ in offsets
    ]
    return json.dumps({"instances": instances, "size": api.column_size(-1)})


def _stats(conn: apsw.Connection, phrases: list[str]) -> tuple[int, int, list[int]]:
    """Rows, tokens and rows per phrase: what SearchStats reports for one shard."""
    sizes = [size for (size,) in conn.execute("SELECT size(t) FROM t")]
    hits = [_count(conn, phrase) for phrase in phrases]
    return len(sizes), sum(sizes), hits


def _count(conn: apsw.Connection, expression: str) -> int:
    return int(
        conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (expression,)).fetchall()[0][0]
    )


def _reference(
    conn: apsw.Connection, expression: str, rows: int, tokens: int, idfs: list[float]
) -> dict[int, float]:
    avgdl = average_size(tokens, rows)
    sql = "SELECT rowid, row_figures(t) FROM t WHERE t MATCH ?"
    scores = {}
    for rowid, figures in conn.execute(sql, (expression,)):
        data = json.loads(figures)
        freqs = phrase_frequencies(map(tuple, data["instances"]), len(idfs), WEIGHTS)
        scores[rowid] = bm25(idfs, freqs, data["size"], avgdl)
    return scores


def _fts5_scores(conn: apsw.Connection, expression: str) -> dict[int, float]:
    sql = "SELECT rowid, bm25(t, ?, ?) FROM t WHERE t MATCH ?"
    return dict(conn.execute(sql, (*WEIGHTS, expression)))


def _close(a: dict[int, float], b: dict[int, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def test_idf_has_fts5s_floor() -> None:
    assert idf(100, 10) == pytest.approx(math.log(90.5 / 10.5))
    assert idf(10, 5) == 1e-6  # ln(1) = 0 is not positive
    assert idf(10, 9) == 1e-6


def test_frequencies_weight_each_instance_by_its_column() -> None:
    assert phrase_frequencies([(0, 0), (0, 1), (1, 1), (0, 0)], 3, (2.0, 0.5)) == [4.5, 0.5, 0.0]
    assert phrase_frequencies([(0, 2)], 1, (2.0,)) == [1.0]  # a column without a weight counts 1


@pytest.mark.parametrize("query", QUERIES)
def test_reference_equals_fts5_bm25_on_one_table(query: str) -> None:
    conn = _table(_documents(60, seed=7))
    compiled = compile_query(parse_search_query(query, FIELDS), FIELDS)
    rows, tokens, hits = _stats(conn, compiled.phrases)
    idfs = [idf(rows, n) for n in hits]
    expected = _fts5_scores(conn, compiled.expression)
    assert expected, f"{query!r} matches no row: the test would prove nothing"
    assert _close(_reference(conn, compiled.expression, rows, tokens, idfs), expected)


@pytest.mark.parametrize("query", QUERIES)
def test_global_figures_from_two_shards_equal_one_table(query: str) -> None:
    documents = _documents(80, seed=11)
    whole = _table(documents)
    shards = [_table(documents[0::3]), _table([d for i, d in enumerate(documents) if i % 3])]
    compiled = compile_query(parse_search_query(query, FIELDS), FIELDS)
    figures = [_stats(shard, compiled.phrases) for shard in shards]
    rows = sum(f[0] for f in figures)
    tokens = sum(f[1] for f in figures)
    idfs = [idf(rows, sum(f[2][i] for f in figures)) for i in range(len(compiled.phrases))]
    merged = [_reference(shard, compiled.expression, rows, tokens, idfs) for shard in shards]
    local = [_fts5_scores(shard, compiled.expression) for shard in shards]
    expected = sorted(_fts5_scores(whole, compiled.expression).values())
    assert sorted([*merged[0].values(), *merged[1].values()]) == pytest.approx(expected, rel=1e-9)
    # Local figures alone would rank differently: the point of the two rounds.
    assert sorted([*local[0].values(), *local[1].values()]) != pytest.approx(expected, rel=1e-9)
