"""Optimistic concurrency on one document: conditional updates, compare-and-swap, atomic
increments, and the read-modify-write loop of `update_with_optimistic_lock`.

Each operation is a `_wire.Call` (one RPC) or a `_plan.Plan` (several steps, run by the sync or
the async client alike). Input is checked before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from db4.v1 import router_pb2
from db4client import _wire
from db4client._plan import Apply, Plan, Sleep
from db4client._query import where_bytes
from db4client._retry import full_jitter_s, retry_settings
from db4client._wire import DB4, Call, Document
from db4client.errors import (
    ConditionFailedError,
    ConflictError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
)
from db4client.results import CasResult, OptimisticResult
from db4core import documents
from db4core.ids import validate_id
from db4core.names import validate_collection


def _top_field(field: Any, what: str) -> str:
    """A top-level user field name: a patch sets top-level fields, so no dotted paths."""
    if not isinstance(field, str) or not field:
        raise InvalidArgumentError(f"{what} must be a non-empty str, got {field!r}")
    if field.startswith("$") or "." in field:
        raise InvalidArgumentError(
            f"{what} must name a top-level user field (no '$' prefix, no dots), got {field!r}")
    return field


def conditional_update(collection: str, doc_id: str, where: Any, patch: Document,
                       partition: Any = None) -> Call[Document | None]:
    """Update only when the stored document matches `where` (checked in the same SQLite
    transaction); None when it does not match or does not exist."""
    if not isinstance(where, dict) or not where:
        raise InvalidArgumentError(
            "where must be a non-empty dict (an empty condition always holds: use update)")
    call = _wire.update(collection, doc_id, patch, None, partition)
    call.request.condition = where_bytes(where)
    return Call(DB4, "Update", call.request, call.parse, absent=None,
                absent_on=ConditionFailedError)


def compare_and_swap(collection: str, doc_id: str, field: Any, expected: Any, new: Any,
                     partition: Any = None) -> Plan[CasResult]:
    """Set `field` to `new` when it holds `expected` (`$eq`: None also matches a missing field;
    `new` None removes the field); when it does not, the document as it is now."""
    name = _top_field(field, "field")
    update = conditional_update(collection, doc_id, {name: {"$eq": expected}}, {name: new},
                                partition)
    read = _wire.get(collection, doc_id, partition)
    swapped = yield update
    if swapped is not None:
        return CasResult(True, swapped)
    current = yield read
    return CasResult(False, current)


def _delta(delta: Any) -> int | float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float)):
        raise InvalidArgumentError(f"delta must be an int or float, got {type(delta).__name__}")
    documents.check_json_value(delta, "delta")  # finite, within a double's range
    return delta


def increment(collection: str, doc_id: str, field: Any, delta: Any = 1,
              partition: Any = None) -> Call[int | float]:
    """Add `delta` to a number field in one SQLite transaction on the document's shard (an
    absent field counts as 0); the field's new value."""
    if not isinstance(field, str) or not field or field.startswith("$"):
        raise InvalidArgumentError(
            f"field must be a non-empty str naming a user field, got {field!r}")
    req = router_pb2.IncrementRequest(
        collection=validate_collection(collection), id=validate_id(doc_id),
        deltas=documents.encode({field: _delta(delta)}, "deltas"),
        partition=_wire._partition(partition))
    return Call(DB4, "Increment", req,
                lambda resp: _field_value(documents.decode_stored(resp.document), field))


def _field_value(doc: Document, field: str) -> int | float:
    present, value = documents.get_path(doc, field)
    if not present or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InternalError(f"the router answered Increment without a number at {field!r}")
    return value


def optimistic_update(collection: str, doc_id: str, fn: Callable[[Document], Any],
                      max_retries: Any = 5, initial_backoff_ms: Any = 50,
                      partition: Any = None) -> Plan[OptimisticResult]:
    """Read, patch = fn(doc), update with `expected_version`; on ConflictError (someone wrote
    in between) sleep with full jitter and start over, at most `max_retries` times."""
    if not callable(fn):
        raise InvalidArgumentError(f"fn must be callable, got {type(fn).__name__}")
    retries, backoff_ms = retry_settings(max_retries, initial_backoff_ms)
    read = _wire.get(collection, doc_id, partition)
    attempt = 0
    while True:
        attempt += 1
        doc = yield read
        if doc is None:
            raise NotFoundError(f"{collection}/{doc_id} does not exist")
        patch = yield Apply(fn, doc)
        write = _wire.update(collection, doc_id, patch, doc["$version"], partition)
        try:
            updated = yield write
        except ConflictError:
            if attempt > retries:
                raise
            yield Sleep(full_jitter_s(backoff_ms, attempt - 1))
            continue
        return OptimisticResult(updated, attempt)
