"""The consistent-hash ring: virtual-node tokens on a 64-bit circle, each owned by a shard.

A key belongs to the first virtual node at or after its token, wrapping past the top. The ring is
immutable; a change builds a new one with a higher epoch.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from db4core.hashing import vnode_token

DEFAULT_VNODES = 128
TOKEN_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class Ring:
    """Sorted virtual-node tokens and the shard owning each."""

    tokens: tuple[int, ...]
    owners: tuple[str, ...]
    _shards: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.owners) or not self.tokens:
            raise ValueError("a ring needs one owner per token and at least one token")
        if any(a >= b for a, b in zip(self.tokens, self.tokens[1:], strict=False)):
            raise ValueError("ring tokens must be strictly increasing")
        object.__setattr__(self, "_shards", frozenset(self.owners))

    @classmethod
    def build(cls, shard_ids: Iterable[str], vnodes: int = DEFAULT_VNODES) -> Ring:
        """Place `vnodes` tokens per shard at hash(shard#i)."""
        pairs = sorted({vnode_token(s, i): s for s in shard_ids for i in range(vnodes)}.items())
        return cls(tuple(t for t, _ in pairs), tuple(s for _, s in pairs))

    def shard_for_token(self, token: int) -> str:
        """Owner of a token: the first virtual node at or after it, wrapping around."""
        i = bisect.bisect_left(self.tokens, token)
        return self.owners[i % len(self.owners)]

    @property
    def shards(self) -> frozenset[str]:
        """Every shard that owns at least one virtual node."""
        return self._shards

    def vnode_count(self, shard_id: str) -> int:
        """How many virtual nodes a shard owns."""
        return self.owners.count(shard_id)

    def ranges(self, shard_id: str) -> list[tuple[int, int]]:
        """The tokens a shard owns, as inclusive (first, last) ranges in token order: a virtual
        node owns the tokens after the previous one up to its own; neighbours of one shard make
        one range, and the arc past the top wraps to a range from 0."""
        out: list[tuple[int, int]] = []
        n = len(self.tokens)
        for i, (token, owner) in enumerate(zip(self.tokens, self.owners, strict=True)):
            if owner != shard_id:
                continue
            first = self.tokens[i - 1] + 1 if i else 0
            if out and out[-1][1] + 1 == first:
                out[-1] = (out[-1][0], token)
            else:
                out.append((first, token))
        if self.owners[0] == shard_id and self.tokens[-1] < TOKEN_MAX:
            # The arc after the last virtual node wraps around to the first one.
            if self.owners[n - 1] == shard_id:
                last = out.pop()
                out.append((last[0], TOKEN_MAX))
            else:
                out.append((self.tokens[-1] + 1, TOKEN_MAX))
        return out

    def share(self, shard_id: str) -> float:
        """The fraction of the token space a shard owns."""
        return sum(last - first + 1 for first, last in self.ranges(shard_id)) / (TOKEN_MAX + 1)

    def to_json(self) -> str:
        """Serialise for etcd."""
        pairs = zip(self.tokens, self.owners, strict=True)
        return json.dumps({"vnodes": [[t, s] for t, s in pairs]})

    @classmethod
    def from_json(cls, text: str | bytes) -> Ring:
        """Parse what to_json wrote."""
        pairs = json.loads(text)["vnodes"]
        return cls(tuple(int(t) for t, _ in pairs), tuple(str(s) for _, s in pairs))
