"""Every public RPC and every `db4` command is documented in docs/API.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from db4client import cli

ROOT = Path(__file__).resolve().parents[2]
API = (ROOT / "docs" / "API.md").read_text()


def rpcs() -> list[str]:
    names = []
    for proto in sorted((ROOT / "protos" / "db4" / "v1").glob("*.proto")):
        names += re.findall(r"^\s*rpc\s+(\w+)\s*\(", proto.read_text(), flags=re.M)
    return names


def commands() -> list[str]:
    parser = cli.parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def test_found_some():
    assert len(rpcs()) >= 27 and len(commands()) >= 16


@pytest.mark.parametrize("rpc", rpcs())
def test_rpc_documented(rpc):
    assert f"`{rpc}`" in API, f"RPC {rpc} is not documented in docs/API.md"


@pytest.mark.parametrize("command", commands())
def test_command_documented(command):
    assert f"`db4 {command}`" in API, f"command db4 {command} is not documented in docs/API.md"
