"""The SDK's exceptions: the very classes the servers raise, so one `except` catches both.

`db4core.errors` defines one class per gRPC status code; a server translates them to a status
with `db4-*` trailing metadata, and `from_rpc_error` rebuilds the same class on this side, e.g.
a ConflictError keeps `.expected_version` and `.actual_version`.
"""

from __future__ import annotations

import grpc

from db4core.errors import (
    AlreadyExistsError,
    ConditionFailedError,
    ConflictError,
    DataLossError,
    Db4Error,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    StreamIdleError,
    TransactionAbortedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from db4rpc.status import to_domain

__all__ = [
    "AlreadyExistsError",
    "ConditionFailedError",
    "ConflictError",
    "DataLossError",
    "Db4Error",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "LockedError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "StreamIdleError",
    "TransactionAbortedError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "from_rpc_error",
]


def from_rpc_error(err: grpc.RpcError) -> Db4Error:
    """The domain exception a failed gRPC call stands for; raise it `from err`."""
    return to_domain(err)
