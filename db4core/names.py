"""Names users choose: collections and partition key paths."""

from __future__ import annotations

import re

from db4core.errors import InvalidArgumentError

COLLECTION_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
DEFAULT_PARTITION_KEY = "$id"


def validate_collection(name: object) -> str:
    """A collection name: 1-128 chars of [A-Za-z0-9_-] starting with a letter."""
    if not isinstance(name, str) or not COLLECTION_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            f"collection name must be 1-128 characters of [A-Za-z0-9_-] starting with a letter, "
            f"got {name!r}"
        )
    return name


def validate_partition_key(path: object) -> str:
    """A partition key: `$id` or a dotted path of user fields."""
    if path in (None, ""):
        return DEFAULT_PARTITION_KEY
    if path == DEFAULT_PARTITION_KEY:
        return DEFAULT_PARTITION_KEY
    if not isinstance(path, str) or not all(_SEGMENT.fullmatch(p) for p in path.split(".")):
        raise InvalidArgumentError(
            f"partition key must be '$id' or a dotted path of field names, got {path!r}"
        )
    return path
