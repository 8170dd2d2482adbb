"""The `db4` command line without a server: parsing, help, output and exit codes."""

from __future__ import annotations

import argparse
import io
import json

import pytest

import db4client
from db4client import Page, cli, commands, errors

SUBCOMMANDS = ["node", "router", "dev", "status", "create-collection", "put", "get", "update",
               "delete", "shard-for", "find", "count", "create-index", "drop-index", "indexes",
               "query-range", "cdc", "search", "create-search-index", "drop-search-index",
               "search-indexes", "checkpoint", "split", "move", "operations",
               "abort-operation", "drain", "rebalance", "import", "token"]


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
    ["split", "s001", "--split-token", "-5"],
    ["split", "s001", "--split-token", str(1 << 64)],
    ["split", "s001", "--split-token", "abc"],
    ["dev", "--log-level", "LOUD"],
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

    def __init__(self, address, token=None, timeout=30.0, tls=None):
        FakeClient.seen.append((address, token, timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def collection(self, name):
        return FakeCollection(FakeClient.behaviour)

    def __getattr__(self, name):  # client-level calls: create_index, query_range, ...
        return lambda *a, **kw: FakeClient.behaviour(name, a, kw)


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


def test_a_plaintext_call_closed_by_the_router_suggests_tls(fake_client, capsys):
    def closed(name, a, kw):
        raise errors.UnavailableError("failed to connect to all addresses; last error: "
                                      "UNAVAILABLE: ipv4:127.0.0.1:7400: Socket closed")

    fake_client.behaviour = staticmethod(closed)
    assert cli.main(["get", "users", "u1"]) == 1
    err = capsys.readouterr().err
    assert "--tls-ca" in err and err.count("\n") == 1  # one line per error

    def died(name, a, kw):  # a router killed mid-call: no hint
        raise errors.UnavailableError("Stream removed (Socket closed)")

    fake_client.behaviour = staticmethod(died)
    assert cli.main(["get", "users", "u1"]) == 1
    assert "--tls-ca" not in capsys.readouterr().err


def test_missing_document_is_not_found(fake_client, capsys):
    fake_client.behaviour = staticmethod(lambda name, a, kw: None)
    assert cli.main(["get", "users", "u1"]) == 1
    assert capsys.readouterr().err.startswith("error: NOT_FOUND: ")


def test_delete_reports_whether_it_deleted(fake_client, capsys):
    fake_client.behaviour = staticmethod(lambda name, a, kw: False)
    assert cli.main(["delete", "users", "u1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": False}


# ---- queries and indexes ----

def test_find_arguments():
    args = cli.parser().parse_args(
        ["find", "users", "--where", '{"age": {"$gte": 18}}', "--sort", "age:desc, name,$id:asc",
         "--limit", "5", "--cursor", "abc", "--shard", "s001"])
    assert args.where == {"age": {"$gte": 18}}
    assert args.sort == [("age", "desc"), ("name", "asc"), ("$id", "asc")]
    assert (args.limit, args.cursor, args.shard) == (5, "abc", "s001")
    bare = cli.parser().parse_args(["find", "users"])
    assert (bare.where, bare.sort, bare.limit, bare.cursor, bare.shard) == \
        (None, None, 100, None, None)


def test_index_arguments():
    args = cli.parser().parse_args(["create-index", "by_t", "orders", "tenant", "total:desc"])
    assert (args.name, args.collection) == ("by_t", "orders")
    assert args.fields == [("tenant", "asc"), ("total", "desc")]
    rng = cli.parser().parse_args(["query-range", "by_t", "--start", '["acme", 3]',
                                   "--end", "null", "--end-exclusive", "--limit", "9"])
    assert (rng.start, rng.end, rng.start_exclusive, rng.end_exclusive, rng.limit) == \
        (["acme", 3], None, False, True, 9)
    assert "start" not in vars(cli.parser().parse_args(["query-range", "by_t"]))


@pytest.mark.parametrize("argv", [
    ["find", "users", "--sort", "age:up"],
    ["find", "users", "--sort", "age,"],
    ["find", "users", "--sort", ":desc"],
    ["find", "users", "--where", "[1]"],
    ["find", "users", "--limit", "ten"],
    ["count", "users", "--where", "{bad"],
    ["create-index", "ix", "users"],
    ["create-index", "ix", "users", "age:sideways"],
    ["query-range", "ix", "--start", "not json"],
    ["query-range", "ix", "--start-exclusive"],
    ["query-range", "ix", "--end-exclusive", "--start", "1"],
    ["drop-index"],
])
def test_query_usage_errors_exit_2(argv, capsys, fake_client):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert "error:" in capsys.readouterr().err


def recorder(answer):
    calls = []

    def behaviour(name, a, kw):
        calls.append((name, a, kw))
        return answer(name) if callable(answer) else answer

    return calls, staticmethod(behaviour)


def test_find_prints_the_page(fake_client, capsys):
    calls, fake_client.behaviour = recorder(Page([{"$id": "u1"}], "c2", True))
    assert cli.main(["find", "users", "--where", '{"a": 1}', "--sort", "a:desc",
                     "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == \
        {"items": [{"$id": "u1"}], "cursor": "c2", "has_more": True}
    assert calls == [("find", (), {"where": {"a": 1}, "sort": [("a", "desc")], "limit": 1,
                                   "cursor": None})]


def test_find_and_count_on_one_shard(fake_client, capsys):
    calls, fake_client.behaviour = recorder(
        lambda name: Page() if name == "find_in_shard" else 12)
    assert cli.main(["find", "users", "--shard", "s003", "--cursor", "c"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": [], "cursor": None, "has_more": False}
    assert cli.main(["count", "users", "--shard", "s003"]) == 0
    assert json.loads(capsys.readouterr().out) == {"count": 12}
    assert cli.main(["count", "users", "--where", '{"a": 2}']) == 0
    assert json.loads(capsys.readouterr().out) == {"count": 12}
    assert [(n, a) for n, a, _ in calls] == [("find_in_shard", ("s003",)),
                                             ("count_in_shard", ("s003",)), ("count", ())]
    assert calls[0][2]["cursor"] == "c" and calls[2][2] == {"where": {"a": 2}}


def test_create_index_shows_progress_on_stderr(fake_client, capsys):
    seen = []

    def build(name, a, kw):
        seen.append((name, a, kw["fields"]))
        for done, docs in ((0, 0), (3, 12000), (8, 30000)):
            kw["on_progress"]({"shards_done": done, "shards_total": 8, "documents": docs,
                               "done": done == 8, "index": None})
        return {"name": a[0], "collection": a[1], "fields": kw["fields"]}

    fake_client.behaviour = staticmethod(build)
    assert cli.main(["create-index", "by_age", "users", "age:desc", "name"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"name": "by_age", "collection": "users",
                               "fields": [["age", "desc"], ["name", "asc"]]}
    assert err.splitlines() == ["indexing by_age: 0/8 shards, 0 documents",
                                "indexing by_age: 3/8 shards, 12000 documents",
                                "indexing by_age: 8/8 shards, 30000 documents"]
    assert seen == [("create_index", ("by_age", "users"), [("age", "desc"), ("name", "asc")])]


def test_progress_rewrites_one_line_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    report = commands.progress_reporter("ix", out)
    report({"shards_done": 1, "shards_total": 2, "documents": 5, "done": False})
    report({"shards_done": 2, "shards_total": 2, "documents": 9, "done": True})
    assert out.getvalue() == ("\r\x1b[Kindexing ix: 1/2 shards, 5 documents"
                              "\r\x1b[Kindexing ix: 2/2 shards, 9 documents\n")


def test_index_commands_print_json(fake_client, capsys):
    index = {"name": "ix", "collection": "users", "fields": [["a", "asc"]]}
    calls, fake_client.behaviour = recorder(
        lambda name: [index] if name == "list_indexes" else None)
    assert cli.main(["indexes", "--collection", "users"]) == 0
    assert json.loads(capsys.readouterr().out) == [index]
    assert cli.main(["drop-index", "ix"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dropped": "ix"}
    assert calls == [("list_indexes", (), {"collection": "users"}), ("drop_index", ("ix",), {})]


def test_query_range_builds_bounds(fake_client, capsys):
    calls, fake_client.behaviour = recorder(Page([{"$id": "r"}], None, False))
    assert cli.main(["query-range", "ix", "--start", '"2024-01-01"', "--end", '["acme", 5]',
                     "--end-exclusive", "--cursor", "c1"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == [{"$id": "r"}]
    assert cli.main(["query-range", "ix", "--start", "null", "--start-exclusive"]) == 0
    capsys.readouterr()
    assert calls == [
        ("query_range", ("ix",), {"start": ("2024-01-01", True), "end": (["acme", 5], False),
                                  "limit": 100, "cursor": "c1"}),
        ("query_range", ("ix",), {"start": (None, False), "end": None, "limit": 100,
                                  "cursor": None})]


def test_query_errors_print_code_and_exit_1(fake_client, capsys):
    def refuse(name, a, kw):
        raise errors.InvalidArgumentError("cursor does not belong to this query")

    fake_client.behaviour = staticmethod(refuse)
    assert cli.main(["find", "users", "--cursor", "x"]) == 1
    assert capsys.readouterr().err == \
        "error: INVALID_ARGUMENT: cursor does not belong to this query\n"


def _op(state: str, **kw) -> dict:
    return {"op_id": "o1", "kind": "split", "source_shard": "s000", "target_shard": "s003",
            "state": state, "source_lsn": 10, "applied_lsn": 4, "documents": 7, "error": None,
            **kw}


def test_split_progress_is_one_line_per_state_off_a_terminal():
    out = io.StringIO()
    report = commands.operation_reporter(out)
    for state in ("planned", "copying", "copying", "catching_up", "done"):
        report(_op(state))
    assert out.getvalue().splitlines() == [
        "split o1 s000 -> s003: planned", "split o1 s000 -> s003: copying",
        "split o1 s000 -> s003: catching_up, 7 documents copied, 6 records behind",
        "split o1 s000 -> s003: done"]


def test_split_progress_is_a_bar_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    report = commands.operation_reporter(out)
    report(_op("copying"))
    report(_op("done"))
    assert "split o1 s000 -> s003: done" in out.getvalue()


def test_drain_progress_counts_moves():
    out = io.StringIO()
    report = commands.plan_reporter(out)
    moves = [{"result": "done"}, {"result": "pending"}]
    report({"kind": "drain", "plan_id": "p1", "state": "running", "moves": moves})
    report({"kind": "drain", "plan_id": "p1", "state": "done",
            "moves": [{"result": "done"}, {"result": "done"}]})
    assert out.getvalue().splitlines() == ["drain p1: 1/2 moves done", "drain p1: 2/2 moves done"]
