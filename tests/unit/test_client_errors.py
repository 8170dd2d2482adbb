"""Status code + trailers -> the domain exception class, as the SDK raises it."""

from __future__ import annotations

import grpc
import pytest

from db4client import errors
from db4core import errors as core_errors
from tests.support.fakes import FakeRpcError

# The contract's table (client/DESIGN.md): status code -> class, retriable or not.
TABLE = [
    (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError, False),
    (grpc.StatusCode.NOT_FOUND, errors.NotFoundError, False),
    (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExistsError, False),
    (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPreconditionError, False),
    (grpc.StatusCode.ABORTED, errors.TransactionAbortedError, True),
    (grpc.StatusCode.UNAVAILABLE, errors.UnavailableError, True),
    (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceededError, True),
    (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError, False),
    (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthenticatedError, False),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhaustedError, True),
    (grpc.StatusCode.INTERNAL, errors.InternalError, False),
    (grpc.StatusCode.UNIMPLEMENTED, errors.UnimplementedError, False),
]


@pytest.mark.parametrize(("code", "cls", "retriable"), TABLE, ids=lambda v: getattr(v, "name", ""))
def test_each_status_code_maps_to_its_class(code, cls, retriable):
    err = errors.from_rpc_error(FakeRpcError(code, "what happened"))
    assert type(err) is cls
    assert err.code == code.name and err.message == "what happened"
    assert err.retriable is retriable
    assert isinstance(err, errors.Db4Error)


def test_conflict_carries_both_versions():
    rpc = FakeRpcError(grpc.StatusCode.ABORTED, "version conflict",
                       [("db4-reason", "conflict"), ("db4-expected-version", "4"),
                        ("db4-actual-version", "7"), ("other", "ignored")])
    err = errors.from_rpc_error(rpc)
    assert isinstance(err, errors.ConflictError)
    assert isinstance(err, errors.TransactionAbortedError)
    assert (err.expected_version, err.actual_version, err.retriable) == (4, 7, True)


def test_conflict_round_trips_through_its_own_trailers():
    sent = core_errors.ConflictError("no", expected_version=1, actual_version=2)
    got = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.ABORTED, "no",
                                             sent.trailers().items()))
    assert (got.expected_version, got.actual_version) == (1, 2)


def test_aborted_without_conflict_reason_is_a_plain_abort():
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.ABORTED, "2pc aborted"))
    assert type(err) is errors.TransactionAbortedError


def test_unknown_code_keeps_its_name():
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.UNKNOWN, "gone"))
    assert type(err) is errors.Db4Error and err.code == "UNKNOWN"
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.CANCELLED, "gone"))
    assert type(err) is errors.Db4Error and err.code == "CANCELLED"


def test_data_loss_and_out_of_range_have_classes():
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.DATA_LOSS, "record 4 of s003"))
    assert type(err) is errors.DataLossError and err.message == "record 4 of s003"
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.OUT_OF_RANGE, "oldest is 9"))
    assert type(err) is errors.OutOfRangeError and not err.retriable


def test_sdk_classes_are_the_servers_classes():
    """`except db4client.errors.X` must catch what db4core raised, so they are one class."""
    for name in ("Db4Error", "NotFoundError", "AlreadyExistsError", "ConflictError",
                 "TransactionAbortedError", "InvalidArgumentError", "UnavailableError",
                 "PermissionDeniedError", "UnauthenticatedError", "ResourceExhaustedError",
                 "FailedPreconditionError"):
        assert getattr(errors, name) is getattr(core_errors, name)
        assert name in errors.__all__


def test_client_raises_from_the_rpc_error(monkeypatch):
    from db4client import Client, _channel

    class Channel:
        def unary_unary(self, *a, **kw):
            def call(request, **kw):
                raise FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "not yours")
            return call

        unary_stream = unary_unary  # the stub also builds its streaming methods

        def close(self):
            pass

    monkeypatch.setattr(_channel, "open_channel", lambda address, tls: Channel())
    with Client() as client, pytest.raises(errors.PermissionDeniedError) as caught:
        client.collection("users").delete("u1")
    assert isinstance(caught.value.__cause__, FakeRpcError)
    assert str(caught.value) == "not yours"
