"""Query semantics shared by node, router and client: filters, sort orders, cursors, limits.

Pure Python: imports neither grpc nor apsw. See README.md in this package for the semantics.
"""

from db4core.query.cursor import decode_cursor, encode_cursor, query_fingerprint
from db4core.query.filters import compile_where, matches
from db4core.query.limits import DEFAULT_LIMIT, MAX_LIMIT, validate_limit
from db4core.query.parse import parse_where
from db4core.query.paths import MISSING, SYSTEM_FIELDS, json_path, sql_json_path, validate_path
from db4core.query.rangescan import bound_position, compile_index_page, index_ddl, index_sql_name
from db4core.query.select import compile_count, compile_find
from db4core.query.sortkey import (
    TYPE_ORDER,
    check_sort_values,
    compile_order,
    keyset_predicate,
    sort_key,
    sort_values,
    validate_sort,
    values_key,
)
from db4core.query.wire import decode_where, sort_pairs

__all__ = [
    "decode_where",
    "sort_pairs",
    "bound_position",
    "compile_index_page",
    "index_ddl",
    "index_sql_name",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MISSING",
    "SYSTEM_FIELDS",
    "TYPE_ORDER",
    "check_sort_values",
    "compile_count",
    "compile_find",
    "compile_order",
    "compile_where",
    "decode_cursor",
    "encode_cursor",
    "json_path",
    "keyset_predicate",
    "matches",
    "parse_where",
    "query_fingerprint",
    "sort_key",
    "sort_values",
    "sql_json_path",
    "validate_limit",
    "validate_path",
    "validate_sort",
    "values_key",
]
