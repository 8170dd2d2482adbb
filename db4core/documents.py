"""Document rules shared by every part: JSON encoding, validation, system fields, patches.

A document is a JSON object. System fields: `$id`, `$type`, `$version`, `$createdAt`,
`$updatedAt`; every other field name must not start with `$`. A client may send the read-only
system fields back (a fetched document round-trips), and they are ignored: the server sets them.
A patch may not name them, since an update cannot set them.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from typing import Any

from db4core.errors import InvalidArgumentError

MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 32
SYSTEM_FIELDS = frozenset({"$id", "$type", "$version", "$createdAt", "$updatedAt"})
SERVER_FIELDS = frozenset({"$version", "$createdAt", "$updatedAt"})
# Integers beyond 64 bits are kept exactly as written, but SQLite reads them as doubles: beyond
# a double's range they would all read as infinity, so they are refused.
MAX_INTEGER = int(sys.float_info.max)
# Items in one batch (insert_many, get_many, delete_many), however the SDK splits it by bytes.
MAX_BATCH_ITEMS = 10_000

# What can only be in JSON text through an escape or a long run of digits: the decoded value
# is walked for it only when the text holds one of these (rare), so plain documents pay nothing.
_TOO_LARGE = ("integer beyond the range of a double (about ±1.8e308, 309 digits): "
              "it cannot be stored")
_ESCAPE = r"\\u(?:[dD][89a-fA-F]|0000)"
_ESCAPE_TEXT = re.compile(_ESCAPE)
_ESCAPE_BYTES = re.compile(_ESCAPE.encode())
_LONG_DIGITS = 309
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
_DIGITS_AS_1 = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))  # else "0"
_DIGIT_RUN = b"1" * _LONG_DIGITS

Document = dict[str, Any]


def _reject_constant(name: str) -> float:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise InvalidArgumentError(f"{name} is not a valid JSON number")


def _check_value(value: Any, depth: int, where: str) -> None:
    """Walk a value: JSON types only, string keys, finite numbers, depth within MAX_DEPTH."""
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        _check_integer(value, where)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{where}: NaN and infinity are not valid JSON numbers")
        return
    if isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            raise InvalidArgumentError(f"document nesting is deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            for i, item in enumerate(value):
                _check_value(item, depth + 1, f"{where}[{i}]")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(
                    f"{where}: field names must be strings, got {type(key).__name__} {key!r}"
                )
            _check_key(key, where)
            _check_value(item, depth + 1, f"{where}.{key}")
        return
    kind = type(value).__name__
    raise InvalidArgumentError(f"{where}: {kind} is not a JSON value (use str, number, bool, "
                               "None, list or dict)")


def _check_integer(value: int, where: str) -> None:
    """Integers must fit a double's range (SQLite compares and sorts them as doubles)."""
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise InvalidArgumentError(f"{where}: {_TOO_LARGE}")


def _check_key(key: str, where: str) -> None:
    """SQLite's JSON paths end a key at U+0000, so a filter could not tell "a\\u0000b" from "a"."""
    if "\x00" in key:
        raise InvalidArgumentError(f"{where}: field name {key!r} contains U+0000, which is not "
                                   "allowed in field names")


def _lone_surrogate_at(value: Any, where: str) -> str | None:
    """The path of the first string or key holding a lone surrogate (None when there is none)."""
    if isinstance(value, str):
        return None if valid_text(value) else where
    if isinstance(value, list):
        items: Any = ((f"{where}[{i}]", item) for i, item in enumerate(value))
    elif isinstance(value, dict):
        for key in value:
            if not valid_text(key):
                return f"{where}: field name {key!r}"
        items = ((f"{where}.{key}", item) for key, item in value.items())
    else:
        return None
    for path, item in items:
        found = _lone_surrogate_at(item, path)
        if found:
            return found
    return None


def valid_text(text: str) -> bool:
    """True unless text holds a lone UTF-16 surrogate, which has no UTF-8 encoding."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_error(value: Any, where: str) -> InvalidArgumentError:
    """The error for a value that could not be encoded as UTF-8."""
    at = _lone_surrogate_at(value, where) or where
    return InvalidArgumentError(f"{at}: text holds a lone UTF-16 surrogate (like '\\ud800'), "
                                "which is not valid Unicode")


def check_json_value(value: Any, where: str = "value") -> None:
    """Raise InvalidArgumentError unless value is plain JSON (finite numbers, string keys)."""
    _check_value(value, 0, where)


# json.dumps and json.loads build a new encoder or decoder (and its C scanner) on every call
# that passes an option: a few microseconds a document. These are built once.
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode(value: Any, where: str = "document") -> bytes:
    """Validate and encode a JSON value compactly (UTF-8)."""
    check_json_value(value, where)
    try:
        return compact_json(value).encode()
    except UnicodeEncodeError:
        raise _surrogate_error(value, where) from None


def _finite_float(text: str) -> float:
    """json.loads hook: a literal like 1e999 would parse to infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"number {text[:32]} is out of range (not finite)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a key given twice is refused (json.loads would keep the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        dup = next(key for key, n in Counter(key for key, _ in pairs).items() if n > 1)
        raise InvalidArgumentError(f"field {dup!r} appears twice in one JSON object")
    return obj


_STRICT = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)


def _strict_loads(raw: bytes | str) -> Any:
    """json.loads(raw, **the strict hooks), with the decoder built once."""
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        return _STRICT.decode(raw)
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"the JSON object must be str, bytes or bytearray, "
                        f"not {type(raw).__name__}")
    return _STRICT.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def decode(raw: bytes | str, where: str = "document") -> Any:
    """Parse strict JSON: no NaN/Infinity, no key twice in an object, valid Unicode, field names
    without U+0000, integers within a double's range. Anything else is InvalidArgumentError."""
    try:
        value = _strict_loads(raw)
    except InvalidArgumentError as err:
        raise InvalidArgumentError(f"{where}: {err.message}") from None
    except (ValueError, UnicodeDecodeError) as err:
        if "integer string conversion" in str(err):  # Python's own limit, 4300 digits
            raise InvalidArgumentError(f"{where}: {_TOO_LARGE}") from None
        raise InvalidArgumentError(f"{where} is not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidArgumentError(f"document nesting is deeper than {MAX_DEPTH} levels") from None
    if _suspect(raw):
        check_json_value(value, where)
        if _lone_surrogate_at(value, where) is not None:
            raise _surrogate_error(value, where)
    return value


def _suspect(raw: bytes | bytearray | str) -> bool:
    """Whether the text holds a surrogate or U+0000 escape, or a run of 309 digits (UTF-16 and
    UTF-32 bytes are looked at as the text they encode, where NULs do not split the runs).
    The digit run is searched only in text holding that many digits at all (counted at ~1 ns
    a byte), as a run of ones where every digit became "1" and anything else "0" (~2 ns a
    byte; a regular expression took ~10-20 ns a byte: 45 us of a 4 KB document)."""
    if isinstance(raw, str):
        if _ESCAPE_TEXT.search(raw):
            return True
        data: bytes | bytearray = raw.encode("utf-8", "surrogatepass")
    else:
        head = bytes(raw[:4])
        if b"\x00" in head or head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 or UTF-32 JSON
            return _suspect(bytes(raw).decode(json.detect_encoding(raw), "surrogatepass"))
        if _ESCAPE_BYTES.search(raw):
            return True
        data = raw
    return (len(data) >= _LONG_DIGITS
            and len(data.translate(None, _NOT_DIGITS)) >= _LONG_DIGITS
            and _DIGIT_RUN in data.translate(_DIGITS_AS_1))


def decode_stored(raw: bytes | str) -> Any:
    """Parse JSON a server wrote (a stored document, a change's image): it passed `decode` and
    was written by `encode` or SQLite, so the C parser alone reads it exactly (integers beyond
    64 bits, -0.0, any key), at a third of `decode`'s cost."""
    return json.loads(raw)


def decode_object(raw: bytes | str, where: str = "document") -> Document:
    """Parse a JSON object and check it as a value (depth, numbers)."""
    obj = decode(raw, where)
    if not isinstance(obj, dict):
        raise InvalidArgumentError(f"{where} must be a JSON object, got {type(obj).__name__}")
    # Parsed JSON has string keys and finite numbers already; only depth is left to check, and
    # text with at most MAX_DEPTH opening brackets cannot nest deeper, so most skip the walk.
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    if text.count("{") + text.count("[") > MAX_DEPTH:
        check_json_value(obj, where)
    return obj


def check_field_names(doc: Document, where: str = "document") -> None:
    """Only system fields may start with `$`; `$type` must be a string."""
    for key in doc:
        if key.startswith("$") and key not in SYSTEM_FIELDS:
            raise InvalidArgumentError(
                f"{where}: field {key!r} starts with '$', which is reserved for system fields "
                f"({', '.join(sorted(SYSTEM_FIELDS))})"
            )
        if key == "":
            raise InvalidArgumentError(f"{where}: field names must not be empty")
    if "$type" in doc and doc["$type"] is not None and not isinstance(doc["$type"], str):
        raise InvalidArgumentError(f"{where}: $type must be a string")


def check_patch(patch: Document) -> None:
    """A patch may set user fields and `$type`, never `$id` or server-set fields."""
    check_field_names(patch, "patch")
    for key in patch:
        if key == "$id" or key in SERVER_FIELDS:
            raise InvalidArgumentError(f"patch: {key} cannot be changed by an update")


def user_fields(doc: Document) -> Document:
    """The fields a client controls: everything but `$id` and the server-set fields."""
    return {k: v for k, v in doc.items() if k != "$id" and k not in SERVER_FIELDS}


def check_size(encoded: bytes, limit: int = MAX_DOCUMENT_BYTES) -> None:
    """Reject documents over the size limit."""
    if len(encoded) > limit:
        raise InvalidArgumentError(
            f"document is {len(encoded)} bytes encoded, over the limit of {limit} bytes"
        )


def get_path(doc: Document, path: str) -> tuple[bool, Any]:
    """Follow a dotted path; (False, None) when any step is missing."""
    node: Any = doc
    for part in path.split(".") if path != "$id" else ["$id"]:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def merge_patch(current: Document, patch: Document) -> Document:
    """Shallow merge: patch values replace fields, None removes them."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def stamp(
    fields: Document, doc_id: str, version: int, created_at: int, updated_at: int
) -> Document:
    """A stored document: system fields first, then the user's fields in their order."""
    out: Document = {"$id": doc_id}
    if fields.get("$type") is not None:
        out["$type"] = fields["$type"]
    out["$version"] = version
    out["$createdAt"] = created_at
    out["$updatedAt"] = updated_at
    out.update((k, v) for k, v in fields.items() if not k.startswith("$"))
    return out
