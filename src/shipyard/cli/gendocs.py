"""Generate ``docs/cli.md`` from every command's ``--help``: ``python -m shipyard.cli.gendocs > docs/cli.md``.

The help is rendered at a fixed width without colour, so the page is the same on
every machine; ``tests/unit/test_docs.py`` regenerates it and compares.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import typer
import typer.rich_utils
from typer.testing import CliRunner

from shipyard.cli.main import app

__all__ = ["command_paths", "help_text", "render_markdown"]

WIDTH = 100
_INTRO = """\
# Command-line reference

Every `shipyard` command, with its `--help`. This page is generated; do not edit it by hand:

```console
python -m shipyard.cli.gendocs > docs/cli.md
```

Global options (`--tracking-uri`, `--artifact-uri`) go before the command:
`shipyard --tracking-uri http://tracking:5000 runs ls`. Every listing and `show` command
takes `--json` and then prints one JSON document on stdout and nothing else. A Shipyard
error prints one line, `error: <message>`, on stderr and exits 1; bad usage exits 2.
"""


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group below the root, in help order, e.g. ``("runs", "ls")``."""

    def walk(command: object, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for name, sub in getattr(command, "commands", {}).items():
            yield (*prefix, name)
            yield from walk(sub, (*prefix, name))

    return list(walk(typer.main.get_command(app), ()))


def help_text(path: tuple[str, ...] = ()) -> str:
    """The ``--help`` of ``shipyard PATH…`` as plain text at a fixed width, without trailing spaces."""
    rich_utils = typer.rich_utils
    saved = rich_utils.MAX_WIDTH, rich_utils.COLOR_SYSTEM, rich_utils.FORCE_TERMINAL
    rich_utils.MAX_WIDTH, rich_utils.COLOR_SYSTEM, rich_utils.FORCE_TERMINAL = WIDTH, None, False
    try:
        result = CliRunner().invoke(app, [*path, "--help"], prog_name="shipyard", env={"NO_COLOR": "1"})
    finally:
        rich_utils.MAX_WIDTH, rich_utils.COLOR_SYSTEM, rich_utils.FORCE_TERMINAL = saved
    if result.exit_code != 0:
        raise RuntimeError(f"`shipyard {' '.join(path)} --help` failed: {result.output}")
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    return "\n".join(lines).strip("\n") + "\n"


def render_markdown() -> str:
    """The whole ``docs/cli.md`` page."""
    parts = [_INTRO]
    for path in [(), *command_paths()]:
        title = " ".join(("shipyard", *path))
        parts.append(f"## `{title}`\n\n```text\n{help_text(path)}```\n")
    return "\n".join(parts)


def main() -> None:
    """Print the page on stdout."""
    sys.stdout.write(render_markdown())


if __name__ == "__main__":
    main()
