"""Bad input is a precise error on every path, and nothing is written (rows and change log).

Each kind of bad input goes through the SDK (which checks before sending) and, as raw bytes,
through a bare stub of the router (and of a node where it applies), so the servers' own checks
are tested too: lone surrogates, duplicate keys, U+0000 in field names, huge integers, versions
below 1, malformed protobuf; then exact 64-bit filter edges, the $in value limit, create_index on
a missing collection, and the `db4` command line against the real router.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest

from db4.v1 import node_pb2, node_pb2_grpc, router_pb2
from db4client import errors

INT64_MIN = -(2**63)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def unchanged(cluster, coll_name):
    """Assert the collection gains no change-log record and no row during the test."""
    before = cluster.change_count(coll_name), cluster.doc_count(coll_name)
    yield
    assert (cluster.change_count(coll_name), cluster.doc_count(coll_name)) == before


@pytest.fixture
def existing(client, coll_name):
    """A collection holding one document u (version 1); changes counted from here."""
    client.collection(coll_name).create({"$id": "u", "n": 1})
    return client.collection(coll_name)


def invalid(call, *args) -> str:
    """Run a raw stub call that must fail with INVALID_ARGUMENT; its message."""
    with pytest.raises(grpc.RpcError) as info:
        result = call(*args)
        if hasattr(result, "__iter__"):
            list(result)
    assert info.value.code() == INVALID, (info.value.code(), info.value.details())
    assert info.value.details()
    return info.value.details()


# ---- lone surrogates -----------------------------------------------------------------------

def test_lone_surrogate_is_invalid_argument_in_the_sdk(client, coll_name, cluster, existing):
    before = cluster.change_count(coll_name)
    coll, bad = existing, {"a": "\ud800"}
    for call in (lambda: coll.create(bad), lambda: coll.upsert({"$id": "u", **bad}),
                 lambda: coll.replace("u", bad), lambda: coll.update("u", bad),
                 lambda: coll.update("u", {"n": {"\udc00": 1}}),
                 lambda: coll.insert_many([{"ok": 1}, bad]),
                 lambda: client.shard_for(coll_name, "\ud800"),
                 lambda: coll.find(where={"a": "\ud800"}), lambda: coll.count(where=bad),
                 lambda: coll.get("u", partition="\udfff")):
        with pytest.raises(errors.InvalidArgumentError, match="surrogate"):
            call()
    assert coll.get("u")["$version"] == 1
    assert cluster.change_count(coll_name) == before and cluster.doc_count(coll_name) == 1


def test_lone_surrogate_is_invalid_argument_on_the_router(raw, coll_name, cluster, existing):
    before = cluster.change_count(coll_name)
    body, c = b'{"a": "\\ud800"}', coll_name
    calls = [
        (raw.Create, router_pb2.CreateRequest(collection=c, document=body)),
        (raw.Upsert, router_pb2.UpsertRequest(collection=c, document=b'{"$id": "u", "x": '
                                                                      b'["\\udfff"]}')),
        (raw.Replace, router_pb2.ReplaceRequest(collection=c, id="u", document=body)),
        (raw.Update, router_pb2.UpdateRequest(collection=c, id="u", patch=b'{"\\ud800": 1}')),
        (raw.InsertMany, router_pb2.InsertManyRequest(collection=c, documents=[b"{}", body])),
        (raw.ShardFor, router_pb2.ShardForRequest(collection=c, partition=b'"\\ud800"')),
        (raw.Find, router_pb2.FindRequest(collection=c, where=body)),
        (raw.Count, router_pb2.CountRequest(collection=c, where=body)),
        (raw.Iterate, router_pb2.FindRequest(collection=c, where=body)),
    ]
    for call, request in calls:
        assert "surrogate" in invalid(call, request), call
    assert cluster.change_count(coll_name) == before and cluster.doc_count(coll_name) == 1


# ---- duplicate keys ------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b'{"a": 1, "a": 2}', b'{"$id": "x", "$id": "y"}',
                                  b'{"n": {"k": 1, "k": 2}}'])
def test_duplicate_keys_are_refused(raw, coll_name, unchanged, body):
    c = coll_name
    for call, request in ((raw.Create, router_pb2.CreateRequest(collection=c, document=body)),
                          (raw.Upsert, router_pb2.UpsertRequest(collection=c, document=body)),
                          (raw.InsertMany, router_pb2.InsertManyRequest(collection=c,
                                                                        documents=[body])),
                          (raw.Find, router_pb2.FindRequest(collection=c, where=body))):
        assert "appears twice" in invalid(call, request)


# ---- U+0000 in field names ---------------------------------------------------------------

@pytest.mark.parametrize("doc", [{"a\x00b": 5}, {"n": {"\x00": 1}}, {"l": [{"k\x00": 1}]}])
def test_nul_in_field_names_is_refused_at_any_depth(client, raw, coll_name, unchanged, doc):
    coll = client.collection(coll_name)
    for call in (lambda: coll.create(doc), lambda: coll.insert_many([doc]),
                 lambda: coll.find(where={"x": {"$eq": doc}})):
        with pytest.raises(errors.InvalidArgumentError, match="U\\+0000"):
            call()
    body = json.dumps(doc).encode()
    assert "U+0000" in invalid(raw.Create, router_pb2.CreateRequest(collection=coll_name,
                                                                    document=body))
    where = json.dumps({"x": doc}).encode()
    assert "U+0000" in invalid(raw.Find, router_pb2.FindRequest(collection=coll_name,
                                                                where=where))


def test_a_key_with_nul_cannot_shadow_another(client, coll_name):
    coll = client.collection(coll_name)
    coll.create({"$id": "seven", "a": 7})
    with pytest.raises(errors.InvalidArgumentError):
        coll.update("seven", {"a\x00b": 5})
    assert [d["$id"] for d in coll.find(where={"a": 7}).items] == ["seven"]
    assert coll.count(where={"a": {"$exists": True}}) == 1


# ---- integers ------------------------------------------------------------------------------

def test_huge_integers_are_invalid_argument(client, raw, coll_name, unchanged):
    coll = client.collection(coll_name)
    for n in (10**5000, -(10**400)):
        with pytest.raises(errors.InvalidArgumentError, match="range of a double"):
            coll.create({"n": n})
    for digits in (5000, 400):
        body = b'{"n": 1' + b"0" * digits + b"}"
        assert "range of a double" in invalid(
            raw.Create, router_pb2.CreateRequest(collection=coll_name, document=body))


def test_integers_beyond_64_bits_are_stored_exactly_and_compared_exactly(client, coll_name):
    coll = client.collection(coll_name)
    values = {"below": INT64_MIN - 1, "min": INT64_MIN, "big": 2**64 + 1, "double": 2.0**64,
              "huge": 10**300}
    coll.insert_many([{"$id": k, "n": v} for k, v in values.items()])
    assert {k: coll.get(k)["n"] for k in values} == values

    def ids(where):
        return sorted(d["$id"] for d in coll.find(where=where).items)

    assert ids({"n": INT64_MIN}) == ["min"]  # once also matched INT64_MIN - 1
    assert ids({"n": {"$lt": INT64_MIN}}) == ["below"]
    assert ids({"n": {"$in": [INT64_MIN, 2.0**64]}}) == ["double", "min"]
    assert ids({"n": {"$gt": 2.0**64}}) == ["big", "huge"]
    assert coll.count(where={"n": {"$gte": INT64_MIN}}) == 4
    with pytest.raises(errors.InvalidArgumentError, match="64-bit range"):
        coll.find(where={"n": 2**64 + 1})


# ---- expected_version ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, -1])
def test_expected_version_below_1_is_invalid_argument(client, raw, cluster, coll_name, existing,
                                                      version):
    before = cluster.change_count(coll_name)
    for call in (lambda: existing.update("u", {"n": 2}, expected_version=version),
                 lambda: existing.replace("u", {"n": 2}, expected_version=version),
                 lambda: existing.delete("u", expected_version=version)):
        with pytest.raises(errors.InvalidArgumentError, match="at least 1"):
            call()
    c, v = coll_name, version
    for call, request in (
            (raw.Update, router_pb2.UpdateRequest(collection=c, id="u", patch=b'{"n": 2}',
                                                  expected_version=v)),
            (raw.Replace, router_pb2.ReplaceRequest(collection=c, id="u", document=b"{}",
                                                    expected_version=v)),
            (raw.Delete, router_pb2.DeleteRequest(collection=c, id="u", expected_version=v))):
        assert "expected_version must be at least 1" in invalid(call, request)
    assert existing.get("u") is not None and existing.get("u")["$version"] == 1
    assert cluster.change_count(coll_name) == before


def _node_stub(cluster):
    channel = grpc.insecure_channel(f"127.0.0.1:{cluster.nodes[0].port}")
    return channel, node_pb2_grpc.NodeStub(channel)


def test_node_refuses_expected_version_below_1(cluster):
    before = cluster.change_count()
    channel, node = _node_stub(cluster)
    with channel:
        op = node_pb2.WriteOp(kind=node_pb2.OP_KIND_DELETE, collection="c", id="u",
                              expected_version=0)
        assert "ops[0].expected_version" in invalid(node.Write, node_pb2.WriteRequest(ops=[op]))
    assert cluster.change_count() == before


# ---- malformed protobuf --------------------------------------------------------------------

# A bad tag, a field cut short, invalid UTF-8 in a string field (field 1 of router requests,
# field 2 of node requests: both are strings there).
GARBAGE = [(b"\xff\xff\xff\xff",) * 2, (b"\x0a\x05ab", b"\x12\x05ab"),
           (b"\x0a\x02\xff\xfe", b"\x12\x02\xff\xfe")]


@pytest.mark.parametrize(("garbage", "node_garbage"), GARBAGE)
def test_malformed_request_bytes_are_invalid_argument(cluster, garbage, node_garbage):
    before = cluster.change_count()
    identity = (lambda b: b, lambda b: b)
    with grpc.insecure_channel(cluster.address) as channel:
        for method in ("Create", "Find", "InsertMany", "GetMany"):
            call = channel.unary_unary(f"/db4.v1.Db4/{method}", *identity)
            assert "not a valid db4.v1." in invalid(call, garbage)
        stream = channel.unary_stream("/db4.v1.Db4/Iterate", *identity)
        assert "not a valid db4.v1.FindRequest" in invalid(stream, garbage)
    with grpc.insecure_channel(f"127.0.0.1:{cluster.nodes[0].port}") as channel:
        for method in ("Write", "Read", "Query"):
            call = channel.unary_unary(f"/db4.v1.Node/{method}", *identity)
            assert "not a valid db4.v1." in invalid(call, node_garbage)
    assert cluster.change_count() == before


# ---- limits ----------------------------------------------------------------------------------

def test_in_takes_5000_values(client, raw, coll_name):
    coll = client.collection(coll_name)
    coll.insert_many([{"$id": "hit", "n": 4999}, {"$id": "miss", "n": 5000}])
    assert [d["$id"] for d in coll.find(where={"n": {"$in": list(range(5000))}}).items] == ["hit"]
    with pytest.raises(errors.InvalidArgumentError, match="5001 values"):
        coll.find(where={"n": {"$in": list(range(5001))}})
    where = ('{"n": {"$in": [' + ",".join(map(str, range(5001))) + "]}}").encode()
    assert "5001 values" in invalid(raw.Count, router_pb2.CountRequest(collection=coll_name,
                                                                       where=where))


def test_batches_hold_at_most_10000_items(client, coll_name, unchanged):
    coll = client.collection(coll_name)
    with pytest.raises(errors.InvalidArgumentError, match="at most 10000"):
        coll.insert_many([{} for _ in range(10_001)])
    with pytest.raises(errors.InvalidArgumentError, match="at most 10000"):
        coll.get_many([f"i{i}" for i in range(10_001)])
    # a batch the SDK would send in several requests by bytes obeys the same limit
    with pytest.raises(errors.InvalidArgumentError, match="at most 10000"):
        coll.insert_many([{"pad": "x" * 2000} for _ in range(10_001)])
    assert coll.count() == 0


# ---- create_index on a collection that does not exist ------------------------------------

def test_create_index_on_a_missing_collection_is_not_found(client, raw, coll_name):
    name = f"ix_{coll_name}"[:60]
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        client.create_index(name, coll_name, [("n", "asc")])
    index = router_pb2.Index(name=name, collection=coll_name,
                             fields=[router_pb2.IndexField(path="n")])
    with pytest.raises(grpc.RpcError) as info:
        list(raw.CreateIndex(router_pb2.CreateIndexRequest(index=index)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert name not in [i["name"] for i in client.list_indexes()]


# ---- the command line ----------------------------------------------------------------------

def _db4(cluster, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "db4client.cli", *argv, "--router",
                           cluster.address], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["put", "{c}", '{{"a": 1, "a": 2}}'], 2, "appears twice"),
    (["put", "{c}", '{{"a": "\\ud800"}}'], 2, "surrogate"),
    (["put", "{c}", '{{"k\\u0000": 1}}'], 2, "U+0000"),
    (["put", "{c}", '{{"n": 1' + "0" * 5000 + "}}"], 2, "range of a double"),
    (["find", "{c}", "--where", '{{"a": {{"$in": [1], "$in": [2]}}}}'], 2, "appears twice"),
    (["update", "{c}", "u", '{{"n": 2}}', "--expected-version", "0"], 1,
     "error: INVALID_ARGUMENT: expected_version"),
    (["delete", "{c}", "u", "--expected-version", "-3"], 1, "INVALID_ARGUMENT"),
    (["find", "{c}", "--where", '{{"n": 9223372036854775808}}'], 1, "64-bit range"),
    (["create-index", "{c}_ix", "{c}zz", "n"], 1, "error: NOT_FOUND: collection"),
    (["get", "{c}", "u", "--timeout", "nan"], 2, "seconds above 0"),
])
def test_cli_user_errors_are_one_line(cluster, client, coll_name, argv, code, says):
    client.collection(coll_name).upsert({"$id": "u", "n": 1})
    before = cluster.change_count(coll_name)
    done = _db4(cluster, *[a.format(c=coll_name) for a in argv])
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert cluster.change_count(coll_name) == before
