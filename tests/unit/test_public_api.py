"""The public surface is deliberate: ``shipyard.__all__`` is pinned and every subpackage is sealed."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import shipyard

PACKAGE_ROOT = Path(shipyard.__file__).parent

PUBLIC_API = [
    "ActiveRun",
    "Artifact",
    "Client",
    "Contract",
    "DatasetVersion",
    "Experiment",
    "GcReport",
    "PromotionPolicy",
    "Run",
    "RunStatus",
    "Settings",
    "ShipyardError",
    "ValidationFailed",
    "__version__",
    "active_run",
    "approve_model",
    "autolog",
    "compare_runs",
    "deploy",
    "diff_datasets",
    "disable_autolog",
    "download_model",
    "end_run",
    "evaluate",
    "export_onnx",
    "get_client",
    "get_deployment",
    "get_metric_history",
    "get_model_version",
    "infer_contract",
    "list_models",
    "load_contract",
    "load_dataset",
    "load_model",
    "load_profile",
    "load_settings",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "promote_model",
    "promote_variant",
    "read_prediction_log",
    "register_contract",
    "register_model",
    "reject_model",
    "rollback_deployment",
    "rollback_model",
    "search_runs",
    "set_promotion_policy",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "validate",
]


def test_public_api_is_exactly_the_pinned_list() -> None:
    """Changing the public SDK must be a deliberate edit of this list (httpx style)."""
    assert shipyard.__all__ == PUBLIC_API


def test_every_public_name_resolves() -> None:
    missing = [name for name in shipyard.__all__ if not hasattr(shipyard, name)]
    assert not missing


def test_version_is_a_release_string() -> None:
    parts = shipyard.__version__.split(".")
    assert len(parts) >= 3 and all(p.isdigit() for p in parts[:3])


def _subpackages() -> list[str]:
    names = []
    for init in sorted(PACKAGE_ROOT.rglob("__init__.py")):
        rel = init.parent.relative_to(PACKAGE_ROOT.parent)
        names.append(".".join(rel.parts))
    return [n for n in names if n != "shipyard"]


SUBPACKAGES = _subpackages()


def test_the_core_subpackages_exist() -> None:
    assert {"shipyard.artifacts", "shipyard.store", "shipyard.store.sql", "shipyard.tracking"} <= set(
        SUBPACKAGES
    )


def _static_all(init: Path) -> tuple[str | None, list[str] | None]:
    """The docstring and literal ``__all__`` of an ``__init__.py``, read without importing it."""
    tree = ast.parse(init.read_text())
    names = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = list(ast.literal_eval(node.value))
    return ast.get_docstring(tree), names


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_init_has_a_docstring_and_a_sorted_all(package: str) -> None:
    init = PACKAGE_ROOT.parent.joinpath(*package.split("."), "__init__.py")
    doc, names = _static_all(init)
    assert doc and len(doc.split()) >= 5, f"{package}/__init__.py needs a one-paragraph docstring"
    assert names is not None, f"{package}/__init__.py needs an explicit __all__"
    assert names == sorted(names), f"{package}.__all__ is not sorted"
    assert len(names) == len(set(names)), f"{package}.__all__ has duplicates"


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_all_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


def test_top_level_all_is_sorted() -> None:
    """Plain code-point order, as ruff sorts it: classes, then ``__version__``, then functions."""
    assert shipyard.__all__ == sorted(shipyard.__all__)
