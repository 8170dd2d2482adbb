"""Method handlers made from another: what server interceptors return to wrap a call."""

from __future__ import annotations

from typing import Any

import grpc


def like(handler: Any, behaviour: Any, serializer: Any = None) -> Any:
    """A method handler of the same kind (unary or streaming, each way) and request decoding
    as `handler`, running `behaviour`, answering through `serializer` (default: the
    handler's own)."""
    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": serializer or handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(behaviour, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(behaviour, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(behaviour, **kw)
    return grpc.unary_unary_rpc_method_handler(behaviour, **kw)
