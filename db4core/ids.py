"""Document ids: validation and generation of unique, time-sortable ids."""

from __future__ import annotations

import os
import re
import threading
import time

from db4core.errors import InvalidArgumentError

ID_PATTERN = re.compile(r"[A-Za-z0-9._:@-]{1,256}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def validate_id(value: object) -> str:
    """Return the id when it is a valid `$id`, else raise InvalidArgumentError."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"$id must be a string, got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value):
        raise InvalidArgumentError(
            "$id must be 1-256 characters of [A-Za-z0-9._:@-]"
            + (f", got {len(value)} characters" if len(value) > 256 else f": {value[:64]!r}")
        )
    return value


def _b32(value: int, length: int) -> str:
    """Crockford base32, fixed width, most significant first (so text order = number order)."""
    out = []
    for _ in range(length):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


class IdGenerator:
    """ULID-style ids: 48-bit milliseconds then 80 random bits, 26 characters.

    Within one process ids are strictly increasing even inside one millisecond (the random part
    is incremented), so they sort by creation time; across processes they sort by millisecond.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def new_id(self) -> str:
        """A fresh id."""
        with self._lock:
            ms = max(int(time.time() * 1000), self._last_ms)
            if ms == self._last_ms:
                rand = self._last_rand + 1
                if rand >> 80:
                    ms, rand = ms + 1, int.from_bytes(os.urandom(10), "big") >> 1
            else:
                rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
            self._last_ms, self._last_rand = ms, rand
        return _b32(ms, 10) + _b32(rand, 16)


_generator = IdGenerator()


def new_id() -> str:
    """A fresh unique, time-sortable id."""
    return _generator.new_id()
