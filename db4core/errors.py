"""Domain errors: one class per gRPC status code, each knowing whether a retry can help.

Servers raise these; the servicer translates them to a gRPC status in one table, and the client
turns the status back into the same class. Extra facts travel as trailing metadata (`db4-*` keys)
so that, for example, a ConflictError keeps its expected and actual versions across the wire.
"""

from __future__ import annotations

# Trailing-metadata keys carried with an error status.
REASON_KEY = "db4-reason"
EPOCH_KEY = "db4-epoch"
EXPECTED_VERSION_KEY = "db4-expected-version"
ACTUAL_VERSION_KEY = "db4-actual-version"
# Set on every status a db4 server answers with, so a client can tell them from its own
# channel's errors (an UNAVAILABLE "failed to connect" of its own means nothing was sent).
ANSWERED_KEY = "db4-answered"
RETRY_AFTER_KEY = "db4-retry-after-ms"  # a quota's: when the next call would be let in
OP_INDEX_KEY = "db4-op-index"  # 0-based index of the failing op within a node WriteRequest

# Reasons that share a status code with other errors.
REASON_CONFLICT = "conflict"
REASON_WRONG_SHARD = "wrong_shard"
REASON_STREAM_IDLE = "stream_idle"
REASON_CONDITION_FAILED = "condition_failed"
REASON_LOCKED = "locked"


class Db4Error(Exception):
    """Base of every db4 error; `code` is the gRPC status name."""

    code = "UNKNOWN"
    retriable = False
    reason = ""
    loaded: int | None = None  # set by the SDK's bulk_load: documents loaded before the error

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.extra_trailers: dict[str, str] = {}  # facts added where the error passes by

    def trailers(self) -> dict[str, str]:
        """Facts to send next to the status as trailing metadata."""
        out = {REASON_KEY: self.reason} if self.reason else {}
        return {**out, **self.extra_trailers}


class InvalidArgumentError(Db4Error):
    """The request is malformed; nothing was written."""

    code = "INVALID_ARGUMENT"


class NotFoundError(Db4Error):
    """The document or collection does not exist."""

    code = "NOT_FOUND"


class AlreadyExistsError(Db4Error):
    """A document with that `$id` already exists."""

    code = "ALREADY_EXISTS"


class FailedPreconditionError(Db4Error):
    """The system is not in a state that allows the operation."""

    code = "FAILED_PRECONDITION"


class WrongShardError(FailedPreconditionError):
    """The node does not own the key at its ring epoch; the router refreshes and retries."""

    reason = REASON_WRONG_SHARD

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch

    def trailers(self) -> dict[str, str]:
        """Carry the node's epoch so the router knows how far to refresh."""
        return {**super().trailers(), EPOCH_KEY: str(self.epoch)}


class ConditionFailedError(FailedPreconditionError):
    """A conditional write's `where` did not hold on the stored document; nothing was written."""

    reason = REASON_CONDITION_FAILED


class TransactionAbortedError(Db4Error):
    """The transaction was aborted; retrying the whole transaction may succeed."""

    code = "ABORTED"
    retriable = True


class LockedError(TransactionAbortedError):
    """A key is held by another transaction in progress (prepared, awaiting its decision);
    retry after a short wait."""

    reason = REASON_LOCKED


class ConflictError(TransactionAbortedError):
    """A version check failed: `expected_version` was asked for, `actual_version` is stored."""

    reason = REASON_CONFLICT

    def __init__(
        self, message: str, expected_version: int | None = None, actual_version: int | None = None
    ) -> None:
        super().__init__(message)
        self.expected_version = expected_version
        self.actual_version = actual_version

    def trailers(self) -> dict[str, str]:
        """Carry both versions so the client can report them."""
        out = super().trailers()
        if self.expected_version is not None:
            out[EXPECTED_VERSION_KEY] = str(self.expected_version)
        if self.actual_version is not None:
            out[ACTUAL_VERSION_KEY] = str(self.actual_version)
        return out


class UnavailableError(Db4Error):
    """A part of the cluster cannot be reached right now; retry with backoff."""

    code = "UNAVAILABLE"
    retriable = True


class DeadlineExceededError(Db4Error):
    """The request did not finish in time; its outcome may be unknown."""

    code = "DEADLINE_EXCEEDED"
    retriable = True


class StreamIdleError(DeadlineExceededError):
    """The router ended a stream whose client took nothing for its idle timeout; the SDK's
    iterators resume from their cursor when the caller asks for more."""

    reason = REASON_STREAM_IDLE


class PermissionDeniedError(Db4Error):
    """The caller may not do this."""

    code = "PERMISSION_DENIED"


class UnauthenticatedError(Db4Error):
    """The caller did not prove who it is."""

    code = "UNAUTHENTICATED"


class ResourceExhaustedError(Db4Error):
    """A limit was reached (message size, quota). A token's quota says when to come back:
    `retry_after_ms` (None for other limits)."""

    code = "RESOURCE_EXHAUSTED"
    retriable = True
    retry_after_ms: int | None = None


class DataLossError(Db4Error):
    """Stored data failed its checksum: it is reported, never served."""

    code = "DATA_LOSS"


class OutOfRangeError(Db4Error):
    """A position (a change-feed token) is older than what is still kept."""

    code = "OUT_OF_RANGE"


class InternalError(Db4Error):
    """A bug on the server; it was logged with a [BUG] prefix."""

    code = "INTERNAL"


class UnimplementedError(Db4Error):
    """The server does not implement this call."""

    code = "UNIMPLEMENTED"


_BY_CODE: dict[str, type[Db4Error]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        TransactionAbortedError,
        UnavailableError,
        DeadlineExceededError,
        PermissionDeniedError,
        UnauthenticatedError,
        ResourceExhaustedError,
        InternalError,
        UnimplementedError,
        DataLossError,
        OutOfRangeError,
    )
}


def _int_or_none(value: str | None) -> int | None:
    """Parse an optional integer trailer."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def from_status(code: str, message: str, trailers: dict[str, str]) -> Db4Error:
    """Rebuild the domain error that a server sent as a gRPC status."""
    err = _rebuild(code, message, trailers)
    if OP_INDEX_KEY in trailers:
        err.extra_trailers[OP_INDEX_KEY] = trailers[OP_INDEX_KEY]
    return err


def op_index(err: Db4Error) -> int | None:
    """Which op of a node write failed, when the node said so."""
    return _int_or_none(err.extra_trailers.get(OP_INDEX_KEY))


def _rebuild(code: str, message: str, trailers: dict[str, str]) -> Db4Error:
    reason = trailers.get(REASON_KEY, "")
    if code == "ABORTED" and reason == REASON_CONFLICT:
        return ConflictError(
            message,
            _int_or_none(trailers.get(EXPECTED_VERSION_KEY)),
            _int_or_none(trailers.get(ACTUAL_VERSION_KEY)),
        )
    if code == "ABORTED" and reason == REASON_LOCKED:
        return LockedError(message)
    if code == "FAILED_PRECONDITION" and reason == REASON_CONDITION_FAILED:
        return ConditionFailedError(message)
    if code == "DEADLINE_EXCEEDED" and reason == REASON_STREAM_IDLE:
        return StreamIdleError(message)
    if code == "FAILED_PRECONDITION" and reason == REASON_WRONG_SHARD:
        return WrongShardError(message, _int_or_none(trailers.get(EPOCH_KEY)) or 0)
    if code == "RESOURCE_EXHAUSTED" and RETRY_AFTER_KEY in trailers:
        exhausted = ResourceExhaustedError(message)
        exhausted.retry_after_ms = _int_or_none(trailers[RETRY_AFTER_KEY])
        return exhausted
    cls = _BY_CODE.get(code, Db4Error)
    err = cls(message)
    if cls is Db4Error:
        err.code = code
    return err


# Scatter-gather reduces several shard errors to one: bad input first, transient last.
_PRIORITY = [
    "DATA_LOSS", "OUT_OF_RANGE", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "ALREADY_EXISTS",
    "NOT_FOUND", "PERMISSION_DENIED",
    "UNAUTHENTICATED", "INTERNAL", "UNIMPLEMENTED", "RESOURCE_EXHAUSTED", "ABORTED",
    "DEADLINE_EXCEEDED", "UNAVAILABLE",
]


def most_severe(errors: list[Db4Error]) -> Db4Error:
    """Pick the error a scatter-gather reports when several shards failed."""
    rank = {code: i for i, code in enumerate(_PRIORITY)}
    return min(errors, key=lambda e: rank.get(e.code, len(_PRIORITY)))
