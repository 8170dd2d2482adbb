"""What the client commands of `db4` do; `cli.py` parses the arguments and prints the result.

Each `cmd_*` takes (client, args) and returns what to print as JSON on stdout. Domain errors
propagate: `cli.run_client_command` prints them as `error: CODE: message` and exits 1.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from db4client import _query
from db4client.errors import Db4Error, InvalidArgumentError, NotFoundError
from db4core import documents

# What a command returns when it printed its own output (a stream, a table).
PRINTED = object()

# ---- cluster, collections, documents ----


def cmd_status(client: Any, args: argparse.Namespace) -> Any:
    """The cluster's status."""
    return client.admin.status(with_stats=args.with_stats, with_ranges=args.ranges)


def cmd_token_create(client: Any, args: argparse.Namespace) -> Any:
    """A new token: {id, role, name, created_ms, token}."""
    return client.admin.create_token(args.role, args.name, args.requests_per_s,
                                     args.max_streams, args.bytes_per_s)


def cmd_token_list(client: Any, args: argparse.Namespace) -> Any:
    return client.admin.tokens()


def cmd_token_revoke(client: Any, args: argparse.Namespace) -> Any:
    return client.admin.revoke_token(args.id)


def cmd_checkpoint(client: Any, args: argparse.Namespace) -> Any:
    """Truncate every shard's change log and checkpoint its WAL now."""
    return client.admin.checkpoint()


def cmd_create_collection(client: Any, args: argparse.Namespace) -> Any:
    """Create a collection (or confirm its options)."""
    return client.create_collection(args.name, partition_key=args.partition_key)


def cmd_put(client: Any, args: argparse.Namespace) -> Any:
    """Create a document."""
    return client.collection(args.collection).create(args.document)


class Interrupted(Exception):
    """Ctrl-C during a command, with what it had done (`db4` prints it and exits 130)."""


class LineNumbers:
    """Which line of a JSON-lines file holds the i-th document (0-based), for errors that
    name documents by their place in the input: blank lines are skipped, and only they are
    remembered (the index of the document each came before)."""

    def __init__(self) -> None:
        self.blanks: list[int] = []

    def line_of(self, index: int) -> int:
        return index + 1 + bisect.bisect_right(self.blanks, index)

    def name_lines(self, err: Db4Error, path: str) -> Db4Error:
        """The error with each `documents[i]` as `PATH line N`, and what stays loaded in
        lines."""
        message = re.sub(r"documents\[(\d+)\]",
                         lambda m: f"{path} line {self.line_of(int(m.group(1)))}", err.message)
        loaded = getattr(err, "loaded", None)
        if loaded:
            message = message.replace(
                f"the first {loaded} documents are loaded",
                f"the first {loaded} documents are loaded (through line "
                f"{self.line_of(loaded - 1)})")
        err.message = message
        err.args = (message,)
        return err


def jsonl_documents(path: str, stream: Any, lines: LineNumbers | None = None
                    ) -> Iterator[Any]:
    """The documents of a binary JSON-lines stream, one object per line (blank lines skipped,
    noted in `lines`); a line that is not a JSON object (or not UTF-8) is InvalidArgumentError
    naming the file and line."""
    yielded = 0
    for number, line in enumerate(stream, 1):
        if not line.strip():
            if lines is not None:
                lines.blanks.append(yielded)
            continue
        try:
            doc = documents.decode(line)
        except InvalidArgumentError as err:
            raise InvalidArgumentError(f"{path} line {number}: {err.message}") from None
        if not isinstance(doc, dict):
            raise InvalidArgumentError(f"{path} line {number}: a document must be a JSON "
                                       f"object, got {type(doc).__name__}")
        yield doc
        yielded += 1


def _count_lines(path: str) -> int:
    """Newlines in a file (the progress bar's total), read in 1 MiB blocks."""
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def cmd_import(client: Any, args: argparse.Namespace) -> Any:
    """Load a JSON-lines file (or stdin) with bulk_load, a progress bar on stderr."""
    stdin = args.file == "-"
    try:
        total = 0 if stdin else _count_lines(args.file)
        stream = sys.stdin.buffer if stdin else open(args.file, "rb")  # noqa: SIM115
    except OSError as err:
        raise InvalidArgumentError(f"cannot read {args.file}: {err.strerror}") from None
    bar = _Bar(sys.stderr)
    name = "stdin" if stdin else args.file
    shown = {"loaded": 0, "at": 0.0}

    def show(finished: bool) -> None:
        loaded = shown["loaded"]
        bar.show(f"importing {name} into {args.collection}: {loaded} documents", loaded,
                 max(total, loaded, 1), finished)

    def report(loaded: int) -> None:
        shown["loaded"] = loaded
        if bar.progress is not None or time.monotonic() - shown["at"] >= 2:  # a line per 2 s
            shown["at"] = time.monotonic()
            show(False)

    lines = LineNumbers()
    with stream if not stdin else contextlib.nullcontext(stream):
        try:
            result = client.bulk_load(args.collection, jsonl_documents(name, stream, lines),
                                      batch_size=args.batch_size, progress=report,
                                      in_flight=args.in_flight)
        except Db4Error as err:
            raise lines.name_lines(err, name) from err.__cause__
        except KeyboardInterrupt as stop:
            exact = getattr(stop, "loaded", None)
            loaded = int(exact if exact is not None
                         else getattr(stop, "at_least", shown["loaded"]))
            through = f" (through line {lines.line_of(loaded - 1)})" if loaded else ""
            if exact is not None:
                raise Interrupted(f"interrupted: the first {loaded} documents{through} are "
                                  "loaded, none after them") from None
            raise Interrupted(f"interrupted twice: the first {loaded} documents{through} are "
                              "loaded; batches in flight after them may be too") from None
        finally:
            show(True)
    return {"loaded": result.loaded, "batches": result.batches,
            "seconds": round(result.seconds, 3),
            "docs_per_second": round(result.docs_per_second, 1)}


def cmd_get(client: Any, args: argparse.Namespace) -> Any:
    """Read a document; a missing one is NOT_FOUND here (exit 1), not `null`."""
    doc = client.collection(args.collection).get(args.id, partition=args.partition)
    if doc is None:
        raise NotFoundError(f"document {args.id!r} not found in {args.collection!r}")
    return doc


def cmd_update(client: Any, args: argparse.Namespace) -> Any:
    """Patch a document."""
    return client.collection(args.collection).update(
        args.id, args.patch, expected_version=args.expected_version, partition=args.partition)


def cmd_delete(client: Any, args: argparse.Namespace) -> Any:
    """Delete a document."""
    deleted = client.collection(args.collection).delete(
        args.id, expected_version=args.expected_version, partition=args.partition)
    return {"deleted": deleted}


def cmd_shard_for(client: Any, args: argparse.Namespace) -> Any:
    """Where a partition key value lives."""
    return client.shard_info(args.collection, args.value)


# ---- queries ----


def cmd_find(client: Any, args: argparse.Namespace) -> Any:
    """One page of a query, as {"items": [...], "cursor": ..., "has_more": ...}."""
    coll = client.collection(args.collection)
    if args.explain:
        return client._invoke(_query.explain_find(args.collection, args.where, args.sort,
                                                  args.limit, args.shard))
    query = {"where": args.where, "sort": args.sort, "limit": args.limit, "cursor": args.cursor}
    page = coll.find(**query) if args.shard is None else coll.find_in_shard(args.shard, **query)
    return page.to_dict()


def cmd_count(client: Any, args: argparse.Namespace) -> Any:
    """How many documents match, as {"count": N}."""
    coll = client.collection(args.collection)
    if args.shard is None:
        return {"count": coll.count(where=args.where)}
    return {"count": coll.count_in_shard(args.shard, where=args.where)}


# ---- range indexes ----


def progress_reporter(name: str, out: TextIO) -> Callable[[dict[str, Any]], None]:
    """An on_progress callback writing "indexing NAME: 3/8 shards, 12000 documents" to `out`:
    one line per message, or one line rewritten in place on a terminal."""
    terminal = out.isatty()

    def report(progress: dict[str, Any]) -> None:
        line = (f"indexing {name}: {progress['shards_done']}/{progress['shards_total']} "
                f"shards, {progress['documents']} documents")
        if terminal:
            out.write("\r\x1b[K" + line + ("\n" if progress["done"] else ""))
        else:
            out.write(line + "\n")
        out.flush()

    return report


def cmd_create_index(client: Any, args: argparse.Namespace) -> Any:
    """Build a range index, progress on stderr; the index as stored."""
    return client.create_index(args.name, args.collection, fields=args.fields,
                               on_progress=progress_reporter(args.name, sys.stderr))


def cmd_drop_index(client: Any, args: argparse.Namespace) -> Any:
    """Remove a range index, as {"dropped": NAME}."""
    client.drop_index(args.name)
    return {"dropped": args.name}


def cmd_indexes(client: Any, args: argparse.Namespace) -> Any:
    """The range indexes, sorted by name."""
    return client.list_indexes(collection=args.collection)


def cmd_query_range(client: Any, args: argparse.Namespace) -> Any:
    """One page of a range query, as {"items": [...], "cursor": ..., "has_more": ...}."""
    given = vars(args)  # --start/--end are absent, not None, when not given: null is a value
    for side in ("start", "end"):
        if side not in given and given[f"{side}_exclusive"]:
            args.parser.error(f"--{side}-exclusive needs --{side}")
    start = (given["start"], not args.start_exclusive) if "start" in given else None
    end = (given["end"], not args.end_exclusive) if "end" in given else None
    page = client.query_range(args.index, start=start, end=end, limit=args.limit,
                              cursor=args.cursor)
    return page.to_dict()


# ---- full-text search ----


def cmd_create_search_index(client: Any, args: argparse.Namespace) -> Any:
    """Build a full-text index, progress on stderr; the index as stored."""
    return client.create_search_index(args.name, args.collection, fields=args.field,
                                      tokenizer=args.tokenizer,
                                      on_progress=progress_reporter(args.name, sys.stderr))


def cmd_drop_search_index(client: Any, args: argparse.Namespace) -> Any:
    """Remove a full-text index, as {"dropped": NAME}."""
    client.drop_search_index(args.name)
    return {"dropped": args.name}


def cmd_search_indexes(client: Any, args: argparse.Namespace) -> Any:
    """The full-text indexes, sorted by name."""
    return client.list_search_indexes(collection=args.collection)


def search_lines(result: Any) -> list[str]:
    """A page of hits as text: score, id and snippet per hit, then the next cursor."""
    rows = [[f"{hit.score:.6g}", hit.id, " ".join(hit.snippet.split())] for hit in result.hits]
    lines = _table(["score", "id", "snippet"], rows) if rows else ["no hits"]
    if result.cursor:
        lines.append(f"next page: --cursor {result.cursor}")
    return lines


def cmd_search(client: Any, args: argparse.Namespace) -> Any:
    """One page of a search: a table of hits and the next cursor, or with --json the page
    (documents and highlights too) as JSON."""
    result = client.search(args.index, args.query, limit=args.limit, cursor=args.cursor,
                           where=args.where)
    if args.json:
        return result.to_dict()
    sys.stdout.write("\n".join(search_lines(result)) + "\n")
    return PRINTED


# ---- change data capture ----


HEARTBEAT_ACK_S = 5.0  # db4 cdc tail acknowledges a heartbeat's position at most this often


def cmd_cdc_tail(client: Any, args: argparse.Namespace) -> Any:
    """Print every change as one JSON object per line, flushed, until Ctrl-C (the SDK rides
    out router restarts); a durable consumer acknowledges each event once printed, and the
    position of a heartbeat at most every HEARTBEAT_ACK_S (with --collection, the records
    skipped, so the shards' logs are not held for it)."""
    out = sys.stdout
    sub = client.subscribe(collections=args.collection, from_token=args.from_token,
                           start=args.start, consumer=args.consumer)
    acked = {"at": time.monotonic()}

    def ack(token: str) -> None:
        sub.ack(token)
        acked["at"] = time.monotonic()

    if args.consumer is not None:
        sub.on_heartbeat = lambda token: (
            ack(token) if time.monotonic() - acked["at"] >= HEARTBEAT_ACK_S else None)
    try:
        for event in sub:
            out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
            out.flush()
            if args.consumer is not None:
                ack(event.token)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a tail ends
    finally:
        sub.close()
    return PRINTED


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """Left-aligned columns separated by two spaces."""
    cells = [header, *[[str(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
            for r in cells]


def cdc_status_lines(status: dict[str, Any]) -> list[str]:
    """`db4 cdc status` as text: the shards' logs, then the consumers with their lag. A shard
    whose node is down shows `?` and, under the table, why."""
    shards = [[s["shard_id"], s["node_id"], *(["?"] * 5 if "unreachable" in s else
                                               [s["first_lsn"], s["last_lsn"], s["entries"],
                                                s["bytes"], s["checkpoint"]])]
              for s in status["shards"]]
    lines = _table(["shard", "node", "first_lsn", "last_lsn", "entries", "bytes", "checkpoint"],
                   shards)
    lines += [f"shard {s['shard_id']}: {s['unreachable']} (lag below leaves it out)"
              for s in status["shards"] if "unreachable" in s]
    consumers = [[c["name"], sum(c["lag"].values()),
                  " ".join(f"{k}:{v}" for k, v in c["lag"].items() if v) or "-"]
                 for c in status["consumers"]]
    lines.append("")
    lines += (_table(["consumer", "lag", "lag by shard"], consumers) if consumers
              else ["no durable consumers"])
    return lines


def cmd_cdc_status(client: Any, args: argparse.Namespace) -> Any:
    """The change logs and consumers: a table, or with --json the status as JSON."""
    status = client.admin.cdc_status()
    if args.json:
        return status
    sys.stdout.write("\n".join(cdc_status_lines(status)) + "\n")
    return PRINTED


_STATE_PERCENT = {"planned": 0, "copying": 10, "catching_up": 60, "cutover": 90, "done": 100,
                  "aborted": 100}


def _operation_line(op: dict[str, Any]) -> str:
    state = op["state"]
    line = f"{op['kind']} {op['op_id']} {op['source_shard']} -> {op['target_shard']}: {state}"
    if state in ("catching_up", "cutover"):
        behind = max(0, op["source_lsn"] - op["applied_lsn"])
        line += f", {op['documents']} documents copied, {behind} records behind"
    if op["error"]:
        line += f" ({op['error']})"
    return line


class _Bar:
    """A rich progress bar on a terminal; one line per change of state elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last = ""
        self.progress: Any = None
        self.task: Any = None
        if out.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TimeElapsedColumn(), console=Console(file=out))

    def show(self, text: str, done: float, total: float, finished: bool) -> None:
        if self.progress is None:
            if text != self.last:
                self.out.write(text + "\n")
                self.out.flush()
                self.last = text
            return
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(text, total=total)
        self.progress.update(self.task, description=text, completed=done, total=total)
        if finished:
            self.progress.stop()


def operation_reporter(out: TextIO) -> Callable[[dict[str, Any]], None]:
    """A progress callback for splits and moves: a bar through the states on a terminal
    ("split 1a2b s001 -> s008: catching_up, 51234 documents copied, 12 records behind"),
    one line per state otherwise."""
    bar = _Bar(out)

    def report(op: dict[str, Any]) -> None:
        state = op["state"]
        bar.show(_operation_line(op), _STATE_PERCENT.get(state, 0), 100,
                 state in ("done", "aborted"))

    return report


def cmd_split(client: Any, args: argparse.Namespace) -> Any:
    """Split a shard (waiting for the end unless --no-wait), progress on stderr."""
    return client.admin.split_shard(args.shard, wait=not args.no_wait,
                                    split_token=args.split_token, node_id=args.node or "",
                                    progress=operation_reporter(sys.stderr))


def cmd_move(client: Any, args: argparse.Namespace) -> Any:
    """Move a shard to a node (waiting for the end unless --no-wait), progress on stderr."""
    return client.admin.move_shard(args.shard, args.node, wait=not args.no_wait,
                                   progress=operation_reporter(sys.stderr))


def cmd_operations(client: Any, args: argparse.Namespace) -> Any:
    """Splits and moves (unfinished ones unless --all)."""
    return client.admin.operations(all=args.all)


def cmd_abort_operation(client: Any, args: argparse.Namespace) -> Any:
    """Abort a split or move before its commit point (one that finished is
    FAILED_PRECONDITION from the router: exit 1)."""
    return client.admin.abort_operation(args.op_id)


def plan_reporter(out: TextIO) -> Callable[[dict[str, Any]], None]:
    """A progress callback for drains and rebalances: a bar over the moves on a terminal
    ("drain 9f3c: 2/5 moves done"), one line per finished move otherwise."""
    bar = _Bar(out)

    def report(plan: dict[str, Any]) -> None:
        finished = sum(1 for m in plan["moves"] if m["result"] != "pending")
        text = f"{plan['kind']} {plan['plan_id']}: {finished}/{len(plan['moves'])} moves done"
        bar.show(text, finished, max(1, len(plan["moves"])), plan["state"] != "running")

    return report


def cmd_drain(client: Any, args: argparse.Namespace) -> Any:
    """Move every shard off a node (or show the plan with --dry-run)."""
    return client.admin.drain_node(args.node, wait=not args.no_wait, dry_run=args.dry_run,
                                   progress=plan_reporter(sys.stderr))


def cmd_rebalance(client: Any, args: argparse.Namespace) -> Any:
    """Even out the ring over the nodes (or show the plan with --dry-run)."""
    return client.admin.rebalance(wait=not args.no_wait, dry_run=args.dry_run,
                                  progress=plan_reporter(sys.stderr))
