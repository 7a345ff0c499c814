"""The ``onnx`` flavor: an ONNX graph run by onnxruntime on the CPU.

Saved from an :class:`OnnxExport` (what :func:`shipyard.registry.onnx_export.export_onnx` returns, which
carries the task, classes and signature of the scikit-learn model it came from) or a bare
``onnx.ModelProto``. The graph takes either one float tensor ``[rows, columns]`` (models without a
``ColumnTransformer``) or one ``[rows, 1]`` tensor per column, named after the column (pipelines that
start with a ``ColumnTransformer``, so string columns can be one-hot encoded inside the graph); the
inputs are fed from the checked frame accordingly. Outputs: the first is the label (or value), the
second, when present, the probability matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, SignatureMismatch
from shipyard.registry.flavors.base import Backend, Flavor, ModelMeta, SavedModel
from shipyard.registry.signature import Signature

__all__ = ["OnnxExport", "OnnxFlavor", "make_feeder", "open_session"]

_NUMPY_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


@dataclass
class OnnxExport:
    """An ONNX graph checked against the model it was converted from (see ``export_onnx``).

    ``max_abs_diff`` is the largest difference seen between the two on the sample, over predictions
    (regression) or probabilities (classification); ``rows_checked`` the sample size.
    """

    model_bytes: bytes
    task: Any = None
    classes: list[Any] | None = None
    signature: Signature | None = None
    source: str = ""
    max_abs_diff: float = 0.0
    rows_checked: int = 0
    path: Path | None = None
    input_names: list[str] = field(default_factory=list)


def open_session(model_bytes: bytes) -> Any:
    """An onnxruntime CPU inference session over the serialized graph."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise to a user
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def make_feeder(session: Any, columns: list[str] | None = None) -> Any:
    """A function turning a checked frame into the session's input dict (see the module docstring).

    One input per column when every input is named after one of ``columns`` (or, without ``columns``,
    when there are several inputs); otherwise the single input takes the whole frame as a matrix.
    """
    inputs = [(i.name, _NUMPY_TYPES.get(i.type), i.shape) for i in session.get_inputs()]
    for name, dtype, _shape in inputs:
        if dtype is None:
            raise InvalidInput(f"ONNX input {name!r} has a type Shipyard cannot feed from a DataFrame")
    per_column = all(name in columns for name, _, _ in inputs) if columns else len(inputs) > 1
    if len(inputs) == 1 and not per_column:
        name, dtype, _shape = inputs[0]

        def feed_matrix(frame: pd.DataFrame) -> dict[str, Any]:
            return {name: frame.to_numpy(dtype=dtype)}

        return feed_matrix

    def feed_columns(frame: pd.DataFrame) -> dict[str, Any]:
        feeds: dict[str, Any] = {}
        for name, dtype, _shape in inputs:
            if name not in frame.columns:
                raise SignatureMismatch(
                    f"The ONNX model takes a column {name!r} the input does not have",
                    details={"problems": [{"column": name, "problem": "missing column"}]},
                )
            column = frame[name]
            if dtype is object:
                values = column.astype(str).to_numpy(dtype=object)
            else:
                values = column.to_numpy(dtype=dtype)
            feeds[name] = values.reshape(-1, 1)
        return feeds

    return feed_columns


def _proba_matrix(out: Any, classes: list[Any] | None) -> np.ndarray[Any, Any]:
    if isinstance(out, list) and out and isinstance(out[0], dict):  # a ZipMap output: one dict per row
        keys = classes if classes is not None else list(out[0])
        return np.array([[row[k] for k in keys] for row in out])
    return np.asarray(out)


class OnnxFlavor(Flavor):
    name = "onnx"
    model_file = "model.onnx"
    packages = ("onnxruntime", "numpy", "pandas")
    imports = ("onnxruntime",)
    extra = "onnx"

    @classmethod
    def handles(cls, model: Any) -> bool:
        return isinstance(model, OnnxExport) or type(model).__module__.split(".", 1)[0] == "onnx"

    def sample_output(self, model: Any, example: pd.DataFrame) -> Any:
        return None

    def _save(self, model: Any, path: Path) -> SavedModel:
        if isinstance(model, OnnxExport):
            path.write_bytes(model.model_bytes)
            n_outputs = len(open_session(model.model_bytes).get_outputs())
            return SavedModel(
                task=model.task,
                classes=model.classes,
                options={"source": model.source},
                modules=["onnxruntime"],
                proba=model.task == "classification" and n_outputs > 1,
            )
        data = model.SerializeToString()
        path.write_bytes(data)
        n_outputs = len(open_session(data).get_outputs())
        return SavedModel(modules=["onnxruntime"], proba=n_outputs > 1)

    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        session = open_session(path.read_bytes())
        feed = make_feeder(session, meta.signature.names if meta.signature else None)
        run = session.run
        outputs = [o.name for o in session.get_outputs()]
        label = [outputs[0]]
        classes = meta.classes

        def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            out = np.asarray(run(label, feed(frame))[0])
            return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

        def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return _proba_matrix(run([outputs[1]], feed(frame))[0], classes)

        has_proba = len(outputs) > 1 and meta.task != "regression"
        return Backend(session, predict, predict_proba if has_proba else None)
