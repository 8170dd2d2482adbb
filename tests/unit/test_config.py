"""Servers take flags, with DB4_<FLAG> environment variables as defaults (as a pod sets them)."""

from __future__ import annotations

import pytest

from db4core.config import parse_endpoint
from db4core.errors import InvalidArgumentError
from db4node.main import parser as node_parser
from db4router.main import parser as router_parser


def test_environment_supplies_defaults(monkeypatch):
    monkeypatch.setenv("DB4_ID", "n7")
    monkeypatch.setenv("DB4_PORT", "7777")
    monkeypatch.setenv("DB4_DATA_DIR", "/data/n7")
    monkeypatch.setenv("DB4_ETCD", "http://127.0.0.1:2381")
    args = node_parser().parse_args([])
    assert (args.id, args.port, args.data_dir, args.etcd) == ("n7", 7777, "/data/n7",
                                                              "http://127.0.0.1:2381")


def test_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("DB4_SHARDS", "16")
    assert router_parser().parse_args([]).shards == 16
    assert router_parser().parse_args(["--shards", "4"]).shards == 4


def test_help_names_the_environment_variables(capsys):
    with pytest.raises(SystemExit):
        router_parser().parse_args(["--help"])
    assert "DB4_MIN_NODES" in capsys.readouterr().out


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:2379", ("127.0.0.1", 2379)),
    ("127.0.0.1:2380", ("127.0.0.1", 2380)),
    ("http://[::1]:2379", ("::1", 2379)),
])
def test_parse_endpoint(url, expected):
    assert parse_endpoint(url) == expected


def test_parse_endpoint_needs_a_port():
    with pytest.raises(InvalidArgumentError):
        parse_endpoint("http://127.0.0.1")
