"""Process configuration helpers: flags with environment-variable fallbacks, etcd endpoints."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from urllib.parse import urlsplit

from db4core.errors import InvalidArgumentError


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


def setup_logging(component: str, level: str = "INFO") -> None:
    """Log to stderr, one line per record, with the component name."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s",
    )
