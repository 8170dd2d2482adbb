"""Process helpers: flags with environment-variable fallbacks, etcd endpoints, waiting for etcd
at start-up."""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from db4core.errors import InvalidArgumentError

T = TypeVar("T")

# Start-up retries: the first after ~0.2 s, doubling to one every ~5 s. Never giving up is the
# point: under systemd, Kubernetes or `db4 dev` a node may well start before etcd does.
WAIT_INITIAL_S = 0.2
WAIT_MAX_S = 5.0


# gRPC's default reconnect backoff grows to two minutes; after an etcd outage we want the channel
# back within a second of etcd, not whenever the backoff next fires.
ETCD_CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
}


def env_default(name: str, default: str | None = None) -> str | None:
    """A flag's default taken from DB4_<NAME> when set."""
    return os.environ.get(f"DB4_{name.upper().replace('-', '_')}", default)


def add_flag(parser: argparse.ArgumentParser, name: str, default=None, **kw) -> None:
    """--name with DB4_NAME as its environment fallback, shown in --help."""
    env = f"DB4_{name.upper().replace('-', '_')}"
    value = os.environ.get(env, default)
    if "type" in kw and value is not None:
        value = kw["type"](value)
    help_text = kw.pop("help", "")
    parser.add_argument(f"--{name}", default=value, help=f"{help_text} [env {env}]", **kw)


def parse_endpoint(url: str) -> tuple[str, int]:
    """'http://127.0.0.1:2379' or '127.0.0.1:2379' -> (host, port)."""
    parts = urlsplit(url if "//" in url else f"//{url}")
    if not parts.hostname or not parts.port:
        raise InvalidArgumentError(f"endpoint {url!r} must be host:port or http://host:port")
    return parts.hostname, parts.port


# The id of the request being served (set by db4rpc.observe for each call when request ids
# are on): JSON log lines carry it.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                        default=None)
LOG_FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, component, logger, msg, request_id, exc."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname,
               "component": self.component, "logger": record.name,
               "msg": record.getMessage()}
        request_id = REQUEST_ID.get()
        if request_id is not None:
            out["request_id"] = request_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(text: str, error: type[BaseException] = argparse.ArgumentTypeError) -> str:
    """A --log-level value, upper-cased; `error` (an argparse type error by default) names the
    levels for anything else."""
    if text.upper() not in LOG_LEVELS:
        raise error(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text.upper()


def setup_logging(component: str, level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr, one line per record, with the component name (`fmt` json: one JSON
    object per line, with the request id)."""
    if fmt not in LOG_FORMATS:
        raise SystemExit(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    level = log_level(level, SystemExit)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level),
                        handlers=[handler])


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (installed first, so they work while we wait)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def wait_for(what: str, attempt: Callable[[], Awaitable[T]],
                   retry_on: tuple[type[BaseException], ...], log: logging.Logger,
                   initial_s: float = WAIT_INITIAL_S, max_s: float = WAIT_MAX_S) -> T:
    """attempt() until it returns; after each failure in `retry_on`, log that we are waiting
    for `what` (and why) and try again after a capped, jittered exponential backoff."""
    tries = 0
    while True:
        try:
            return await attempt()
        except retry_on as err:
            tries += 1
            delay = min(max_s, initial_s * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)
            log.warning("waiting for %s (try %d failed: %s); next try in %.1f s",
                        what, tries, _one_line(err), delay)
            await asyncio.sleep(delay)


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """Run `work` until it finishes or `stop` is set, whichever comes first (then `work` is
    cancelled): (True, result), or (False, None) when stopped first."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False, None


def _one_line(err: BaseException) -> str:
    """An exception as one short log line (gRPC details can span lines)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."
