"""Convert a scikit-learn model to ONNX and prove the conversion on real rows before anyone serves it.

:func:`export_onnx` converts with skl2onnx, runs the graph with onnxruntime on a sample frame and
compares it with the original model's ``predict`` (and ``predict_proba``). A graph whose outputs differ
beyond the tolerance is refused with :class:`~shipyard.errors.InvalidInput` naming the largest
difference, so a saved ``onnx`` flavor is known to agree with the model it replaces.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput, MissingExtra
from shipyard.registry.flavors.base import LoadedModel, jsonable_classes
from shipyard.registry.flavors.onnx import OnnxExport, make_feeder, open_session
from shipyard.registry.flavors.sklearn import SklearnFlavor, task_of
from shipyard.registry.signature import infer_signature, kind_of, to_pandas

__all__ = ["OnnxExport", "export_onnx"]


def _final_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def _first_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[0][1] if steps else model


def _initial_types(model: Any, frame: pd.DataFrame) -> list[tuple[str, Any]]:
    """One ``[rows, 1]`` input per column for a ColumnTransformer front, else one float matrix."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    kinds = {
        name: kind_of(c.type) for name, c in zip(frame.columns, infer_signature(frame).inputs, strict=True)
    }
    if type(_first_step(model)).__name__ == "ColumnTransformer":
        table = {"int": Int64TensorType, "bool": Int64TensorType, "float": FloatTensorType}
        return [(str(name), table.get(kind, StringTensorType)([None, 1])) for name, kind in kinds.items()]
    not_numeric = [name for name, kind in kinds.items() if kind not in ("int", "float", "bool")]
    if not_numeric:
        raise InvalidInput(
            f"Cannot export {type(model).__name__} to ONNX: columns {not_numeric} are not numeric and the "
            "model does not start with a ColumnTransformer that encodes them; wrap it in a Pipeline whose "
            "first step is a ColumnTransformer"
        )
    return [("X", FloatTensorType([None, frame.shape[1]]))]


def _convert(model: Any, frame: pd.DataFrame) -> bytes:
    try:
        from skl2onnx import to_onnx
    except ModuleNotFoundError:
        raise MissingExtra(
            "export_onnx needs skl2onnx and onnxruntime: pip install 'shipyard[onnx]'"
        ) from None
    final = _final_step(model)
    options = {id(final): {"zipmap": False}} if task_of(final) == "classification" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_model = to_onnx(model, initial_types=_initial_types(model, frame), options=options)
    except InvalidInput:
        raise
    except Exception as exc:  # skl2onnx raises many types (MissingShapeCalculator, RuntimeError, ...)
        raise InvalidInput(
            f"Cannot export {type(model).__name__} to ONNX: skl2onnx does not convert it "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
            "keep the sklearn flavor for this model",
            details={"model": type(model).__name__, "reason": str(exc)[:1000]},
        ) from exc
    return bytes(onnx_model.SerializeToString())


def _largest_difference(expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any]) -> tuple[float, int]:
    diff = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    flat = int(np.argmax(diff))
    return float(diff.ravel()[flat]), flat // (diff.shape[1] if diff.ndim == 2 else 1)


def _compare(
    what: str, expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any], rtol: float, atol: float
) -> float:
    if expected.shape != actual.shape:
        raise InvalidInput(f"ONNX {what} have shape {actual.shape}, the model's {expected.shape}")
    largest, row = _largest_difference(expected, actual)
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        raise InvalidInput(
            f"The ONNX graph does not reproduce the model's {what}: the largest difference is {largest:.3g} "
            f"at row {row} (model {expected.ravel()[np.argmax(np.abs(expected - actual))]!r}, onnx "
            f"{actual.ravel()[np.argmax(np.abs(expected - actual))]!r}), beyond rtol={rtol}, atol={atol}; "
            "keep the sklearn flavor, or loosen the tolerance if that difference is acceptable",
            details={"what": what, "max_abs_diff": largest, "row": row},
        )
    return largest


def _check_labels(expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any]) -> None:
    differ = np.flatnonzero(expected.astype(str) != actual.astype(str))
    if differ.size:
        row = int(differ[0])
        raise InvalidInput(
            f"The ONNX graph predicts other labels than the model on {differ.size} of {expected.size} rows "
            f"(first at row {row}: model {expected[row]!r}, onnx {actual[row]!r}); keep the sklearn flavor",
            details={"what": "labels", "rows_differing": int(differ.size), "row": row},
        )


def export_onnx(
    model_or_loaded: Any,
    sample_df: Any,
    *,
    path: str | os.PathLike[str] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> OnnxExport:
    """Convert a scikit-learn model (or a loaded ``sklearn``-flavor model) to ONNX, verified on ``sample_df``.

    Save the result with ``save_model_dir(export, dir)`` (flavor ``onnx``); ``path`` also writes the raw
    ``.onnx`` file. Classifiers must predict the same labels and probabilities within ``rtol``/``atol``;
    regressors the same values.

    Raises:
        InvalidInput: the model is not convertible, or the graph's outputs differ (the message names the
            largest difference).

    Example:
        >>> import pandas as pd
        >>> from sklearn.linear_model import LogisticRegression
        >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
        >>> export = export_onnx(LogisticRegression().fit(X, [0, 0, 1, 1]), X)
        >>> export.task, export.rows_checked, export.max_abs_diff < 1e-5
        ('classification', 4, True)
    """
    model = model_or_loaded.raw if isinstance(model_or_loaded, LoadedModel) else model_or_loaded
    if not SklearnFlavor.handles(model) or type(model).__module__.split(".", 1)[0] in ("xgboost", "lightgbm"):
        raise InvalidInput(
            f"export_onnx converts scikit-learn models, not {type(model).__module__}.{type(model).__name__}"
        )
    frame = to_pandas(sample_df)
    if frame.empty:
        raise InvalidInput("export_onnx needs a non-empty sample_df to check the conversion on")
    model_bytes = _convert(model, frame)
    session = open_session(model_bytes)
    feeds = make_feeder(session, [str(c) for c in frame.columns])(frame)
    outputs = session.run(None, feeds)
    on_frames = getattr(model, "feature_names_in_", None) is not None
    data = frame if on_frames else frame.to_numpy()
    task = task_of(model)
    expected = np.asarray(model.predict(data))
    actual = np.asarray(outputs[0]).reshape(expected.shape)
    largest = 0.0
    if task == "classification":
        _check_labels(expected, actual)
        if hasattr(model, "predict_proba") and len(outputs) > 1:
            largest = _compare(
                "probabilities", np.asarray(model.predict_proba(data)), np.asarray(outputs[1]), rtol, atol
            )
    else:
        largest = _compare("predictions", expected, actual, rtol, atol)
    export = OnnxExport(
        model_bytes=model_bytes,
        task=task,
        classes=jsonable_classes(getattr(model, "classes_", None)) if task == "classification" else None,
        signature=infer_signature(frame, expected, proba=task == "classification" and len(outputs) > 1),
        source=f"{type(model).__module__}.{type(model).__name__}",
        max_abs_diff=largest,
        rows_checked=len(frame),
        input_names=[i.name for i in session.get_inputs()],
    )
    if path is not None:
        export.path = Path(path)
        export.path.write_bytes(model_bytes)
    return export
