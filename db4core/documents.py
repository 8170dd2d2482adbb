"""Document rules shared by every part: JSON encoding, validation, system fields, patches.

A document is a JSON object. System fields: `$id`, `$type`, `$version`, `$createdAt`,
`$updatedAt`; every other field name must not start with `$`. A client may send the read-only
system fields back (a fetched document round-trips), and they are ignored: the server sets them.
A patch may not name them, since an update cannot set them.
"""

from __future__ import annotations

import json
import math
from typing import Any

from db4core.errors import InvalidArgumentError

MAX_DOCUMENT_BYTES = 1 << 20
MAX_DEPTH = 32
SYSTEM_FIELDS = frozenset({"$id", "$type", "$version", "$createdAt", "$updatedAt"})
SERVER_FIELDS = frozenset({"$version", "$createdAt", "$updatedAt"})

Document = dict[str, Any]


def _reject_constant(name: str) -> float:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise InvalidArgumentError(f"{name} is not a valid JSON number")


def _check_value(value: Any, depth: int, where: str) -> None:
    """Walk a value: JSON types only, string keys, finite numbers, depth within MAX_DEPTH."""
    if value is None or isinstance(value, (str, bool, int)):
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
            _check_value(item, depth + 1, f"{where}.{key}")
        return
    kind = type(value).__name__
    raise InvalidArgumentError(f"{where}: {kind} is not a JSON value (use str, number, bool, "
                               "None, list or dict)")


def check_json_value(value: Any, where: str = "value") -> None:
    """Raise InvalidArgumentError unless value is plain JSON (finite numbers, string keys)."""
    _check_value(value, 0, where)


def encode(value: Any, where: str = "document") -> bytes:
    """Validate and encode a JSON value compactly (UTF-8)."""
    check_json_value(value, where)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _finite_float(text: str) -> float:
    """json.loads hook: a literal like 1e999 would parse to infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"number {text[:32]} is out of range (not finite)")
    return value


def decode(raw: bytes | str, where: str = "document") -> Any:
    """Parse strict JSON (no NaN/Infinity); malformed input is InvalidArgumentError."""
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except InvalidArgumentError:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArgumentError(f"{where} is not valid JSON: {err}") from None
    except RecursionError:
        raise InvalidArgumentError(f"document nesting is deeper than {MAX_DEPTH} levels") from None


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
