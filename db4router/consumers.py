"""Durable change-feed consumers: `consumers/<name>` in etcd, JSON {"token", "lsn", "ts"}.

A consumer is registered by its first Subscribe, at the position it starts from; Acknowledge
moves it forward. Nodes keep their change log from the lowest LSN per shard of all consumers
on, so a record goes back only when an acknowledged position passes it: the record's `lsn` map
is what they read, the token is where a Subscribe without a token resumes.
"""

from __future__ import annotations

import json
import time

from db4core.changefeed import Token
from db4core.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from db4core.names import COLLECTION_PATTERN
from db4router.topology import ClusterView, etcd_call

CAS_ATTEMPTS = 20


def validate_consumer(name: object) -> str:
    """A consumer name follows the rules of a collection name."""
    if not isinstance(name, str) or not COLLECTION_PATTERN.fullmatch(name):
        raise InvalidArgumentError(
            f"consumer name must be 1-128 characters of [A-Za-z0-9_-] starting with a letter, "
            f"got {name!r}")
    return name


def record(token: Token) -> bytes:
    """The etcd value of a consumer standing at token."""
    return json.dumps({"token": token.encode(), "lsn": dict(sorted(token.lsn.items())),
                       "ts": int(time.time() * 1000)}).encode()


class Consumers:
    """Reads and moves consumer positions with etcd transactions (never through the view)."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view

    async def start_token(self, name: str, start: Token) -> Token:
        """The consumer's acknowledged token, registering it at `start` when it is new."""
        key, etcd = self.view.keys.consumer(name), self.view.etcd
        tx = etcd.transactions
        created, responses = await etcd_call("registering a consumer", lambda: etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, record(start))],
            failure=[tx.get(key)]))
        if created:
            return start
        return Token.decode(json.loads(responses[0][0][0])["token"])

    async def acknowledge(self, name: str, token: Token) -> None:
        """Move the consumer to token: only forward, on every shard. A token behind (or at)
        the acknowledged one changes nothing; one ahead on some shards and behind on others
        (from another subscription) is refused, as either choice would lose a position."""
        key, etcd = self.view.keys.consumer(name), self.view.etcd
        for _ in range(CAS_ATTEMPTS):
            found = await etcd_call("reading a consumer", lambda: etcd.get(key))
            if found is None:
                raise NotFoundError(f"consumer {name!r} is not registered (a Subscribe with "
                                    "this consumer name registers it)")
            old = Token.decode(json.loads(found.value)["token"])
            ahead = [s for s, lsn in token.lsn.items() if lsn > old.lsn.get(s, 0)]
            behind = [s for s, lsn in old.lsn.items() if lsn > token.lsn.get(s, 0)]
            if not ahead:
                return  # nothing new: an acknowledgement that arrived late
            if behind:
                raise FailedPreconditionError(
                    f"token is ahead of consumer {name!r} on shards {sorted(ahead)} but behind "
                    f"it on {sorted(behind)}: it comes from another subscription")
            if await self._move(key, found.mod_revision, token):
                return
        raise FailedPreconditionError(f"consumer {name!r} is acknowledged concurrently too "
                                      "often; retry")

    async def _move(self, key: bytes, revision: int, token: Token) -> bool:
        """Put the consumer at token unless it changed since `revision`."""
        etcd = self.view.etcd
        tx = etcd.transactions
        ok, _ = await etcd_call("acknowledging", lambda: etcd.transaction(
            compare=[tx.mod(key) == revision], success=[tx.put(key, record(token))],
            failure=[]))
        return bool(ok)

    async def listing(self) -> dict[str, dict[str, int]]:
        """Every consumer's acknowledged LSN per shard (a split or move's pin, `$op-<id>`, is
        no consumer)."""
        prefix, etcd = self.view.keys.consumers, self.view.etcd
        found = await etcd_call("reading consumers", lambda: etcd.get_prefix(prefix))
        return {kv.key[len(prefix):].decode(): json.loads(kv.value).get("lsn", {})
                for kv in found if not kv.key[len(prefix):].startswith(b"$")}


def lag(last: dict[str, int], acked: dict[str, int]) -> dict[str, int]:
    """Records a consumer has yet to acknowledge, per shard: each shard's last LSN less the
    consumer's acknowledged one (what `db4 cdc status` and the metrics show)."""
    return {shard: max(0, top - acked.get(shard, 0)) for shard, top in last.items()}
