"""Translate between domain errors and gRPC statuses: one table, both directions."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from db4core import errors

log = logging.getLogger("db4.rpc")
T = TypeVar("T")


def trailers_of(err: grpc.RpcError) -> dict[str, str]:
    """The db4-* trailing metadata of a failed call."""
    try:
        md = err.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - some errors carry no call object
        return {}
    return {k: v for k, v in md if k.startswith("db4-") and isinstance(v, str)}


def to_domain(err: grpc.RpcError) -> errors.Db4Error:
    """The domain error a failed call stands for."""
    code = err.code().name if hasattr(err, "code") else "UNKNOWN"
    details = err.details() if hasattr(err, "details") else str(err)
    return errors.from_status(code, details or "", trailers_of(err))


async def abort(context: grpc.aio.ServicerContext, err: errors.Db4Error) -> None:
    """End the call with the error's status, message and trailers."""
    context.set_trailing_metadata((*err.trailers().items(), (errors.ANSWERED_KEY, "1")))
    await context.abort(grpc.StatusCode[err.code], err.message)


def servicer_method(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap a servicer coroutine: domain errors become statuses, anything else is INTERNAL."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await fn(self, request, context)
        except errors.Db4Error as err:
            await abort(context, err)
        except grpc.RpcError as err:  # a downstream call failed: pass its meaning on
            await abort(context, to_domain(err))
        except Exception as err:  # noqa: BLE001 - the one place unexpected errors are caught
            if isinstance(err, grpc.aio.AbortError):
                raise
            log.exception("[BUG] %s failed unexpectedly", fn.__name__)
            await abort(context, errors.InternalError(f"internal error in {fn.__name__}: {err}"))
        raise AssertionError("unreachable: abort raises")

    return wrapper


def servicer_stream(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Like servicer_method, for server-streaming methods (async generators)."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for item in fn(self, request, context):
                yield item
        except errors.Db4Error as err:
            await abort(context, err)
        except grpc.RpcError as err:
            await abort(context, to_domain(err))
        except Exception as err:  # noqa: BLE001
            if isinstance(err, grpc.aio.AbortError):
                raise
            log.exception("[BUG] %s failed unexpectedly", fn.__name__)
            await abort(context, errors.InternalError(f"internal error in {fn.__name__}: {err}"))

    return wrapper


# What gRPC says when a call found no connection to send on: the request never left.
_NOT_SENT = ("failed to connect to all addresses", "connection refused")


def never_sent(err: grpc.RpcError) -> bool:
    """Whether a failed call's request never left this process: it broke (below) with its own
    channel saying it could not connect."""
    if not broke(err):
        return False
    details = (err.details() or "").lower()
    return any(marker in details for marker in _NOT_SENT)


def broke(err: grpc.RpcError) -> bool:
    """Whether a call failed on the transport rather than by an answer: UNAVAILABLE without the
    `db4-answered` trailer (a broken connection, or one never made); a server's own
    UNAVAILABLE (a process it could not reach) carries the trailer. The server may or may not
    have acted on the request, so only a request it answers the same twice is sent again."""
    try:
        if err.code() != grpc.StatusCode.UNAVAILABLE:
            return False
        trailers = err.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - an error without a call object: not ours to judge
        return False
    return not any(key == errors.ANSWERED_KEY for key, _ in trailers)
