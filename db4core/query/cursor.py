"""Opaque, authenticated page cursors bound to the query that produced them.

A cursor is `base64url(payload) "." base64url(HMAC-SHA256(secret, domain || payload))`, where
payload is canonical JSON {"v": 1, "q": fingerprint, "p": position}. The router recommends the
position {"after": sort_values(last_doc, sort)}: one global last key is enough, because every
shard resumes strictly after it and the k-way merge needs nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any, Final

from db4core.errors import InvalidArgumentError
from db4core.query.sortkey import SortSpec, validate_sort

CURSOR_VERSION: Final = 1
MAX_CURSOR_LENGTH: Final = 16_384
_DOMAIN: Final = b"db4-cursor-v1\x00"  # keeps these MACs apart from any other use of the secret
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
CORRUPT: Final = "cursor is corrupt"
FOREIGN: Final = "cursor does not belong to this query"


def canonical_json(value: Any) -> str:
    """Return the one JSON text of a value: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def query_fingerprint(
    collection: str, where: dict[str, Any] | None, sort: SortSpec, extra: Any = None
) -> str:
    """Return a hex digest naming a query: collection, where, sort and any extra JSON value."""
    if not isinstance(collection, str):
        raise InvalidArgumentError("collection must be a string")
    fields = [[f.path, "desc" if f.descending else "asc"] for f in validate_sort(sort)]
    query = {"collection": collection, "where": where or {}, "sort": fields, "extra": extra}
    try:
        text = canonical_json(query)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"query is not plain JSON: {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()


def encode_cursor(query_fingerprint: str, position: dict[str, Any], secret: bytes) -> str:
    """Return an opaque cursor carrying position for the query named by query_fingerprint."""
    _check_secret(secret)
    if not isinstance(position, dict):
        raise TypeError("cursor position must be a dict")
    payload = canonical_json({"v": CURSOR_VERSION, "q": query_fingerprint, "p": position})
    data = payload.encode()
    return f"{_b64encode(data)}.{_b64encode(_mac(secret, data))}"


def decode_cursor(token: Any, query_fingerprint: str, secret: bytes) -> dict[str, Any]:
    """Return the position in a cursor made by encode_cursor for this same query."""
    _check_secret(secret)
    data = _authenticated_payload(token, secret)
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgumentError(CORRUPT) from None
    if not _well_formed(payload):
        raise InvalidArgumentError(CORRUPT)
    if payload["q"] != query_fingerprint:  # not secret: the MAC already vouched for it
        raise InvalidArgumentError(FOREIGN)
    position: dict[str, Any] = payload["p"]
    return position


def _authenticated_payload(token: Any, secret: bytes) -> bytes:
    """Return the payload bytes of a token whose MAC verifies, else raise 'corrupt'."""
    if not isinstance(token, str) or len(token) > MAX_CURSOR_LENGTH or token.count(".") != 1:
        raise InvalidArgumentError(CORRUPT)
    data_text, mac_text = token.split(".")
    data, mac = _b64decode(data_text), _b64decode(mac_text)
    if not hmac.compare_digest(mac, _mac(secret, data)):
        raise InvalidArgumentError(CORRUPT)
    return data


def _well_formed(payload: Any) -> bool:
    """Return True for a payload dict of the current version."""
    return (
        isinstance(payload, dict)
        and payload.get("v") == CURSOR_VERSION
        and isinstance(payload.get("q"), str)
        and isinstance(payload.get("p"), dict)
    )


def _mac(secret: bytes, data: bytes) -> bytes:
    """Return the HMAC-SHA256 of a payload."""
    return hmac.new(secret, _DOMAIN + data, hashlib.sha256).digest()


def _check_secret(secret: bytes) -> None:
    """Refuse a missing secret: that is a configuration bug, not bad user input."""
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("cursor secret must be non-empty bytes")


def _b64encode(data: bytes) -> str:
    """Return unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Decode unpadded URL-safe base64, accepting only the one canonical spelling."""
    if not _BASE64URL.fullmatch(text):
        raise InvalidArgumentError(CORRUPT)
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgumentError(CORRUPT) from None
    # The decoder ignores stray low bits of the last character; insisting on the canonical
    # spelling means every edit of a token is detected.
    if _b64encode(data) != text:
        raise InvalidArgumentError(CORRUPT)
    return data
