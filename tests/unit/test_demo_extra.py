"""`make demo` installs Shipyard with only its `demo` extra: every third-party module the demo's own code
imports (at the top or inside a function) must come with the core install or that extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "shipyard" / "demo"


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _installed_with(extra: str) -> set[str]:
    """Distributions of the core install plus ``extra``, its ``shipyard[...]`` references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {_name(r) for r in project["dependencies"]}
    todo, seen = [extra], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in extras[current]:
            if requirement.startswith("shipyard["):
                todo += requirement[len("shipyard[") : requirement.index("]")].split(",")
            else:
                names.add(_name(requirement))
    return names


def _imported(folder: Path) -> set[str]:
    modules = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m != "shipyard" and m not in sys.stdlib_module_names}


def test_the_demo_extra_brings_every_module_the_demo_imports() -> None:
    installed = _installed_with("demo")
    owners = packages_distributions()
    missing = {
        module: owners.get(module, [module])
        for module in _imported(DEMO)
        if not any(_name(d) in installed for d in owners.get(module, [module]))
    }
    assert not missing, f"the demo imports {missing}, which `pip install shipyard[demo]` does not bring"
