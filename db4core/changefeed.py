"""Change-feed resume tokens, shared by router and SDK.

A token is where a subscriber stands in every shard's change log: the last LSN delivered per
shard, plus, while a cross-shard transaction is only partly delivered, which of its shards are
done (so a resume delivers the rest of it without waiting for the parts already delivered).
On the wire it is opaque: `v1.` + base64url of compact JSON. Callers store and pass it back.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from db4core.errors import InvalidArgumentError

PREFIX = "v1."
START_OLDEST = "oldest"
START_NOW = "now"
STARTS = (START_OLDEST, START_NOW)


@dataclass
class Token:
    """Last delivered LSN per shard (absent: nothing delivered, start from LSN 1), and the
    transactions partly delivered: txid -> shards whose part was delivered."""

    lsn: dict[str, int] = field(default_factory=dict)
    open: dict[str, list[str]] = field(default_factory=dict)

    def encode(self) -> str:
        body: dict[str, object] = {"lsn": dict(sorted(self.lsn.items()))}
        if self.open:
            body["open"] = {t: sorted(s) for t, s in sorted(self.open.items())}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Token:
        """A token from its wire form; INVALID_ARGUMENT for anything that is not one."""
        if not isinstance(text, str) or not text.startswith(PREFIX):
            raise InvalidArgumentError("not a change-feed token (it must come from an event or "
                                       "a heartbeat of this cluster)")
        payload = text[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            body = json.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidArgumentError("change-feed token is corrupt") from None
        lsn, open_ = (body.get("lsn"), body.get("open", {})) if isinstance(body, dict) else (
            None, None)
        if not isinstance(lsn, dict) or not isinstance(open_, dict) or not all(
                isinstance(k, str) and type(v) is int and v >= 0 for k, v in lsn.items()) or \
                not all(isinstance(k, str) and isinstance(v, list)
                        and all(isinstance(s, str) for s in v) for k, v in open_.items()):
            raise InvalidArgumentError("change-feed token is corrupt")
        return cls(dict(lsn), {k: list(v) for k, v in open_.items()})

    def copy(self) -> Token:
        return Token(dict(self.lsn), {k: list(v) for k, v in self.open.items()})
