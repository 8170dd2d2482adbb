"""The access table covers every RPC of every service, and tokens parse strictly."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from db4.v1 import admin_pb2, node_pb2, router_pb2
from db4core.errors import UnauthenticatedError
from db4rpc import tokens

SERVICES = [router_pb2.DESCRIPTOR.services_by_name["Db4"],
            admin_pb2.DESCRIPTOR.services_by_name["Admin"],
            node_pb2.DESCRIPTOR.services_by_name["Node"],
            health_pb2.DESCRIPTOR.services_by_name["Health"],
            reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]]


def test_every_rpc_of_every_service_has_an_access_rule_and_no_rule_is_stale():
    methods = {f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    assert sorted(methods - set(tokens.RULES)) == [], "RPCs without an access rule"
    assert sorted(set(tokens.RULES) - methods) == [], "rules for RPCs that do not exist"
    for name, allowed in tokens.RULES.items():
        assert allowed <= set(tokens.ROLES), name


def test_node_internal_rpcs_take_only_node_identities_and_users_never_get_them():
    node = node_pb2.DESCRIPTOR.services_by_name["Node"]
    for m in node.methods:
        allowed = tokens.RULES[f"/db4.v1.Node/{m.name}"]
        assert "node" in allowed
        if m.name not in ("Read", "Write"):
            assert allowed == {"node"}, m.name
    for s in SERVICES[:2]:
        for m in s.methods:
            assert "node" not in tokens.RULES[f"/{s.full_name}/{m.name}"], m.name
    assert all(tokens.RULES[f"/db4.v1.Admin/{m.name}"] == {"admin"}
               for m in SERVICES[1].methods)


def test_a_new_token_parses_and_anything_else_is_unauthenticated():
    token_id, token = tokens.new_token()
    assert tokens.parse(token) == (token_id, token.split("_", 2)[2])
    assert len(tokens.digest(tokens.parse(token)[1])) == 64
    for bad in ("", "db4", token + "x", token[:-1], token.replace("db4_", "db5_"),
                "db4_XYZ000000000_" + "A" * 43, token + "\n"):
        with pytest.raises(UnauthenticatedError, match="malformed"):
            tokens.parse(bad)


def test_bearer_reads_only_the_bearer_scheme():
    assert tokens.bearer((("x", "1"), ("authorization", "Bearer abc"))) == "abc"
    assert tokens.bearer((("authorization", "bearer  abc "),)) == "abc"
    assert tokens.bearer((("authorization", "Basic abc"),)) == ""
    assert tokens.bearer(()) is None


def test_a_request_quota_lets_a_seconds_burst_through_then_says_when_to_come_back():
    quota = tokens.Quota(tokens.Limits(requests_per_s=2))
    t0 = quota.at
    assert quota.admit(False, t0) is None and quota.admit(False, t0) is None
    why, wait = quota.admit(False, t0)
    assert why == "requests/s" and wait == pytest.approx(0.5)
    assert quota.admit(False, t0 + 0.25)[1] == pytest.approx(0.25)
    assert quota.admit(False, t0 + 0.5) is None
    assert quota.admit(False, t0 + 100) is None and quota.admit(False, t0 + 100) is None
    assert quota.admit(False, t0 + 100) is not None  # the burst is capped at a second's worth


def test_a_byte_quota_is_charged_after_the_fact_and_a_stream_quota_counts_open_streams():
    quota = tokens.Quota(tokens.Limits(bytes_per_s=1000, streams=1))
    t0 = quota.at
    assert quota.admit(False, t0) is None
    quota.charge(3000)  # a large answer: 2000 bytes in debt
    why, wait = quota.admit(False, t0)
    assert why == "bytes/s" and wait == pytest.approx(2.0)
    assert quota.admit(False, t0 + 2.0) is None
    quota.streams = 1
    assert quota.admit(True, t0 + 2.0)[0] == "open streams"
    assert quota.admit(False, t0 + 2.0) is None  # a unary call needs no stream slot


def test_limits_must_be_finite_and_not_negative():
    from db4core.errors import InvalidArgumentError

    for bad in ({"requests_per_s": -1}, {"bytes_per_s": float("nan")},
                {"bytes_per_s": float("inf")}, {"streams": -2}):
        with pytest.raises(InvalidArgumentError, match="limit"):
            tokens.Limits(**bad)
    assert not tokens.Limits() and tokens.Limits(streams=1)
    record = tokens.TokenRecord("0" * 12, "read", "x", "h", 1, tokens.Limits(5, 2, 100))
    assert tokens.TokenRecord.from_json("0" * 12, record.to_json()) == record
