"""Bearer tokens and roles: what each RPC needs, who holds what, and the check on every call.

A token reads `db4_<id>_<secret>`: 12 hex digits of id, then 43 characters of secret (32 random
bytes, URL-safe base64). etcd keeps, under `/db4/<cluster>/tokens/<id>`, the role, a name and
the SHA-256 of the secret, never the secret: the secret has 256 bits of entropy, so a plain
hash is as safe as a slow one and costs a microsecond per check. A token is shown once, when it
is created.

Roles: `read`, `write` (also reads), `admin` (also reads and writes) for users; `node` for
routers and nodes: node-internal RPCs, and a node's Read and Write, which routers forward (a
node token cannot call a router). Every RPC of every service has a rule in RULES, the roles
that may call it; a method without one is refused (and a unit test fails).

Each process caches what it read for a token for CACHE_S, so a revoked token stops working on
every process within that time. When etcd cannot be reached (or takes over READ_TIMEOUT_S), a
cached entry serves for up to STALE_S more, answered at once while a refresh is tried; a token
never seen before is then UNAVAILABLE, not UNAUTHENTICATED. A revoked token's record stays in
etcd, marked, so a process started with it in a token file cannot make it valid again.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from db4core.errors import (
    ANSWERED_KEY,
    RETRY_AFTER_KEY,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)
from db4core.topology import Keys
from db4rpc import handlers

ROLES = ("read", "write", "admin", "node")
READERS = frozenset({"read", "write", "admin"})
WRITERS = frozenset({"write", "admin"})
ADMINS = frozenset({"admin"})
NODES = frozenset({"node"})
OPEN: frozenset[str] = frozenset()  # no token needed (the health service, for probes)

_DB4_READ = ("GetCollection", "Get", "ShardFor", "GetRouting", "Find", "Iterate", "Count",
             "GetMany", "ListIndexes", "QueryRange", "IterateRange", "Subscribe", "Acknowledge",
             "ListSearchIndexes", "Search")
_DB4_WRITE = ("CreateCollection", "Create", "Update", "Replace", "Upsert", "Delete",
              "InsertMany", "DeleteMany", "CreateIndex", "DropIndex", "Increment", "Commit",
              "CreateSearchIndex", "DropSearchIndex")
_ADMIN = ("Status", "CdcStatus", "Checkpoint", "SplitShard", "MoveShard", "GetOperation",
          "ListOperations", "AbortOperation", "DrainNode", "Rebalance", "GetPlan",
          "CreateToken", "ListTokens", "RevokeToken")
_NODE_INTERNAL = ("ShardStats", "Query", "Count", "QueryShards", "QueryMerged", "CountShards",
                  "EnsureIndex", "DropShardIndex", "Prepare", "CommitPrepared", "AbortPrepared",
                  "TailChanges", "LogStats", "CheckpointShards", "EnsureSearchIndex",
                  "DropShardSearchIndex", "SearchStats", "SearchShard", "SearchStatsShards",
                  "SearchMerged", "SnapshotShard", "InstallShard", "FollowerStatus", "ReadLog",
                  "ApplyParent", "Fence", "Unfence", "DropFollower")

# full method name -> the roles that may call it (OPEN: anyone, no token)
RULES: dict[str, frozenset[str]] = {
    **{f"/db4.v1.Db4/{m}": READERS for m in _DB4_READ},
    **{f"/db4.v1.Db4/{m}": WRITERS for m in _DB4_WRITE},
    **{f"/db4.v1.Admin/{m}": ADMINS for m in _ADMIN},
    **{f"/db4.v1.Node/{m}": NODES for m in _NODE_INTERNAL},
    # a token-aware client reads and writes documents on the node itself; routers forward
    "/db4.v1.Node/Read": READERS | NODES,
    "/db4.v1.Node/Write": WRITERS | NODES,
    "/grpc.health.v1.Health/Check": OPEN,
    "/grpc.health.v1.Health/Watch": OPEN,
    "/grpc.health.v1.Health/List": OPEN,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": READERS | NODES,
}

CACHE_S = 1.0
STALE_S = 30.0
READ_TIMEOUT_S = 1.0
_TOKEN = re.compile(r"db4_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9._:@-]{0,128}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh (id, token)."""
    token_id = secrets.token_hex(6)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return token_id, f"db4_{token_id}_{secret}"


def parse(token: str) -> tuple[str, str]:
    """token -> (id, secret); UNAUTHENTICATED when it is not a db4 token."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise UnauthenticatedError("the bearer token is malformed (expected db4_<id>_<secret>)")
    return match.group(1), match.group(2)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidArgumentError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Limits:
    """A token's quota on each process it calls (0: no limit)."""

    requests_per_s: float = 0.0
    streams: int = 0
    bytes_per_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("requests_per_s", "streams", "bytes_per_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value != value or value < 0 \
                    or value == float("inf"):
                raise InvalidArgumentError(f"limit {name} must be a finite number >= 0")

    def __bool__(self) -> bool:
        return bool(self.requests_per_s or self.streams or self.bytes_per_s)

    def to_dict(self) -> dict[str, float]:
        return {"requests_per_s": self.requests_per_s, "streams": self.streams,
                "bytes_per_s": self.bytes_per_s}


@dataclass(frozen=True)
class TokenRecord:
    id: str
    role: str
    name: str
    hash: str
    created_ms: int
    limits: Limits = Limits()
    revoked_ms: int = 0  # a revoked token's record stays, so a token file cannot bring it back

    def to_json(self) -> bytes:
        return json.dumps({"role": self.role, "name": self.name, "hash": self.hash,
                           "created_ms": self.created_ms, "limits": self.limits.to_dict(),
                           "revoked_ms": self.revoked_ms}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, token_id: str, raw: bytes) -> TokenRecord:
        data = json.loads(raw)
        limits = data.get("limits") or {}
        return cls(token_id, data["role"], data.get("name", ""), data["hash"],
                   int(data.get("created_ms", 0)),
                   Limits(float(limits.get("requests_per_s", 0)), int(limits.get("streams", 0)),
                          float(limits.get("bytes_per_s", 0))),
                   int(data.get("revoked_ms", 0)))


class TokenStore:
    """Tokens in etcd, with a short cache for the checks on every call. `etcd` is an
    aetcd.Client and `etcd_errors` what its calls raise (passed in: this package stays free of
    the etcd client)."""

    def __init__(self, etcd: Any, keys: Keys,
                 etcd_errors: tuple[type[BaseException], ...]) -> None:
        self.etcd = etcd
        self.etcd_errors = etcd_errors
        self.prefix = keys.tokens
        self._cache: dict[str, tuple[TokenRecord | None, float]] = {}
        self._loading: dict[str, asyncio.Future[TokenRecord | None]] = {}
        self._failing_until = 0.0  # etcd failed a token read lately: answer from the cache

    async def create(self, role: str, name: str = "", limits: Limits = Limits()
                     ) -> tuple[TokenRecord, str]:
        """A new token with `role` and `limits`; the record and the token (shown only now)."""
        check_role(role)
        if not _NAME.fullmatch(name):
            raise InvalidArgumentError("a token name is at most 128 of [A-Za-z0-9._:@-]")
        token_id, token = new_token()
        record = TokenRecord(token_id, role, name, digest(parse(token)[1]),
                             int(time.time() * 1000), limits)
        await self._put_new(record)
        return record, token

    async def register(self, token: str, role: str, name: str) -> TokenRecord | None:
        """Make a token held in a file valid with `role` (idempotent); None when it was
        revoked (it stays revoked); a token registered with another role or secret is
        refused."""
        token_id, secret = parse(token)
        check_role(role)
        record = TokenRecord(token_id, role, name, digest(secret), int(time.time() * 1000))
        existing = await self._get(token_id)
        if existing is None:
            await self._put_new(record)
            return record
        if existing.role != role or not hmac.compare_digest(existing.hash, record.hash):
            raise PermissionDeniedError(f"token {token_id} is registered with another role "
                                        "or secret")
        return None if existing.revoked_ms else existing

    async def _put_new(self, record: TokenRecord) -> None:
        key = self.prefix + record.id.encode()
        try:
            ok, _ = await self.etcd.transaction(
                compare=[self.etcd.transactions.version(key) == 0],
                success=[self.etcd.transactions.put(key, record.to_json())], failure=[])
        except self.etcd_errors as err:
            raise UnavailableError(f"etcd: {err}") from None
        if not ok:
            raise UnavailableError(f"token id {record.id} is taken; try again")

    async def list(self) -> list[TokenRecord]:
        """Tokens not revoked, oldest first."""
        try:
            got = await self.etcd.get_prefix(self.prefix)
        except self.etcd_errors as err:
            raise UnavailableError(f"etcd: {err}") from None
        out = [TokenRecord.from_json(kv.key[len(self.prefix):].decode(), kv.value)
               for kv in got]
        return sorted((r for r in out if not r.revoked_ms), key=lambda r: (r.created_ms, r.id))

    async def revoke(self, token_id: str) -> TokenRecord:
        """Mark a token revoked (its record stays, so no token file registers it again)."""
        if not re.fullmatch(r"[0-9a-f]{12}", token_id):
            raise InvalidArgumentError(f"{token_id!r} is not a token id (12 hex digits)")
        record = await self._get(token_id)
        if record is None or record.revoked_ms:
            raise NotFoundError(f"no token {token_id}")
        revoked = dataclasses.replace(record, revoked_ms=int(time.time() * 1000))
        try:
            await self.etcd.put(self.prefix + token_id.encode(), revoked.to_json())
        except self.etcd_errors as err:
            raise UnavailableError(f"etcd: {err}") from None
        self._cache.pop(token_id, None)
        return revoked

    async def _get(self, token_id: str) -> TokenRecord | None:
        failures: tuple[type[BaseException], ...] = (TimeoutError, *self.etcd_errors)
        try:
            got = await asyncio.wait_for(self.etcd.get(self.prefix + token_id.encode()),
                                         READ_TIMEOUT_S)
        except failures as err:
            raise UnavailableError(f"etcd: {err or 'no answer'}") from None
        return None if got is None else TokenRecord.from_json(token_id, got.value)

    async def record_of(self, token: str) -> TokenRecord:
        """The record of a valid token; UNAUTHENTICATED for an unknown, revoked or wrong one."""
        token_id, secret = parse(token)
        record = await self._cached(token_id)
        if record is None or record.revoked_ms \
                or not hmac.compare_digest(record.hash, digest(secret)):
            raise UnauthenticatedError("the bearer token is unknown or revoked")
        return record

    async def _cached(self, token_id: str) -> TokenRecord | None:
        """The token's record as read at most CACHE_S ago; while etcd fails, the last one read
        for up to STALE_S more, answered at once (a refresh runs meanwhile)."""
        now = time.monotonic()
        hit = self._cache.get(token_id)
        if hit is not None and now - hit[1] < CACHE_S:
            return hit[0]
        stale_ok = hit is not None and now - hit[1] < CACHE_S + STALE_S
        loading = self._loading.get(token_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(token_id))
            self._loading[token_id] = loading
            loading.add_done_callback(lambda f: (self._loading.pop(token_id, None),
                                                 f.cancelled() or f.exception()))
        if stale_ok and now < self._failing_until:
            assert hit is not None
            return hit[0]  # etcd is failing: do not wait for it on every call
        try:
            return await asyncio.shield(loading)
        except UnavailableError:
            self._failing_until = time.monotonic() + CACHE_S
            if stale_ok:
                assert hit is not None
                return hit[0]
            raise

    async def _load(self, token_id: str) -> TokenRecord | None:
        record = await self._get(token_id)
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: unknown ids must not grow it without end
        self._cache[token_id] = (record, time.monotonic())
        return record


def bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class Quota:
    """One token's use of one process: token buckets for requests and bytes (a second's worth
    of burst), and the streams it holds open. Bytes are charged after the fact: a large answer
    puts the bucket in debt, and calls wait until it is paid."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.requests = max(limits.requests_per_s, 1.0)
        self.bytes = limits.bytes_per_s
        self.streams = 0
        self.at = time.monotonic()

    def _refill(self, now: float) -> None:
        elapsed, self.at = now - self.at, now
        if self.limits.requests_per_s:
            self.requests = min(max(self.limits.requests_per_s, 1.0),
                                self.requests + elapsed * self.limits.requests_per_s)
        if self.limits.bytes_per_s:
            self.bytes = min(self.limits.bytes_per_s,
                             self.bytes + elapsed * self.limits.bytes_per_s)

    def admit(self, streaming: bool, now: float | None = None) -> tuple[str, float] | None:
        """None when a call may start now (and it is counted), else (why, seconds to wait)."""
        self._refill(time.monotonic() if now is None else now)
        limits = self.limits
        if limits.requests_per_s and self.requests < 1.0:
            return "requests/s", (1.0 - self.requests) / limits.requests_per_s
        if limits.bytes_per_s and self.bytes < 0:
            return "bytes/s", -self.bytes / limits.bytes_per_s
        if streaming and limits.streams and self.streams >= limits.streams:
            return "open streams", 1.0
        if limits.requests_per_s:
            self.requests -= 1.0
        return None

    def open_stream(self) -> bool:
        """Take a stream slot (False when all are taken); no await may come between the check
        and the count, or a burst of streams would all pass the check."""
        if self.limits.streams and self.streams >= self.limits.streams:
            return False
        self.streams += 1
        return True

    def debt_s(self) -> float:
        """Seconds until the byte bucket is out of debt (0 when it is not)."""
        if not self.limits.bytes_per_s:
            return 0.0
        self._refill(time.monotonic())
        return max(0.0, -self.bytes / self.limits.bytes_per_s)

    def charge(self, n: int) -> None:
        if self.limits.bytes_per_s:
            self.bytes -= n


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Every call needs a valid token whose role may call the method (RULES), within the
    token's quota on this process (RESOURCE_EXHAUSTED with db4-retry-after-ms past it)."""

    def __init__(self, record_of: Callable[[str], Awaitable[TokenRecord]]) -> None:
        self.record_of = record_of
        self._quotas: dict[str, Quota] = {}

    def quota(self, record: TokenRecord) -> Quota:
        quota = self._quotas.get(record.id)
        if quota is None or quota.limits != record.limits:
            if len(self._quotas) > 10_000:
                self._quotas.clear()
            quota = self._quotas[record.id] = Quota(record.limits)
        return quota

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        allowed = RULES.get(details.method)
        if allowed == OPEN:
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None
        if allowed is None:
            return _refusal(handler, grpc.StatusCode.PERMISSION_DENIED,
                            f"{details.method} has no access rule; refused")
        token = bearer(details.invocation_metadata)
        if not token:
            return _refusal(handler, grpc.StatusCode.UNAUTHENTICATED,
                            "this cluster requires a bearer token (authorization: Bearer ...)")
        try:
            record = await self.record_of(token)
        except (UnauthenticatedError, UnavailableError) as err:
            return _refusal(handler, grpc.StatusCode[err.code], err.message)
        if record.role not in allowed:
            return _refusal(handler, grpc.StatusCode.PERMISSION_DENIED,
                            f"role {record.role!r} may not call {details.method} (roles "
                            f"allowed: {', '.join(sorted(allowed))})")
        if not record.limits:
            return handler
        quota = self.quota(record)
        over = quota.admit(False)  # stream slots are taken in the call itself (_metered)
        if over is not None:
            why, wait_s = over
            wait_ms = max(1, math.ceil(wait_s * 1000))
            return _refusal(handler, grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"token {record.id} is over its quota of {why}; retry in "
                            f"{wait_ms} ms", ((RETRY_AFTER_KEY, str(wait_ms)),))
        return _metered(handler, quota)


def _size(message: Any) -> int:
    if isinstance(message, bytes | bytearray):
        return len(message)
    size = getattr(message, "ByteSize", None)
    return size() if size is not None else 0


STREAM_PAUSE_MAX_S = 5.0


class _PacedContext:
    """The call's context, with `write` waiting while the token's byte bucket is in debt
    (servicers that stream by context.write rather than by yielding)."""

    def __init__(self, context: Any, quota: Quota) -> None:
        self._context = context
        self._quota = quota

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def write(self, message: Any) -> None:
        await _pace(self._quota)
        await self._context.write(message)


async def _pace(quota: Quota) -> None:
    pause = quota.debt_s()
    if pause:
        await asyncio.sleep(min(pause, STREAM_PAUSE_MAX_S))


def _metered(handler: Any, quota: Quota) -> Any:
    """`handler`, charging its bytes to `quota`, holding a stream slot while it runs, and
    pausing an open stream while the byte bucket is in debt."""
    streaming = handler.response_streaming or handler.request_streaming
    serialize = handler.response_serializer

    def serializer(message: Any) -> bytes:
        raw = serialize(message) if serialize is not None else message
        quota.charge(len(raw))
        return raw

    def charged(request: Any) -> Any:
        """The request, its bytes charged (as they arrive, for a request stream)."""
        if not handler.request_streaming:
            quota.charge(_size(request))
            return request

        async def counted() -> Any:
            async for message in request:
                quota.charge(_size(message))
                yield message
        return counted()

    async def no_slot(context: Any) -> None:
        await _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                     f"the token is over its quota of open streams ({quota.limits.streams}); "
                     "retry in 1000 ms", ((RETRY_AFTER_KEY, "1000"),))

    if handler.response_streaming:
        inner = handler.unary_stream or handler.stream_stream

        async def stream(request: Any, context: Any) -> Any:
            if not quota.open_stream():
                await no_slot(context)
            try:
                paced = _PacedContext(context, quota) if quota.limits.bytes_per_s else context
                async for item in inner(charged(request), paced):
                    await _pace(quota)
                    yield item
            finally:
                quota.streams -= 1

        behaviour: Any = stream
    else:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: Any) -> Any:
            if streaming and not quota.open_stream():
                await no_slot(context)
            try:
                result = inner(charged(request), context)
                return await result if hasattr(result, "__await__") else result
            finally:
                if streaming:
                    quota.streams -= 1

        behaviour = unary
    return handlers.like(handler, behaviour, serializer)


def _refusal(handler: Any, code: grpc.StatusCode, message: str,
             trailers: tuple[tuple[str, str], ...] = ()) -> Any:
    """A handler of the same kind as `handler` that ends the call with `code`."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _abort(context, code, message, trailers)

    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _abort(context, code, message, trailers)
        yield  # pragma: no cover - makes this an async generator

    return handlers.like(handler, refuse_stream if handler.response_streaming else refuse)


async def _abort(context: Any, code: grpc.StatusCode, message: str,
                 trailers: tuple[tuple[str, str], ...] = ()) -> None:
    """End the call: answered by this server (never sent again by a client), with `trailers`."""
    context.set_trailing_metadata(((ANSWERED_KEY, "1"), *trailers))
    await context.abort(code, message)
