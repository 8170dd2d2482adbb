"""Cursor codec: round trips, binding to one query, tampering, garbage; and page-size limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from db4core.errors import InvalidArgumentError
from db4core.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    query_fingerprint,
    validate_limit,
)
from db4core.query.cursor import MAX_CURSOR_LENGTH

SECRET = b"test-secret-0123456789"
WHERE = {"status": "active", "age": {"$gte": 18}}
SORT = [("age", "desc")]
POSITION = {"after": [[2, 42], "doc-17"], "served": 100}


@pytest.fixture
def fingerprint() -> str:
    """The fingerprint of the query the cursors below belong to."""
    return query_fingerprint("users", WHERE, SORT)


@pytest.fixture
def token(fingerprint: str) -> str:
    """A valid cursor for that query."""
    return encode_cursor(fingerprint, POSITION, SECRET)


def test_round_trip(token: str, fingerprint: str) -> None:
    assert decode_cursor(token, fingerprint, SECRET) == POSITION


def test_cursor_is_url_safe_text(token: str) -> None:
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_fingerprint_ignores_key_order_and_tuple_spelling() -> None:
    reordered = {"age": {"$gte": 18}, "status": "active"}
    assert query_fingerprint("users", reordered, [["age", "desc"]]) == query_fingerprint(
        "users", WHERE, SORT
    )
    assert query_fingerprint("users", None, None) == query_fingerprint("users", {}, [])


@pytest.mark.parametrize(
    ("collection", "where", "sort", "extra"),
    [
        ("accounts", WHERE, SORT, None),
        ("users", {"status": "active"}, SORT, None),
        ("users", {**WHERE, "age": {"$gte": 19}}, SORT, None),
        ("users", WHERE, [("age", "asc")], None),
        ("users", WHERE, [], None),
        ("users", WHERE, SORT, {"shard": "s1"}),
    ],
)
def test_cursor_of_another_query_does_not_belong(
    token: str, collection: str, where: Any, sort: Any, extra: Any
) -> None:
    other = query_fingerprint(collection, where, sort, extra)
    with pytest.raises(InvalidArgumentError, match="cursor does not belong to this query"):
        decode_cursor(token, other, SECRET)


def test_every_single_character_edit_is_detected(token: str, fingerprint: str) -> None:
    for i, char in enumerate(token):
        for replacement in {"A", "b", "-", "_", "."} - {char}:
            edited = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(InvalidArgumentError, match="cursor is corrupt"):
                decode_cursor(edited, fingerprint, SECRET)


def test_truncated_cursor_is_corrupt(token: str, fingerprint: str) -> None:
    for cut in range(len(token)):
        with pytest.raises(InvalidArgumentError, match="cursor is corrupt"):
            decode_cursor(token[:cut], fingerprint, SECRET)


def test_forged_payload_with_old_mac_is_corrupt(token: str, fingerprint: str) -> None:
    payload, mac = token.split(".")
    forged = json.dumps({"v": 1, "q": fingerprint, "p": {"after": [[2, 0], "a"]}}).encode()
    forged_text = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(InvalidArgumentError, match="cursor is corrupt"):
        decode_cursor(f"{forged_text}.{mac}", fingerprint, SECRET)


def test_another_secret_makes_the_cursor_corrupt(token: str, fingerprint: str) -> None:
    with pytest.raises(InvalidArgumentError, match="cursor is corrupt"):
        decode_cursor(token, fingerprint, b"another secret")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "abc",
        "abc.def",
        "not a cursor",
        "é.é",
        "a.b.c",
        "====.====",
        "A" * 50,
        "x" * (MAX_CURSOR_LENGTH + 1),
        None,
        17,
        b"bytes",
        ["list"],
    ],
)
def test_garbage_is_corrupt(garbage: Any, fingerprint: str) -> None:
    with pytest.raises(InvalidArgumentError, match="cursor is corrupt"):
        decode_cursor(garbage, fingerprint, SECRET)


def test_signed_but_malformed_payloads_are_corrupt(fingerprint: str) -> None:
    from db4core.query.cursor import _b64encode, _mac

    for payload in (
        b"not json",
        b"[]",
        b'{"v": 2, "q": "x", "p": {}}',
        b'{"v": 1, "q": 1}',
        b"\xff\xfe",
        b'{"v": 1, "q": "x", "p": []}',
    ):
        token = f"{_b64encode(payload)}.{_b64encode(_mac(SECRET, payload))}"
        with pytest.raises(InvalidArgumentError, match="cursor is corrupt"):
            decode_cursor(token, fingerprint, SECRET)


def test_programming_errors_are_not_user_errors(fingerprint: str) -> None:
    with pytest.raises(ValueError):
        encode_cursor(fingerprint, POSITION, b"")
    with pytest.raises(ValueError):
        decode_cursor("a.b", fingerprint, "text secret")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_cursor(fingerprint, ["not", "a", "dict"], SECRET)  # type: ignore[arg-type]


def test_fingerprint_rejects_non_json_queries() -> None:
    with pytest.raises(InvalidArgumentError):
        query_fingerprint("users", {"a": float("nan")}, None)
    with pytest.raises(InvalidArgumentError):
        query_fingerprint("users", {"a": {1, 2}}, None)
    with pytest.raises(InvalidArgumentError):
        query_fingerprint("users", None, [("a", "sideways")])


# --- limits ---------------------------------------------------------------------------------------


def test_limit_defaults_and_bounds() -> None:
    assert validate_limit(None) == DEFAULT_LIMIT == 100
    assert validate_limit(1) == 1
    assert validate_limit(MAX_LIMIT) == MAX_LIMIT == 10_000


@pytest.mark.parametrize("limit", [0, -1, 10_001, 2.0, "10", True, [5]])
def test_bad_limits_are_invalid_argument(limit: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="limit must be"):
        validate_limit(limit)
