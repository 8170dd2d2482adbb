"""What a write asks of a shard and what it did: ops, read checks, results, effects.

Shared by plain writes (`shard.py`) and the prepared transactions of two-phase commit (`txn.py`),
so that both compute exactly the same documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db4core import documents
from db4core.errors import InvalidArgumentError
from db4core.query import validate_path
from db4core.query.values import is_number

# Collections of the router's id-claim rows (`$ids:<collection>`): written like documents, never
# counted as documents.
CLAIM_PREFIX = "$ids:"


@dataclass
class Op:
    """One document operation, decoded from the wire."""

    kind: str  # create | update | replace | upsert | delete | increment
    collection: str
    id: str
    token: int
    body: bytes = b""
    expected_version: int | None = None
    partition_key: str = "$id"
    condition: dict[str, Any] | None = None  # a where that must hold on the stored document


@dataclass(frozen=True)
class ReadCheck:
    """A transaction's read, validated before its writes: the version it saw (0: no document)."""

    collection: str
    id: str
    token: int
    version: int


@dataclass
class OpResult:
    """Outcome of one op: found is False only for a delete of a missing document."""

    found: bool
    document: bytes = b""


@dataclass(frozen=True)
class Effect:
    """What one op did to one row: the change-log record's fields and the row to store.

    A prepared transaction keeps its effects as its intents and writes them at commit.
    """

    op: str  # insert | update | delete
    collection: str
    id: str
    token: int  # unsigned
    version: int  # of the row after the op; 0 for a delete
    before: str | None
    after: str | None  # the stored JSON body; None for a delete

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "collection": self.collection, "id": self.id,
                "token": str(self.token), "version": self.version, "before": self.before,
                "after": self.after}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Effect:
        return cls(obj["op"], obj["collection"], obj["id"], int(obj["token"]), obj["version"],
                   obj["before"], obj["after"])


def is_claim(collection: str) -> bool:
    """Whether a collection holds the router's id claims rather than documents."""
    return collection.startswith(CLAIM_PREFIX)


def increment(fields: documents.Document, body: bytes) -> documents.Document:
    """The user fields after adding each delta of `body` ({path: number}); an absent field
    counts as 0, and a field or delta that is not a number is INVALID_ARGUMENT."""
    deltas = documents.decode_object(body, "increment")
    if not deltas:
        raise InvalidArgumentError("increment must name at least one field")
    out = dict(fields)
    for path, delta in deltas.items():
        segments = validate_path(path)
        if path in documents.SYSTEM_FIELDS:
            raise InvalidArgumentError(f"increment: {path} is a system field")
        if not is_number(delta):
            raise InvalidArgumentError(
                f"increment: the delta of {path!r} must be a number, got {delta!r}")
        _add_at(out, segments, delta, path)
    return out


def _add_at(doc: dict[str, Any], segments: tuple[str, ...], delta: Any, path: str) -> None:
    """Add delta at a path, copying each object on the way (the stored one stays intact)."""
    head, rest = segments[0], segments[1:]
    if rest:
        child = doc.get(head, {})
        if not isinstance(child, dict):
            raise InvalidArgumentError(
                f"increment: {path!r} runs through {head!r}, which is not an object")
        doc[head] = dict(child)
        _add_at(doc[head], rest, delta, path)
        return
    value = doc.get(head, 0)
    if not is_number(value):
        raise InvalidArgumentError(
            f"increment: field {path!r} holds {type(value).__name__}, not a number")
    total = value + delta
    documents.check_json_value(total, f"increment of {path!r}")
    doc[head] = total
