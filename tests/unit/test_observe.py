"""The status code a call is recorded under is the one its client saw."""

from __future__ import annotations

import grpc

from db4rpc.observe import _code


class Ctx:
    def __init__(self, code=None, cancelled=False, remaining=None) -> None:
        self._code, self._cancelled, self._remaining = code, cancelled, remaining

    def code(self):
        return self._code

    def cancelled(self) -> bool:
        return self._cancelled

    def time_remaining(self):
        return self._remaining


def test_codes_follow_what_the_client_saw():
    assert _code(Ctx(), None) == "OK"
    assert _code(Ctx(grpc.StatusCode.NOT_FOUND), grpc.aio.AbortError()) == "NOT_FOUND"
    assert _code(Ctx(), RuntimeError("bug")) == "UNKNOWN"
    # a client-streaming call whose client went away ends without an error on the server
    assert _code(Ctx(cancelled=True, remaining=10.0), None) == "CANCELLED"
    # a server-side deadline ends the handler with CancelledError
    import asyncio
    assert _code(Ctx(cancelled=True, remaining=0.0), asyncio.CancelledError()) == \
        "DEADLINE_EXCEEDED"
