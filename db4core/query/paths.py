"""Dotted field paths: validation, SQLite JSON path text, and lookup in a Python document."""

from __future__ import annotations

import re
from typing import Any, Final

from db4core.errors import InvalidArgumentError

SYSTEM_FIELDS: Final = frozenset({"$id", "$type", "$version", "$createdAt", "$updatedAt"})
MAX_PATH_SEGMENTS: Final = 32
MAX_PATH_LENGTH: Final = 1024

# ASCII only: the segment is embedded between double quotes in a JSON path, and SQLite's path
# parser has no escape syntax, so the alphabet itself must make quoting safe.
_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-]+")

Path = tuple[str, ...]


class _Missing:
    """The value of a path that does not resolve (absent key or non-object on the way)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def validate_path(path: object) -> Path:
    """Return the segments of a valid dotted path or raise InvalidArgumentError naming it."""
    if not isinstance(path, str):
        raise InvalidArgumentError(f"field path must be a string, got {type(path).__name__}")
    if path in SYSTEM_FIELDS:
        return (path,)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidArgumentError(f"field path is longer than {MAX_PATH_LENGTH} characters")
    segments = tuple(path.split("."))
    if len(segments) > MAX_PATH_SEGMENTS:
        raise InvalidArgumentError(
            f"field path {path!r} has {len(segments)} segments; at most {MAX_PATH_SEGMENTS}"
        )
    for segment in segments:
        _check_segment(path, segment)
    return segments


def _check_segment(path: str, segment: str) -> None:
    """Raise InvalidArgumentError unless one segment of a user field path is well formed."""
    if segment.startswith("$"):
        known = ", ".join(sorted(SYSTEM_FIELDS))
        raise InvalidArgumentError(
            f"invalid field path {path!r}: {segment!r} is not a system field "
            f"(system fields are {known}, and they have no sub-fields)"
        )
    if not _SEGMENT.fullmatch(segment):
        what = "an empty segment" if not segment else f"segment {segment!r}"
        raise InvalidArgumentError(
            f"invalid field path {path!r}: {what}; a segment is 1 or more of the ASCII "
            "letters, digits, '_' and '-', and segments are joined by '.'"
        )


def json_path(segments: Path) -> str:
    """Return the SQLite JSON path for validated segments, every segment quoted: $."a"."b"."""
    return "$" + "".join(f'."{segment}"' for segment in segments)


def sql_json_path(path: str) -> str:
    """Validate a dotted path and return its SQLite JSON path."""
    return json_path(validate_path(path))


def resolve(doc: Any, segments: Path) -> Any:
    """Return the value at a path in a decoded document, or MISSING."""
    value = doc
    for segment in segments:
        if not isinstance(value, dict) or segment not in value:
            return MISSING
        value = value[segment]
    return value
