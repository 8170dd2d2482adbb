"""Full-text search queries shared by node, router and client: parse, compile to FTS5, score.

Pure Python: imports neither grpc nor apsw. See README.md in this package for the language.
"""

from db4core.search.bm25 import K1, MIN_IDF, B, average_size, bm25, idf, phrase_frequencies
from db4core.search.compile import (
    Compiled,
    compile_query,
    fts5_column,
    fts5_string,
    query_to_fts5,
)
from db4core.search.merge import merge_ranked
from db4core.search.parse import MAX_DEPTH, MAX_QUERY_BYTES, OPERATORS, parse_search_query
from db4core.search.tree import And, Node, Not, Or, Phrase, Term, is_searchable

__all__ = [
    "B",
    "K1",
    "MAX_DEPTH",
    "MAX_QUERY_BYTES",
    "MIN_IDF",
    "OPERATORS",
    "And",
    "Compiled",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Term",
    "average_size",
    "bm25",
    "compile_query",
    "fts5_column",
    "fts5_string",
    "idf",
    "is_searchable",
    "merge_ranked",
    "parse_search_query",
    "phrase_frequencies",
    "query_to_fts5",
]
