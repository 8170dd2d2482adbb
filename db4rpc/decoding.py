"""Request decoding that answers bad bytes with INVALID_ARGUMENT, for every method of a servicer.

grpc decodes a request before any servicer code runs, and reports a failure there as UNKNOWN
("Unexpected DecodeError"), which a client cannot tell from a server bug. So a guarded method
receives the raw bytes and decodes them itself: bytes that are not the method's message (or hold
invalid UTF-8 in a string field) and messages that break a wire rule (RULES below: rules that
hold for a field wherever it appears) end the call with INVALID_ARGUMENT before the servicer
sees them. Register a servicer with `add_guarded(add_XServicer_to_server, servicer, server)`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

Deserializer = Callable[[bytes], Any]

# Field name -> (smallest allowed value, why). A version below 1 cannot match a stored
# document ($version starts at 1), so it is a mistake, not a conflict.
RULES: dict[str, tuple[int, str]] = {
    "expected_version": (1, "a document's first $version is 1"),
}


def add_guarded(add_servicer: Callable[[Any, Any], None], servicer: Any, server: Any) -> None:
    """Register `servicer` as the generated `add_servicer` would, with guarded decoding."""
    add_servicer(servicer, _GuardingServer(server))


class _GuardingServer:
    """Stands in for the server while a generated add_*_to_server registers its handlers."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: tuple[Any, ...]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GuardedGeneric(h) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        guarded = {name: guard(handler) for name, handler in handlers.items()}
        self._server.add_registered_method_handlers(service, guarded)


class _GuardedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers are guarded."""

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner

    def service(self, handler_call_details: Any) -> Any:
        handler = self._inner.service(handler_call_details)
        return None if handler is None else guard(handler)


def guard(handler: Any) -> Any:
    """The same method handler, decoding its request itself (unary requests only)."""
    decode = handler.request_deserializer
    if handler.request_streaming or decode is None:
        return handler
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            _guard_stream(handler.unary_stream, decode),
            response_serializer=handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(
        _guard_unary(handler.unary_unary, decode),
        response_serializer=handler.response_serializer)


def _guard_unary(behavior: Callable[..., Any], decode: Deserializer) -> Callable[..., Any]:
    @functools.wraps(behavior)
    async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        result = behavior(await decode_request(decode, raw, context), context)
        return await result if inspect.isawaitable(result) else result

    return unary


def _guard_stream(behavior: Callable[..., Any], decode: Deserializer) -> Callable[..., Any]:
    # Keep the handler's style: grpc drives an async generator, or awaits a coroutine that
    # sends its messages with context.write, and the two styles must not be mixed.
    if not inspect.isasyncgenfunction(behavior):
        return _guard_unary(behavior, decode)

    @functools.wraps(behavior)
    async def stream(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in behavior(await decode_request(decode, raw, context), context):
            yield item

    return stream


async def decode_request(decode: Deserializer, raw: bytes,
                         context: grpc.aio.ServicerContext) -> Any:
    """The request message, or the call aborted with INVALID_ARGUMENT."""
    request: Any = None
    try:
        request = decode(raw)
    except DecodeError as err:
        problem: str | None = f"request is not a valid {_message_name(decode)} message: {err}"
    else:
        problem = rule_violation(request)
    if problem:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
    return request


def _message_name(decode: Deserializer) -> str:
    """The full name of the message a deserializer (a Message.FromString) builds."""
    cls = getattr(decode, "__self__", None)
    descriptor = getattr(cls, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", "request")


def rule_violation(message: Message, where: str = "") -> str | None:
    """What breaks a rule in message or in any message inside it (None when nothing does)."""
    for field in _checked_fields(message.DESCRIPTOR):
        path = f"{where}{field.name}"
        if field.message_type is None:
            if message.HasField(field.name):
                problem = _rule_problem(field.name, getattr(message, field.name), path)
                if problem:
                    return problem
            continue
        if field.is_repeated:
            items = list(enumerate(getattr(message, field.name)))
        else:
            items = [(-1, getattr(message, field.name))] if message.HasField(field.name) else []
        for i, item in items:
            problem = rule_violation(item, f"{path}[{i}]." if i >= 0 else f"{path}.")
            if problem:
                return problem
    return None


def _rule_problem(name: str, value: int, path: str) -> str | None:
    """The message for a ruled field whose value is out of bounds."""
    least, why = RULES[name]
    if value < least:
        return f"{path} must be at least {least} ({why}), got {value}"
    return None


@functools.cache
def _checked_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """Fields of a message type that hold a ruled value, or messages that may hold one."""
    return tuple(f for f in descriptor.fields
                 if (f.message_type is None and f.name in RULES and f.has_presence)
                 or (f.message_type is not None and _may_hold_rules(f.message_type, frozenset())))


def _may_hold_rules(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    """Whether a message type has a ruled field at any depth (recursive types are cut)."""
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    return any((f.message_type is None and f.name in RULES)
               or (f.message_type is not None and _may_hold_rules(f.message_type, seen))
               for f in descriptor.fields)
