"""The SDK without a server: input is rejected before any RPC, requests carry what they should,
only idempotent calls are retried, and the sync and asyncio clients behave the same."""

from __future__ import annotations

import asyncio
import json
import math

import grpc
import pytest

from db4.v1 import admin_pb2, router_pb2
from db4client import AsyncClient, Client, RetryPolicy, _channel, errors
from tests.support.fakes import FakeAioChannel, FakeChannel, FakeRpcError, FakeStub

NO_WAIT = RetryPolicy(attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0, unary_budget_s=0.0)


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    """Unit tests open no channel: the clients get inert fakes."""
    monkeypatch.setattr(_channel, "open_channel", lambda address, tls: FakeChannel())
    monkeypatch.setattr(_channel, "open_aio_channel", lambda address, tls: FakeAioChannel())


def make_client(**kw) -> tuple[Client, FakeStub, FakeStub]:
    client = Client(retry=NO_WAIT, **kw)
    db4, admin = FakeStub(), FakeStub()
    client._stubs = {"db4": db4, "admin": admin}
    return client, db4, admin


def make_async_client(**kw) -> tuple[AsyncClient, FakeStub]:
    client = AsyncClient(retry=NO_WAIT, **kw)
    db4 = FakeStub(asynchronous=True)
    client._stubs = {"db4": db4, "admin": FakeStub(asynchronous=True)}
    return client, db4


def too_deep(levels: int) -> dict:
    doc: dict = {}
    node = doc
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return doc


BAD_CALLS = {
    "nan": lambda c: c.collection("users").create({"a": math.nan}),
    "infinity": lambda c: c.collection("users").create({"a": [1, -math.inf]}),
    "bytes value": lambda c: c.collection("users").create({"a": b"raw"}),
    "set value": lambda c: c.collection("users").create({"a": {1, 2}}),
    "int key": lambda c: c.collection("users").create({1: "x"}),
    "nested int key": lambda c: c.collection("users").create({"a": {2: "x"}}),
    "not a dict": lambda c: c.collection("users").create(["a"]),
    "reserved field": lambda c: c.collection("users").create({"$secret": 1}),
    "bad $id": lambda c: c.collection("users").create({"$id": "has space"}),
    "too deep": lambda c: c.collection("users").create(too_deep(40)),
    "patch nan": lambda c: c.collection("users").update("u1", {"a": math.nan}),
    "patch sets $version": lambda c: c.collection("users").update("u1", {"$version": 9}),
    "patch sets $id": lambda c: c.collection("users").update("u1", {"$id": "u2"}),
    "version as str": lambda c: c.collection("users").update("u1", {"a": 1},
                                                              expected_version="1"),
    "version as bool": lambda c: c.collection("users").delete("u1", expected_version=True),
    "negative version": lambda c: c.collection("users").replace("u1", {}, expected_version=-1),
    "bad id on get": lambda c: c.collection("users").get("a/b"),
    "partition nan": lambda c: c.collection("users").get("u1", partition=math.nan),
    "partition bytes": lambda c: c.collection("users").delete("u1", partition=b"acme"),
    "upsert bytes": lambda c: c.collection("users").upsert({"a": bytearray(b"x")}),
    "shard_for None": lambda c: c.shard_for("users", None),
    "bad partition key": lambda c: c.create_collection("users", partition_key="a..b"),
    "document over 1 MiB": lambda c: c.collection("users").create({"a": "x" * (2 << 20)}),
    "document past gRPC's limit": lambda c: c.collection("users").upsert(
        {"a": "x" * (70 << 20)}),
    "patch over 1 MiB": lambda c: c.collection("users").update("u1", {"a": "x" * (2 << 20)}),
    "batch document over 1 MiB": lambda c: c.collection("users").insert_many(
        [{}, {"a": "x" * (2 << 20)}]),
    "negative split token": lambda c: c.admin.split_shard("s001", split_token=-5),
    "split token past the ring": lambda c: c.admin.split_shard("s001", split_token=1 << 64),
    "split token as str": lambda c: c.admin.split_shard("s001", split_token="abc"),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_input_raises_before_any_rpc(name):
    client, db4, admin = make_client()
    with pytest.raises(errors.InvalidArgumentError):
        BAD_CALLS[name](client)
    assert db4.calls == [] and admin.calls == []


@pytest.mark.parametrize("name", ["bad name", "9starts-with-digit", "", "a" * 129])
def test_bad_collection_names_are_rejected_without_a_round_trip(name):
    client, db4, _ = make_client()
    with pytest.raises(errors.InvalidArgumentError):
        client.collection(name)
    with pytest.raises(errors.InvalidArgumentError):
        client.get_collection(name)
    assert db4.calls == []


def test_async_client_validates_the_same_way():
    client, db4 = make_async_client()
    users = client.collection("users")

    async def scenario():
        with pytest.raises(errors.InvalidArgumentError):
            await users.create({"a": math.nan})
        with pytest.raises(errors.InvalidArgumentError):
            await users.update("u1", {1: "x"})
        with pytest.raises(errors.InvalidArgumentError):
            await users.get("u1", partition=b"x")
        await client.close()

    asyncio.run(scenario())
    assert db4.calls == []


def test_create_sends_compact_json_and_returns_the_stored_document():
    client, db4, _ = make_client()
    stored = {"$id": "u1", "$version": 1, "name": "Ünï", "n": 1.5}
    db4.script.append(_doc_response(stored))
    assert client.collection("users").create({"$id": "u1", "name": "Ünï", "n": 1.5}) == stored
    method, request, kw = db4.calls[0]
    assert method == "Create" and request.collection == "users"
    assert json.loads(request.document) == {"$id": "u1", "name": "Ünï", "n": 1.5}
    assert kw["timeout"] == 30.0 and kw["metadata"] == ()


def test_optional_fields_are_unset_unless_given():
    client, db4, _ = make_client()
    users = client.collection("users")
    db4.script += [_doc_response({"$id": "u1"}), _doc_response({"$id": "u1"})]
    users.update("u1", {"a": None})
    users.update("u1", {"a": 1}, expected_version=1, partition="acme")
    bare, full = db4.calls[0][1], db4.calls[1][1]
    assert not bare.HasField("expected_version") and not bare.HasField("partition")
    assert json.loads(bare.patch) == {"a": None}  # None travels: it removes the field
    assert full.expected_version == 1 and full.partition == b'"acme"'


def test_get_returns_none_when_not_found():
    client, db4, _ = make_client()
    db4.script.append(router_pb2.GetResponse(found=False))
    assert client.collection("users").get("u1", partition={"t": 1}) is None
    assert db4.calls[0][1].partition == b'{"t":1}'


def test_get_collection_not_found_is_none():
    client, db4, _ = make_client()
    db4.script.append(FakeRpcError(grpc.StatusCode.NOT_FOUND, "no such collection"))
    assert client.get_collection("users") is None


def test_token_is_sent_as_bearer_metadata():
    client, db4, _ = make_client(token="s3cret")
    db4.script.append(_doc_response({"$id": "u1"}))
    client.collection("users").create({})
    assert db4.calls[0][2]["metadata"] == (("authorization", "Bearer s3cret"),)


@pytest.mark.parametrize("address", ["10.0.0.1:7400", "example.com:7400", "127.0.0.1",
                                     "127.0.0.1:http", "127.0.0.1:70000"])
def test_only_loopback_addresses_with_a_port(address):
    with pytest.raises(ValueError):
        Client(address)


def test_loopback_spellings_are_accepted():
    for address in ("127.0.0.1:7400", "localhost:7400", "[::1]:7400"):
        Client(address).close()


def test_tls_dict_reads_pem_files(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(grpc, "ssl_channel_credentials", lambda *a: seen.setdefault("a", a))
    (tmp_path / "ca.pem").write_bytes(b"CA")
    _channel.credentials({"root_certificates": str(tmp_path / "ca.pem")})
    assert seen["a"] == (b"CA", None, None)
    with pytest.raises(ValueError):
        _channel.credentials({"root_cert": "x"})


def test_idempotent_calls_retry_on_unavailable_then_succeed():
    client, db4, _ = make_client()
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"),
                   _doc_get({"$id": "u1"})]
    assert client.collection("users").get("u1") == {"$id": "u1"}
    assert [c[0] for c in db4.calls] == ["Get", "Get"]


def test_idempotent_calls_give_up_after_three_tries_past_their_budget():
    client, _, admin = make_client()
    down = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down")
    admin.script += [down, down, down, down]
    with pytest.raises(errors.UnavailableError) as caught:
        client.admin.status()
    assert len(admin.calls) == 3
    assert isinstance(caught.value.__cause__, grpc.RpcError)


REFUSED = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7400: "
           "Failed to connect to remote host: Connection refused")


def test_calls_that_found_no_router_keep_trying_within_their_budget():
    policy = RetryPolicy(initial_backoff_s=0.001, max_backoff_s=0.002, unary_budget_s=0.5)
    client = Client(retry=policy)
    admin = FakeStub()
    client._stubs = {"db4": FakeStub(), "admin": admin}
    refused = FakeRpcError(grpc.StatusCode.UNAVAILABLE, REFUSED)
    admin.script += [refused] * 6 + [admin_pb2.StatusResponse(cluster="c")]
    assert client.admin.status()["cluster"] == "c"
    assert len(admin.calls) == 7
    budget_spent = RetryPolicy(unary_budget_s=0.0)
    err = errors.UnavailableError(REFUSED)
    assert budget_spent.delay_for(client_call(), err, 0, 0.0, unsent=True) is None


def test_calls_that_found_no_router_stop_trying_at_their_timeout():
    """The timeout is what a caller waits: tries of a call that never left the client stop
    within it, whatever is left of the retry budget."""
    policy = RetryPolicy(initial_backoff_s=0.02, max_backoff_s=0.04, unary_budget_s=30.0)
    client = Client(retry=policy, timeout=0.3)
    db4 = FakeStub()
    client._stubs = {"db4": db4, "admin": FakeStub()}
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, REFUSED)] * 1000
    with pytest.raises(errors.UnavailableError):
        client.collection("users").get("u1")
    assert 2 <= len(db4.calls) <= 30, len(db4.calls)  # 0.3 s of 10-40 ms backoffs, not 30 s
    err = errors.UnavailableError(REFUSED)
    assert policy.delay_for(client_call(), err, 0, 0.0, unsent=True, remaining_s=0.001) is None
    assert policy.delay_for(client_call(), err, 0, 0.0, unsent=True, remaining_s=5.0)
    # a read the router then answered UNAVAILABLE (it could not reach a node) is not tried
    # again past what is left either
    assert policy.delay_for(client_call(), err, 1, 0.0, unsent=False, remaining_s=0.001) is None


def test_every_try_gets_what_is_left_of_the_timeout():
    policy = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.01, unary_budget_s=30.0)
    client = Client(retry=policy, timeout=5.0)
    db4 = FakeStub()
    client._stubs = {"db4": db4, "admin": FakeStub()}
    answered = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "node n1 unreachable",
                            {"db4-answered": "1"})
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, REFUSED), answered, answered]
    with pytest.raises(errors.UnavailableError):
        client.collection("users").get("u1")
    timeouts = [c[2]["timeout"] for c in db4.calls]
    assert len(timeouts) == 3 and timeouts[0] == 5.0, timeouts
    assert all(b < a for a, b in zip(timeouts, timeouts[1:], strict=False)), timeouts


def test_a_retry_that_runs_out_of_the_timeout_raises_the_failure_it_retried():
    """Two nodes down: the router answers UNAVAILABLE after waiting for them; the retry,
    given what is left of the timeout, ends DEADLINE_EXCEEDED. The caller learns the cause."""
    client, db4, _ = make_client()
    client._retry = RetryPolicy(initial_backoff_s=0.0, max_backoff_s=0.0)
    answered = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "nodes n2, n3 unreachable",
                            {"db4-answered": "1"})
    db4.script += [answered, FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline")]
    with pytest.raises(errors.UnavailableError, match="n2, n3 unreachable"):
        client.collection("users").count()
    assert len(db4.calls) == 2


def test_a_read_the_router_answers_unavailable_is_not_retried_past_its_timeout():
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=0.5)  # 0.25-0.5 s jittered
    client = Client(retry=policy, timeout=0.2)
    db4 = FakeStub()
    client._stubs = {"db4": db4, "admin": FakeStub()}
    answered = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "node n1 unreachable",
                            {"db4-answered": "1"})
    db4.script += [answered] * 3
    with pytest.raises(errors.UnavailableError):
        client.collection("users").get("u1")
    assert len(db4.calls) == 1  # any backoff would end past the 0.2 s timeout


@pytest.mark.parametrize("write", ["create", "update", "replace", "upsert", "delete"])
def test_writes_are_not_retried_once_they_may_have_been_sent(write):
    client, db4, _ = make_client()
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed"),
                   _doc_response({})]
    users = client.collection("users")
    calls = {"create": lambda: users.create({}), "update": lambda: users.update("u1", {"a": 1}),
             "replace": lambda: users.replace("u1", {}), "upsert": lambda: users.upsert({}),
             "delete": lambda: users.delete("u1")}
    with pytest.raises(errors.UnavailableError):
        calls[write]()
    assert len(db4.calls) == 1


def test_a_routers_own_unavailable_about_a_node_is_not_retried_for_a_write():
    # The router could not connect to a node: its answer carries db4-answered, so the client
    # knows a server answered and treats it as any UNAVAILABLE (writes are not sent again).
    client, db4, _ = make_client()
    client._retry = RetryPolicy(initial_backoff_s=0.0, max_backoff_s=0.0, unary_budget_s=1.0)
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, REFUSED, {"db4-answered": "1"}),
                   _doc_response({"$id": "u1"})]
    with pytest.raises(errors.UnavailableError):
        client.collection("users").create({})
    assert len(db4.calls) == 1


def client_call():
    from db4client import _wire
    return _wire.status()


def test_a_write_that_never_left_the_client_is_retried():
    client, db4, _ = make_client()
    client._retry = RetryPolicy(initial_backoff_s=0.0, max_backoff_s=0.0, unary_budget_s=1.0)
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, REFUSED),
                   FakeRpcError(grpc.StatusCode.UNAVAILABLE, REFUSED),
                   _doc_response({"$id": "u1"})]
    assert client.collection("users").create({})["$id"] == "u1"
    assert len(db4.calls) == 3


def test_other_codes_are_not_retried_even_for_reads():
    client, db4, _ = make_client()
    db4.script += [FakeRpcError(grpc.StatusCode.INTERNAL, "bug"), _doc_get({})]
    with pytest.raises(errors.InternalError):
        client.collection("users").get("u1")
    assert len(db4.calls) == 1


def test_async_client_retries_reads_and_maps_errors():
    client, db4 = make_async_client()
    db4.script += [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"), _doc_get({"$id": "u1"}),
                   FakeRpcError(grpc.StatusCode.ABORTED, "conflict",
                                [("db4-reason", "conflict"), ("db4-expected-version", "1"),
                                 ("db4-actual-version", "3")])]

    async def scenario():
        async with client:
            users = client.collection("users")
            assert await users.get("u1") == {"$id": "u1"}
            with pytest.raises(errors.ConflictError) as caught:
                await users.update("u1", {"a": 1}, expected_version=1)
            return caught.value

    err = asyncio.run(scenario())
    assert (err.expected_version, err.actual_version) == (1, 3)
    assert [c[0] for c in db4.calls] == ["Get", "Get", "Update"]


def test_backoff_is_capped_and_grows():
    policy = RetryPolicy(attempts=10, initial_backoff_s=0.1, max_backoff_s=0.5)
    assert all(0.05 <= policy.backoff_s(0) <= 0.1 for _ in range(50))
    assert all(0.25 <= policy.backoff_s(8) <= 0.5 for _ in range(50))


def _doc_response(doc: dict):
    return router_pb2.DocumentResponse(document=json.dumps(doc).encode())


def _doc_get(doc: dict):
    return router_pb2.GetResponse(found=True, document=json.dumps(doc).encode())
