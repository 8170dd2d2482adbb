"""A secured cluster: TLS everywhere (mutual between router and nodes), bearer tokens with
roles, the health service and reflection. Real etcd, nodes and router; the certificates and
tokens are made as `db4 dev --tls` makes them.

The access table is checked for every RPC of every service: no token and a bad token are
UNAUTHENTICATED, every role the RPC does not allow is PERMISSION_DENIED.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import pytest
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2

from db4.v1 import admin_pb2, node_pb2, router_pb2
from db4client import Client, errors
from db4rpc.tokens import RULES
from tests.support.procs import HOST, free_port, wait_until
from tests.support.secured import Secured, health_status

ROLES = ("read", "write", "admin", "node")
SERVICES = {"router": (router_pb2.DESCRIPTOR.services_by_name["Db4"],
                       admin_pb2.DESCRIPTOR.services_by_name["Admin"]),
            "node": (node_pb2.DESCRIPTOR.services_by_name["Node"],)}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    s = Secured(tmp_path_factory.mktemp("secured"))
    try:
        yield s.start()
    finally:
        s.stop()


def _call(channel: grpc.Channel, service, method, metadata=(), timeout: float = 5.0):
    """Call one method with an empty request; the status code it ended with."""
    request = message_factory.GetMessageClass(method.input_type)()
    path = f"/{service.full_name}/{method.name}"
    kw = {"request_serializer": type(request).SerializeToString,
          "response_deserializer": lambda raw: raw}
    try:
        if method.client_streaming and method.server_streaming:
            list(channel.stream_stream(path, **kw)(iter([request]), metadata=metadata,
                                                   timeout=timeout))
        elif method.client_streaming:
            channel.stream_unary(path, **kw)(iter([request]), metadata=metadata, timeout=timeout)
        elif method.server_streaming:
            list(channel.unary_stream(path, **kw)(request, metadata=metadata, timeout=timeout))
        else:
            channel.unary_unary(path, **kw)(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as err:
        return err.code(), err.details()
    return grpc.StatusCode.OK, ""


def _methods(where: str):
    return [(service, method) for service in SERVICES[where] for method in service.methods]


@pytest.mark.parametrize("where", ["router", "node"])
def test_every_rpc_refuses_a_missing_or_bad_token_and_every_role_it_does_not_allow(secured,
                                                                                   where):
    address = secured.router.address if where == "router" else secured.node_address()
    bad_secret = secured.tokens["read"][:-4] + "AAAA"
    unknown = "db4_000000000000_" + "A" * 43
    checked = 0
    with secured.channel(address) as ch:
        for service, method in _methods(where):
            name = f"/{service.full_name}/{method.name}"
            allowed = RULES[name]
            for metadata in ((), (("authorization", "Bearer " + bad_secret),),
                             (("authorization", "Bearer " + unknown),),
                             (("authorization", "Bearer not-a-token"),),
                             (("authorization", "Basic abc"),)):
                code, details = _call(ch, service, method, metadata)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (name, metadata, code, details)
            for role in ROLES:
                if role in allowed:
                    continue
                code, details = _call(ch, service, method,
                                      (("authorization", "Bearer " + secured.tokens[role]),))
                assert code == grpc.StatusCode.PERMISSION_DENIED, (name, role, code, details)
                assert repr(role) in details
            checked += 1
    assert checked == len(_methods(where)) > 10


@pytest.mark.parametrize("where,service,method,role", [
    ("router", "Db4", "GetCollection", "read"), ("router", "Db4", "ListIndexes", "read"),
    ("router", "Admin", "Status", "admin"), ("router", "Admin", "ListTokens", "admin"),
    ("node", "Node", "LogStats", "node"), ("node", "Node", "Read", "read"),
    ("node", "Node", "Read", "node"), ("node", "Node", "ShardStats", "node"),
])
def test_an_allowed_role_passes_the_check(secured, where, service, method, role):
    address = secured.router.address if where == "router" else secured.node_address()
    svc = next(s for s in SERVICES[where] if s.name == service)
    with secured.channel(address) as ch:
        code, details = _call(ch, svc, svc.methods_by_name[method],
                              (("authorization", "Bearer " + secured.tokens[role]),))
    assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                        grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (code, details)


def test_the_sdk_works_with_tls_and_a_token_and_names_the_auth_errors(secured):
    with secured.client("write") as c:
        users = c.collection("sec_users")
        doc = users.create({"$id": "u1", "name": "Ann"})
        assert users.get("u1") == doc
    with secured.client("read") as c:
        assert c.collection("sec_users").get("u1")["name"] == "Ann"
        with pytest.raises(errors.PermissionDeniedError, match="needs|allowed"):
            c.collection("sec_users").create({"name": "Bob"})
        with pytest.raises(errors.PermissionDeniedError):
            c.admin.status()
    with secured.client(None) as c, pytest.raises(errors.UnauthenticatedError,
                                                 match="bearer token"):
        c.collection("sec_users").get("u1")
    with secured.client("write") as c:
        assert c.collection("sec_users").get("u2") is None  # nothing half-written by Bob


def test_direct_mode_reaches_the_nodes_over_mutual_tls_with_the_callers_token(secured):
    with secured.client("write", direct=True) as c:
        c.create_collection("sec_direct")
        users = c.collection("sec_direct")
        for i in range(10):
            users.create({"$id": f"d{i}", "i": i})
        assert [users.get(f"d{i}")["i"] for i in range(10)] == list(range(10))
        assert c._routes.sent >= 20 and c._routes.fell_back == 0
    with secured.client("read", direct=True) as c:
        with pytest.raises(errors.PermissionDeniedError):
            c.collection("sec_direct").update("d1", {"i": 100})
        assert c.collection("sec_direct").get("d1")["i"] == 1


def test_a_revoked_token_is_refused_within_a_second_and_etcd_keeps_only_its_hash(secured):
    with secured.client("admin") as admin:
        made = admin.admin.create_token("read", "short-lived")
        token_id, token = made["id"], made["token"]
        assert token.startswith(f"db4_{token_id}_")
        listed = {t["id"]: t for t in admin.admin.tokens()}
        assert listed[token_id] == {k: v for k, v in made.items() if k != "token"}
        assert made["role"] == "read" and made["name"] == "short-lived"
        raw = _etcd_get(secured.etcd.url, f"/db4/default/tokens/{token_id}")
        secret = token.split("_", 2)[2]
        assert secret not in raw and token not in raw and json.loads(raw)["role"] == "read"
        with Client(secured.router.address, token=token, tls=secured.tls.sdk_tls()) as c:
            assert c.collection("sec_users").get("u1") is not None
            admin.admin.revoke_token(token_id)
            revoked_at = time.monotonic()
            with pytest.raises(errors.UnauthenticatedError, match="unknown or revoked"):
                while time.monotonic() - revoked_at < 5:
                    c.collection("sec_users").get("u1")
                    time.sleep(0.05)
            assert time.monotonic() - revoked_at < 2.5
        with pytest.raises(errors.NotFoundError):
            admin.admin.revoke_token(token_id)
        with pytest.raises(errors.InvalidArgumentError, match="unknown role"):
            admin.admin.create_token("root")
        with pytest.raises(errors.InvalidArgumentError, match="token id"):
            admin.admin.revoke_token("nope")


def test_a_node_requires_a_client_certificate_and_plaintext_gets_nowhere(secured):
    with secured.channel(secured.node_address(), client_cert=False) as ch:
        code, _ = _call(ch, SERVICES["node"][0], SERVICES["node"][0].methods_by_name["Read"],
                        (("authorization", "Bearer " + secured.tokens["read"]),), timeout=3)
    assert code == grpc.StatusCode.UNAVAILABLE
    for address in (secured.router.address, secured.node_address()):
        with grpc.insecure_channel(address) as ch, pytest.raises(grpc.RpcError) as err:
            health_status(ch)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_health_serves_on_the_tls_port_and_on_the_plaintext_health_port(secured):
    with secured.channel(secured.router.address) as ch:
        for service in ("", "db4.v1.Db4", "db4.v1.Admin"):
            assert health_status(ch, service) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            health_status(ch, "db4.v1.Nope")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with grpc.insecure_channel(f"{HOST}:{secured.health_port}") as ch:
        assert health_status(ch, "db4.v1.Node") == health_pb2.HealthCheckResponse.SERVING
        # the health port serves nothing else
        node = SERVICES["node"][0]
        code, _ = _call(ch, node, node.methods_by_name["LogStats"],
                        (("authorization", "Bearer " + secured.tokens["node"]),))
        assert code == grpc.StatusCode.UNIMPLEMENTED


def test_reflection_lists_the_services_to_a_token_holder(secured):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with secured.channel(secured.router.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = list(stub.ServerReflectionInfo(
            iter([request]), metadata=(("authorization", "Bearer " + secured.tokens["read"]),),
            timeout=5))
        with pytest.raises(grpc.RpcError) as err:
            list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"db4.v1.Db4", "db4.v1.Admin", "grpc.health.v1.Health"} <= names
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("flags,message", [
    (["--host", "0.0.0.0"], "not a loopback address"),
    (["--auth", "true"], "needs TLS"),
    (["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"], "cannot read"),
])
def test_a_process_refuses_an_open_address_without_tls_and_tokens(tmp_path, flags, message):
    for module in ("db4node", "db4router"):
        extra = ["--id", "x", "--data-dir", str(tmp_path / "d")] if module == "db4node" else []
        run = subprocess.run([sys.executable, "-m", module, *extra, "--port", str(free_port()),
                              "--etcd", f"http://{HOST}:{free_port()}", *flags],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode != 0, (module, run.stderr)
        assert message in run.stderr, (module, run.stderr[-2000:])


def test_a_node_on_every_address_must_say_where_it_is_reached(secured, tmp_path):
    t = secured.tls
    run = subprocess.run(
        [sys.executable, "-m", "db4node", "--id", "x", "--data-dir", str(tmp_path / "d"),
         "--host", "0.0.0.0", "--port", str(free_port()), "--etcd", secured.etcd.url,
         "--tls-cert", str(t.server_cert), "--tls-key", str(t.server_key), "--auth", "true"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "--advertise" in run.stderr, run.stderr[-2000:]


def _etcd_get(url: str, key: str) -> str:
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
    req = urllib.request.Request(f"{url}/v3/kv/range", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        kvs = json.loads(resp.read()).get("kvs", [])
    assert len(kvs) == 1, key
    return base64.b64decode(kvs[0]["value"]).decode()


def test_a_token_over_its_request_quota_waits_and_other_tokens_are_not_held_back(secured):
    with secured.client("admin") as admin:
        limited = admin.admin.create_token("read", "limited", requests_per_s=5)
    assert limited["limits"]["requests_per_s"] == 5
    refused = []
    with Client(secured.router.address, token=limited["token"],
                tls=secured.tls.sdk_tls()) as flooder, secured.client("read") as other:
        for _ in range(40):
            try:
                flooder.collection("sec_users").get("u1")
            except errors.ResourceExhaustedError as err:
                refused.append(err)
            other.collection("sec_users").get("u1")  # never refused
        assert refused, "40 calls at once stayed under 5/s"
        assert all(0 < e.retry_after_ms <= 1000 for e in refused)
        assert "over its quota of requests/s" in refused[0].message
        time.sleep(refused[-1].retry_after_ms / 1000 + 0.05)
        assert flooder.collection("sec_users").get("u1")["name"] == "Ann"


def test_a_token_over_its_stream_quota_or_its_byte_quota_is_refused_until_it_is_back(secured):
    with secured.client("write") as writer:
        docs = writer.collection("sec_streams")
        docs.insert_many([{"$id": f"s{i}", "pad": "x" * 2000} for i in range(20)])
    with secured.client("admin") as admin:
        one_stream = admin.admin.create_token("read", "one-stream", max_streams=1)["token"]
        few_bytes = admin.admin.create_token("read", "few-bytes", bytes_per_s=4000)["token"]
    with Client(secured.router.address, token=one_stream, tls=secured.tls.sdk_tls()) as c:
        held = c.collection("sec_streams").iterate(page_size=2)
        next(held)  # the stream is open
        with pytest.raises(errors.ResourceExhaustedError, match="open streams"):
            next(c.collection("sec_streams").iterate(page_size=2))
        held.close()
        wait_until(lambda: _iterates(c), 10, "the stream slot to come back")
    with Client(secured.router.address, token=few_bytes, tls=secured.tls.sdk_tls()) as c:
        page = c.collection("sec_streams").find(limit=20)  # ~40 KB: 10 s of this quota
        assert len(page.items) == 20
        with pytest.raises(errors.ResourceExhaustedError, match="bytes/s") as err:
            c.collection("sec_streams").get("s1")
        assert 5000 < err.value.retry_after_ms <= 11000


def _iterates(c) -> bool:
    try:
        return len(list(c.collection("sec_streams").iterate(page_size=50))) == 20
    except errors.ResourceExhaustedError:
        return False


def test_a_revoked_token_stays_revoked_when_a_process_starts_with_it_in_a_token_file(
        secured, tmp_path):
    """The router registers the token of --admin-token-file at every start: a revoked one
    must not come back."""
    with secured.client("admin") as admin:
        made = admin.admin.create_token("admin", "bootstrap-2")
    secured.router_env["DB4_ADMIN_TOKEN_FILE"] = str(tmp_path / "admin2.token")
    (tmp_path / "admin2.token").write_text(made["token"] + "\n")
    try:
        with secured.client("admin") as admin:
            admin.admin.revoke_token(made["id"])
            assert made["id"] not in {t["id"] for t in admin.admin.tokens()}
        secured.restart_router()
        assert "was revoked; it stays revoked" in secured.router.log_tail(200)
        with Client(secured.router.address, token=made["token"], tls=secured.tls.sdk_tls()) as c, \
                pytest.raises(errors.UnauthenticatedError, match="unknown or revoked"):
            c.admin.tokens()
    finally:
        secured.router_env["DB4_ADMIN_TOKEN_FILE"] = str(secured.tls.admin_token)


def test_a_burst_of_streams_from_a_fresh_token_gets_no_more_than_its_stream_quota(secured):
    with secured.client("write") as writer:
        writer.collection("sec_burst").insert_many([{"$id": f"b{i}"} for i in range(3)])
    with secured.client("admin") as admin:
        token = admin.admin.create_token("read", "burst", max_streams=2)["token"]
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    held = []

    def one() -> None:
        client = Client(secured.router.address, token=token, tls=secured.tls.sdk_tls())
        held.append(client)
        stream = iter(client.subscribe(collections=["sec_burst"]))  # a feed never ends
        barrier.wait()
        try:
            next(stream)
            outcomes.append("open")
        except errors.ResourceExhaustedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for client in held:
        client.close()
    assert len(outcomes) == 8 and outcomes.count("open") <= 2, outcomes
    assert outcomes.count("refused") >= 6


def test_an_open_stream_is_paced_by_its_byte_quota(secured):
    with secured.client("write") as writer:
        writer.collection("sec_paced").insert_many(
            [{"$id": f"p{i}", "pad": "x" * 1000} for i in range(30)])
    with secured.client("admin") as admin:
        token = admin.admin.create_token("read", "paced", bytes_per_s=10_000)["token"]
    with Client(secured.router.address, token=token, tls=secured.tls.sdk_tls()) as c:
        started = time.monotonic()
        got = list(c.collection("sec_paced").iterate(page_size=3))  # ~30 KB in one stream
        took = time.monotonic() - started
    assert len(got) == 30
    assert took >= 1.0, f"30 KB at 10 KB/s went through in {took:.2f} s"


def test_while_etcd_hangs_cached_tokens_keep_answering_within_a_short_deadline(secured):
    with secured.client("read") as c:
        c.timeout = 4.0
        users = c.collection("sec_users")
        assert users.get("u1") is not None
        os.kill(secured.etcd.pid, signal.SIGSTOP)
        try:
            for _ in range(4):
                time.sleep(0.7)  # past the cache's second, more than once
                assert users.get("u1")["name"] == "Ann"
        finally:
            os.kill(secured.etcd.pid, signal.SIGCONT)


def test_a_process_on_a_port_in_use_says_so_in_one_line(cluster, tmp_path):
    taken = socket.socket()
    taken.bind((HOST, 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        for module in ("db4node", "db4router"):
            extra = ["--id", "x", "--data-dir", str(tmp_path / "d")] if module == "db4node" \
                else []
            run = subprocess.run([sys.executable, "-m", module, *extra, "--port", str(port),
                                  "--etcd", cluster.etcd.url],
                                 capture_output=True, text=True, timeout=60)
            assert run.returncode != 0, (module, run.stderr)
            assert f"cannot listen on {HOST}:{port}" in run.stderr, (module, run.stderr[-2000:])
            assert "Traceback" not in run.stderr, (module, run.stderr[-2000:])
    finally:
        taken.close()
