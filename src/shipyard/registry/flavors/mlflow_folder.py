"""MLflow model folders (``MLmodel`` plus the library's files) in Shipyard's registry.

``mlflow.<flavor>.log_model`` writes a folder: ``MLmodel`` (YAML naming the flavors and the
signature), the model file, environment files and input examples. Registered into Shipyard (through
the MLflow-compatible API, or ``sy.register_model`` on a run that logged such a folder), the folder's
files are kept as they are and :func:`with_shipyard_meta` adds Shipyard's own ``shipyard-model.yaml``,
which says how Shipyard may load it — decided by Shipyard, never by the folder:

- an ``sklearn`` folder saved with skops (``serialization_format="skops"``, MLflow's default outside
  Databricks) loads with the ``sklearn`` flavor: every type the file needs is checked by the
  safe-loading rule. The ``skops_trusted_types`` that ``MLmodel`` lists are ignored;
- an ``sklearn`` folder saved as ``pickle`` or ``cloudpickle`` loads with the ``python_function``
  flavor: the pickle is scanned first and unpickled only by the restricted unpickler, so an estimator
  built from allowlisted types loads and anything else is refused, naming the globals it would import;
- any other folder (a custom ``pyfunc`` with code, xgboost, pytorch, ...) is kept with the flavor
  ``mlflow``: MLflow's client loads it from the registry, and Shipyard refuses to load it, saying why
  (:class:`MlflowFolderFlavor`).

The signature comes from ``MLmodel`` (column signatures; MLflow's types mapped onto Shipyard's), else
from the folder's ``input_example.json`` (pandas ``split`` orient, as both tools write it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from shipyard.entities import Artifact
from shipyard.errors import InvalidInput
from shipyard.registry.flavors.base import META_FILE, Backend, Flavor, ModelMeta, SavedModel
from shipyard.registry.signature import ColumnSpec, OutputSpec, Signature, infer_signature

__all__ = [
    "MLMODEL_FILE",
    "MLFLOW_FLAVOR",
    "MlflowFolderFlavor",
    "mlflow_signature",
    "shipyard_meta",
    "with_shipyard_meta",
]

MLMODEL_FILE = "MLmodel"
MLFLOW_FLAVOR = "mlflow"
_EXAMPLE_FILE = "input_example.json"
_REQUIREMENTS_FILE = "requirements.txt"

#: MLflow's column types (``mlflow.types.DataType``) as Shipyard signature types.
_TYPES = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "binary": "object",
    "datetime": "datetime64[ns]",
}
_SKLEARN_FORMATS = {"skops": ("sklearn", {}), "pickle": ("python_function", {"pickler": "pickle"})}
_SKLEARN_FORMATS["cloudpickle"] = ("python_function", {"pickler": "cloudpickle"})


class _Blobs(Protocol):
    def get_bytes(self, digest: str) -> bytes: ...

    def put_bytes(self, data: bytes) -> tuple[str, int]: ...


def mlflow_signature(signature: Mapping[str, Any] | None) -> Signature | None:
    """A Shipyard :class:`Signature` from ``MLmodel``'s ``signature`` (None without a column signature).

    Example:
        >>> sig = mlflow_signature({"inputs": '[{"type": "double", "name": "a"}, '
        ...                         '{"type": "long", "name": "b", "required": true}]',
        ...                         "outputs": '[{"type": "long"}]'})
        >>> [(c.name, c.type, c.nullable) for c in sig.inputs], sig.output.type
        ([('a', 'float64', True), ('b', 'int64', False)], 'int64')
    """
    if not signature or not signature.get("inputs"):
        return None
    inputs = _columns(signature["inputs"])
    if inputs is None or any(not c.get("name") for c in inputs):  # a tensor signature: no named columns
        return None
    columns = [
        ColumnSpec(str(c["name"]), _TYPES.get(str(c.get("type")), "object"), not c.get("required", True))
        for c in inputs
    ]
    outputs = _columns(signature.get("outputs"))
    output = (
        OutputSpec(_TYPES.get(str(outputs[0].get("type")), "object"))
        if outputs is not None and len(outputs) == 1
        else None
    )
    return Signature(columns, output)


def _columns(text: Any) -> list[dict[str, Any]] | None:
    """The column list of an ``MLmodel`` signature part (a JSON string), None for tensor specs."""
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(c, dict) for c in parsed):
        return None
    if any(c.get("type") == "tensor" for c in parsed):
        return None
    return parsed


def _example_signature(example: bytes | None) -> Signature | None:
    """The signature inferred from an MLflow ``input_example.json`` in ``split`` orient."""
    if example is None:
        return None
    try:
        data = json.loads(example)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list) or "data" not in data:
        return None
    import pandas as pd

    return infer_signature(pd.DataFrame(data["data"], columns=data["columns"]))


def shipyard_meta(
    mlmodel: Mapping[str, Any],
    files: Mapping[str, Artifact],
    *,
    requirements: Sequence[str] = (),
    example: bytes | None = None,
) -> ModelMeta:
    """The ``shipyard-model.yaml`` for an MLflow folder: which Shipyard flavor loads which file.

    ``files`` are the folder's files by path (their digests are Shipyard's BLAKE3 digests).

    Example:
        >>> sklearn = {"pickled_model": "model.skops", "serialization_format": "skops"}
        >>> mlmodel = {"flavors": {"sklearn": sklearn, "python_function": {"python_version": "3.11.7"}}}
        >>> files = {p: Artifact(p, "0" * 64, 1) for p in ("MLmodel", "model.skops")}
        >>> meta = shipyard_meta(mlmodel, files)
        >>> meta.flavor, meta.model_file, sorted(meta.files), meta.python
        ('sklearn', 'model.skops', ['MLmodel', 'model.skops'], '3.11.7')
    """
    flavors = mlmodel.get("flavors")
    if not isinstance(flavors, Mapping) or not flavors:
        raise InvalidInput(f"{MLMODEL_FILE} lists no flavors: this is not an MLflow model folder")
    flavor, model_file, options = _loader(flavors, files)
    signature = mlflow_signature(mlmodel.get("signature")) or _example_signature(example)
    pyfunc = flavors.get("python_function")
    python = str(pyfunc.get("python_version", "")) if isinstance(pyfunc, Mapping) else ""
    listed = {p: files[p] for p in sorted({MLMODEL_FILE, model_file})}
    return ModelMeta(
        flavor=flavor,
        model_file=model_file,
        signature=signature,
        requirements=[r for r in requirements if r and not r.startswith("#")],
        python=python,
        files={p: {"digest": a.digest, "size": a.size} for p, a in listed.items()},
        flavor_options={**options, "mlflow_flavors": sorted(str(f) for f in flavors)},
    )


def _loader(flavors: Mapping[str, Any], files: Mapping[str, Artifact]) -> tuple[str, str, dict[str, Any]]:
    """(Shipyard flavor, model file, flavor options) for the folder's MLflow flavors."""
    sklearn = flavors.get("sklearn")
    if isinstance(sklearn, Mapping):
        model_file = str(sklearn.get("pickled_model", ""))
        found = _SKLEARN_FORMATS.get(str(sklearn.get("serialization_format", "")))
        if found is not None and model_file in files and "/" not in model_file:
            return found[0], model_file, dict(found[1])
    return MLFLOW_FLAVOR, MLMODEL_FILE, {}


def with_shipyard_meta(files: Sequence[Artifact], blobs: _Blobs) -> list[Artifact]:
    """An MLflow folder's files plus the ``shipyard-model.yaml`` written for them (put in ``blobs``).

    Raises:
        InvalidInput: ``MLmodel`` is not an MLflow model description.
    """
    by_path = {f.path: f for f in files}
    mlmodel_file = by_path.get(MLMODEL_FILE)
    if mlmodel_file is None:
        raise InvalidInput(f"The folder has no {MLMODEL_FILE}: it is not an MLflow model folder")
    try:
        mlmodel = yaml.safe_load(blobs.get_bytes(mlmodel_file.digest))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{MLMODEL_FILE} does not parse as YAML: {exc}") from None
    if not isinstance(mlmodel, Mapping):
        raise InvalidInput(f"{MLMODEL_FILE} is not a mapping: this is not an MLflow model folder")
    reqs = by_path.get(_REQUIREMENTS_FILE)
    requirements = blobs.get_bytes(reqs.digest).decode("utf-8", "replace").splitlines() if reqs else []
    example = by_path.get(_EXAMPLE_FILE)
    meta = shipyard_meta(
        mlmodel,
        by_path,
        requirements=[r.strip() for r in requirements],
        example=blobs.get_bytes(example.digest) if example is not None else None,
    )
    digest, size = blobs.put_bytes(meta.to_yaml().encode("utf-8"))
    return [*[f for f in files if f.path != META_FILE], Artifact(META_FILE, digest, size)]


class MlflowFolderFlavor(Flavor):
    """An MLflow model folder Shipyard does not load (registered and kept, loaded by MLflow's client).

    Loading it raises :class:`~shipyard.errors.InvalidInput` naming the folder's MLflow flavors and
    the ways out; nothing in the folder is read beyond ``shipyard-model.yaml``.
    """

    name = MLFLOW_FLAVOR
    model_file = MLMODEL_FILE
    packages = ()
    imports = ()
    extra = "sklearn"

    @classmethod
    def handles(cls, model: Any) -> bool:
        return False  # nothing is saved in this flavor: it describes folders MLflow wrote

    def _save(self, model: Any, path: Path) -> SavedModel:
        raise InvalidInput("The 'mlflow' flavor only describes folders written by MLflow; save with another")

    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        flavors = ", ".join(meta.flavor_options.get("mlflow_flavors") or []) or "unknown"
        raise InvalidInput(
            f"{path.parent} is an MLflow model folder with flavors [{flavors}]: Shipyard loads MLflow "
            "folders of scikit-learn models only (saved with skops, or a pickle that passes the "
            "safe-loading scan), because loading the others would run code or libraries it has not "
            "vetted. Load it with MLflow's client (mlflow.pyfunc.load_model('models:/NAME/VERSION')), "
            "or log the model with mlflow.sklearn.log_model(model, ..., serialization_format='skops') "
            "or with sy.log_model to make Shipyard load and serve it",
            details={"mlflow_flavors": meta.flavor_options.get("mlflow_flavors") or []},
        )
