"""Fail when a container's env value refers to $(VAR) not defined above it in the same list.

Kubernetes expands $(VAR) only from variables listed earlier; a later or missing one stays as
the literal text "$(VAR)" and the process gets a wrong address. A strategic-merge patch of one
env entry moves it to the top of the list, which is how this happens.
"""

from __future__ import annotations

import re
import sys

import yaml

REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def containers(obj: dict) -> list[dict]:
    """The containers of a workload object (none for other kinds)."""
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def problems(path: str) -> list[str]:
    """One line per reference to a variable not defined before it."""
    found = []
    with open(path) as f:
        for obj in yaml.safe_load_all(f):
            for c in containers(obj or {}):
                defined: set[str] = set()
                for var in c.get("env", []):
                    for ref in REF.findall(str(var.get("value", ""))):
                        if ref not in defined:
                            found.append(f"{path}: {obj['kind']}/{obj['metadata']['name']} "
                                         f"{c['name']}: {var['name']} uses $({ref}) before "
                                         "it is defined")
                    defined.add(var["name"])
    return found


def main() -> int:
    errors = [line for path in sys.argv[1:] for line in problems(path)]
    print("\n".join(errors) or "deploy-check: every $(VAR) in env is defined above its use")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
