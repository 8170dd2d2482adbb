"""Bad input is InvalidArgumentError in the shared rules (documents, filters, wire rules, SDK).

The same functions run in the SDK (before sending) and in router and node (on raw bytes), so
each rule is checked here on both the encode (Python value) and the decode (JSON text) side.
"""

from __future__ import annotations

import json
import re

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from db4.v1 import node_pb2, router_pb2
from db4client import _wire
from db4core import documents
from db4core.errors import InvalidArgumentError
from db4core.query import compile_where, matches, parse_where
from db4core.query.values import INT64_MAX, INT64_MIN
from db4rpc.decoding import rule_violation

# ---- lone surrogates -----------------------------------------------------------------------

SURROGATE_VALUES = [
    {"a": "\ud800"},
    {"a": ["ok", {"b": "x\udfffy"}]},
    {"\udc00": 1},
    {"$type": "\ud800"},
]


@pytest.mark.parametrize("doc", SURROGATE_VALUES)
def test_encode_refuses_lone_surrogates(doc: dict) -> None:
    with pytest.raises(InvalidArgumentError, match="lone UTF-16 surrogate"):
        documents.encode(doc)


@pytest.mark.parametrize("text", [
    b'{"a": "\\ud800"}', b'{"a": ["\\udfff"]}', b'{"\\uDBFF": 1}', b'{"a": "\\ud800\\ud800"}',
])
def test_decode_refuses_lone_surrogate_escapes(text: bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="lone UTF-16 surrogate"):
        documents.decode(text)


def test_decode_keeps_surrogate_pairs_and_escaped_backslashes() -> None:
    assert documents.decode(b'{"a": "\\ud83d\\ude00"}') == {"a": "😀"}
    assert documents.decode(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}


# ---- duplicate keys ------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}', '{"$id": "x", "$id": "y"}', '{"n": {"k": 1, "k": 1}}', '[{"z": 0, "z": 0}]',
])
def test_decode_refuses_a_key_given_twice(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="appears twice"):
        documents.decode(text)


# ---- U+0000 in field names ---------------------------------------------------------------

@pytest.mark.parametrize("doc", [{"a\x00b": 5}, {"n": {"\x00": 1}}, {"l": [{"k\x00": 1}]}])
def test_nul_in_field_names_is_refused_at_any_depth(doc: dict) -> None:
    with pytest.raises(InvalidArgumentError, match="U\\+0000"):
        documents.encode(doc)
    with pytest.raises(InvalidArgumentError, match="U\\+0000"):
        documents.decode(json.dumps(doc))


def test_nul_in_string_values_is_kept() -> None:
    assert documents.decode(documents.encode({"a": "x\x00y"})) == {"a": "x\x00y"}


# ---- integers ------------------------------------------------------------------------------

def test_huge_integers_are_invalid_argument_not_value_error() -> None:
    for n in (10**5000, -(10**5000), 10**309):
        with pytest.raises(InvalidArgumentError, match="beyond the range of a double"):
            documents.encode({"n": n})
    for text in (b'{"n": 1' + b"0" * 4999 + b"}", b'{"n": -1' + b"0" * 400 + b"}"):
        with pytest.raises(InvalidArgumentError, match="beyond the range of a double"):
            documents.decode(text)


def test_a_long_integer_is_refused_wherever_it_sits_in_a_long_document() -> None:
    """The digit run is looked for only in text holding 309 digits at all (a cheap count
    first): a run after kilobytes of text, in str or bytes, is found all the same."""
    pad = "p" * 5000
    for where in ("first", "last"):
        n = "-1" + "0" * 309
        body = {"n": "N", "pad": pad} if where == "last" else {"pad": pad, "n": "N"}
        text = json.dumps(body).replace('"N"', n)
        for raw in (text, text.encode()):
            with pytest.raises(InvalidArgumentError, match="beyond the range of a double"):
                documents.decode(raw)
    # 309 digits spread over the text, none in a run of 309, are plain numbers.
    spread = json.dumps({f"k{i}": 10**20 + i for i in range(20)} | {"pad": pad})
    assert documents.decode(spread)["k3"] == 10**20 + 3
    assert documents.decode('{"s": "' + "9" * 400 + '", "pad": "' + pad + '"}')["s"] == "9" * 400


# The single regular expression the strict read used to search every text with.
_ONE_PATTERN = r"\\u(?:[dD][89a-fA-F]|0000)|[0-9]{309}"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.sampled_from(
    ["", "a", "\\u", "\\ud800", "\\uDc00", "\\u0000", "\\u00e9", "é", " ", "\\\\u"])),
    max_size=6))
def test_the_quick_suspect_check_finds_what_one_regular_expression_found(parts) -> None:
    """Runs of digits with escapes and text between them, as str and as bytes."""
    text = "".join("7" * n + between for n, between in parts)
    for raw, pattern in ((text, re.compile(_ONE_PATTERN)),
                         (text.encode(), re.compile(_ONE_PATTERN.encode()))):
        assert documents._suspect(raw) == bool(pattern.search(raw)), raw


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32"])
def test_json_bytes_in_utf_16_or_32_get_the_same_checks(encoding: str) -> None:
    """JSON may come as UTF-16 or UTF-32 bytes (json.detect_encoding); the escapes and digit
    runs are looked for in the text, not in the bytes, where they hide between NULs."""
    with pytest.raises(InvalidArgumentError, match="lone UTF-16 surrogate"):
        documents.decode('{"s": "\\ud800"}'.encode(encoding))
    with pytest.raises(InvalidArgumentError, match="beyond the range of a double"):
        documents.decode(('{"n": 1' + "0" * 400 + "}").encode(encoding))
    assert documents.decode('{"s": "\\ud83d\\ude00"}'.encode(encoding)) == {"s": "😀"}


def test_integers_beyond_64_bits_within_a_double_are_stored_exactly() -> None:
    for n in (2**64 + 1, -(2**63) - 1, 10**300):
        assert documents.decode(documents.encode({"n": n})) == {"n": n}


EDGE_DOCS = [INT64_MIN - 1, INT64_MIN, INT64_MIN + 1, INT64_MAX, INT64_MAX + 1, 2**64 + 1,
             -(2**64) - 1, 2.0**64, -(2.0**63), 10**300, 1.5]


@pytest.fixture(scope="module")
def edges() -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE docs(id TEXT, body TEXT)")
    for i, n in enumerate(EDGE_DOCS):
        conn.execute("INSERT INTO docs VALUES(?, ?)", (str(i), json.dumps({"n": n, "l": [n]})))
    return conn


def _sql_ids(conn: apsw.Connection, where: dict) -> set[int]:
    sql, params = compile_where(where)
    return {int(i) for (i,) in conn.execute(f"SELECT id FROM docs WHERE {sql}", params)}


def _py_ids(where: dict) -> set[int]:
    return {i for i, n in enumerate(EDGE_DOCS) if matches({"n": n, "l": [n]}, where)}


@pytest.mark.parametrize(("where", "expected"), [
    ({"n": INT64_MIN}, {1, 8}),
    ({"n": {"$lt": INT64_MIN}}, {0, 6}),
    ({"n": {"$gte": INT64_MIN}}, {1, 2, 3, 4, 5, 7, 8, 9, 10}),
    ({"n": {"$in": [INT64_MIN, INT64_MAX]}}, {1, 3, 8}),
    ({"l": {"$contains": INT64_MIN}}, {1, 8}),
    ({"n": INT64_MAX}, {3}),
    ({"n": {"$gt": INT64_MAX}}, {4, 5, 7, 9}),
    ({"n": 2.0**64}, {7}),
    ({"n": {"$gt": 2.0**64}}, {5, 9}),
    ({"n": {"$lte": -(2.0**63)}}, {0, 1, 6, 8}),
    ({"n": {"$in": [2.0**64]}}, {7}),
    ({"l": {"$contains": 2.0**64}}, {7}),
])
def test_integer_comparisons_are_exact_at_the_64_bit_edges(edges, where, expected) -> None:
    assert _sql_ids(edges, where) == expected
    assert _py_ids(where) == expected


def test_filter_operands_beyond_64_bits_are_refused() -> None:
    for operand in (INT64_MAX + 1, INT64_MIN - 1):
        with pytest.raises(InvalidArgumentError, match="outside the 64-bit range"):
            parse_where({"n": {"$gt": operand}})


# ---- $in holds 5,000 values, containers of the where not counted ---------------------------

def test_in_takes_5000_values_and_refuses_5001() -> None:
    parse_where({"a": {"$in": list(range(5000))}})
    parse_where({"$and": [{"a": {"$in": list(range(2500))}}, {"b": {"$nin": list(range(2500))}}]})
    with pytest.raises(InvalidArgumentError, match="5001 values in its operands, at most 5000"):
        parse_where({"a": {"$in": list(range(5001))}})


def test_5000_values_compile_within_sqlite_limits() -> None:
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE docs(body TEXT)")
    conn.execute("INSERT INTO docs VALUES('{\"a\": 4999}')")
    for values in ([float(i) for i in range(5000)], [f"s{i}" for i in range(5000)],
                   [{"k": i} for i in range(2500)]):
        sql, params = compile_where({"a": {"$in": values}})
        conn.execute(f"SELECT count(*) FROM docs WHERE {sql}", params).fetchall()


def test_a_where_needing_too_many_sql_parameters_is_invalid_argument() -> None:
    where = {"$or": [{"a": {"$gt": 2.0**70}} for _ in range(4000)]}
    with pytest.raises(InvalidArgumentError, match="SQL parameters"):
        compile_where(where)


# ---- expected_version ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, -1, -(2**63)])
def test_sdk_refuses_expected_version_below_1(version: int) -> None:
    for make in (lambda: _wire.update("c", "i", {"a": 1}, expected_version=version),
                 lambda: _wire.replace("c", "i", {"a": 1}, expected_version=version),
                 lambda: _wire.delete("c", "i", expected_version=version)):
        with pytest.raises(InvalidArgumentError, match="at least 1"):
            make()


def test_wire_rule_finds_expected_version_below_1_at_any_depth() -> None:
    assert rule_violation(router_pb2.UpdateRequest(expected_version=1)) is None
    assert rule_violation(router_pb2.UpdateRequest()) is None
    bad = rule_violation(router_pb2.DeleteRequest(expected_version=0))
    assert bad is not None and "expected_version must be at least 1" in bad
    ops = [node_pb2.WriteOp(expected_version=1), node_pb2.WriteOp(), node_pb2.WriteOp(
        expected_version=-5)]
    bad = rule_violation(node_pb2.WriteRequest(ops=ops))
    assert bad is not None and bad.startswith("ops[2].expected_version"), bad


