"""Helpers of the change-feed tests: a Subscribe read with a deadline, spoken to with the bare
stub."""

from __future__ import annotations

import json
import time

from db4.v1 import router_pb2
from db4core.changefeed import Token


class Feed:
    """One Subscribe call: events and heartbeats read with deadlines (heartbeats keep the
    blocking iterator returning)."""

    def __init__(self, stub, collections=(), from_token: str = "", start: str = "",
                 consumer: str = "", heartbeat_ms: int = 100, **call_kw) -> None:
        self.call = stub.Subscribe(router_pb2.SubscribeRequest(
            collections=list(collections), from_token=from_token, start=start,
            consumer=consumer, heartbeat_ms=heartbeat_ms), **call_kw)
        self.token = from_token
        self.heartbeats = 0

    def next_message(self) -> router_pb2.SubscribeResponse:
        msg = next(self.call)
        assert msg.token, "every message carries a token"
        if msg.events:
            assert msg.events[-1].token == msg.token, "the message token is its last event's"
        else:
            self.heartbeats += 1
        self.token = msg.token
        return msg

    def events(self, n: int, timeout: float = 20.0) -> list[router_pb2.ChangeEvent]:
        """Exactly the next n events (more in the same message fail the test)."""
        out: list[router_pb2.ChangeEvent] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            assert time.monotonic() < deadline, f"got {len(out)} of {n} events in {timeout}s"
            out.extend(self.next_message().events)
        assert len(out) == n, f"expected {n} events, got {len(out)}: {brief(out)}"
        return out

    def until_idle(self, timeout: float = 20.0) -> list[router_pb2.ChangeEvent]:
        """Every event until a heartbeat says there is nothing more right now."""
        out: list[router_pb2.ChangeEvent] = []
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, "the feed never went idle"
            msg = self.next_message()
            if not msg.events:
                return out
            out.extend(msg.events)

    def close(self) -> None:
        self.call.cancel()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def brief(events) -> list[tuple[str, str, str]]:
    return [(e.op, e.collection, e.id) for e in events]


def doc(event) -> dict:
    return json.loads(event.after or event.before)


def lsns(token: str) -> dict[str, int]:
    return Token.decode(token).lsn
