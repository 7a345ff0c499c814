"""The ``shipyard`` command line (layer 5): thin commands that parse arguments, call the SDK and render.

``app`` is the Typer application and ``main`` the console-script entry point.
Rendering rules (colour only on a terminal, ``--json`` output, errors on stderr)
live in ``shipyard.cli.render``.
"""

from shipyard.cli.main import app, main

__all__ = ["app", "main"]
