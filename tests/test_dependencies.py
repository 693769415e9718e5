"""Every third-party module the packages import comes from a dependency pyproject declares.

A module that is only installed as someone else's dependency works on the developer's
machine and breaks on a fresh one.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("corpus", "retrieval", "bot")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules() -> set[str]:
    modules: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in PACKAGES}


def test_every_imported_module_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        _normalise(re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0]) for r in project["dependencies"]
    }
    owners = packages_distributions()
    undeclared = {
        module: owners.get(module, ["?"])
        for module in _imported_modules()
        if not {_normalise(d) for d in owners.get(module, [])} & declared
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
