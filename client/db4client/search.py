"""The search query language, as the router applies it: parse and compile queries locally.

    from db4client.search import parse_search_query, query_to_fts5
    tree = parse_search_query('title:edge AND (database OR "key value")')
    query_to_fts5(tree, fields=["title", "body"])  # 'c0 : "edge" AND ("database" OR ...)'
"""

from db4core.search import (
    And,
    Compiled,
    Node,
    Not,
    Or,
    Phrase,
    Term,
    compile_query,
    parse_search_query,
    query_to_fts5,
)

__all__ = ["And", "Compiled", "Node", "Not", "Or", "Phrase", "Term", "compile_query",
           "parse_search_query", "query_to_fts5"]
