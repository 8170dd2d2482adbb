"""Bad input gets its precise error, and nothing is written: no row, no change-log record.

Each case is sent twice where it can be: once through the SDK (which checks before sending) and
once as raw bytes straight to the router, so the server's own checks are tested too.
"""

from __future__ import annotations

import grpc
import pytest

from db4.v1 import router_pb2
from db4client import errors


@pytest.fixture
def nothing_written(cluster, coll_name):
    """Assert the collection gains no change-log record and no row during the test."""
    before = cluster.change_count(coll_name), cluster.doc_count(coll_name)
    yield
    assert (cluster.change_count(coll_name), cluster.doc_count(coll_name)) == before


def _raw_create(raw, coll, payload: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        raw.Create(router_pb2.CreateRequest(collection=coll, document=payload))
    return info.value


def _nested(depth: int) -> dict:
    doc: dict = {"leaf": 1}
    for _ in range(depth - 1):
        doc = {"n": doc}
    return doc


SDK_CASES = {
    "nan": {"x": float("nan")},
    "infinity": {"x": float("inf")},
    "negative_infinity": {"x": [1, float("-inf")]},
    "non_string_key": {"x": {1: "a"}},
    "bytes_value": {"x": b"raw"},
    "id_too_long": {"$id": "a" * 257},
    "id_bad_chars": {"$id": "has space"},
    "id_not_string": {"$id": 5},
    "dollar_field": {"$secret": 1},
    "nested_dollar_ok_but_top_level_not": {"ok": {"$inner": 1}, "$bad": 2},
    "too_deep": _nested(33),
    "too_big": {"blob": "x" * (1 << 20)},
}


@pytest.mark.parametrize("case", sorted(SDK_CASES))
def test_sdk_rejects(client, coll_name, nothing_written, case):
    with pytest.raises(errors.InvalidArgumentError):
        client.collection(coll_name).create(SDK_CASES[case])


RAW_CASES = {
    "nan": b'{"x": NaN}',
    "infinity": b'{"x": Infinity}',
    "not_json": b'{"x": ',
    "not_object": b"[1, 2]",
    "id_too_long": b'{"$id": "' + b"a" * 257 + b'"}',
    "id_bad_chars": b'{"$id": "a/b"}',
    "dollar_field": b'{"$where": "1"}',
    "type_not_string": b'{"$type": 5}',
    "too_deep": b'{"a":' * 33 + b"1" + b"}" * 33,
    "too_big": b'{"blob": "' + b"x" * (1 << 20) + b'"}',
    "bad_utf8": b'{"x": "\xff"}',
}


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_router_rejects(raw, coll_name, nothing_written, case):
    err = _raw_create(raw, coll_name, RAW_CASES[case])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert err.details()


def test_depth_32_is_accepted(client, coll_name):
    doc = client.collection(coll_name).create(_nested(32))
    assert doc["$version"] == 1


def test_id_of_256_chars_is_accepted(client, coll_name):
    doc_id = "A-z0.9_:@" * 28 + "abcd"
    assert len(doc_id) == 256
    assert client.collection(coll_name).create({"$id": doc_id})["$id"] == doc_id


def test_create_existing_id(client, coll_name, cluster):
    users = client.collection(coll_name)
    users.create({"$id": "dup", "v": 1})
    before = cluster.change_count(coll_name)
    with pytest.raises(errors.AlreadyExistsError):
        users.create({"$id": "dup", "v": 2})
    assert users.get("dup")["v"] == 1
    assert cluster.change_count(coll_name) == before


def test_update_missing(client, coll_name, nothing_written):
    with pytest.raises(errors.NotFoundError):
        client.collection(coll_name).update("ghost", {"a": 1})


def test_delete_missing_is_false(client, coll_name, nothing_written):
    assert client.collection(coll_name).delete("ghost") is False


def test_wrong_expected_version_changes_nothing(client, coll_name, cluster):
    users = client.collection(coll_name)
    users.create({"$id": "u", "n": 1})
    before = cluster.change_count(coll_name)
    with pytest.raises(errors.ConflictError) as info:
        users.update("u", {"n": 2}, expected_version=5)
    assert (info.value.expected_version, info.value.actual_version) == (5, 1)
    with pytest.raises(errors.ConflictError):
        users.replace("u", {"n": 3}, expected_version=5)
    assert users.get("u")["n"] == 1 and users.get("u")["$version"] == 1
    assert cluster.change_count(coll_name) == before


def test_patch_cannot_set_server_fields(client, coll_name, cluster):
    users = client.collection(coll_name)
    users.create({"$id": "u"})
    before = cluster.change_count(coll_name)
    for patch in ({"$version": 9}, {"$id": "other"}, {"$createdAt": 1}, {"$x": 1}):
        with pytest.raises(errors.InvalidArgumentError):
            users.update("u", patch)
    assert cluster.change_count(coll_name) == before


def test_update_growing_past_limit_is_refused_whole(client, coll_name, cluster):
    users = client.collection(coll_name)
    users.create({"$id": "u", "a": "x" * (600 << 10)})
    before = cluster.change_count(coll_name)
    with pytest.raises(errors.InvalidArgumentError):
        users.update("u", {"b": "y" * (600 << 10)})
    assert "b" not in users.get("u")
    assert cluster.change_count(coll_name) == before


def test_bad_collection_name(client):
    with pytest.raises(errors.InvalidArgumentError):
        client.collection("no spaces allowed").create({})


def test_missing_partition_key_field(client, coll_name, nothing_written):
    client.create_collection(coll_name, partition_key="tenantId")
    with pytest.raises(errors.InvalidArgumentError):
        client.collection(coll_name).create({"name": "no tenant"})
