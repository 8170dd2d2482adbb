"""Transaction records shared by coordinator (router) and participants (nodes).

A cross-shard transaction's decision lives in etcd at `Keys.txn(txid)` (txns/<txid>), written once
by a create-only etcd transaction (`version(key) == 0`), by the coordinator (commit) or by a
participant that waited too long (abort): whoever writes first decides, the other reads the
record and follows it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from db4core.errors import InvalidArgumentError

COMMIT = "commit"
ABORT = "abort"
DECISIONS = (COMMIT, ABORT)

# How long a participant holds a prepared transaction before it asks etcd for the decision
# (and records abort when there is none). Default of `db4 node --txn-in-doubt-seconds`.
DEFAULT_IN_DOUBT_S = 2.0
# Limits of one transaction (documented in the router's design and the SDK).
MAX_TXN_OPS = 10_000
MAX_TXN_BYTES = 16 * 1024 * 1024

_TXID = re.compile(r"[0-9a-f]{32}")


def validate_txid(txid: str) -> str:
    """A transaction id: 32 lower-case hex digits (a uuid4's hex)."""
    if not isinstance(txid, str) or not _TXID.fullmatch(txid):
        raise InvalidArgumentError(f"txid must be 32 lower-case hex digits, got {txid!r}")
    return txid


@dataclass(frozen=True)
class Decision:
    """The value of txns/<txid>."""

    decision: str  # commit | abort
    participants: list[str] = field(default_factory=list)  # shard ids
    by: str = ""  # who recorded it: "router" or "node:<id>"
    ts: int = field(default_factory=lambda: int(time.time() * 1000))

    def encode(self) -> bytes:
        return json.dumps({"decision": self.decision, "participants": self.participants,
                           "by": self.by, "ts": self.ts}, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, raw: bytes) -> Decision:
        obj = json.loads(raw)
        if obj.get("decision") not in DECISIONS:
            raise ValueError(f"bad transaction decision record: {raw!r}")
        return cls(obj["decision"], list(obj.get("participants", [])), obj.get("by", ""),
                   int(obj.get("ts", 0)))
