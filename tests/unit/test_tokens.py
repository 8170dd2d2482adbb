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
