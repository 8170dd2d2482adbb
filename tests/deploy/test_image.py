"""The container image runs a secured cluster: etcd, two nodes and a router, each a container of
the image started as Kubernetes starts it (non-root, read-only root file system, no
capabilities, settings from DB4_* variables, TLS and bearer tokens made by
deploy/gen-secrets.sh), on loopback ports of the host network. The SDK on the host then uses it.

`make test-deploy` builds the image first and sets DB4_TEST_IMAGE; without that variable the
tests are skipped when the image is missing. Every container started is removed by its id.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from db4client import Client, errors

ROOT = Path(__file__).resolve().parents[2]
PODMAN = str(ROOT / "deploy" / "podman.sh")
IMAGE = os.environ.get("DB4_TEST_IMAGE", "localhost/db4:dev")
CLUSTER = "deploytest"
SECRETS = "/etc/db4/tls"
TOKENS = "/etc/db4/tokens"

pytestmark = pytest.mark.timeout(240)


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run deploy/podman.sh (db4's podman configuration); raise with its stderr on failure."""
    done = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({done.returncode}): "
                             f"{done.stderr.strip()}")
    return done


def image_present() -> bool:
    if shutil.which("podman") is None:
        return False
    done = subprocess.run([PODMAN, "image", "exists", IMAGE], capture_output=True, timeout=60)
    return done.returncode == 0


if "DB4_TEST_IMAGE" not in os.environ and not image_present():
    pytest.skip(f"image {IMAGE} not built (make test-deploy builds it)", allow_module_level=True)


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (held open together, so never the same one twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(what: str, check, timeout: float = 60.0, every: float = 0.25):
    """Poll check() until it returns something truthy; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as err:  # noqa: BLE001 - kept to report why it never came
            last = err
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


@dataclass
class Containers:
    """The containers one test module started, by id, removed at the end whatever happened."""

    ids: dict[str, str] = field(default_factory=dict)

    def run(self, name: str, *args: str) -> str:
        """podman run -d with the Kubernetes-like restrictions; the container id."""
        cid = podman("run", "-d", "--init", "--network=host", "--read-only",
                     "--cap-drop=ALL", "--security-opt=no-new-privileges",
                     "--label", "db4-test=deploy", *args, timeout=120).stdout.strip()
        self.ids[name] = cid
        return cid

    def logs(self, name: str) -> str:
        done = podman("logs", self.ids[name])
        return done.stdout + done.stderr

    def state(self, name: str) -> dict:
        return json.loads(podman("inspect", "--format", "{{json .State}}",
                                 self.ids[name]).stdout)

    def alive(self, *names: str) -> bool:
        """True while these containers run; AssertionError (with its logs) once one exited."""
        for name in names:
            if not self.state(name)["Running"]:
                raise AssertionError(f"container {name} exited:\n{self.logs(name)}")
        return True

    def remove_all(self) -> None:
        for cid in self.ids.values():
            subprocess.run([PODMAN, "rm", "--force", "--time", "0", cid],
                           capture_output=True, timeout=60)
        self.ids.clear()


@dataclass
class Cluster:
    router: str
    ca: str
    admin_token: str
    containers: Containers
    metrics: str

    def client(self, token: str | None = None) -> Client:
        return Client(self.router, token=token or self.admin_token,
                      tls={"root_certificates": self.ca})


def secrets(tmp: Path) -> Path:
    """What the Secrets db4-tls and db4-tokens hold, made by deploy/gen-secrets.sh. The files
    are made readable for the image's user here; Kubernetes mounts them with fsGroup."""
    out = tmp / "secrets"
    subprocess.run([str(ROOT / "deploy" / "gen-secrets.sh"), str(out), "deploytest"],
                   check=True, capture_output=True, timeout=60)
    out.chmod(0o755)
    for f in out.iterdir():
        f.chmod(0o644)
    return out


def common(sec: Path, etcd_port: int) -> list[str]:
    """Mounts and DB4_* settings every db4 container gets, as in deploy/k8s/base."""
    mounts = [f"{sec}/{f}:{SECRETS}/{f}:ro" for f in ("ca.crt", "tls.crt", "tls.key")]
    mounts += [f"{sec}/internal:{TOKENS}/internal:ro"]
    env = {"DB4_CLUSTER": CLUSTER, "DB4_ETCD": f"http://127.0.0.1:{etcd_port}",
           "DB4_TLS_CERT": f"{SECRETS}/tls.crt", "DB4_TLS_KEY": f"{SECRETS}/tls.key",
           "DB4_TLS_CA": f"{SECRETS}/ca.crt", "DB4_AUTH": "true",
           "DB4_TOKEN_FILE": f"{TOKENS}/internal"}
    return [arg for m in mounts for arg in ("-v", m)] + \
           [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]


def volume(tmp: Path, name: str) -> Path:
    """A directory for one container's data, owned by the image's user (uid 10001), as a
    volume with fsGroup is in Kubernetes."""
    path = tmp / "volumes" / name
    path.mkdir(parents=True)
    os.chown(path, 10001, 10001)
    return path


def etcd_env(client: int, peer: int) -> list[str]:
    """The ETCD_* settings of deploy/k8s/base/etcd.yaml, with loopback URLs for its names."""
    env = {"ETCD_NAME": "db4-etcd-0", "ETCD_DATA_DIR": "/var/lib/etcd/data",
           "ETCD_LISTEN_CLIENT_URLS": f"http://127.0.0.1:{client}",
           "ETCD_LISTEN_PEER_URLS": f"http://127.0.0.1:{peer}",
           "ETCD_ADVERTISE_CLIENT_URLS": f"http://127.0.0.1:{client}",
           "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"http://127.0.0.1:{peer}",
           "ETCD_INITIAL_CLUSTER": f"db4-etcd-0=http://127.0.0.1:{peer}",
           "ETCD_INITIAL_CLUSTER_STATE": "new", "ETCD_INITIAL_CLUSTER_TOKEN": "db4-etcd",
           "ETCD_AUTO_COMPACTION_MODE": "periodic", "ETCD_AUTO_COMPACTION_RETENTION": "1",
           "ETCD_QUOTA_BACKEND_BYTES": "2147483648"}
    return [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]


def etcd_ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
        return json.loads(resp.read()).get("health") == "true"


def ready(client: Client) -> bool:
    status = client.admin.status()
    return len(status["nodes"]) == 2 and bool(status["shards"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("deploy")
    sec = secrets(tmp)
    (etcd_client, etcd_peer, router, router_health,
     n1, n1_health, n2, n2_health, metrics) = free_ports(9)
    cs = Containers()
    try:
        cs.run("etcd", "--no-healthcheck", "-v", f"{volume(tmp, 'etcd')}:/var/lib/etcd",
               *etcd_env(etcd_client, etcd_peer), "--entrypoint", "/usr/bin/etcd", IMAGE)
        wait_until("etcd", lambda: cs.alive("etcd") and etcd_ready(etcd_client))
        assert "unrecognized environment variable" not in cs.logs("etcd"), cs.logs("etcd")
        for name, port, health in (("n1", n1, n1_health), ("n2", n2, n2_health)):
            cs.run(name, "-v", f"{volume(tmp, name)}:/var/lib/db4", *common(sec, etcd_client),
                   "-e", f"DB4_ID={name}", "-e", f"DB4_PORT={port}",
                   "-e", f"DB4_HEALTH_PORT={health}", "-e", "DB4_DATA_DIR=/var/lib/db4/data",
                   IMAGE, "node")
        cs.run("router", "-v", f"{sec}/admin:{TOKENS}/admin:ro", *common(sec, etcd_client),
               "-e", f"DB4_PORT={router}", "-e", f"DB4_HEALTH_PORT={router_health}",
               "-e", f"DB4_METRICS_PORT={metrics}",
               "-e", "DB4_SHARDS=4", "-e", "DB4_MIN_NODES=2",
               "-e", f"DB4_ADMIN_TOKEN_FILE={TOKENS}/admin", IMAGE, "router")
        c = Cluster(f"127.0.0.1:{router}", str(sec / "ca.crt"),
                    (sec / "admin").read_text().strip(), cs, f"http://127.0.0.1:{metrics}")
        with c.client() as client:
            wait_until("the router to serve the cluster",
                       lambda: cs.alive("n1", "n2", "router") and ready(client), timeout=90)
        yield c
    except BaseException:
        for name in cs.ids:
            print(f"--- {name} logs\n{cs.logs(name)}")
        raise
    finally:
        cs.remove_all()


def test_documents_through_the_router(cluster: Cluster) -> None:
    with cluster.client() as client:
        client.create_collection("users", partition_key="tenantId")
        users = client.collection("users")
        docs = [users.create({"tenantId": f"t{i % 5}", "name": f"user{i}", "age": 20 + i})
                for i in range(40)]
        alice = docs[0]
        assert users.get(alice["$id"], partition="t0") == alice
        page = users.find(where={"age": {"$gte": 50}}, sort=[("age", "asc")], limit=100)
        assert [d["age"] for d in page.items] == list(range(50, 60))
        assert users.delete(alice["$id"], partition="t0") is True
        assert users.get(alice["$id"], partition="t0") is None
        # Both nodes hold shards: the documents were spread over the two containers.
        shards = client.admin.status()["shards"]
        assert {s["node_id"] for s in shards} == {"n1", "n2"}


def test_auth_is_required(cluster: Cluster) -> None:
    with Client(cluster.router, tls={"root_certificates": cluster.ca}) as anonymous, \
            pytest.raises(errors.UnauthenticatedError):
        anonymous.collection("users").get("x", partition="t0")


def test_router_metrics(cluster: Cluster) -> None:
    with cluster.client() as client:
        client.admin.status()
    with urllib.request.urlopen(f"{cluster.metrics}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert "db4_rpc_seconds" in text


def test_image_health_check(cluster: Cluster) -> None:
    # The image's HEALTHCHECK asks the router's plaintext health port.
    done = subprocess.run([PODMAN, "healthcheck", "run", cluster.containers.ids["router"]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_node_stops_cleanly_on_sigterm(cluster: Cluster) -> None:
    # Last in this module: it takes n2 away.
    started = time.monotonic()
    podman("stop", "--time", "30", cluster.containers.ids["n2"], timeout=60)
    took = time.monotonic() - started
    state = cluster.containers.state("n2")
    logs = cluster.containers.logs("n2")
    assert took < 15, f"podman stop took {took:.1f} s: SIGTERM was not handled"
    assert state["ExitCode"] == 0, logs
    assert "stopping node n2" in logs, logs
