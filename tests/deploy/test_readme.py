"""Every `db4 ...` command that deploy/README.md tells an operator to run exists, with the flags
it is given there (checked against `db4 ... --help`)."""

from __future__ import annotations

import contextlib
import functools
import io
import re
from pathlib import Path

import pytest

from db4client import cli

README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
# `db4 COMMAND` (or `db4 token|cdc SUBCOMMAND`) where a command starts: not `kubectl -n db4 ...`
COMMAND = re.compile(r"(?<!-n )(?<![\w/.~-])db4 ((?:token |cdc )?[a-z][a-z-]*)([^`\n|;&]*)")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")


def code(text: str) -> list[str]:
    """The README's code: fenced blocks and inline spans (which may wrap a line)."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    spans = [s.replace("\n", " ") for s in re.findall(r"`([^`]+)`", prose)]
    return blocks + spans


def uses() -> list[tuple[str, frozenset[str]]]:
    """(command, flags) for every db4 command in the README's code."""
    found = {}
    for snippet in code(README.read_text()):
        for command, rest in COMMAND.findall(snippet):
            flags = frozenset(FLAG.findall(rest))
            found[(command, flags)] = None
    return list(found)


@functools.cache
def help_of(command: str) -> str:
    """`db4 COMMAND --help`, from the CLI's own parser; AssertionError for a usage error."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as exit_:
        cli.main([*command.split(), "--help"])
    assert exit_.value.code == 0, f"db4 {command}: {err.getvalue().strip()}"
    return out.getvalue()


def test_readme_names_commands() -> None:
    assert len(uses()) >= 10


@pytest.mark.parametrize(("command", "flags"), uses(),
                         ids=lambda v: " ".join(sorted(v)) if isinstance(v, frozenset) else v)
def test_command_exists(command: str, flags: frozenset[str]) -> None:
    text = help_of(command)
    missing = [f for f in sorted(flags) if not re.search(rf"{re.escape(f)}\b", text)]
    assert not missing, f"db4 {command} has no {missing}"
