"""Full-text indexes on one shard database (no sockets): upkeep on every write path, builds
beside concurrent writes, FTS5-exact statistics, and scores equal to FTS5's own bm25()."""

from __future__ import annotations

import asyncio
import json
import math

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db4core import search
from db4core.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    TransactionAbortedError,
)
from db4core.hashing import token_for
from db4node import search_index, search_query
from db4node.search_index import SearchDef
from db4node.search_merge import SearchMerger
from db4node.search_query import SearchArgs
from db4node.shard import Op, Shard
from db4node.store import ShardStore

COLL = "articles"


def op(kind: str, doc_id: str, **fields) -> Op:
    body = json.dumps(fields).encode() if fields or kind != "delete" else b""
    return Op(kind, COLL, doc_id, token_for(doc_id), body, None, "$id")


def define(name: str = "text", fields=(("title", 2.0), ("body", 1.0)), tokenizer: str = "porter",
           collection: str = COLL) -> SearchDef:
    return search_index.define(name, collection, list(fields), tokenizer)


def build(shard: Shard, d: SearchDef, chunk: int = search_index.CHUNK) -> int:
    """Run a whole build as the node does, chunk by chunk; documents looked at."""
    if search_index.begin(shard.conn, d):
        return 0
    after, seen = "", 0
    while True:
        last, n = search_index.backfill(shard.conn, d, after, chunk)
        if last is None:
            break
        after, seen = last, seen + n
    search_index.finish(shard.conn, d)
    return seen


def indexed(shard: Shard, d: SearchDef) -> dict[str, tuple]:
    """id -> column values, as the FTS5 table holds them."""
    cols = ", ".join(f"f.c{i}" for i in range(len(d.fields)))
    out: dict[str, tuple] = {}
    for row in shard.conn.execute(
            f"SELECT r.id, {cols} FROM {d.table} f JOIN {d.rows} r ON r.rid = f.rowid"):
        assert row[0] not in out, f"{row[0]} is indexed twice"
        out[row[0]] = tuple(row[1:])
    rows = shard.conn.execute(f"SELECT count(*) FROM {d.rows}").fetchone()[0]
    assert rows == len(out), "the row-number table and the FTS5 table disagree"
    return out


def expected(shard: Shard, d: SearchDef) -> dict[str, tuple]:
    """id -> column values computed from the stored documents."""
    out = {}
    for doc_id, body in shard.conn.execute(
            "SELECT id, body FROM docs WHERE collection = ?", (d.collection,)):
        doc = json.loads(body)
        values = []
        for f in d.fields:
            value = doc
            for seg in f.path.split("."):
                value = value.get(seg) if isinstance(value, dict) else None
            values.append(value if isinstance(value, str) else None)
        out[doc_id] = tuple(values)
    return out


@pytest.fixture
def text(shard) -> SearchDef:
    d = define()
    build(shard, d)
    return d


# ---- upkeep on every write path ------------------------------------------------------------


def test_every_plain_write_kind_keeps_the_index_current(shard, text):
    shard.write([op("create", "a", title="Red fox", body="jumps"),
                 op("create", "b", title="Blue whale", body="swims", n=1)])
    assert indexed(shard, text) == {"a": ("Red fox", "jumps"), "b": ("Blue whale", "swims")}
    shard.write([op("update", "a", body="sleeps")])
    assert indexed(shard, text)["a"] == ("Red fox", "sleeps")
    shard.write([op("replace", "a", title="Grey wolf")])
    assert indexed(shard, text)["a"] == ("Grey wolf", None)
    shard.write([op("upsert", "c", title="Green frog"), op("upsert", "b", title="Orca")])
    assert indexed(shard, text)["c"] == ("Green frog", None)
    assert indexed(shard, text)["b"] == ("Orca", None)
    shard.write([op("increment", "b", n=1)])
    assert indexed(shard, text)["b"] == ("Orca", None)
    shard.write([op("delete", "a")])
    assert indexed(shard, text) == expected(shard, text)
    assert set(indexed(shard, text)) == {"b", "c"}
    # the FTS5 side answers too: no stale tokens of replaced or deleted content
    assert _matching(shard, text, '"fox"') == []
    assert _matching(shard, text, '"orca"') == ["b"]


def test_only_strings_at_the_paths_are_indexed(shard):
    d = define(fields=(("meta.title", 1.0), ("tags", 1.0)))
    build(shard, d)
    shard.write([op("create", "a", meta={"title": "nested words"}, tags=["not", "indexed"]),
                 op("create", "b", meta="not an object", tags=7),
                 op("create", "c")])
    assert indexed(shard, d) == {"a": ("nested words", None), "b": (None, None),
                                 "c": (None, None)}


def test_other_collections_are_not_indexed(shard, text):
    shard.write([Op("create", "other", "x", token_for("x"), b'{"title": "fox"}', None, "$id")])
    assert indexed(shard, text) == {}


def test_a_rolled_back_write_leaves_the_index_unchanged(shard, text):
    shard.write([op("create", "a", title="Red fox")])
    before = indexed(shard, text)
    with pytest.raises(Exception):  # noqa: B017 - the second op fails: the batch rolls back
        shard.write([op("update", "a", title="Changed"), op("create", "a", title="dup")])
    assert indexed(shard, text) == before
    assert _matching(shard, text, '"changed"') == []


def test_commit_prepared_indexes_the_after_images_and_abort_nothing(shard, text):
    shard.write([op("create", "a", title="Red fox"), op("create", "b", title="Blue whale")])
    shard.prepare("t1", [op("update", "a", title="Brown bear"), op("delete", "b"),
                         op("create", "c", title="Green frog")], [], ["s0", "s1"], 2000)
    # prepared only: the index still holds what is committed
    assert indexed(shard, text) == {"a": ("Red fox", None), "b": ("Blue whale", None)}
    assert shard.commit_prepared("t1")
    assert indexed(shard, text) == {"a": ("Brown bear", None), "c": ("Green frog", None)}
    shard.prepare("t2", [op("update", "a", title="Never")], [], ["s0", "s1"], 2000)
    assert shard.abort_prepared("t2")
    assert indexed(shard, text) == {"a": ("Brown bear", None), "c": ("Green frog", None)}


def test_the_index_is_kept_after_the_shard_is_opened_again(tmp_path):
    path = str(tmp_path / "s.db")
    s = Shard("s", path)
    d = define()
    build(s, d)
    s.close()
    s = Shard("s", path)
    try:
        s.write([op("create", "a", title="After reopen")])
        assert indexed(s, d) == {"a": ("After reopen", None)}
        assert search_index.hosted(s.conn) == [d]
    finally:
        s.close()


# ---- builds --------------------------------------------------------------------------------


def test_a_build_indexes_existing_documents_in_chunks(shard):
    shard.write([op("create", f"d{i:03}", title=f"word{i}", body="common") for i in range(250)])
    d = define()
    assert not search_index.begin(shard.conn, d)
    last, seen = search_index.backfill(shard.conn, d, "", 100)
    assert (last, seen) == ("d099", 100)
    assert len(indexed(shard, d)) == 100
    # not ready yet: the build goes on from the start, skipping what is indexed already
    assert build(shard, d) == 250
    assert indexed(shard, d) == expected(shard, d)
    assert search_index.lookup(shard.conn, "text") == (d, True)
    assert search_index.begin(shard.conn, d) is True  # complete: nothing to do


def test_a_build_beside_writes_indexes_every_document_once_with_its_latest_content(shard):
    shard.write([op("create", f"d{i:03}", title=f"old {i}") for i in range(100)])
    d = define()
    search_index.begin(shard.conn, d)
    after, _ = search_index.backfill(shard.conn, d, "", 30)
    assert after == "d029"
    # writes between two chunks, on both sides of the build's position
    shard.write([op("update", "d010", title="new behind"), op("update", "d050", title="new ahead"),
                 op("delete", "d020"), op("delete", "d060"),
                 op("create", "d0005", title="created behind"),
                 op("create", "d0605", title="created ahead"), op("create", "zzz", title="last")])
    while after is not None:
        last, _ = search_index.backfill(shard.conn, d, after, 30)
        if last is None:
            break
        shard.write([op("update", "d070", title=f"moving {last}")])
        after = last
    search_index.finish(shard.conn, d)
    got = indexed(shard, d)
    assert got == expected(shard, d)
    assert got["d010"] == ("new behind", None) and got["d050"] == ("new ahead", None)
    assert "d020" not in got and "d060" not in got and "d0605" in got and "d0005" in got
    assert _matching(shard, d, '"old" AND "10"') == []


def test_a_build_stops_when_its_index_is_dropped_meanwhile(shard):
    shard.write([op("create", f"d{i}", title="x") for i in range(10)])
    d = define()
    search_index.begin(shard.conn, d)
    assert search_index.drop(shard.conn, d.name)
    with pytest.raises(TransactionAbortedError, match="dropped while it was being built"):
        search_index.backfill(shard.conn, d, "", 5)


def test_another_definition_under_the_name_rebuilds_the_index(shard):
    shard.write([op("create", "a", title="Red fox", body="jumps")])
    build(shard, define())
    other = define(fields=(("body", 1.0),), tokenizer="trigram")
    build(shard, other)
    assert indexed(shard, other) == {"a": ("jumps",)}
    assert search_index.hosted(shard.conn) == [other]


def test_drop_removes_tables_triggers_and_definition(shard, text):
    shard.write([op("create", "a", title="Red fox")])
    assert search_index.drop(shard.conn, "text")
    assert not search_index.drop(shard.conn, "text")
    left = shard.conn.execute(
        "SELECT name FROM sqlite_schema WHERE name LIKE 'fts:%'").fetchall()
    assert left == []
    shard.write([op("update", "a", title="still writable")])
    assert search_index.hosted(shard.conn) == []


@pytest.mark.parametrize("bad, message", [
    (dict(name="1x"), "search index name"),
    (dict(fields=()), "names no fields"),
    (dict(fields=(("a..b", 1.0),)), "invalid field path"),
    (dict(fields=(("a", -1.0),)), "positive number"),
    (dict(fields=(("a", 1.0), ("a", 2.0))), "names a field twice"),
    (dict(tokenizer="snowball"), "unknown tokenizer"),
])
def test_bad_definitions_are_invalid_argument(bad, message):
    with pytest.raises(InvalidArgumentError, match=message):
        define(**bad)


# ---- statistics ----------------------------------------------------------------------------


def _fts5_totals(conn: apsw.Connection, d: SearchDef, word: str) -> tuple[int, int]:
    """xRowCount and xColumnTotalSize(-1), straight from FTS5 (on a matching row)."""
    got: list[tuple[int, int]] = []
    conn.register_fts5_function("totals_probe", lambda api, *a: got.append(
        (api.row_count, api.column_total_size(-1))))
    conn.execute(f"SELECT totals_probe({d.table}) FROM {d.table} WHERE {d.table} MATCH ? "
                 "LIMIT 1", (word,)).fetchall()
    return got[0]


def test_stats_equal_fts5s_own_row_and_token_counts(shard, text):
    shard.write([op("create", f"d{i}", title=f"t{i} alpha" * (i % 4 + 1),
                    body="beta gamma " * (i % 7)) for i in range(300)])
    shard.write([op("delete", f"d{i}") for i in range(0, 300, 9)])
    shard.write([op("update", f"d{i}", body="delta") for i in range(1, 300, 11) if i % 9])
    rows, tokens, counts = search_query.stats(shard.conn, "text", ['"alpha"', '{c1} : "beta"',
                                                                   '"delta"', '"nowhere"'])
    assert (rows, tokens) == _fts5_totals(shard.conn, text, '"alpha"')
    assert rows == shard.conn.execute("SELECT count(*) FROM docs").fetchone()[0]
    docs = [json.loads(b) for (b,) in shard.conn.execute("SELECT body FROM docs")]
    assert counts == [
        sum("alpha" in d.get("title", "") for d in docs),
        sum("beta" in d.get("body", "") for d in docs),
        sum(d.get("body") == "delta" for d in docs),
        0,
    ]


def test_stats_of_an_empty_index_are_zero(shard, text):
    assert search_query.stats(shard.conn, "text", ['"x"']) == (0, 0, [0])


# ---- scoring -------------------------------------------------------------------------------


CORPUS = [
    ("d01", "Quick brown fox", "The quick brown fox jumps over the lazy dog"),
    ("d02", "Lazy dog", "A dog sleeps all day; the dog is lazy"),
    ("d03", "Foxes", "Foxes are quick and clever animals, a fox hunts at night"),
    ("d04", "Cats", "Cats are not dogs"),
    ("d05", "Brown bears", "Bears are brown and big"),
    ("d06", "Fox and dog", "fox dog fox dog"),
    ("d07", "Same", "quick fox"),
    ("d08", "Same", "quick fox"),
]


def _own_stats_search(shard: Shard, expression: str, phrases: list[str], **kw):
    rows, tokens, counts = search_query.stats(shard.conn, "text", phrases)
    idf = tuple(search.idf(rows, n) for n in counts)
    args = SearchArgs("text", expression, idf, tokens / rows, **kw)
    return search_query.search(shard.conn, args)


@pytest.fixture
def corpus(shard, text):
    shard.write([op("create", i, title=t, body=b) for i, t, b in CORPUS])
    return text


@pytest.mark.parametrize("expression, phrases", [
    ('"fox"', ['"fox"']),
    ('"fox" "dog"', ['"fox"', '"dog"']),
    ('"quick" OR "lazy"', ['"quick"', '"lazy"']),
    ('{c0} : "fox" OR "bear"', ['{c0} : "fox"', '"bear"']),
    ('"brown fox" OR "dog" NOT "cats"', ['"brown fox"', '"dog"', '"cats"']),
    ('"fo" *', ['"fo" *']),
])
def test_scores_equal_fts5_bm25_given_the_tables_own_statistics(shard, corpus, expression,
                                                                phrases):
    page = _own_stats_search(shard, expression, phrases, limit=100)
    want = shard.conn.execute(
        f"SELECT r.id, -bm25({corpus.table}, 2.0, 1.0) FROM {corpus.table} f "
        f"JOIN {corpus.rows} r ON r.rid = f.rowid WHERE {corpus.table} MATCH ?",
        (expression,)).fetchall()
    assert want, "the expression matches nothing; the comparison would be empty"
    got = {h.id: h.score for h in page.hits}
    assert set(got) == {i for i, _ in want}
    for doc_id, score in want:
        assert abs(got[doc_id] - score) <= 1e-9 * max(1.0, abs(score)), doc_id
    order = [(-h.score, h.id) for h in page.hits]
    assert order == sorted(order), "hits are not by score descending, then id"


@pytest.mark.parametrize("query", ["fox OR title:dog", 'title:"brown fox" OR dog* NOT cats',
                                   "quick fox lazy"])
def test_compiled_queries_score_as_fts5_does(shard, corpus, query):
    compiled = search.compile_query(search.parse_search_query(query), ["title", "body"])
    page = _own_stats_search(shard, compiled.expression, compiled.phrases, limit=100)
    want = dict(shard.conn.execute(
        f"SELECT r.id, -bm25({corpus.table}, 2.0, 1.0) FROM {corpus.table} f "
        f"JOIN {corpus.rows} r ON r.rid = f.rowid WHERE {corpus.table} MATCH ?",
        (compiled.expression,)).fetchall())
    assert want and {h.id: h.score for h in page.hits} == pytest.approx(want, rel=1e-9)


def test_pages_after_a_position_continue_exactly_with_ties_by_id(shard, corpus):
    whole = _own_stats_search(shard, '"fox"', ['"fox"'], limit=100).hits
    assert whole[-1].id in {h.id for h in whole}
    ties = [h for h in whole if h.id in ("d07", "d08")]
    assert ties[0].score == ties[1].score and [h.id for h in ties] == ["d07", "d08"]
    seen, after = [], None
    while True:
        page = _own_stats_search(shard, '"fox"', ['"fox"'], limit=2, after=after)
        seen += [h.id for h in page.hits]
        if not page.has_more:
            break
        after = (page.hits[-1].score, page.hits[-1].id)
    assert seen == [h.id for h in whole]
    assert len(seen) == len(set(seen))


def test_where_filters_the_documents(shard, corpus):
    page = _own_stats_search(shard, '"fox"', ['"fox"'], limit=10, where={"title": "Same"})
    assert [h.id for h in page.hits] == ["d07", "d08"]
    assert json.loads(page.hits[0].body)["$id"] == "d07"


def test_hits_carry_highlights_and_a_snippet(shard, corpus):
    page = _own_stats_search(shard, '"fox"', ['"fox"'], limit=10, where={"title": "Foxes"},
                             marks=("[", "]"), snippet_tokens=4)
    hit = page.hits[0]
    assert hit.highlights == {
        "title": "[Foxes]",
        "body": "[Foxes] are quick and clever animals, a [fox] hunts at night",
    }
    assert hit.snippet.startswith("[Foxes]") and hit.snippet.endswith("\u2026")
    assert len(hit.snippet.split()) == 4


def test_an_unknown_index_is_not_found_naming_it(shard):
    with pytest.raises(NotFoundError, match="'nope'"):
        search_query.stats(shard.conn, "nope", [])
    with pytest.raises(NotFoundError, match="'nope'"):
        search_query.search(shard.conn, SearchArgs("nope", '"x"', (1.0,), 1.0, 10))


def test_an_index_being_built_is_failed_precondition(shard):
    search_index.begin(shard.conn, define())
    with pytest.raises(FailedPreconditionError, match="still being built"):
        search_query.stats(shard.conn, "text", ['"x"'])


@pytest.mark.parametrize("expression, idf, message", [
    ('"fox" AND', (1.0,), "not a valid FTS5 query"),
    ('{c9} : "fox"', (1.0,), "not a valid FTS5 query"),
    ('"fox" "dog"', (1.0,), "2 phrases, 1 IDFs"),
])
def test_bad_expressions_are_invalid_argument(shard, corpus, expression, idf, message):
    with pytest.raises(InvalidArgumentError, match=message):
        search_query.search(shard.conn, SearchArgs("text", expression, idf, 5.0, 10))


def test_bad_figures_are_invalid_argument(shard, corpus):
    for args in (SearchArgs("text", '"fox"', (1.0,), 0.0, 10),
                 SearchArgs("text", '"fox"', (math.nan,), 5.0, 10),
                 SearchArgs("text", '"fox"', (1.0,), 5.0, 0),
                 SearchArgs("text", '"fox"', (1.0,), 5.0, 10, snippet_tokens=65)):
        with pytest.raises(InvalidArgumentError):
            search_query.search(shard.conn, args)


def _matching(shard: Shard, d: SearchDef, expression: str) -> list[str]:
    return [r[0] for r in shard.conn.execute(
        f"SELECT r.id FROM {d.table} f JOIN {d.rows} r ON r.rid = f.rowid "
        f"WHERE {d.table} MATCH ? ORDER BY r.id", (expression,))]


# ---- pages bounded by FTS5's own bm25 ------------------------------------------------------

WORDS = ["fox", "dog", "bear", "cat", "owl", "elk", "yak", "emu"]
QUERIES = ['"fox"', '"dog" "cat"', '"owl" OR "fox"', '"bear cat"', '"yak" NOT "emu"',
           '{c0} : "elk" OR "dog"', '"e" *']


def _phrases(expression: str) -> list[str]:
    compiled = {'"fox"': ['"fox"'], '"dog" "cat"': ['"dog"', '"cat"'],
                '"owl" OR "fox"': ['"owl"', '"fox"'], '"bear cat"': ['"bear cat"'],
                '"yak" NOT "emu"': ['"yak"', '"emu"'],
                '{c0} : "elk" OR "dog"': ['{c0} : "elk"', '"dog"'], '"e" *': ['"e" *']}
    return compiled[expression]


@pytest.fixture
def zoo(shard, text):
    """120 documents of a few words each, word counts and lengths varying widely."""
    import random
    rng = random.Random(5)
    docs = []
    for i in range(120):
        title = " ".join(rng.choices(WORDS, k=rng.randint(0, 3)))
        body = " ".join(rng.choices(WORDS + ["filler"] * 4, k=rng.randint(1, 30)))
        docs.append(op("create", f"z{i:03}", title=title, body=body, n=i % 7))
    shard.write(docs)
    return text


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.sampled_from(QUERIES), idf_scale=st.lists(st.floats(0.05, 20), min_size=3,
                                                          max_size=3),
       avgdl_scale=st.floats(0.3, 3.0), limit=st.integers(1, 9), filtered=st.booleans(),
       few=st.sampled_from([0, search_query.FEW_MATCHES, 1000]),
       by_rowid=st.sampled_from([0, search_query.MARK_BY_ROWID, 1000]))
def test_bounded_pages_equal_scoring_every_match(shard, zoo, query, idf_scale, avgdl_scale,
                                                 limit, filtered, few, by_rowid):
    """Pages computed with the local-bm25 bounds (phrases given) are exactly those computed by
    scoring every match, for corpus-wide figures far from the shard's own, page after page;
    highlights and snippets too (computed with the scores, or after them). Whether a shard
    bounds its matches or scores them all (`few`: FEW_MATCHES 0 always bounds, 1000 never),
    and whether it marks hits by rowid or with a scan, changes nothing."""
    phrases = _phrases(query)
    rows, tokens, counts = search_query.stats(shard.conn, "text", phrases)
    idf = tuple(search.idf(rows * 3, n) * s for n, s in zip(counts, idf_scale, strict=False))
    avgdl = tokens / rows * avgdl_scale
    where = {"n": {"$lt": 4}} if filtered else None

    def pages(bounded: bool) -> list[tuple]:
        out, after = [], None
        while True:
            page = search_query.search(shard.conn, SearchArgs(
                "text", query, idf, avgdl, limit, after, where, marks=("[", "]"),
                snippet_tokens=5, phrases=tuple(phrases) if bounded else ()))
            out += [(h.id, h.score, h.highlights, h.snippet, page.has_more) for h in page.hits]
            if not page.has_more:
                return out
            after = (page.hits[-1].score, page.hits[-1].id)

    everything = pages(False)
    assert everything, f"{query} matches nothing"
    saved = search_query.FEW_MATCHES, search_query.MARK_BY_ROWID
    search_query.FEW_MATCHES, search_query.MARK_BY_ROWID = few, by_rowid
    try:
        assert pages(True) == everything
    finally:
        search_query.FEW_MATCHES, search_query.MARK_BY_ROWID = saved


def test_bounds_score_few_rows_when_the_figures_are_the_shards_own(shard, zoo):
    calls = []
    shard.conn.register_fts5_function(
        search_query.SCORE_FUNCTION,
        lambda api, *a: calls.append(1) or search_query._score(api, *a))
    try:
        rows, tokens, counts = search_query.stats(shard.conn, "text", ['"fox"'])
        args = SearchArgs("text", '"fox"', (search.idf(rows, counts[0]),), tokens / rows, 3,
                          phrases=('"fox"',))
        page = search_query.search(shard.conn, args)
        assert len(page.hits) == 3 and page.has_more
        assert 4 <= len(calls) < counts[0] / 2, (len(calls), counts[0])
    finally:
        search_query.register(shard.conn)


# ---- segment merging ---------------------------------------------------------------------------


def segments(shard: Shard, d: SearchDef) -> int:
    """The index's b-tree segments: each has its rows in the %_idx shadow table."""
    idx = '"' + f"fts:{d.name}_idx".replace('"', '""') + '"'
    return shard.conn.execute(f"SELECT count(DISTINCT segid) FROM {idx}").fetchone()[0]


def written_one_by_one(shard: Shard, n: int, first: int = 0) -> None:
    for i in range(first, first + n):  # a transaction, so a segment, each
        shard.write([op("create", f"m{i:03}", title=f"merge fox {i}", body="quick brown " * i)])


def test_merge_steps_leave_one_segment_and_the_same_pages(shard, text):
    written_one_by_one(shard, 30)
    before_segments = segments(shard, text)
    assert before_segments > 1
    rows, tokens, counts = search_query.stats(shard.conn, "text", ['"fox"'])
    args = SearchArgs("text", '"fox"', (search.idf(rows, counts[0]),), tokens / rows, 7,
                      phrases=('"fox"',))
    before = search_query.search(shard.conn, args)
    steps = 0
    while search_index.merge_step(shard.conn, 1):
        steps += 1
    assert steps >= 1
    assert segments(shard, text) == 1
    assert not search_index.merge_step(shard.conn, 1)  # nothing left: no work reported
    shard.conn.execute(f"INSERT INTO {text.table}({text.table}) VALUES ('integrity-check')")
    after = search_query.search(shard.conn, args)
    assert [(h.id, h.score, h.highlights, h.snippet) for h in after.hits] == \
        [(h.id, h.score, h.highlights, h.snippet) for h in before.hits]
    assert after.has_more == before.has_more


def test_the_merger_merges_a_shard_once_it_is_quiet_and_again_after_writes(tmp_path):
    async def run() -> None:
        store = ShardStore(str(tmp_path))
        try:
            shard = store.get("s0").shard
            d = define()
            build(shard, d)
            written_one_by_one(shard, 30)
            merger = SearchMerger(store, interval_s=60, pages=1)
            assert await merger.run_once() == 0  # written since the last look: not quiet
            assert segments(shard, d) > 1
            assert await merger.run_once() > 0  # quiet for a round: merged
            assert segments(shard, d) == 1
            assert await merger.run_once() == 0  # merged at this position already
            written_one_by_one(shard, 2, first=30)
            assert await merger.run_once() == 0
            assert segments(shard, d) > 1
            assert await merger.run_once() > 0
            assert segments(shard, d) == 1
        finally:
            store.close()

    asyncio.run(run())


def test_a_shard_whose_statistics_differ_from_the_expected_answers_them_instead_of_hits(
        shard, zoo):
    rows, tokens, counts = search_query.stats(shard.conn, "text", ['"fox"'])
    own = (rows, tokens, tuple(counts))
    args = SearchArgs("text", '"fox"', (search.idf(rows * 2, counts[0]),), tokens / rows, 3,
                      phrases=('"fox"',))
    plain = search_query.search(shard.conn, args)
    kept = search_query.search(shard.conn, args, own)
    assert kept.hits and not kept.stale
    assert [(h.id, h.score, h.snippet) for h in kept.hits] == \
        [(h.id, h.score, h.snippet) for h in plain.hits]
    for wrong in [(rows + 1, tokens, own[2]), (rows, tokens - 1, own[2]),
                  (rows, tokens, (counts[0] + 1,))]:
        page = search_query.search(shard.conn, args, wrong)
        assert page.hits == [] and page.stale == {0: own}
    second = apsw.Connection(shard.path)  # the same shard again: another snapshot of it
    search_query.register(second)
    try:
        other = search_query.search_merged([shard.conn, second], args, [own, wrong])
    finally:
        second.close()
    assert other.hits == [] and other.stale == {1: own}


# ---- statistics kept by a read-only connection -------------------------------------------------


def reader_of(shard: Shard) -> tuple[apsw.Connection, list[str]]:
    """A read-only connection to the shard, as a node's readers are, and the statements it
    runs."""
    reader = apsw.Connection(shard.path)
    reader.execute("PRAGMA query_only=1")
    search_query.register(reader)
    statements: list[str] = []
    reader.exec_trace = lambda _cursor, sql, _bindings: statements.append(sql) or True
    return reader, statements


def counts_run(statements: list[str]) -> int:
    return sum("count(*)" in sql and "MATCH" in sql for sql in statements)


def test_a_reader_counts_statistics_once_while_it_sees_no_commit_and_again_after_one(
        shard, zoo):
    reader, statements = reader_of(shard)
    try:
        first = search_query.stats(reader, "text", ['"fox"'])
        assert counts_run(statements) == 1
        statements.clear()
        assert search_query.stats(reader, "text", ['"fox"']) == first
        assert counts_run(statements) == 0
        shard.write([op("create", "fresh", title="fox", body="fox fox")])
        statements.clear()
        after = search_query.stats(reader, "text", ['"fox"'])
        assert counts_run(statements) == 1
        assert after[0] == first[0] + 1 and after[2] == [first[2][0] + 1]
        assert after == search_query.stats(shard.conn, "text", ['"fox"'])
        args = SearchArgs("text", '"fox"', (search.idf(after[0], after[2][0]),),
                          after[1] / after[0], 200, phrases=('"fox"',))
        assert "fresh" in [h.id for h in search_query.search(reader, args).hits]
        shard.write([op("delete", "fresh")])
        assert search_query.stats(reader, "text", ['"fox"']) == first
        assert "fresh" not in [h.id for h in search_query.search(reader, args).hits]
    finally:
        reader.close()


def test_a_connection_that_may_write_keeps_nothing(shard, zoo):
    with shard.conn:
        assert search_query.kept(shard.conn) is None
    before = search_query.stats(shard.conn, "text", ['"owl"'])
    shard.write([op("create", "owl1", title="owl", body="owl")])
    assert search_query.stats(shard.conn, "text", ['"owl"'])[2] == [before[2][0] + 1]


def test_a_quiet_shard_where_no_phrase_matches_runs_no_full_text_statement(shard, zoo):
    reader, statements = reader_of(shard)
    try:
        rows, tokens, counts = search_query.stats(reader, "text", ['"gnu"'])
        assert counts == [0]
        args = SearchArgs("text", '"gnu"', (1.0,), tokens / rows, 5, phrases=('"gnu"',))
        statements.clear()
        page = search_query.search(reader, args, (rows, tokens, (0,)))
        assert page.hits == [] and not page.has_more and not page.stale
        assert not [sql for sql in statements if "MATCH" in sql], statements
    finally:
        reader.close()


def test_statistics_of_very_long_phrases_are_counted_each_time(shard, zoo):
    reader, statements = reader_of(shard)
    long_phrase = '"' + " ".join(["fox"] * 300) + '"'
    assert len(long_phrase) > search_query.KEPT_PHRASE_CHARS
    try:
        first = search_query.stats(reader, "text", [long_phrase])
        statements.clear()
        assert search_query.stats(reader, "text", [long_phrase]) == first
        assert counts_run(statements) == 1
    finally:
        reader.close()
