"""The `db4` command line: run the servers (`node`, `router`, `dev`) and talk to a router.

Client commands print JSON on stdout. Failures print `error: CODE: message` on stderr and exit
1; usage errors exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

# `db4 node` and `db4 router` replace this process (same PID, as a container expects) with the
# server's own entry point; the SDK never imports the server packages.
SERVER_MODULES = {"node": "db4node", "router": "db4router"}
DEFAULT_ROUTER = "127.0.0.1:7400"


def exec_server(command: str, rest: list[str]) -> None:
    """Become `python -m db4node|db4router REST...`; does not return."""
    module = SERVER_MODULES[command]
    os.execv(sys.executable, [sys.executable, "-m", module, *rest])


def json_value(text: str) -> Any:
    """argparse type: a JSON value (strict: no NaN or Infinity)."""
    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=reject)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object."""
    value = json_value(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def partition_or_text(text: str) -> Any:
    """A partition key value: JSON when it parses ("42", '"acme"'), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---- client commands: each takes (client, args) and returns what to print ----

def cmd_status(client: Any, args: argparse.Namespace) -> Any:
    """The cluster's status."""
    return client.admin.status(with_stats=args.with_stats)


def cmd_create_collection(client: Any, args: argparse.Namespace) -> Any:
    """Create a collection (or confirm its options)."""
    return client.create_collection(args.name, partition_key=args.partition_key)


def cmd_put(client: Any, args: argparse.Namespace) -> Any:
    """Create a document."""
    return client.collection(args.collection).create(args.document)


def cmd_get(client: Any, args: argparse.Namespace) -> Any:
    """Read a document; a missing one is NOT_FOUND here (exit 1), not `null`."""
    from db4client.errors import NotFoundError

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


# ---- the parser ----

def _client_command(sub: Any, name: str, func: Callable[..., Any], help: str,
                    description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that talks to a router, with the shared connection flags."""
    p = sub.add_parser(name, help=help, description=description or help)
    p.add_argument("--router", default=os.environ.get("DB4_ROUTER", DEFAULT_ROUTER),
                   help=f"router address host:port (default {DEFAULT_ROUTER}) [env DB4_ROUTER]")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the answer (default 30)")
    p.add_argument("--token", default=os.environ.get("DB4_TOKEN"),
                   help="bearer token for a secured cluster [env DB4_TOKEN]")
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


def _document_commands(sub: Any) -> None:
    """Commands on a router: status, collections, documents, placement."""
    p = _client_command(sub, "status", cmd_status, "show the cluster: epoch, nodes, shards")
    p.add_argument("--with-stats", action="store_true",
                   help="include per-shard document and byte counts (asks every node)")
    p = _client_command(sub, "create-collection", cmd_create_collection,
                        "create a collection or check its options (idempotent)")
    p.add_argument("name", help="collection name")
    p.add_argument("--partition-key", default="$id",
                   help="field whose value picks the shard (default $id)")
    p = _client_command(sub, "put", cmd_put, "create a document; prints the stored document")
    p.add_argument("collection", help="collection name")
    p.add_argument("document", type=json_object, help="the document as a JSON object")
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


def parser() -> argparse.ArgumentParser:
    """The whole `db4` command line."""
    p = argparse.ArgumentParser(prog="db4", description="db4: a distributed document database.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _server_commands(sub)
    _document_commands(sub)
    return p


def run_client_command(args: argparse.Namespace) -> int:
    """Connect, run the command, print JSON; domain errors become `error: CODE: message`."""
    from db4client import Client, errors

    try:
        client = Client(args.router, token=args.token, timeout=args.timeout)
    except ValueError as err:  # a malformed or non-loopback --router is a usage error
        args.parser.error(str(err))
    try:
        with client:
            result = args.func(client, args)
    except errors.Db4Error as err:
        print(f"error: {err.code}: {err.message}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `db4` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SERVER_MODULES:
        exec_server(argv[0], argv[1:])
    p = parser()
    args = p.parse_args(argv)
    if args.command == "dev":
        from db4client import dev

        dev.check_arguments(args.parser, args)
        return dev.run(args)
    return run_client_command(args)


if __name__ == "__main__":
    sys.exit(main())
