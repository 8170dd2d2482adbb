"""The search query language: grammar, errors with positions, and a property test on real FTS5."""

from __future__ import annotations

import json

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db4core.errors import InvalidArgumentError
from db4core.search import (
    MAX_DEPTH,
    And,
    Compiled,
    Not,
    Or,
    Phrase,
    Term,
    compile_query,
    parse_search_query,
    query_to_fts5,
)

FIELDS = ["title", "body"]


def t(text: str, prefix: bool = False, field: str | None = None) -> Term:
    return Term(text, prefix, field)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("edge", t("edge")),
        ("edge database", And((t("edge"), t("database")))),
        ('"key value"', Phrase("key value")),
        ("data*", t("data", prefix=True)),
        ("title:edge", t("edge", field="title")),
        ('title:"key value"', Phrase("key value", "title")),
        ("body:dat*", t("dat", prefix=True, field="body")),
        ("a AND b", And((t("a"), t("b")))),
        ("a OR b", Or((t("a"), t("b")))),
        ("a NOT b", And((t("a"), Not(t("b"))))),
        ("a and b or not", And((t("a"), t("and"), t("b"), t("or"), t("not")))),
        # FTS5's precedence: adjacency, then NOT, then AND, then OR.
        ("a OR b c", Or((t("a"), And((t("b"), t("c")))))),
        ("a OR b AND c", Or((t("a"), And((t("b"), t("c")))))),
        ("a NOT b c", And((t("a"), Not(And((t("b"), t("c"))))))),
        ("a NOT b AND c", And((t("a"), Not(t("b")), t("c")))),
        ("a NOT b NOT c", And((t("a"), Not(t("b")), Not(t("c"))))),
        ("a NOT b OR c", Or((And((t("a"), Not(t("b")))), t("c")))),
        ("(a OR b) c", And((Or((t("a"), t("b"))), t("c")))),
        ("((a))", t("a")),
        ('"a""b"', And((Phrase("a"), Phrase("b")))),
        ("hello !!! world", And((t("hello"), t("world")))),
        ("a OR ---", t("a")),
        ("a NOT !!!", t("a")),
        ("naïve 東京", And((t("naïve"), t("東京")))),
        ("a\x00b", And((t("a"), t("b")))),
    ],
)
def test_grammar(query: str, tree: object) -> None:
    assert parse_search_query(query, FIELDS) == tree


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "the search query is empty"),
        ("   \t", "the search query is empty"),
        ("x" * 4097, "4097 bytes (UTF-8); at most 4096"),
        ("é" * 2049, "4098 bytes (UTF-8); at most 4096"),
        ("(a OR b", "unbalanced '(' at position 0: no matching ')'"),
        ("a OR b)", "unbalanced ')' at position 6"),
        (")", "unbalanced ')' at position 0"),
        ('a "b c', "unbalanced quote: the '\"' at position 2 is not closed"),
        ("AND", "'AND' at position 0 needs a term on each side"),
        ("a OR", "'OR' at position 2 needs a term after it (at the end)"),
        ("a AND OR b", "'AND' at position 2 needs a term after it (before position 6)"),
        ("NOT b", "'NOT' at position 0 needs a term on its left"),
        ("a OR NOT b", "'NOT' at position 5 needs a term on its left"),
        ("(NOT b)", "'NOT' at position 1 needs a term on its left"),
        ('a ""', "empty phrase at position 2"),
        ('" "', "empty phrase at position 0"),
        ("a ()", "empty parentheses at position 2"),
        ("author:x", "unknown field 'author' at position 0; this index searches: title, body"),
        ("12:30", "unknown field '12' at position 0"),
        (":x", "a field name is missing before ':' at position 0"),
        ("title: x", "the field filter 'title:' at position 0 needs a word or a quoted phrase"),
        ('"a b"*', "'*' at position 5: a prefix search applies to a bare word"),
        ("!!! ???", "the query has no searchable words"),
        ("!!! NOT b", "the query has no searchable words"),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "nested deeper than 16 levels"),
        (42, "the search query must be a string, got int"),
    ],
)
def test_errors(query: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        parse_search_query(query, FIELDS)
    assert message in err.value.message


def test_field_filters_need_fields_to_compile() -> None:
    tree = parse_search_query("title:edge")  # no field list: any name parses
    assert tree == t("edge", field="title")
    with pytest.raises(InvalidArgumentError, match="need the index's list of fields"):
        query_to_fts5(tree)
    with pytest.raises(InvalidArgumentError, match="unknown field 'title'"):
        compile_query(tree, ["body"])


def test_compile_quotes_every_term_and_lists_phrases_in_fts5_order() -> None:
    tree = parse_search_query('title:edge AND (database OR "key value") NOT dat*', FIELDS)
    assert compile_query(tree, FIELDS) == Compiled(
        'c0 : "edge" AND ("database" OR "key value") NOT "dat" *',
        ['c0 : "edge"', '"database"', '"key value"', '"dat" *'],
    )


def test_compile_groups_only_where_fts5_precedence_differs() -> None:
    assert query_to_fts5("a OR b c") == '"a" OR "b" AND "c"'
    assert query_to_fts5("(a OR b) c") == '("a" OR "b") AND "c"'
    assert query_to_fts5("a NOT b c") == '"a" NOT ("b" AND "c")'
    assert query_to_fts5("a NOT (b OR c) NOT d") == '"a" NOT ("b" OR "c") NOT "d"'


def test_user_text_is_never_fts5_syntax() -> None:
    # NEAR, column filters and '^' are FTS5 syntax; here they are only words.
    assert (
        query_to_fts5("NEAR(a b) ^c -d {c0}")
        == '"NEAR" AND "a" AND "b" AND "^c" AND "-d" AND "{c0}"'
    )
    assert query_to_fts5(Term('say "hi"')) == '"say ""hi"""'


def test_hand_built_trees_without_a_positive_term_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="NOT needs a term on its left"):
        query_to_fts5(And((Not(t("a")),)))
    with pytest.raises(InvalidArgumentError, match="NOT needs a term on its left"):
        query_to_fts5(Not(t("a")))
    with pytest.raises(InvalidArgumentError, match="empty Or"):
        query_to_fts5(Or(()))


# --- Property: any text either is refused with InvalidArgumentError or runs on real FTS5 ---

TABLES = [("t", "porter"), ("t_unicode61", "unicode61"), ("t_trigram", "trigram")]
ROWS = [
    ("Edge databases keep data near users", "A key value store at the edge"),
    ("Hello world", "the quick brown fox jumps over the lazy dog"),
    ("東京 naïve café", "data, DATA and more data"),
    ("nothing here", ""),
]


@pytest.fixture(scope="module")
def fts() -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    for table, tokenizer in TABLES:
        conn.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(c0, c1, tokenize='{tokenizer}')")
        for row in ROWS:
            conn.execute(f"INSERT INTO {table}(c0, c1) VALUES (?, ?)", row)
    return conn


PIECES = st.sampled_from(
    [
        "edge",
        "data",
        "hello",
        "東京",
        "café",
        "and",
        "or",
        "not",
        "AND",
        "OR",
        "NOT",
        "NEAR",
        "(",
        ")",
        '"',
        '""',
        "*",
        ":",
        "title:",
        "body:",
        "x:",
        "^",
        "-",
        "+",
        "{",
        "}",
        "!!!",
        " ",
        " ",
        "\t",
        "\x00",
        "é",
        "'",
    ]
)
QUERY_TEXT = st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=30).map("".join))


def _run(fts: apsw.Connection, compiled: Compiled) -> None:
    """Run the expression and each phrase on a table of every tokenizer db4 offers."""
    for table, _ in TABLES:
        sql = f"SELECT rowid, bm25({table}, 2.0, 1.0) FROM {table} WHERE {table} MATCH ?"
        list(fts.execute(sql, (compiled.expression,)))
        for phrase in compiled.phrases:
            list(fts.execute(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?", (phrase,)))


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERY_TEXT)
def test_any_text_is_refused_cleanly_or_runs_on_fts5(fts: apsw.Connection, text: str) -> None:
    try:
        compiled = compile_query(parse_search_query(text, FIELDS), FIELDS)
    except InvalidArgumentError as err:
        assert err.message
        return
    _run(fts, compiled)
    phrase_count = _phrase_count(fts, compiled.expression)
    assert phrase_count in (None, len(compiled.phrases))


def _phrase_count(fts: apsw.Connection, expression: str) -> int | None:
    """FTS5's own phrase count for the expression (None when no row matches)."""
    rows = list(fts.execute("SELECT phrase_count(t) FROM t WHERE t MATCH ?", (expression,)))
    return rows[0][0] if rows else None


@pytest.fixture(scope="module", autouse=True)
def _phrase_count_function(fts: apsw.Connection) -> None:
    fts.register_fts5_function("phrase_count", lambda api, *args: api.phrase_count)


def test_deepest_nesting_allowed_runs_on_fts5(fts: apsw.Connection) -> None:
    shapes = [("a OR (", ")"), ("a NOT (", ") b"), ("title:a b NOT (", ") OR c AND d")]
    for before, after in shapes:
        query = before * MAX_DEPTH + "edge" + after * MAX_DEPTH
        _run(fts, compile_query(parse_search_query(query, FIELDS), FIELDS))


def test_phrase_order_matches_fts5_numbering(fts: apsw.Connection) -> None:
    fts.register_fts5_function(
        "locations",
        lambda api, *args: json.dumps([api.phrase_locations(i) for i in range(api.phrase_count)]),
    )
    query = "title:edge OR (data body:key) OR café OR hello NOT fox"
    compiled = compile_query(parse_search_query(query, FIELDS), FIELDS)
    assert compiled.phrases == ['c0 : "edge"', '"data"', 'c1 : "key"', '"café"', '"hello"', '"fox"']
    sql = "SELECT rowid, locations(t) FROM t WHERE t MATCH ?"
    rows = dict(fts.execute(sql, (compiled.expression,)))
    assert sorted(rows) == [1, 3]  # row 2 has hello and fox
    # FTS5 reports a phrase's hits only where its part of the expression matched ("data" in
    # row 3 is not reported: its AND with body:key fails there), never another phrase's.
    seen = set()
    for i, phrase in enumerate(compiled.phrases):
        alone = {rowid: json.loads(locs)[0] for rowid, locs in fts.execute(sql, (phrase,))}
        for rowid, locs in rows.items():
            hits = json.loads(locs)[i]
            if hits != [[], []]:
                assert hits == alone[rowid], (phrase, rowid)
                seen.add(i)
    assert seen == {0, 1, 2, 3}  # "hello" only in row 2, which "fox" excludes
