"""The SDK's change streams without a server: parsing, tokens through heartbeats, reconnects from
the last token, errors that must propagate, argument checks, `ack` and `cdc_status`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time

import grpc
import pytest

from db4.v1 import admin_pb2, router_pb2
from db4client import ChangeEvent, RetryPolicy, errors
from db4core import errors as errors_core
from db4core.changefeed import Token
from tests.support.fakes import FakeRpcError
from tests.unit.test_client_query import (
    Stream,
    make_async_client,
    make_client,
    no_sockets,  # noqa: F401 - autouse: no real channels
    unavailable,
)


def tok(**lsn: int) -> str:
    return Token(lsn=dict(lsn)).encode()


def event(doc_id: str, lsn: int, op: str = "insert", before=None, after=None, shard="s1"):
    after = {"$id": doc_id, "n": lsn} if after is None and op != "delete" else after
    return router_pb2.ChangeEvent(
        op=op, collection="users", id=doc_id, version=1, shard=shard, lsn=lsn, txid=f"t{lsn}",
        ts=1700000000000 + lsn, token=tok(**{shard: lsn}),
        before=json.dumps(before).encode() if before is not None else b"",
        after=json.dumps(after).encode() if after is not None else b"")


def batch(*events, token: str | None = None):
    token = token if token is not None else (events[-1].token if events else "")
    return router_pb2.SubscribeResponse(events=list(events), token=token)


def heartbeat(**lsn: int):
    return router_pb2.SubscribeResponse(token=tok(**lsn))


def data_loss():
    return FakeRpcError(grpc.StatusCode.DATA_LOSS, "record 7 of s1 fails its checksum")


def out_of_range():
    return FakeRpcError(grpc.StatusCode.OUT_OF_RANGE, "oldest position kept for s1 is 40")


# ---- parsing and tokens ----

def test_events_are_parsed_into_frozen_change_events():
    client, db4 = make_client()
    db4.script.append(Stream(batch(
        event("a", 1),
        event("a", 2, op="update", before={"$id": "a", "n": 1}, after={"$id": "a", "n": 2}),
        event("a", 3, op="delete", before={"$id": "a", "n": 2}))))
    sub = client.subscribe(collections=["users"])
    first, second, third = (next(sub) for _ in range(3))
    assert first == ChangeEvent(op="insert", collection="users", id="a", before=None,
                                after={"$id": "a", "n": 1}, version=1, shard="s1", lsn=1,
                                txid="t1", ts=1700000000001, token=tok(s1=1))
    assert (second.op, second.before, second.after) == ("update", {"$id": "a", "n": 1},
                                                        {"$id": "a", "n": 2})
    assert (third.op, third.before, third.after) == ("delete", {"$id": "a", "n": 2}, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.op = "update"  # type: ignore[misc]
    assert first.to_dict()["token"] == tok(s1=1) and list(first.to_dict())[0] == "op"
    sent = db4.calls[0][1]
    assert (list(sent.collections), sent.start, sent.from_token) == (["users"], "oldest", "")


def test_token_follows_every_event_and_heartbeat_which_is_not_yielded():
    client, db4 = make_client()
    db4.script.append(Stream(heartbeat(s1=0), batch(event("a", 1), event("b", 2)),
                             heartbeat(s1=2, s2=5), batch(event("c", 3))))
    sub = client.subscribe()
    assert sub.token is None
    a = next(sub)
    assert a.id == "a" and sub.token == tok(s1=1)  # the heartbeat before it moved it, then a
    next(sub)
    assert sub.token == tok(s1=2)
    c = next(sub)
    assert c.id == "c" and sub.token == tok(s1=3)


def test_a_given_from_token_is_the_position_until_something_arrives():
    client, db4 = make_client()
    start = tok(s1=9)
    db4.script.append(Stream(heartbeat(s1=9, s2=1), data_loss()))
    sub = client.subscribe(from_token=start, start="now")
    assert sub.token == start
    with pytest.raises(errors.DataLossError):
        next(sub)
    assert sub.token == tok(s1=9, s2=1)
    assert (db4.calls[0][1].from_token, db4.calls[0][1].start) == (start, "now")


# ---- reconnects ----

def test_unavailable_reconnects_from_the_last_token_without_repeats():
    client, db4 = make_client()
    db4.script += [Stream(batch(event("a", 1), event("b", 2)), unavailable()),
                   Stream(unavailable()),
                   Stream(heartbeat(s1=2), batch(event("c", 3)))]
    sub = client.subscribe(collections=["users"], consumer="c1", heartbeat_ms=200)
    assert [next(sub).id for _ in range(3)] == ["a", "b", "c"]
    sent = [c[1] for c in db4.calls]
    assert [r.from_token for r in sent] == ["", tok(s1=2), tok(s1=2)]
    assert all(list(r.collections) == ["users"] and r.consumer == "c1" and r.heartbeat_ms == 200
               for r in sent)


def test_a_heartbeat_token_is_where_a_reconnect_starts():
    client, db4 = make_client()
    db4.script += [Stream(batch(event("a", 1)), heartbeat(s1=1, s2=4), unavailable()),
                   Stream(batch(event("b", 5, shard="s2")))]
    sub = client.subscribe()
    assert [next(sub).id for _ in range(2)] == ["a", "b"]
    assert db4.calls[1][1].from_token == tok(s1=1, s2=4)


def test_before_any_token_a_reconnect_repeats_the_first_request():
    client, db4 = make_client()
    db4.script += [Stream(unavailable()), Stream(batch(event("a", 1)))]
    sub = client.subscribe(start="now")
    assert next(sub).id == "a"
    assert [(c[1].start, c[1].from_token) for c in db4.calls] == [("now", ""), ("now", "")]


def test_stream_idle_and_a_stream_the_router_ended_reconnect():
    client, db4 = make_client()
    idle = FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "slow reader",
                        {errors_core.REASON_KEY: errors_core.REASON_STREAM_IDLE})
    db4.script += [Stream(batch(event("a", 1)), idle),
                   Stream(batch(event("b", 2))),  # then a clean end: still an endless stream
                   Stream(batch(event("c", 3)))]
    sub = client.subscribe()
    assert [next(sub).id for _ in range(3)] == ["a", "b", "c"]
    assert [c[1].from_token for c in db4.calls] == ["", tok(s1=1), tok(s1=2)]


def test_reconnects_last_the_stream_budget_then_give_up():
    client, db4 = make_client(retry=RetryPolicy(attempts=3, initial_backoff_s=0.01,
                                                max_backoff_s=0.01, stream_budget_s=0.1))
    db4.script += [Stream(batch(event("a", 1)), unavailable()),
                   *[Stream(unavailable()) for _ in range(100)]]
    sub = client.subscribe()
    assert next(sub).id == "a"
    began = time.monotonic()
    with pytest.raises(errors.UnavailableError):
        next(sub)
    assert time.monotonic() - began >= 0.08
    assert 4 <= len(db4.calls) < 101
    assert all(c[1].from_token == tok(s1=1) for c in db4.calls[1:])


@pytest.mark.parametrize(("failure", "error"), [(data_loss, errors.DataLossError),
                                                (out_of_range, errors.OutOfRangeError)])
def test_data_loss_and_out_of_range_propagate(failure, error):
    client, db4 = make_client()
    db4.script += [Stream(batch(event("a", 1)), failure()), Stream(batch(event("b", 2)))]
    sub = client.subscribe()
    assert next(sub).id == "a"
    with pytest.raises(error):
        next(sub)
    assert len(db4.calls) == 1


# ---- close, context manager, ack ----

def test_close_cancels_the_stream_and_ends_iteration():
    client, db4 = make_client()
    stream = Stream(batch(event("a", 1)), batch(event("b", 2)))
    db4.script.append(stream)
    with client.subscribe() as sub:
        assert next(sub).id == "a"
    assert stream.cancelled
    assert list(sub) == []


class Blocking:
    """A stream whose next message never comes until it is cancelled."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        self.cancelled.wait(5)
        raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")

    def cancel(self):
        self.cancelled.set()
        return True


def test_close_from_another_thread_ends_a_waiting_iteration():
    client, db4 = make_client()
    stream = Blocking()
    db4.script.append(stream)
    sub = client.subscribe()
    got: list = []
    reader = threading.Thread(target=lambda: got.append(list(sub)))
    reader.start()
    time.sleep(0.1)
    sub.close()
    reader.join(2)
    assert not reader.is_alive() and got == [[]]
    assert stream.cancelled.is_set()


def test_ack_sends_the_current_or_given_token_for_the_consumer():
    client, db4 = make_client()
    db4.script.append(Stream(batch(event("a", 1), event("b", 2))))
    sub = client.subscribe(consumer="billing")
    first = next(sub)
    db4.script.append(router_pb2.AcknowledgeResponse())
    sub.ack()
    assert db4.calls[-1][0] == "Acknowledge"
    assert (db4.calls[-1][1].consumer, db4.calls[-1][1].token) == ("billing", first.token)
    db4.script.append(router_pb2.AcknowledgeResponse())
    sub.ack(tok(s1=7))
    assert db4.calls[-1][1].token == tok(s1=7)


def test_ack_needs_a_consumer_and_a_position():
    client, db4 = make_client()
    with pytest.raises(errors.InvalidArgumentError, match="consumer"):
        client.subscribe().ack(tok(s1=1))
    with pytest.raises(errors.InvalidArgumentError, match="nothing to acknowledge"):
        client.subscribe(consumer="c").ack()
    with pytest.raises(errors.InvalidArgumentError):
        client.subscribe(consumer="c").ack("not-a-token")
    assert db4.calls == []


# ---- arguments ----

@pytest.mark.parametrize("kwargs", [
    {"start": "latest"}, {"start": None}, {"collections": "users"}, {"collections": []},
    {"collections": ["bad name"]}, {"collections": ["$ids:users"]}, {"collections": [1]},
    {"from_token": 42}, {"from_token": b"v1.xx"}, {"from_token": "garbage"},
    {"from_token": "v1.!!!"}, {"consumer": ""}, {"consumer": "a/b"}, {"consumer": 7},
    {"consumer": "x" * 129}, {"consumer": "1st"}, {"consumer": "a.b"}, {"heartbeat_ms": 0},
    {"heartbeat_ms": 1.5}, {"heartbeat_ms": True}, {"heartbeat_ms": 60_001},
])
def test_bad_arguments_are_refused_before_anything_is_sent(kwargs):
    client, db4 = make_client()
    with pytest.raises(errors.InvalidArgumentError):
        client.subscribe(**kwargs)
    aclient, adb4 = make_async_client()
    with pytest.raises(errors.InvalidArgumentError):
        aclient.subscribe(**kwargs)
    assert db4.calls == [] and adb4.calls == []


def test_a_heartbeat_above_the_timeout_is_waited_for():
    client, db4 = make_client(timeout=1.0)
    sub = client.subscribe(heartbeat_ms=5000)
    assert sub is not None
    from db4client import _cdc
    call = _cdc.subscribe(heartbeat_ms=5000)
    assert call.message_timeout(1.0) == 15.0 and call.message_timeout(30.0) == 30.0


# ---- cdc_status ----

def test_cdc_status_is_a_plain_dict():
    client, _ = make_client()
    admin = client._stubs["admin"]
    admin.script.append(admin_pb2.CdcStatusResponse(
        shards=[admin_pb2.ShardLog(shard_id="s1", node_id="n1", first_lsn=3, last_lsn=10,
                                   entries=8, bytes=900, checkpoint=2)],
        consumers=[admin_pb2.ConsumerStatus(name="billing", lsn={"s1": 6}, lag={"s1": 4})]))
    assert client.admin.cdc_status() == {
        "shards": [{"shard_id": "s1", "node_id": "n1", "first_lsn": 3, "last_lsn": 10,
                    "entries": 8, "bytes": 900, "checkpoint": 2}],
        "consumers": [{"name": "billing", "lsn": {"s1": 6}, "lag": {"s1": 4}}]}
    assert admin.calls[0][0] == "CdcStatus"


# ---- asyncio ----

def test_async_subscription_reconnects_tracks_tokens_and_acks():
    client, db4 = make_async_client()
    db4.script += [Stream(batch(event("a", 1)), heartbeat(s1=1, s2=2), unavailable()),
                   Stream(batch(event("b", 3, shard="s2")), data_loss())]

    async def run():
        seen, tokens = [], []
        async with client.subscribe(consumer="c") as sub:
            with pytest.raises(errors.DataLossError):
                async for ev in sub:
                    seen.append(ev.id)
                    tokens.append(sub.token)
            db4.script.append(router_pb2.AcknowledgeResponse())
            await sub.ack()
        return seen, tokens, sub

    seen, tokens, sub = asyncio.run(run())
    assert seen == ["a", "b"] and tokens == [tok(s1=1), tok(s2=3)]
    assert [c[1].from_token for c in db4.calls[:2]] == ["", tok(s1=1, s2=2)]
    assert (db4.calls[-1][0], db4.calls[-1][1].token) == ("Acknowledge", tok(s2=3))
    assert sub.closed


def test_async_close_ends_iteration():
    client, db4 = make_async_client()
    db4.script.append(Stream(batch(event("a", 1)), batch(event("b", 2))))

    async def run():
        sub = client.subscribe()
        got = [(await sub.__anext__()).id]
        await sub.aclose()
        got += [ev.id async for ev in sub]
        return got

    assert asyncio.run(run()) == ["a"]


# ---- the command line ----

def test_cdc_tail_prints_json_lines_and_ends_quietly_on_ctrl_c(capsys):
    from db4client import cli

    client, db4 = make_client()

    class CtrlC(Stream):
        def _next(self):
            if not self.items:
                raise KeyboardInterrupt
            return super()._next()

    stream = CtrlC(batch(event("a", 1), event("b", 2)), heartbeat(s1=2))
    db4.script.append(stream)
    args = cli.parser().parse_args(["cdc", "tail", "--collection", "users", "--collection",
                                    "orders", "--start", "now"])
    assert args.func(client, args) is cli.PRINTED
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    assert list(json.loads(lines[0])) == ["op", "collection", "id", "before", "after",
                                          "version", "shard", "lsn", "txid", "ts", "token"]
    assert json.loads(lines[1])["token"] == tok(s1=2)
    sent = db4.calls[0][1]
    assert (list(sent.collections), sent.start) == (["users", "orders"], "now")
    assert stream.cancelled


def test_cdc_tail_with_a_consumer_acknowledges_what_it_printed(capsys):
    from db4client import cli

    client, db4 = make_client()
    db4.script += [Stream(batch(event("a", 1)), data_loss())]
    db4.script.insert(1, router_pb2.AcknowledgeResponse())
    args = cli.parser().parse_args(["cdc", "tail", "--consumer", "audit"])
    with pytest.raises(errors.DataLossError):
        args.func(client, args)
    assert [c[0] for c in db4.calls] == ["Subscribe", "Acknowledge"]
    assert (db4.calls[1][1].consumer, db4.calls[1][1].token) == ("audit", tok(s1=1))
    assert json.loads(capsys.readouterr().out)["id"] == "a"


def test_cdc_status_prints_a_table_of_shards_and_consumers():
    from db4client import commands

    lines = commands.cdc_status_lines({
        "shards": [{"shard_id": "s00", "node_id": "n1", "first_lsn": 1, "last_lsn": 120,
                    "entries": 120, "bytes": 34512, "checkpoint": 0},
                   {"shard_id": "s01", "node_id": "n2", "first_lsn": 41, "last_lsn": 50,
                    "entries": 10, "bytes": 900, "checkpoint": 40}],
        "consumers": [{"name": "billing", "lsn": {"s00": 100, "s01": 50},
                       "lag": {"s00": 20, "s01": 0}}]})
    assert lines[0].split() == ["shard", "node", "first_lsn", "last_lsn", "entries", "bytes",
                                "checkpoint"]
    assert lines[1].split() == ["s00", "n1", "1", "120", "120", "34512", "0"]
    assert lines[2].split() == ["s01", "n2", "41", "50", "10", "900", "40"]
    assert lines[4].split() == ["consumer", "lag", "lag", "by", "shard"]
    assert lines[5].split() == ["billing", "20", "s00:20"]
    assert commands.cdc_status_lines({"shards": [], "consumers": []})[-1] == \
        "no durable consumers"


def test_cdc_status_shows_a_shard_whose_node_is_down_and_why():
    from db4client import commands

    client, _ = make_client()
    admin = client._stubs["admin"]
    admin.script.append(admin_pb2.CdcStatusResponse(shards=[
        admin_pb2.ShardLog(shard_id="s1", node_id="n1", first_lsn=3, last_lsn=10, entries=8),
        admin_pb2.ShardLog(shard_id="s2", node_id="n3", unreachable="node n3 cannot be reached")]))
    status = client.admin.cdc_status()
    assert status["shards"][1] == {"shard_id": "s2", "node_id": "n3", "first_lsn": 0,
                                   "last_lsn": 0, "entries": 0, "bytes": 0, "checkpoint": 0,
                                   "unreachable": "node n3 cannot be reached"}
    assert "unreachable" not in status["shards"][0]
    lines = commands.cdc_status_lines(status)
    assert lines[1].split() == ["s1", "n1", "3", "10", "8", "0", "0"]
    assert lines[2].split() == ["s2", "n3", "?", "?", "?", "?", "?"]
    assert lines[3] == "shard s2: node n3 cannot be reached (lag below leaves it out)"


@pytest.mark.parametrize("argv", [["cdc"], ["cdc", "tail", "--start", "latest"],
                                  ["cdc", "follow"]])
def test_cdc_usage_errors_exit_2(argv, capsys):
    from db4client import cli

    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cdc_tail_bad_token_is_an_invalid_argument_error(capsys):
    from db4client import cli

    assert cli.main(["cdc", "tail", "--from-token", "nope"]) == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: ")


def test_a_heartbeat_that_moves_the_position_is_reported():
    client, db4 = make_client()
    db4.script.append(Stream(heartbeat(s1=0), batch(event("a", 1)), heartbeat(s1=1),
                             heartbeat(s1=1, s2=9), batch(event("b", 2))))
    sub = client.subscribe()
    seen: list[str] = []
    sub.on_heartbeat = seen.append
    assert [next(sub).id, next(sub).id] == ["a", "b"]
    assert seen == [tok(s1=0), tok(s1=1, s2=9)]  # not the one that moved nothing


def test_cdc_tail_acknowledges_heartbeats_so_a_filter_does_not_hold_the_log(monkeypatch,
                                                                           capsys):
    from db4client import commands

    monkeypatch.setattr(commands, "HEARTBEAT_ACK_S", 0.0)
    client, db4 = make_client()
    db4.script += [Stream(batch(event("a", 1)), heartbeat(s1=1, s2=9), data_loss()),
                   router_pb2.AcknowledgeResponse(), router_pb2.AcknowledgeResponse()]
    args = dataclasses.make_dataclass("Args", ["collection", "from_token", "start",
                                               "consumer"])(["users"], None, "oldest", "c1")
    with pytest.raises(errors.DataLossError):
        commands.cmd_cdc_tail(client, args)
    acks = [c[1].token for c in db4.calls if c[0] == "Acknowledge"]
    assert acks == [tok(s1=1), tok(s1=1, s2=9)]
    assert json.loads(capsys.readouterr().out)["id"] == "a"


def test_what_on_heartbeat_raises_comes_out_and_the_stream_goes_on():
    client, db4 = make_client()
    db4.script.append(Stream(heartbeat(s1=1), batch(event("a", 2)), batch(event("b", 3))))
    sub = client.subscribe()

    def fail(token: str) -> None:
        raise errors.UnavailableError("ack failed")

    sub.on_heartbeat = fail
    with pytest.raises(errors.UnavailableError, match="ack failed"):
        next(sub)
    assert [ev.id for ev in [next(sub), next(sub)]] == ["a", "b"]


def test_an_async_subscription_awaits_a_coroutine_on_heartbeat():
    client, db4 = make_async_client()
    db4.script += [Stream(heartbeat(s1=4), batch(event("a", 5)), data_loss()),
                   router_pb2.AcknowledgeResponse()]

    async def run():
        async with client.subscribe(consumer="c") as sub:
            sub.on_heartbeat = sub.ack
            seen = []
            with pytest.raises(errors.DataLossError):
                async for ev in sub:
                    seen.append(ev.id)
        return seen

    assert asyncio.run(run()) == ["a"]
    acks = [c[1].token for c in db4.calls if c[0] == "Acknowledge"]
    assert acks == [tok(s1=4)]
