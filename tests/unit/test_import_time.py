"""``import shipyard`` stays cheap: heavy libraries load only in the modules that need them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = [
    "alembic",
    "fastapi",
    "httpx",
    "matplotlib",
    "numpy",
    "pandas",
    "plotly",
    "polars",
    "pyarrow",
    "rich",
    "skops",
    "sklearn",
    "typer",
    "uvicorn",
]

_PROBE = """
import json, sys

WATCH = set(sys.argv[1:])
importers = {}


class Spy:
    # Records which shipyard module first imports a watched package, then lets the import go on.
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in WATCH and top not in importers:
            frame = sys._getframe(1)
            while frame is not None and not frame.f_globals.get("__name__", "").startswith("shipyard"):
                frame = frame.f_back
            importers[top] = frame.f_globals["__name__"] if frame is not None else "?"
        return None


sys.meta_path.insert(0, Spy())
import shipyard
print(json.dumps(importers))
"""


@pytest.fixture(scope="module")
def heavy_importers() -> dict[str, str]:
    """Heavy package -> the shipyard module that imported it during ``import shipyard``."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *HEAVY], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", HEAVY)
def test_import_shipyard_does_not_import_heavy_module(module: str, heavy_importers: dict[str, str]) -> None:
    assert module not in heavy_importers, f"{module} is imported by {heavy_importers.get(module)}"


def test_the_import_spy_names_the_shipyard_module_that_imports_a_heavy_package() -> None:
    """The probe itself works: building a DataFrame imports pandas, from shipyard.tracking.frames."""
    statement = "import shipyard; from shipyard.tracking import frames; frames.runs_frame([], None)"
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("import shipyard", statement), "pandas"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"pandas": "shipyard.tracking.frames"}


def test_import_shipyard_is_fast() -> None:
    """The cumulative self-reported import time of ``shipyard`` (from -X importtime) is under 1 s."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import shipyard"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    cumulative_us = [
        int(line.split("|")[1])
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and line.rstrip().endswith("| shipyard")
    ]
    assert len(cumulative_us) == 1, out.stderr[-2000:]
    assert cumulative_us[0] < 1_000_000
