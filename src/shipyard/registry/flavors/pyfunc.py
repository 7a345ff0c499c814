"""The ``python_function`` flavor: any object with ``predict(frame)`` (and optionally ``predict_proba``).

It is saved with cloudpickle (``pip install 'shipyard[pyfunc]'``; plain :mod:`pickle` when cloudpickle is
missing), which means **loading it would run code**. So loading never unpickles first: the file's bytes
are hashed again (the bytes checked are the bytes loaded), then :func:`~shipyard.registry.safety.scan_pickle`
lists every global the pickle would import, and the load is refused with
:class:`~shipyard.errors.UnsafeModel` when the safe-loading rule refuses any, naming them. A clean scan is
then unpickled by :class:`~shipyard.registry.safety.RestrictedUnpickler`, whose ``find_class`` applies the
same rule again to every global actually imported, and scikit-learn trees inside are checked for
out-of-range indices. Pass ``trust=True`` to load it anyway (plain :mod:`pickle`):
:attr:`LoadedModel.trusted_unsafe` then lists what was trusted, so the registry can record it in the
audit log. Names that run code (``os.system``, ``builtins.eval``, ``subprocess.*``, ...) are never
allowlisted, only trusted.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pandas as pd

from shipyard.errors import DigestMismatch, UnsafeModel
from shipyard.registry.flavors.base import Backend, Flavor, ModelMeta, SavedModel, jsonable_classes
from shipyard.registry.flavors.sklearn import tree_problems
from shipyard.registry.safety import referenced_globals, safe_loads, scan_pickle

__all__ = ["PythonFunctionFlavor"]


class PythonFunctionFlavor(Flavor):
    name = "python_function"
    model_file = "model.pkl"
    packages = ("numpy", "pandas")
    imports = ()
    extra = "pyfunc"

    @classmethod
    def handles(cls, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def _save(self, model: Any, path: Path) -> SavedModel:
        try:
            import cloudpickle

            data = cloudpickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL)
            pickler = "cloudpickle"
        except ModuleNotFoundError:
            data = pickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL)
            pickler = "pickle"
        path.write_bytes(data)
        modules = sorted({name.split(".", 1)[0] for name in referenced_globals(data) if "<" not in name})
        modules += [pickler] if pickler == "cloudpickle" else []
        has_proba = callable(getattr(model, "predict_proba", None))
        classes = jsonable_classes(getattr(model, "classes_", None))
        return SavedModel(
            task="classification" if classes is not None else None,
            classes=classes,
            options={"pickler": pickler},
            modules=modules,
            proba=has_proba,
        )

    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        data = path.read_bytes()
        expected = meta.files.get(path.name, {}).get("digest")
        if blake3.blake3(data).hexdigest() != expected:  # the file changed since load_model_dir verified it
            raise DigestMismatch(f"Model file {path.name} in {path.parent} changed while it was being loaded")
        outside = scan_pickle(data, allowlist)
        if outside and not trust:
            raise UnsafeModel(
                f"Refusing to unpickle {path.name} in {path.parent}: it would import {outside}, which the "
                "safe-loading rule refuses. Loading it could run code; if you trust its author, load it with "
                "trust=True (recorded in the audit log), or allow your own classes by exact name "
                "(allowlist=['mypkg.models.MyModel'] or the unpickle_allowlist setting)",
                details={"globals": outside, "file": path.name},
            )
        if trust:
            model = pickle.loads(data)  # noqa: S301 - trusted explicitly, recorded in the audit log
        else:
            model = safe_loads(data, allowlist)  # find_class re-checks every global the stream imports
            bad = tree_problems(model) if "sklearn" in sys.modules else []
            if bad:
                raise UnsafeModel(
                    f"Model file {path.name} in {path.parent} holds malformed scikit-learn trees "
                    f"({'; '.join(bad[:3])}); load it with trust=True only if you know why",
                    details={"file": path.name, "problems": bad[:20]},
                )
        predict_fn = model.predict
        proba_fn = getattr(model, "predict_proba", None)

        def predict(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(predict_fn(frame))

        def predict_proba(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
            return np.asarray(proba_fn(frame))  # type: ignore[misc]

        return Backend(model, predict, predict_proba if callable(proba_fn) else None, outside)
