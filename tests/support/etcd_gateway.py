"""etcd's v3 JSON gateway for tests: revisions, key counts, puts and deletes under a cluster's
root without a client library."""

from __future__ import annotations

import base64
import json
import time
import urllib.request

CLUSTER = "default"


class EtcdGateway:
    """etcd's v3 JSON gateway: revisions and key counts without a client library."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def revision(self) -> int:
        """The store's current revision: any write bumps it."""
        got = self._post("/v3/kv/range", {"key": _b64(f"/db4/{CLUSTER}/topo/epoch")})
        return int(got["header"]["revision"])

    def written_since(self, revision: int, ignore: tuple[str, ...] = ("load/", "hot/")
                      ) -> list[str]:
        """Keys under /db4/<cluster>/ (relative to it) written after `revision`, each at the
        revision that wrote it (a key put and deleted since is listed too), leaving out what
        nodes and the leader router write on their own timers (`ignore`: load reports and hot
        marks), so a test can tell that a request wrote nothing to etcd."""
        root = f"/db4/{CLUSTER}/".encode()
        end = root[:-1] + bytes([root[-1] + 1])
        written = []
        for rev in range(revision + 1, self.revision() + 1):
            got = self._post("/v3/kv/range", {
                "key": base64.b64encode(root).decode(), "range_end": base64.b64encode(end).decode(),
                "revision": rev, "min_mod_revision": rev, "max_mod_revision": rev,
                "keys_only": True})
            written += [base64.b64decode(kv["key"])[len(root):].decode()
                        for kv in got.get("kvs", [])]
        return [k for k in written if not k.startswith(ignore)]

    def put(self, key: str, value: bytes) -> None:
        """Put /db4/<cluster>/<key>."""
        self._post("/v3/kv/put", {"key": _b64(f"/db4/{CLUSTER}/{key}"),
                                  "value": base64.b64encode(value).decode()})

    def delete(self, key: str) -> None:
        """Delete /db4/<cluster>/<key>."""
        self._post("/v3/kv/deleterange", {"key": _b64(f"/db4/{CLUSTER}/{key}")})

    def gone(self, prefix: str, timeout: float = 30.0) -> bool:
        """Whether no key is left under the prefix within `timeout` seconds (a committed
        transaction's record is removed just after its answer; the janitor removes records a
        crashed coordinator left behind, 10 s on)."""
        deadline = time.monotonic() + timeout
        while self.count(prefix):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def count(self, prefix: str) -> int:
        """Keys under /db4/<cluster>/<prefix>."""
        key = f"/db4/{CLUSTER}/{prefix}".encode()
        end = key[:-1] + bytes([key[-1] + 1])
        got = self._post("/v3/kv/range", {"key": base64.b64encode(key).decode(),
                                          "range_end": base64.b64encode(end).decode(),
                                          "count_only": True})
        return int(got.get("count", 0))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
