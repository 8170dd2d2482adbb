"""The leader router and its hot-shard controller.

One router leads: it holds the etcd key `leader` (its name) under a lease of its own, created
only when absent. Every router tries every LEADER_TTL_S / 3 seconds, so when the leader goes
(its lease expires) another takes over within about LEADER_TTL_S. Only the leader runs the
controller; every router reads its marks.

The controller reads the nodes' load reports (`load/`) every round. A shard is hot when its
reads/s + writes/s stay over the threshold for the whole window, or when its documents or bytes
pass their limits (0: no limit). Its mark `hot/<shard>` records since when, the figures, the
reason, and where a split would halve the load (the median of the tokens its node sampled) or
why a split would not help (one partition key carries most of the operations). The mark goes
once the shard is back under every limit. With `--auto-split` the leader splits a marked shard
that can split (operations.py), one operation at a time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aetcd

from db4core.errors import Db4Error
from db4core.periodic import Periodic
from db4core.topology import Keys
from db4router.topology import etcd_call

log = logging.getLogger("db4.router.controller")

LEADER_TTL_S = 6
# A shard whose most frequent sampled token has this share of the operations cannot be relieved
# by a split: that one partition key would stay on one shard.
ONE_KEY_SHARE = 0.8
# How often the leader reads the load reports (nodes report every 5 s by default).
CONTROLLER_INTERVAL_S = 2.0
DEFAULT_HOT_THRESHOLD = 1000.0  # reads/s + writes/s
DEFAULT_HOT_WINDOW_S = 10.0


class Leadership:
    """Campaigns for `leader` every round; `is_leader` says whether this router holds it."""

    def __init__(self, etcd: aetcd.Client, keys: Keys, name: str,
                 ttl_s: int = LEADER_TTL_S) -> None:
        self.etcd = etcd
        self.keys = keys
        self.name = name
        self.ttl_s = ttl_s
        self.leader = ""  # the leader's name as last read
        self._lease: aetcd.Lease | None = None
        self._rounds = Periodic("leader campaign", self.campaign, ttl_s / 3, log,
                                (Db4Error,), wait_first=False)

    @property
    def is_leader(self) -> bool:
        return self.leader == self.name

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()
        if self._lease is not None and self.is_leader:
            try:  # hand over at once rather than after the lease's time
                await self._lease.revoke()
            except Exception as err:  # noqa: BLE001 - etcd away: the lease expires anyway
                log.warning("could not revoke the leader lease: %s", err)

    async def campaign(self) -> None:
        """Keep our lease alive (or take a new one), then hold or read `leader`."""
        lease = self._lease
        if lease is not None:
            reply = await etcd_call("refreshing the leader lease", lease.refresh)
            if reply is None or reply.TTL <= 0:
                lease = None
        if lease is None:
            lease = await etcd_call("granting the leader lease",
                                    lambda: self.etcd.lease(self.ttl_s))
            self._lease = lease
        key, tx = self.keys.leader, self.etcd.transactions
        created, responses = await etcd_call("campaigning", lambda: self.etcd.transaction(
            compare=[tx.version(key) == 0], success=[tx.put(key, self.name.encode(), lease)],
            failure=[tx.get(key)]))
        was = self.is_leader
        self.leader = self.name if created else responses[0][0][0].decode()
        if self.is_leader != was:
            log.info("router %s %s the leader", self.name, "is now" if self.is_leader
                     else f"is no longer (leader: {self.leader})")


@dataclass(frozen=True)
class HotLimits:
    """When a shard is hot."""

    ops_per_s: float = DEFAULT_HOT_THRESHOLD
    window_s: float = DEFAULT_HOT_WINDOW_S
    documents: int = 0  # 0: no limit
    bytes: int = 0  # 0: no limit


class HotController:
    """Marks hot shards in etcd while this router leads."""

    def __init__(self, etcd: aetcd.Client, keys: Keys, leadership: Leadership,
                 limits: HotLimits, interval_s: float = CONTROLLER_INTERVAL_S,
                 split: Callable[[str, int | None], Awaitable[bool]] | None = None) -> None:
        self.etcd = etcd
        self.keys = keys
        self.leadership = leadership
        self.limits = limits
        self.over_since: dict[str, float] = {}  # shard -> when it went over the threshold
        # With auto-split: split(shard, split token) plans a split; False when it may not now.
        self.split = split
        self._rounds = Periodic("hot-shard controller", self.round, interval_s, log, (Db4Error,))

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def round(self) -> None:
        if not self.leadership.is_leader:
            self.over_since.clear()  # a new leader starts its windows afresh
            return
        loads = await read_loads(self.etcd, self.keys)
        marked = set(await read_hot_marks(self.etcd, self.keys))
        now = time.time()
        for shard, (load, _age) in sorted(loads.items()):
            reason = self.reason(shard, load, now)
            if reason is not None and shard not in marked:
                mark = {"since": now, "reason": reason,
                        "ops_per_s": load["reads_per_s"] + load["writes_per_s"],
                        "documents": load["documents"], "bytes": load["bytes"],
                        **split_advice(load.get("sample"))}
                await self._mark(shard, json.dumps(mark).encode())
                log.info("shard %s is hot: %s", shard, reason)
            elif reason is None and shard in marked:
                await self._clear(shard)
        for shard in sorted(marked - set(loads)):  # no report any more (its node went)
            await self._clear(shard)
        if self.split is not None:
            await self._auto_split()

    async def _auto_split(self) -> None:
        """Split one hot shard that can be split, unless an operation is running: one at a
        time, so the copies never crowd a node. The operation id names the shard and the
        epoch, so a new leader never plans the same split twice."""
        assert self.split is not None
        for shard, mark in sorted((await read_hot_marks(self.etcd, self.keys)).items()):
            if mark.get("cannot_split"):
                continue
            token = mark.get("split_token")
            started = await self.split(shard, int(token) if token is not None else None)
            if started:
                log.info("auto-split of hot shard %s started (%s)", shard, mark.get("reason"))
                return

    async def _mark(self, shard: str, mark: bytes) -> None:
        await etcd_call("marking a hot shard", lambda: self.etcd.put(self.keys.hot(shard), mark))

    async def _clear(self, shard: str) -> None:
        await etcd_call("clearing a hot mark", lambda: self.etcd.delete(self.keys.hot(shard)))
        self.over_since.pop(shard, None)
        log.info("shard %s is no longer hot", shard)

    def reason(self, shard: str, load: dict, now: float) -> str | None:
        """Why the shard is hot now, or None."""
        lim = self.limits
        ops = load["reads_per_s"] + load["writes_per_s"]
        if ops > lim.ops_per_s:
            since = self.over_since.setdefault(shard, now)
            if now - since >= lim.window_s:
                return (f"{ops:.0f} ops/s over the threshold of {lim.ops_per_s:g} for "
                        f"{now - since:.0f} s")
        else:
            self.over_since.pop(shard, None)
        if lim.documents and load["documents"] > lim.documents:
            return f"{load['documents']} documents, over the limit of {lim.documents}"
        if lim.bytes and load["bytes"] > lim.bytes:
            return f"{load['bytes']} bytes, over the limit of {lim.bytes}"
        return None


def split_advice(sample: dict | None) -> dict:
    """Where to split a shard, from its sampled tokens: {"split_token": t}, or
    {"cannot_split": why} when one partition key carries most of the operations, or {} when
    nothing was sampled (scatter queries only, or sizes)."""
    if not sample:
        return {}
    if sample["top_share"] >= ONE_KEY_SHARE:
        return {"cannot_split": (
            f"one partition key (token {sample['top_token']}) carries "
            f"{sample['top_share']:.0%} of the sampled operations; a split would leave it on "
            "one shard")}
    return {"split_token": int(sample["median_token"])}


async def read_loads(etcd: aetcd.Client, keys: Keys) -> dict[str, tuple[dict, float]]:
    """shard -> (its load as last reported, seconds since the report), from `load/`."""
    found = await etcd_call("reading load reports", lambda: etcd.get_prefix(keys.loads))
    now = time.time()
    out: dict[str, tuple[dict, float]] = {}
    for kv in found:
        try:
            record = json.loads(kv.value)
            age = max(0.0, now - float(record["at"]))
            for shard, load in record["shards"].items():
                if shard not in out or out[shard][1] > age:  # a shard that moved: newest
                    out[shard] = (load, age)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed load report: %r", kv.value[:200])
    return out


async def read_hot_marks(etcd: aetcd.Client, keys: Keys) -> dict[str, dict]:
    """shard -> its hot mark."""
    found = await etcd_call("reading hot marks", lambda: etcd.get_prefix(keys.hot_marks))
    out = {}
    for kv in found:
        shard = kv.key[len(keys.hot_marks):].decode()
        try:
            out[shard] = json.loads(kv.value)
        except ValueError:  # kept (empty) so that the controller can still clear it
            log.warning("malformed hot mark of shard %s: %r", shard, kv.value[:200])
            out[shard] = {}
    return out
