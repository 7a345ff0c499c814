"""The public surface is deliberate: ``shipyard.__all__`` is pinned and every subpackage is sealed."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard import errors

PACKAGE_ROOT = Path(shipyard.__file__).parent

PUBLIC_API = [
    "ActiveRun",
    "Alert",
    "AlreadyExists",
    "Artifact",
    "ArtifactNotFound",
    "AuditEntry",
    "BlobNotFound",
    "ChainReport",
    "Client",
    "ClosedLoop",
    "ConfigError",
    "Contract",
    "ContractVersion",
    "DatasetDiff",
    "DatasetUse",
    "DatasetVersion",
    "DeploymentRecord",
    "DeploymentSpec",
    "DigestMismatch",
    "DriftReport",
    "EvaluationReport",
    "Executor",
    "Experiment",
    "ExperimentNotFound",
    "FilterSyntaxError",
    "GateResult",
    "GcReport",
    "IntegrityError",
    "InvalidInput",
    "InvalidMetricValue",
    "InvalidState",
    "LoadedModel",
    "LocalExecutor",
    "Materializer",
    "MissingExtra",
    "ModelNotFound",
    "ModelRecord",
    "ModelVersion",
    "MonitorPass",
    "MonitorStatus",
    "NotFound",
    "NotReady",
    "OnnxExport",
    "PayloadTooLarge",
    "PerformanceEstimate",
    "PerformanceReport",
    "PermissionDenied",
    "PiiReport",
    "Pipeline",
    "PipelineFailed",
    "PipelineResult",
    "PipelineRunInfo",
    "PipelineSchedule",
    "Profile",
    "PromotionPolicy",
    "PromotionResult",
    "RateLimited",
    "RegisteredModel",
    "Run",
    "RunNotFound",
    "RunStatus",
    "ScheduleFire",
    "SchemaError",
    "SchemaTooNew",
    "ServerUnreachable",
    "Settings",
    "ShipyardError",
    "SignatureMismatch",
    "Step",
    "StepContractViolation",
    "StepRunInfo",
    "StorageFull",
    "StorageReadOnly",
    "StoreUnavailable",
    "SweepResult",
    "Unauthenticated",
    "UnsafeModel",
    "UnsafePath",
    "ValidationFailed",
    "ValidationReport",
    "__version__",
    "active_run",
    "anonymize",
    "approve_model",
    "autolog",
    "clear_cache",
    "compare_runs",
    "complete_retrain",
    "delete_schedule",
    "deploy",
    "deployment_history",
    "diff_datasets",
    "disable_autolog",
    "download_model",
    "end_run",
    "estimate_performance",
    "evaluate",
    "export_onnx",
    "get_alert",
    "get_client",
    "get_contract",
    "get_deployment",
    "get_deployment_record",
    "get_metric_history",
    "get_model_version",
    "get_pipeline_run",
    "get_promotion_policy",
    "get_registered_model",
    "get_run",
    "infer_contract",
    "list_alerts",
    "list_audit",
    "list_contracts",
    "list_datasets",
    "list_deployments",
    "list_drift_reports",
    "list_model_records",
    "list_model_versions",
    "list_models",
    "list_pipeline_runs",
    "list_schedule_fires",
    "list_schedules",
    "load_contract",
    "load_dataset",
    "load_model",
    "load_profile",
    "load_settings",
    "log_artifact",
    "log_dataset",
    "log_dict",
    "log_feedback",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "monitor_drift",
    "monitor_pass",
    "monitor_performance",
    "monitor_report",
    "monitor_status",
    "pipeline",
    "promote_model",
    "promote_variant",
    "query_predictions",
    "read_prediction_log",
    "register_contract",
    "register_materializer",
    "register_model",
    "reject_model",
    "rollback_deployment",
    "rollback_model",
    "scan_pii",
    "schedule_monitoring",
    "schedule_pipeline",
    "search_runs",
    "set_promotion_policy",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "step",
    "sweep",
    "trigger_pipeline",
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


# -- the SDK is typed and cheap -----------------------------------------------------------------
INIT = PACKAGE_ROOT / "__init__.py"


def _lazy_table() -> dict[str, str]:
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets
        ):
            return dict(ast.literal_eval(node.value))
    raise AssertionError("shipyard/__init__.py has no _LAZY table")


def _type_checking_imports() -> dict[str, str]:
    """name -> module of every import inside ``if TYPE_CHECKING:`` in ``shipyard/__init__.py``."""
    found: dict[str, str] = {}
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module, ast.unparse(imp)
                found.update({alias.asname or alias.name: imp.module for alias in imp.names})
    return found


def test_every_lazy_export_is_mirrored_for_type_checkers() -> None:
    """mypy and IDEs see exactly the names ``__getattr__`` serves, from the same modules."""
    assert _type_checking_imports() == _lazy_table()


def test_lazy_exports_are_public_and_resolve_to_their_module() -> None:
    for name, module in _lazy_table().items():
        assert name in shipyard.__all__
        assert getattr(shipyard, name) is getattr(importlib.import_module(module), name)


def test_dir_lists_every_public_name() -> None:
    assert set(shipyard.__all__) <= set(dir(shipyard))


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = shipyard.nope  # type: ignore[attr-defined]


def test_every_error_class_is_exported() -> None:
    """Users catch ``sy.NotFound``, ``sy.PermissionDenied`` … without knowing ``shipyard.errors``."""
    classes = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert classes and all(getattr(shipyard, n, None) is getattr(errors, n) for n in classes)


_EXTERNAL = {
    "Any",
    "Callable",
    "DataFrame",
    "LazyFrame",
    "None",
    "Path",
    "T",
    "bool",
    "dict",
    "float",
    "int",
    "list",
    "pd",
    "pl",
    "str",
}


@pytest.mark.parametrize("name", [n for n in PUBLIC_API if inspect.isfunction(getattr(shipyard, n))])
def test_the_types_a_public_function_returns_are_exported(name: str) -> None:
    annotation = inspect.signature(getattr(shipyard, name)).return_annotation
    names = set(re.findall(r"[A-Za-z_]\w*", str(annotation))) - _EXTERNAL
    assert names <= set(PUBLIC_API), f"sy.{name} returns {annotation}: export {names - set(PUBLIC_API)}"


_PROBE = """
import sys
import shipyard
eager = [n for n in shipyard.__all__ if n not in shipyard._LAZY]
values = [getattr(shipyard, n) for n in eager]
print(sorted(m for m in ("pandas", "polars", "pyarrow", "numpy", "sklearn") if m in sys.modules))
"""


def test_eager_public_names_such_as_validation_failed_import_no_heavy_library() -> None:
    """``sy.ValidationFailed`` (and every other error class) is usable without importing polars."""
    assert "ValidationFailed" not in _lazy_table()
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_public_functions_and_classes_are_defined_under_their_exported_name() -> None:
    """``grep "def promote_model"`` finds what ``sy.promote_model`` runs: no export under another name."""
    renamed = [
        name
        for name in PUBLIC_API
        if inspect.isroutine(obj := getattr(shipyard, name)) or inspect.isclass(obj)
        if obj.__name__ != name
    ]
    assert renamed == []
