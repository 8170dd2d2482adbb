"""Change data capture on the wire: `Subscribe`, `Acknowledge` and `CdcStatus` requests, their
input checks, and the events they carry (shared by the sync and asyncio clients).

A subscription is a resumable stream: every message (a batch of events, or a heartbeat) carries
the token after it, and the request that continues after a message is the same request with
that token as `from_token`. So a stream broken by a router restart is asked again from the last
token the client saw, and no event is missed or repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db4.v1 import admin_pb2, router_pb2
from db4client._wire import ADMIN, DB4, Call, StreamCall
from db4client.errors import InvalidArgumentError
from db4core import documents
from db4core.changefeed import STARTS, Token
from db4core.names import COLLECTION_PATTERN, validate_collection

Document = dict[str, Any]

MIN_HEARTBEAT_MS = 10
MAX_HEARTBEAT_MS = 60_000
HEARTBEATS_WAITED = 3  # a message is awaited at least this many heartbeat intervals


@dataclass(frozen=True)
class ChangeEvent:
    """One committed change: `op` is insert, update or delete; `before` is None for an insert,
    `after` None for a delete; `token` resumes right after this event."""

    op: str
    collection: str
    id: str
    before: Document | None
    after: Document | None
    version: int
    shard: str
    lsn: int
    txid: str
    ts: int
    token: str

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (the fields in declaration order)."""
        return {"op": self.op, "collection": self.collection, "id": self.id,
                "before": self.before, "after": self.after, "version": self.version,
                "shard": self.shard, "lsn": self.lsn, "txid": self.txid, "ts": self.ts,
                "token": self.token}


@dataclass(frozen=True)
class Batch:
    """One SubscribeResponse: events in delivery order (none for a heartbeat) and the token
    after them."""

    events: tuple[ChangeEvent, ...]
    token: str


# ---- input checks ----

def _collections(value: Any) -> list[str]:
    """None (every collection) or a list of collection names."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, bytearray, dict)) or not hasattr(value, "__iter__"):
        raise InvalidArgumentError(
            f"collections must be a list of collection names or None, got {value!r}")
    names = [validate_collection(name) for name in value]
    if not names:
        raise InvalidArgumentError("collections must not be empty (None means every collection)")
    return names


def check_token(token: Any, what: str = "from_token") -> str:
    """A resume token as an event or heartbeat gave it (a str, decodable)."""
    if not isinstance(token, str):
        raise InvalidArgumentError(
            f"{what} must be a str (an event's or a subscription's .token), "
            f"got {type(token).__name__}")
    Token.decode(token)  # INVALID_ARGUMENT for a str that is not a token
    return token


def _start(value: Any) -> str:
    if value not in STARTS:
        raise InvalidArgumentError(f"start must be one of {', '.join(STARTS)}, got {value!r}")
    return str(value)


def check_consumer(name: Any) -> str:
    """A durable consumer's name: the rules of a collection name."""
    if not isinstance(name, str) or not COLLECTION_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            f"consumer name must be 1-128 characters of [A-Za-z0-9_-] starting with a letter, "
            f"got {name!r}")
    return name


def _heartbeat_ms(value: Any) -> int:
    if value is None:
        return 0  # the router's default (1000 ms)
    if isinstance(value, bool) or not isinstance(value, int) or not (
            MIN_HEARTBEAT_MS <= value <= MAX_HEARTBEAT_MS):
        raise InvalidArgumentError(f"heartbeat_ms must be an int in {MIN_HEARTBEAT_MS}-"
                                   f"{MAX_HEARTBEAT_MS}, got {value!r}")
    return value


# ---- answers ----

def _json_or_none(raw: bytes) -> Document | None:
    return documents.decode_stored(raw) if raw else None


def parse_event(msg: router_pb2.ChangeEvent) -> ChangeEvent:
    """A ChangeEvent message as a ChangeEvent (documents decoded, empty ones None)."""
    return ChangeEvent(op=msg.op, collection=msg.collection, id=msg.id,
                       before=_json_or_none(msg.before), after=_json_or_none(msg.after),
                       version=msg.version, shard=msg.shard, lsn=msg.lsn, txid=msg.txid,
                       ts=msg.ts, token=msg.token)


def parse_batch(resp: router_pb2.SubscribeResponse) -> Batch:
    """A SubscribeResponse as a Batch; its token is the last event's when the router left it
    empty."""
    events = tuple(parse_event(e) for e in resp.events)
    token = resp.token or (events[-1].token if events else "")
    return Batch(events, token)


def _resume(request: router_pb2.SubscribeRequest, batch: Batch) -> router_pb2.SubscribeRequest:
    """The request that continues right after `batch` (the same one until a token is known)."""
    if not batch.token:
        return request
    nxt = router_pb2.SubscribeRequest()
    nxt.CopyFrom(request)
    nxt.from_token = batch.token
    return nxt


def _cdc_status(resp: admin_pb2.CdcStatusResponse) -> dict[str, Any]:
    """A CdcStatusResponse as a JSON-ready dict."""
    return {
        "shards": [{"shard_id": s.shard_id, "node_id": s.node_id, "first_lsn": s.first_lsn,
                    "last_lsn": s.last_lsn, "entries": s.entries, "bytes": s.bytes,
                    "checkpoint": s.checkpoint,
                    **({"unreachable": s.unreachable} if s.unreachable else {})}
                   for s in resp.shards],
        "consumers": [{"name": c.name, "lsn": dict(sorted(c.lsn.items())),
                       "lag": dict(sorted(c.lag.items()))} for c in resp.consumers],
    }


# ---- calls ----

def subscribe(collections: Any = None, from_token: Any = None, start: Any = "oldest",
              consumer: Any = None, heartbeat_ms: Any = None) -> StreamCall[Batch]:
    """Subscribe: a resumable stream of batches, checked before anything is sent."""
    req = router_pb2.SubscribeRequest(
        collections=_collections(collections),
        from_token="" if from_token is None else check_token(from_token),
        start=_start(start),
        consumer="" if consumer is None else check_consumer(consumer),
        heartbeat_ms=_heartbeat_ms(heartbeat_ms))
    beat_s = (req.heartbeat_ms or 1000) / 1000.0
    return StreamCall(DB4, "Subscribe", req, parse_batch, resume=_resume, endless=True,
                      wait_s=beat_s * HEARTBEATS_WAITED)


def acknowledge(consumer: Any, token: Any) -> Call[None]:
    """Acknowledge: record a consumer's position. It only moves forward, so sending it again
    is harmless: retried like a read."""
    req = router_pb2.AcknowledgeRequest(consumer=check_consumer(consumer),
                                        token=check_token(token, "token"))
    return Call(DB4, "Acknowledge", req, lambda resp: None, idempotent=True)


def cdc_status() -> Call[dict]:
    """CdcStatus: every shard's change log and every durable consumer with its lag."""
    return Call(ADMIN, "CdcStatus", admin_pb2.CdcStatusRequest(), _cdc_status, idempotent=True)
