"""The `db4` command line without a server: parsing, help, output and exit codes."""

from __future__ import annotations

import argparse
import json

import pytest

import db4client
from db4client import cli, errors

SUBCOMMANDS = ["node", "router", "dev", "status", "create-collection", "put", "get", "update",
               "delete", "shard-for"]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("db4 has no subcommands")


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert f"    {name}" in out, name


def test_every_command_and_flag_has_help():
    subs = subparsers(cli.parser())
    assert set(subs) == set(SUBCOMMANDS)
    top = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: bool(c.help) for c in top._choices_actions} == dict.fromkeys(SUBCOMMANDS, True)
    for name, sub in subs.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


@pytest.mark.parametrize("name", [n for n in SUBCOMMANDS if n not in ("node", "router")])
def test_each_subcommand_help_exits_zero(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([name, "--help"])
    assert done.value.code == 0
    assert f"usage: db4 {name}" in capsys.readouterr().out


@pytest.mark.parametrize(("command", "module"), [("node", "db4node"), ("router", "db4router")])
def test_server_commands_exec_the_module_in_place(command, module, monkeypatch):
    seen = []

    def fake_execv(path, argv):
        seen.append((path, argv))
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execv", fake_execv)
    with pytest.raises(SystemExit):
        cli.main([command, "--port", "1", "--help"])
    path, argv = seen[0]
    assert argv[0] == path and argv[1:] == ["-m", module, "--port", "1", "--help"]


def test_arguments_are_parsed_as_json():
    args = cli.parser().parse_args(
        ["update", "users", "u1", '{"a": 1, "b": null}', "--expected-version", "3",
         "--partition", '"acme"'])
    assert args.patch == {"a": 1, "b": None}
    assert (args.expected_version, args.partition) == (3, "acme")
    plain = cli.parser().parse_args(["get", "users", "u1", "--partition", "acme"])
    assert plain.partition == "acme"  # text that is not JSON is taken as a string
    assert cli.parser().parse_args(["shard-for", "users", "42"]).value == 42


@pytest.mark.parametrize("argv", [
    ["put", "users", "{not json"],
    ["put", "users", "[1, 2]"],
    ["put", "users", '{"a": NaN}'],
    ["update", "users", "u1", '{"a": 1}', "--expected-version", "x"],
    ["get", "users"],
    ["dev", "--nodes", "0"],
    ["nosuchcommand"],
    ["get", "users", "u1", "--router", "192.168.1.5:7400"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_router_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("DB4_ROUTER", "127.0.0.1:7999")
    assert cli.parser().parse_args(["status"]).router == "127.0.0.1:7999"
    monkeypatch.delenv("DB4_ROUTER")
    assert cli.parser().parse_args(["status"]).router == "127.0.0.1:7400"


class FakeCollection:
    def __init__(self, behaviour):
        self.behaviour = behaviour

    def __getattr__(self, name):
        return lambda *a, **kw: self.behaviour(name, a, kw)


class FakeClient:
    """Stands in for db4client.Client; `behaviour(method, args, kwargs)` answers."""

    behaviour = staticmethod(lambda name, a, kw: None)
    seen: list = []

    def __init__(self, address, token=None, timeout=30.0):
        FakeClient.seen.append((address, token, timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def collection(self, name):
        return FakeCollection(FakeClient.behaviour)


@pytest.fixture
def fake_client(monkeypatch):
    FakeClient.seen = []
    monkeypatch.setattr(db4client, "Client", FakeClient)
    return FakeClient


def test_success_prints_json(fake_client, capsys):
    fake_client.behaviour = staticmethod(lambda name, a, kw: {"$id": a[0], "op": name, **kw})
    assert cli.main(["get", "users", "u1", "--partition", "7", "--router", "[::1]:1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"$id": "u1", "op": "get", "partition": 7}
    assert fake_client.seen == [("[::1]:1", None, 30.0)]


def test_domain_errors_print_code_and_exit_1(fake_client, capsys):
    def conflict(name, a, kw):
        raise errors.ConflictError("expected 1, found 2", 1, 2)

    fake_client.behaviour = staticmethod(conflict)
    assert cli.main(["update", "users", "u1", "{}", "--expected-version", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: ABORTED: expected 1, found 2\n"


def test_missing_document_is_not_found(fake_client, capsys):
    fake_client.behaviour = staticmethod(lambda name, a, kw: None)
    assert cli.main(["get", "users", "u1"]) == 1
    assert capsys.readouterr().err.startswith("error: NOT_FOUND: ")


def test_delete_reports_whether_it_deleted(fake_client, capsys):
    fake_client.behaviour = staticmethod(lambda name, a, kw: False)
    assert cli.main(["delete", "users", "u1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": False}
