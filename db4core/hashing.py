"""The partition hash: where a partition key value sits on the 64-bit ring.

Contract, never to change between versions (data placement depends on it):
  token(value) = first 8 bytes, big-endian, of BLAKE2b(digest_size=8) over the canonical JSON
  encoding of the value: UTF-8, no whitespace, object keys sorted, non-ASCII kept as is.
So the string "acme" hashes the bytes `"acme"` (with the quotes) whichever collection or field it
came from: one tenant's documents in several collections land on the same shard.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

RING_BITS = 64
RING_SIZE = 1 << RING_BITS


_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                              allow_nan=False).encode  # built once: json.dumps builds one a call


def canonical_json(value: Any) -> bytes:
    """Encode a JSON value the one way the hash sees it."""
    return _CANONICAL(value).encode()


def hash64(data: bytes) -> int:
    """64-bit BLAKE2b of raw bytes, as an unsigned integer."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def token_for(value: Any) -> int:
    """Ring token of a partition key value."""
    return hash64(canonical_json(value))


def vnode_token(shard_id: str, index: int) -> int:
    """Token of a shard's index-th virtual node, as placed when the cluster is created."""
    return hash64(f"{shard_id}#{index}".encode())


def to_signed(token: int) -> int:
    """Map an unsigned 64-bit token to SQLite's signed INTEGER, preserving order."""
    return token - (1 << 63)


def from_signed(value: int) -> int:
    """Inverse of to_signed."""
    return value + (1 << 63)
