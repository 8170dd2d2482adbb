"""The `db4` command line: run the servers (`node`, `router`, `dev`) and talk to a router.

This module parses arguments; what each client command does is in `commands.py`. Client
commands print JSON on stdout. Failures print `error: CODE: message` on stderr and exit 1;
usage errors exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from db4client import _wire
from db4client.commands import (
    PRINTED,
    Interrupted,
    cmd_abort_operation,
    cmd_cdc_status,
    cmd_cdc_tail,
    cmd_checkpoint,
    cmd_count,
    cmd_create_collection,
    cmd_create_index,
    cmd_create_search_index,
    cmd_delete,
    cmd_drain,
    cmd_drop_index,
    cmd_drop_search_index,
    cmd_find,
    cmd_get,
    cmd_import,
    cmd_indexes,
    cmd_move,
    cmd_operations,
    cmd_put,
    cmd_query_range,
    cmd_rebalance,
    cmd_search,
    cmd_search_indexes,
    cmd_shard_for,
    cmd_split,
    cmd_status,
    cmd_token_create,
    cmd_token_list,
    cmd_token_revoke,
    cmd_update,
)
from db4client.errors import InvalidArgumentError
from db4core import documents

# `db4 node` and `db4 router` replace this process (same PID, as a container expects) with the
# server's own entry point; the SDK never imports the server packages.
SERVER_MODULES = {"node": "db4node", "router": "db4router"}
DEFAULT_ROUTER = "127.0.0.1:7400"


def exec_server(command: str, rest: list[str]) -> None:
    """Become `python -m db4node|db4router REST...`; does not return."""
    module = SERVER_MODULES[command]
    os.execv(sys.executable, [sys.executable, "-m", module, *rest])


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line: `db4 put: error: ... (see 'db4 put --help')`."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def json_value(text: str) -> Any:
    """argparse type: a JSON value, as strict as the server: no NaN or Infinity, no key twice in
    an object, no lone surrogate, no U+0000 in field names, integers within a double's range."""
    try:
        return documents.decode(text, "JSON")
    except InvalidArgumentError as err:
        raise argparse.ArgumentTypeError(f"{err.message}: {_shorten(text)}") from None


def _shorten(text: str, limit: int = 80) -> str:
    """Text for a one-line message: repr, cut to about `limit` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def ring_token(text: str) -> int:
    """argparse type: a token of the 64-bit ring (0 to 2^64-1)."""
    try:
        return _wire.ring_token(int(text), "the token")
    except (ValueError, InvalidArgumentError):
        raise argparse.ArgumentTypeError(
            f"expected a ring token, an integer from 0 to {(1 << 64) - 1}, got {text!r}"
        ) from None


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object."""
    value = json_value(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def partition_or_text(text: str) -> Any:
    """A partition key value: JSON when it parses ("42", '"acme"'), else the text itself."""
    try:
        json.loads(text)
    except ValueError:
        return text
    return json_value(text)  # JSON, so held to the same rules as any other JSON argument


def field_order(text: str) -> tuple[str, str]:
    """argparse type: 'path', 'path:asc' or 'path:desc' -> (path, direction)."""
    path, colon, direction = text.partition(":")
    direction = direction if colon else "asc"
    if not path or direction not in ("asc", "desc"):
        raise argparse.ArgumentTypeError(
            f"expected FIELD, FIELD:asc or FIELD:desc, got {text!r}")
    return path, direction


def sort_order(text: str) -> list[tuple[str, str]]:
    """argparse type: 'path:desc,other:asc,third' -> [(path, direction), ...]."""
    return [field_order(part.strip()) for part in text.split(",")]


# ---- the parser ----

def _client_command(sub: Any, name: str, func: Callable[..., Any], help: str,
                    description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that talks to a router, with the shared connection flags."""
    p = sub.add_parser(name, help=help, description=description or help)
    p.add_argument("--router", default=os.environ.get("DB4_ROUTER", DEFAULT_ROUTER),
                   help=f"router address host:port (default {DEFAULT_ROUTER}) [env DB4_ROUTER]")
    p.add_argument("--timeout", type=positive_seconds, default=30.0,
                   help="seconds to wait for the answer (default 30)")
    p.add_argument("--token", default=os.environ.get("DB4_TOKEN"),
                   help="bearer token for a secured cluster [env DB4_TOKEN]")
    p.add_argument("--token-file", default=os.environ.get("DB4_TOKEN_FILE"),
                   help="file holding the bearer token [env DB4_TOKEN_FILE]")
    p.add_argument("--tls-ca", default=os.environ.get("DB4_TLS_CA"),
                   help="PEM CA bundle: connect with TLS, checking the router against it "
                        "[env DB4_TLS_CA]")
    p.add_argument("--tls-cert", default=os.environ.get("DB4_TLS_CERT"),
                   help="PEM client certificate, for clusters that require one "
                        "[env DB4_TLS_CERT]")
    p.add_argument("--tls-key", default=os.environ.get("DB4_TLS_KEY"),
                   help="PEM key of --tls-cert [env DB4_TLS_KEY]")
    p.set_defaults(func=func, parser=p)
    return p


def _partition_flag(p: argparse.ArgumentParser) -> None:
    """--partition for point operations on collections not partitioned by $id."""
    p.add_argument("--partition", type=partition_or_text, default=None,
                   help="partition key value for collections not partitioned by $id: JSON "
                        "(42, '\"a b\"') or plain text (acme); without it every shard is asked")


def _version_flag(p: argparse.ArgumentParser, verb: str) -> None:
    """--expected-version: optimistic concurrency for writes."""
    p.add_argument("--expected-version", type=int, default=None,
                   help=f"{verb} only if the stored $version equals this (else ABORTED)")


def _server_commands(sub: Any) -> None:
    """node, router and dev: the processes of a cluster."""
    for name, what in (("node", "a storage node"), ("router", "a router")):
        p = sub.add_parser(name, help=f"run {what} (flags: db4 {name} --help)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER, help=f"flags of {what}")
    from db4client import dev

    p = sub.add_parser("dev", help="run a local cluster: etcd, nodes and a router on loopback",
                       description="Run etcd, storage nodes and one router on loopback; print "
                                   "'db4 ready router=HOST:PORT' once all serve; stop them all "
                                   "on SIGINT or SIGTERM.")
    dev.add_arguments(p)
    p.set_defaults(func=None, parser=p)


def _operation_commands(sub: Any) -> None:
    """Splits and moves."""
    p = _client_command(sub, "split", cmd_split,
                        "split a shard: a new shard takes its tokens above the split token; "
                        "waits for the end with progress on stderr")
    p.add_argument("shard", help="shard id (see db4 status)")
    p.add_argument("--split-token", type=ring_token, default=None,
                   help="tokens above it move (default: the point halving the shard's share; "
                        "db4 status shows a hot shard's load median)")
    p.add_argument("--node", default=None, help="node for the new shard (default: the same)")
    p.add_argument("--no-wait", action="store_true", help="answer once the split is planned")
    p = _client_command(sub, "move", cmd_move,
                        "move a shard's tokens to a new shard on another node; waits for the "
                        "end with progress on stderr")
    p.add_argument("shard", help="shard id (see db4 status)")
    p.add_argument("node", help="node id to move it to")
    p.add_argument("--no-wait", action="store_true", help="answer once the move is planned")
    p = _client_command(sub, "operations", cmd_operations,
                        "list splits and moves in progress (with --all, every one recorded)")
    p.add_argument("--all", action="store_true", help="include finished operations")
    p = _client_command(sub, "drain", cmd_drain,
                        "move every shard off a node, one move after another; waits for the "
                        "end with progress on stderr")
    p.add_argument("node", help="node id to empty")
    p.add_argument("--dry-run", action="store_true", help="show the moves, do nothing")
    p.add_argument("--no-wait", action="store_true", help="answer once the plan is recorded")
    p = _client_command(sub, "rebalance", cmd_rebalance,
                        "move shards from the nodes owning the most of the ring to those "
                        "owning the least (a node that joined owns none)")
    p.add_argument("--dry-run", action="store_true", help="show the moves, do nothing")
    p.add_argument("--no-wait", action="store_true", help="answer once the plan is recorded")
    p = _client_command(sub, "abort-operation", cmd_abort_operation,
                        "abort a split or move that has not reached its commit point")
    p.add_argument("op_id", help="operation id (see db4 operations)")


def _document_commands(sub: Any) -> None:
    """Commands on a router: status, collections, documents, placement."""
    p = _client_command(sub, "status", cmd_status,
                        "show the cluster: epoch, nodes, shards with their share of the ring and "
                        "their load as last reported (reads/s, writes/s, documents, bytes)")
    p.add_argument("--with-stats", action="store_true",
                   help="count every shard's documents and bytes now (asks every node)")
    p.add_argument("--ranges", action="store_true",
                   help="include every shard's token ranges")
    _client_command(sub, "checkpoint", cmd_checkpoint,
                    "truncate every shard's change log (as far as durable consumers and "
                    "retention allow) and checkpoint its SQLite WAL now; safe to repeat")
    _operation_commands(sub)
    p = _client_command(sub, "create-collection", cmd_create_collection,
                        "create a collection or check its options (idempotent)")
    p.add_argument("name", help="collection name")
    p.add_argument("--partition-key", default="$id",
                   help="field whose value picks the shard (default $id)")
    p = _client_command(sub, "put", cmd_put, "create a document; prints the stored document")
    p.add_argument("collection", help="collection name")
    p.add_argument("document", type=json_object, help="the document as a JSON object")
    p = _client_command(sub, "import", cmd_import,
                        "load a JSON-lines file (one document per line) into a collection in "
                        "insert_many batches, a progress bar on stderr; prints what was loaded")
    p.add_argument("collection", help="collection name")
    p.add_argument("file", help="the JSON-lines file, or - for stdin")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="documents per insert_many batch, each all or nothing (default 1000)")
    p.add_argument("--in-flight", type=int, default=4,
                   help="batches sent at once (default 4)")
    p = _client_command(sub, "get", cmd_get, "read one document by id (exit 1 when missing)")
    p.add_argument("collection", help="collection name")
    p.add_argument("id", help="document $id")
    _partition_flag(p)
    p = _client_command(sub, "update", cmd_update,
                        "shallow-merge a JSON patch into a document (null removes a field)")
    p.add_argument("collection", help="collection name")
    p.add_argument("id", help="document $id")
    p.add_argument("patch", type=json_object, help="the patch as a JSON object")
    _version_flag(p, "update")
    _partition_flag(p)
    p = _client_command(sub, "delete", cmd_delete, "delete a document; prints {\"deleted\": ...}")
    p.add_argument("collection", help="collection name")
    p.add_argument("id", help="document $id")
    _version_flag(p, "delete")
    _partition_flag(p)
    p = _client_command(sub, "shard-for", cmd_shard_for,
                        "show the shard and node owning a partition key value")
    p.add_argument("collection", help="collection name")
    p.add_argument("value", type=partition_or_text,
                   help="partition key value: JSON (42, '\"a b\"') or plain text (acme)")


def _where_flag(p: argparse.ArgumentParser) -> None:
    """--where: a JSON filter object."""
    p.add_argument("--where", type=json_object, default=None,
                   help='JSON filter, e.g. \'{"status": "active", "age": {"$gte": 18}}\' '
                        "(operators $eq $ne $gt $gte $lt $lte $in $nin $exists $contains "
                        "$startsWith $and $or $not; dotted paths); default: every document")


def _page_flags(p: argparse.ArgumentParser, what: str) -> None:
    """--limit and --cursor of a paged command."""
    p.add_argument("--limit", type=int, default=100,
                   help="page size, 1-10000 (default 100)")
    p.add_argument("--cursor", default=None,
                   help=f"the cursor printed by the previous page of the same {what}")


def _query_commands(sub: Any) -> None:
    """find and count."""
    p = _client_command(sub, "find", cmd_find,
                        'one page of matching documents; prints {"items", "cursor", "has_more"}')
    p.add_argument("collection", help="collection name")
    _where_flag(p)
    p.add_argument("--sort", type=sort_order, default=None, metavar="FIELD[:asc|desc],...",
                   help="sort order, e.g. age:desc,name (ties are broken by $id; default $id)")
    _page_flags(p, "query (same --where, --sort and --shard)")
    p.add_argument("--shard", default=None,
                   help="ask only this shard (an id from 'db4 status' or 'db4 shard-for')")
    p.add_argument("--explain", action="store_true",
                   help="print how the query would run (shards, nodes, pruning, index use) "
                        "instead of running it")
    p = _client_command(sub, "count", cmd_count, 'count matching documents; prints {"count": N}')
    p.add_argument("collection", help="collection name")
    _where_flag(p)
    p.add_argument("--shard", default=None, help="count only on this shard")


def _index_commands(sub: Any) -> None:
    """create-index, drop-index, indexes, query-range."""
    p = _client_command(sub, "create-index", cmd_create_index,
                        "build a range index (progress on stderr); prints the index",
                        "Build a range index on every shard, over existing documents too. "
                        "Progress goes to stderr; the index as stored is printed at the end. "
                        "Idempotent with the same definition.")
    p.add_argument("name", help="index name: 1-64 characters of [A-Za-z0-9_], letter first")
    p.add_argument("collection", help="collection to index")
    p.add_argument("fields", nargs="+", type=field_order, metavar="FIELD[:asc|desc]",
                   help="index keys in order (at most 8), ascending unless ':desc'")
    p = _client_command(sub, "drop-index", cmd_drop_index,
                        'remove a range index; prints {"dropped": NAME}')
    p.add_argument("name", help="index name")
    p = _client_command(sub, "indexes", cmd_indexes, "list the range indexes")
    p.add_argument("--collection", default=None, help="only the indexes of this collection")
    p = _client_command(sub, "query-range", cmd_query_range,
                        'one page of an index between two bounds; prints {"items", "cursor", '
                        '"has_more"}')
    p.add_argument("index", help="index name")
    for side, where in (("start", "lower"), ("end", "upper")):
        p.add_argument(f"--{side}", type=json_value, default=argparse.SUPPRESS,
                       help=f"{where} bound as JSON: a value ('\"2024-01-01\"', 42) or, for a "
                            f"composite index, an array of leading key values ('[\"acme\", 7]');"
                            f" default: open")
        p.add_argument(f"--{side}-exclusive", action="store_true",
                       help=f"leave out documents equal to the {where} bound (default: included)")
    _page_flags(p, "range query")


def search_field(text: str) -> tuple[str, float]:
    """argparse type: 'path' or 'path:weight' -> (path, weight); the weight defaults to 1."""
    path, colon, weight = text.rpartition(":")
    if not colon:
        return text, 1.0
    try:
        value = float(weight)
    except ValueError:
        value = math.nan
    if not path or not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected FIELD or FIELD:WEIGHT with a weight above 0, got {text!r}")
    return path, value


def _search_commands(sub: Any) -> None:
    """create-search-index, drop-search-index, search-indexes, search."""
    p = _client_command(sub, "create-search-index", cmd_create_search_index,
                        "build a full-text index (progress on stderr); prints the index",
                        "Build a full-text (FTS5) index on every shard, over existing "
                        "documents too. Progress goes to stderr; the index as stored is "
                        "printed at the end. Idempotent with the same definition.")
    p.add_argument("name", help="index name: 1-128 characters of [A-Za-z0-9_-], letter first")
    p.add_argument("--collection", required=True, help="collection to index")
    p.add_argument("--field", action="append", required=True, type=search_field,
                   metavar="FIELD[:WEIGHT]",
                   help="a text field to index, with its BM25 weight (default 1); repeat for "
                        "several (at most 32)")
    p.add_argument("--tokenizer", choices=["porter", "unicode61", "trigram"], default="porter",
                   help="porter: words with English stemming (default); unicode61: words; "
                        "trigram: substrings of 3+ characters")
    p = _client_command(sub, "drop-search-index", cmd_drop_search_index,
                        'remove a full-text index; prints {"dropped": NAME}')
    p.add_argument("name", help="index name")
    p = _client_command(sub, "search-indexes", cmd_search_indexes, "list the full-text indexes")
    p.add_argument("--collection", default=None, help="only the indexes of this collection")
    p = _client_command(sub, "search", cmd_search,
                        "search a full-text index; prints score, id and snippet per hit",
                        "Search a full-text index, best BM25 score first over the whole "
                        "collection. Query language: words (all must match), \"a phrase\", "
                        "prefix*, field:word, AND, OR, NOT (upper case), parentheses. Prints "
                        "one line per hit (score, id, snippet) and the cursor of the next page.")
    p.add_argument("index", help="index name")
    p.add_argument("query", help="the query, e.g. 'title:edge AND (database OR \"key value\")'")
    _where_flag(p)
    p.add_argument("--limit", type=int, default=20, help="hits per page, 1-1000 (default 20)")
    p.add_argument("--cursor", default=None,
                   help="the cursor printed by the previous page of the same search")
    p.add_argument("--json", action="store_true",
                   help="print the page as JSON (hits with documents and highlights, cursor)")


CDC_TAIL_HELP = """\
Print every committed change, merged over all shards, as one JSON object per line (op,
collection, id, before, after, version, shard, lsn, txid, ts, token), flushed as it comes.
Runs until Ctrl-C (exit 0); a router restart is ridden out by reconnecting from the last token.
To continue later where you stopped, pass the last line's token as --from-token."""


def _cdc_commands(sub: Any) -> None:
    """cdc tail and cdc status: change data capture."""
    cdc = sub.add_parser("cdc", help="change data capture: tail the change stream, show the "
                                     "change logs (db4 cdc --help)",
                         description="Change data capture: 'db4 cdc tail' streams committed "
                                     "changes as JSON lines; 'db4 cdc status' shows every "
                                     "shard's change log and the durable consumers' lag.")
    cdc_sub = cdc.add_subparsers(dest="cdc_command", metavar="COMMAND", required=True,
                                 help="tail: print changes as JSON lines; status: the change logs")
    p = _client_command(cdc_sub, "tail", cmd_cdc_tail,
                        "print committed changes as JSON lines until Ctrl-C", CDC_TAIL_HELP)
    p.add_argument("--collection", action="append", default=None, metavar="NAME",
                   help="only this collection (repeat for several; default: all)")
    p.add_argument("--from-token", default=None, metavar="TOKEN",
                   help="continue right after the event that printed this token")
    p.add_argument("--start", choices=["oldest", "now"], default="oldest",
                   help="without --from-token: every change kept (oldest, the default) or "
                        "only changes from now on")
    p.add_argument("--consumer", default=None, metavar="NAME",
                   help="a durable consumer: acknowledge each event once printed, so the "
                        "change log is kept from there on")
    p = _client_command(cdc_sub, "status", cmd_cdc_status,
                        "show every shard's change log and the durable consumers' lag",
                        "Print a table of every shard's change log (node, first and last LSN, "
                        "records and bytes kept, checkpoint: the LSN every durable consumer "
                        "has passed), then every durable consumer with its lag in records, "
                        "in total and by shard.")
    p.add_argument("--json", action="store_true", help="print the status as JSON instead")


def parser() -> argparse.ArgumentParser:
    """The whole `db4` command line."""
    p = Parser(prog="db4", description="db4: a distributed document database.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _server_commands(sub)
    _document_commands(sub)
    _query_commands(sub)
    _index_commands(sub)
    _search_commands(sub)
    _cdc_commands(sub)
    _token_commands(sub)
    return p


def _token_commands(sub: Any) -> None:
    """token create, list and revoke: bearer tokens of a secured cluster."""
    tok = sub.add_parser("token", help="manage bearer tokens: create, list, revoke (db4 token "
                                       "--help)",
                         description="Bearer tokens of a cluster run with --auth true. Roles: "
                                     "read, write (and read), admin (and read and write), "
                                     "node (routers and nodes). Needs an admin token.")
    tok_sub = tok.add_subparsers(dest="token_command", metavar="COMMAND", required=True,
                                 help="create, list or revoke")
    p = _client_command(tok_sub, "create", cmd_token_create,
                        "create a token and print it (shown only once)")
    p.add_argument("--role", required=True, choices=["read", "write", "admin", "node"],
                   help="what the token may do")
    p.add_argument("--name", default="", help="a label for people, e.g. the service using it")
    p.add_argument("--requests-per-s", type=float, default=0.0,
                   help="quota: calls per second on each router and node (0: no limit)")
    p.add_argument("--max-streams", type=int, default=0,
                   help="quota: streams open at once on each router and node (0: no limit)")
    p.add_argument("--bytes-per-s", type=float, default=0.0,
                   help="quota: request and response bytes per second (0: no limit)")
    _client_command(tok_sub, "list", cmd_token_list,
                    "list tokens: id, role, name, creation time (never the secrets)")
    p = _client_command(tok_sub, "revoke", cmd_token_revoke,
                        "revoke a token; every process refuses it within a second")
    p.add_argument("id", help="token id (12 hex digits, see db4 token list)")


def client_auth(args: argparse.Namespace) -> tuple[str | None, dict[str, str] | None]:
    """The token and the tls dict the connection flags ask for."""
    token = args.token
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as err:
            args.parser.error(f"cannot read --token-file {args.token_file}: {err.strerror}")
    if (args.tls_cert is None) != (args.tls_key is None):
        args.parser.error("--tls-cert and --tls-key go together")
    if args.tls_ca is None:
        if args.tls_cert:
            args.parser.error("--tls-cert needs --tls-ca")
        return token, None
    tls = {"root_certificates": args.tls_ca}
    if args.tls_cert:
        tls.update(certificate_chain=args.tls_cert, private_key=args.tls_key)
    return token, tls


def _hint(err: Any, tls: dict[str, Any] | None) -> str:
    """What to try when the router could not be reached without TLS: a router that serves
    TLS closes a plaintext connection at once ("Socket closed")."""
    if err.code == "UNAVAILABLE" and tls is None and "failed to connect" in err.message \
            and "Socket closed" in err.message:
        return (" (a router that serves TLS closes plaintext connections: give its CA with "
                "--tls-ca or DB4_TLS_CA)")
    return ""


def run_client_command(args: argparse.Namespace) -> int:
    """Connect, run the command, print JSON; domain errors become `error: CODE: message`."""
    from db4client import Client, errors

    try:
        token, tls = client_auth(args)
        client = Client(args.router, token=token, tls=tls, timeout=args.timeout)
    except (ValueError, OSError) as err:  # a malformed or non-loopback --router is a usage error
        args.parser.error(str(err))
    try:
        with client:
            result = args.func(client, args)
    except errors.Db4Error as err:
        print(f"error: {err.code}: {err.message}{_hint(err, tls)}", file=sys.stderr)
        return 1
    if result is PRINTED:
        return 0
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `db4` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SERVER_MODULES:
        exec_server(argv[0], argv[1:])
    bad = next((arg for arg in argv if not documents.valid_text(arg)), None)
    if bad is not None:  # bytes that are not UTF-8 reach Python as lone surrogates
        print(f"db4: error: argument {_shorten(bad)} is not valid UTF-8 text", file=sys.stderr)
        return 2
    p = parser()
    args = p.parse_args(argv)
    if args.command == "dev":
        from db4client import dev

        dev.check_arguments(args.parser, args)
        return dev.run(args)
    try:
        return run_client_command(args)
    except Interrupted as stop:
        print(f"db4 {args.command}: {stop}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"db4 {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`db4 status | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
