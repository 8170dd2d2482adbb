"""Fakes for unit tests of the SDK and the router (no sockets): what a gRPC stub raises, a
scripted stub, and channels that open nothing."""

from __future__ import annotations

import grpc


class FakeRpcError(grpc.RpcError):
    """What a stub raises: a status code, details and trailing metadata (pairs or a dict)."""

    def __init__(self, code: grpc.StatusCode, details: str = "", trailers=()) -> None:
        super().__init__(details)
        pairs = trailers.items() if isinstance(trailers, dict) else trailers
        self._code, self._details, self._trailers = code, details, tuple(pairs)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailers


class FakeStub:
    """Records every call; answers from a script (a response, or an exception to raise)."""

    def __init__(self, asynchronous: bool = False) -> None:
        self.calls: list[tuple[str, object, dict]] = []
        self.script: list[object] = []
        self.asynchronous = asynchronous

    def methods(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def __getattr__(self, method: str):
        def call(request, **kw):
            self.calls.append((method, request, kw))
            answer = self.script.pop(0) if self.script else None
            if isinstance(answer, BaseException):
                raise answer
            return answer

        async def acall(request, **kw):
            return call(request, **kw)

        return acall if self.asynchronous else call


class FakeChannel:
    """A channel that opens nothing; the stubs built from it are replaced by fakes."""

    def unary_unary(self, *args, **kw):
        return None

    unary_stream = unary_unary

    def close(self):
        return None


class FakeAioChannel(FakeChannel):
    async def close(self):
        return None
