"""Check the env of every rendered container.

1. A $(VAR) in a value must name a variable defined above it in the same list: Kubernetes
   expands only those, and leaves any other as the literal text "$(VAR)" (a wrong address at
   run time). A strategic-merge patch of one env entry moves it to the top, which is how this
   happens.
2. A DB4_* variable of a `db4 node` or `db4 router` container must be one of that command's
   flags (`[env DB4_...]` in its --help, given as HELP files): a misspelt one is ignored.

Usage: check_env.py --help-node FILE --help-router FILE RENDERED.yaml...
"""

from __future__ import annotations

import argparse
import re
import sys

import yaml

REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def containers(obj: dict) -> list[dict]:
    """The containers of a workload object (none for other kinds)."""
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def env_names(help_text: str) -> set[str]:
    """The DB4_* variables a command's --help names (its lines may wrap anywhere)."""
    return set(re.findall(r"\[env (DB4_[A-Z0-9_]+)\]", " ".join(help_text.split())))


def problems(path: str, flags: dict[str, set[str]]) -> list[str]:
    """One line per bad reference or unknown DB4_* variable."""
    found = []
    with open(path) as f:
        for obj in yaml.safe_load_all(f):
            for c in containers(obj or {}):
                where = f"{path}: {obj['kind']}/{obj['metadata']['name']} {c['name']}"
                command = (c.get("args") or [""])[0]
                defined: set[str] = set()
                for var in c.get("env", []):
                    name = var["name"]
                    for ref in REF.findall(str(var.get("value", ""))):
                        if ref not in defined:
                            found.append(f"{where}: {name} uses $({ref}) before it is defined")
                    if command in flags and name.startswith("DB4_") \
                            and name not in flags[command]:
                        found.append(f"{where}: {name} is no flag of db4 {command}")
                    defined.add(name)
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--help-node", required=True)
    p.add_argument("--help-router", required=True)
    p.add_argument("rendered", nargs="+")
    args = p.parse_args()
    flags = {}
    for command, path in (("node", args.help_node), ("router", args.help_router)):
        with open(path) as f:
            flags[command] = env_names(f.read())
        if not flags[command]:
            raise SystemExit(f"{path}: no [env DB4_...] in db4 {command} --help")
    errors = [line for path in args.rendered for line in problems(path, flags)]
    print("\n".join(errors) or "deploy-check: every $(VAR) in env is defined above its use; "
          "every DB4_* variable is a flag of its command")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
