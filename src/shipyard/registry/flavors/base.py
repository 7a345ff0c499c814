"""What every flavor shares: the metadata file (:class:`ModelMeta`), the loaded model (:class:`LoadedModel`),
the :class:`Flavor` base class, pinned requirements and file digests.

A flavor implements three small parts: :meth:`Flavor.handles` (is this object mine?), :meth:`Flavor._save`
(write the library's file, return what the metadata needs) and :meth:`Flavor._load` (read it back into a
:class:`Backend`: the library object plus its predict functions). Everything around them (the signature,
digests, requirements, the YAML) is done once, in :mod:`shipyard.registry.flavors`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import platform
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import yaml

from shipyard.artifacts.blobs import hash_file
from shipyard.errors import DigestMismatch, InvalidInput, MissingExtra
from shipyard.registry.signature import Signature, to_pandas
from shipyard.version import __version__

__all__ = [
    "META_FILE",
    "Backend",
    "Flavor",
    "LoadedModel",
    "ModelMeta",
    "SavedModel",
    "Task",
    "distributions_of_modules",
    "file_entries",
    "jsonable_classes",
    "pin_requirements",
    "verify_files",
]

META_FILE = "shipyard-model.yaml"
FORMAT = 1
Task = Literal["classification", "regression"]
PredictFn = Callable[[pd.DataFrame], np.ndarray[Any, Any]]
# libyaml's safe loader parses the metadata ~10x faster than the pure-Python one (a load cost, per model)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_KNOWN_DISTS = {"sklearn": "scikit-learn", "yaml": "PyYAML", "skl2onnx": "skl2onnx", "PIL": "pillow"}
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass
class ModelMeta:
    """``shipyard-model.yaml`` as a typed object.

    Example:
        >>> meta = ModelMeta(flavor="sklearn", model_file="model.skops")
        >>> ModelMeta.from_dict(meta.to_dict()) == meta
        True
    """

    flavor: str
    model_file: str
    task: Task | None = None
    classes: list[Any] | None = None
    signature: Signature | None = None
    requirements: list[str] = field(default_factory=list)
    trusted_types: list[str] | None = None
    python: str = field(default_factory=platform.python_version)
    shipyard: str = __version__
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    flavor_options: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The YAML shape, keys in the documented order."""
        data: dict[str, Any] = {
            "format": self.format,
            "flavor": self.flavor,
            "model_file": self.model_file,
            "task": self.task,
            "classes": self.classes,
            "signature": self.signature.to_dict() if self.signature else None,
            "requirements": list(self.requirements),
        }
        if self.trusted_types is not None:
            data["trusted_types"] = list(self.trusted_types)
        data.update(python=self.python, shipyard=self.shipyard, files=self.files)
        if self.flavor_options:
            data["flavor_options"] = self.flavor_options
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMeta:
        """Read the YAML shape; refuses a newer format than this Shipyard writes."""
        if not isinstance(data, Mapping) or "flavor" not in data or "model_file" not in data:
            raise InvalidInput(f"{META_FILE} must be a mapping with 'flavor' and 'model_file', got {data!r}")
        fmt = int(data.get("format", FORMAT))
        if fmt > FORMAT:
            raise InvalidInput(
                f"{META_FILE} has format {fmt}, written by a newer Shipyard than {__version__} "
                f"(which reads format {FORMAT}); upgrade shipyard to load it"
            )
        signature = data.get("signature")
        return cls(
            flavor=str(data["flavor"]),
            model_file=str(data["model_file"]),
            task=data.get("task"),
            classes=data.get("classes"),
            signature=Signature.from_dict(signature) if signature else None,
            requirements=[str(r) for r in data.get("requirements") or []],
            trusted_types=data.get("trusted_types"),
            python=str(data.get("python", "")),
            shipyard=str(data.get("shipyard", "")),
            files=dict(data.get("files") or {}),
            flavor_options=dict(data.get("flavor_options") or {}),
            format=fmt,
        )

    def to_yaml(self) -> str:
        return str(
            yaml.dump(self.to_dict(), Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True, width=110)
        )

    @classmethod
    def read(cls, directory: str | Path) -> ModelMeta:
        """Read ``DIR/shipyard-model.yaml``.

        Example:
            >>> ModelMeta.read("/nonexistent")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            shipyard.errors.InvalidInput: /nonexistent is not a model directory: ...
        """
        path = Path(directory) / META_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInput(
                f"{directory} is not a model directory: it has no {META_FILE} (save one with save_model_dir)"
            ) from None
        try:
            data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader, the C one when built
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{path} does not parse as YAML: {exc}") from exc
        return cls.from_dict(data)


@dataclass
class SavedModel:
    """What a flavor's ``_save`` reports for the metadata."""

    task: Task | None = None
    classes: list[Any] | None = None
    trusted_types: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)  # top-level modules whose distributions get pinned
    proba: bool = False


@dataclass
class Backend:
    """What a flavor's ``_load`` returns: the library object and how to call it on a checked frame."""

    raw: Any
    predict: PredictFn
    predict_proba: PredictFn | None = None
    trusted_unsafe: list[str] = field(default_factory=list)


class LoadedModel:
    """A model read back by :func:`~shipyard.registry.flavors.load_model_dir`, ready to predict.

    ``predict`` and ``predict_proba`` check the input against the signature (see
    :meth:`Signature.check`), then call the library. Both return numpy arrays: ``predict`` the class
    labels (classifiers) or values (regressors), ``predict_proba`` one column per class in ``classes``
    order. ``trusted_unsafe`` lists what the load had to trust (``trust=True``) beyond the allowlist.

    Example:
        >>> from sklearn.linear_model import LinearRegression
        >>> import pandas as pd, tempfile, os
        >>> from shipyard.registry.flavors import save_model_dir, load_model_dir
        >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
        >>> d = os.path.join(tempfile.mkdtemp(), "m")
        >>> _ = save_model_dir(LinearRegression().fit(X, [0.0, 2.0, 4.0]), d, input_example=X)
        >>> load_model_dir(d).predict(pd.DataFrame({"x": [3]})).round(6)
        array([6.])
    """

    def __init__(self, metadata: ModelMeta, backend: Backend, path: Path) -> None:
        self.metadata = metadata
        self.path = path
        self.raw = backend.raw
        self.trusted_unsafe = list(backend.trusted_unsafe)
        self._predict = backend.predict
        self._predict_proba = backend.predict_proba
        signature = metadata.signature
        self._check: Callable[[Any], pd.DataFrame] = signature.check if signature is not None else to_pandas

    @property
    def flavor(self) -> str:
        return self.metadata.flavor

    @property
    def signature(self) -> Signature | None:
        """The signature ``predict`` checks input against (None: no check, input only made pandas).

        Assignable, e.g. by the registry to enforce a version's signature (from its training data's
        contract) on a model directory saved without one.
        """
        return self.metadata.signature

    @signature.setter
    def signature(self, signature: Signature | Mapping[str, Any] | None) -> None:
        if signature is not None and not isinstance(signature, Signature):
            signature = Signature.from_dict(signature)
        self.metadata.signature = signature
        self._check = signature.check if signature is not None else to_pandas

    @property
    def classes(self) -> list[Any] | None:
        return self.metadata.classes

    @property
    def has_proba(self) -> bool:
        return self._predict_proba is not None

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        """Check ``data`` against the signature and predict: a numpy array, one value per row.

        Raises:
            SignatureMismatch: the input does not fit the signature (every problem listed).
        """
        return self._predict(self._check(data))

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        """Class probabilities, shape ``(rows, classes)``; :class:`InvalidInput` if the model has none."""
        if self._predict_proba is None:
            raise InvalidInput(
                f"This {self.flavor} model ({type(self.raw).__name__}, task {self.metadata.task}) has no "
                "predict_proba; call predict instead"
            )
        return self._predict_proba(self._check(data))

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, raw={type(self.raw).__name__}, path='{self.path}')"


class Flavor(ABC):
    """One model library's way to save and load. Subclasses set the class variables and the ``_`` parts."""

    name: ClassVar[str]
    model_file: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]  # distributions pinned in ``requirements``
    imports: ClassVar[tuple[str, ...]]  # the modules it needs at load
    extra: ClassVar[str]  # the shipyard extra that installs them

    @classmethod
    @abstractmethod
    def handles(cls, model: Any) -> bool:
        """Whether ``model`` is an object of this flavor (without importing any library)."""

    @abstractmethod
    def _save(self, model: Any, path: Path) -> SavedModel:
        """Write ``model`` to ``path`` (the flavor's model file)."""

    @abstractmethod
    def _load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        """Read the model file at ``path`` back."""

    def sample_output(self, model: Any, example: pd.DataFrame) -> Any:
        """Predictions on the input example, used to infer the signature's output (None if unavailable)."""
        predict = getattr(model, "predict", None)
        return predict(example) if callable(predict) else None

    def save(self, model: Any, path: Path) -> SavedModel:
        self.require()
        return self._save(model, path)

    def load(self, path: Path, meta: ModelMeta, *, trust: bool, allowlist: frozenset[str]) -> Backend:
        self.require()
        return self._load(path, meta, trust=trust, allowlist=allowlist)

    def require(self) -> None:
        """Raise :class:`MissingExtra` with the install hint when the flavor's library is missing."""
        missing = [m for m in self.imports if m not in sys.modules and importlib.util.find_spec(m) is None]
        if missing:
            raise MissingExtra(
                f"The {self.name} flavor needs {', '.join(missing)}: pip install 'shipyard[{self.extra}]'"
            )


# -- requirements ----------------------------------------------------------------------------------------
def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _module_to_dists() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of_modules(modules: Iterable[str]) -> list[str]:
    """The installed distributions providing these top-level modules (stdlib and unknown ones skipped).

    Example:
        >>> distributions_of_modules(["numpy", "os", "no_such_module"])
        ['numpy']
    """
    found: list[str] = []
    for module in modules:
        top = module.split(".", 1)[0]
        if top in sys.stdlib_module_names:
            continue
        known = _KNOWN_DISTS.get(top, top)
        # most distributions are named like their module: skip the full scan of installed packages (~0.5 s)
        dists = [known] if _installed_version(known) is not None else _module_to_dists().get(top, [])
        found.extend(d for d in dists if d not in found)
    return found


def _req_name(requirement: str) -> str:
    match = _REQ_NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else requirement.strip().lower()


def pin_requirements(dists: Iterable[str], extra: Iterable[str] | None = None) -> list[str]:
    """``name==version`` for each installed distribution, then the user's own requirements (which win).

    Example:
        >>> pin_requirements(["numpy"], ["numpy>=1"])
        ['numpy>=1']
    """
    pinned: dict[str, str] = {}
    for dist in dists:
        version = _installed_version(dist)
        if version is not None:
            pinned.setdefault(_req_name(dist), f"{dist}=={version}")
    for requirement in extra or []:
        pinned[_req_name(requirement)] = requirement.strip()
    return list(pinned.values())


# -- files and digests -----------------------------------------------------------------------------------
def file_entries(directory: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"digest", "size"}}`` of every file in ``directory`` except the metadata file."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.name != META_FILE and path.is_file():
            digest, size = hash_file(path)
            entries[path.name] = {"digest": digest, "size": size}
    return entries


def verify_files(directory: Path, meta: ModelMeta) -> None:
    """Check every file listed in the metadata against its BLAKE3 digest before anything is loaded.

    Raises:
        DigestMismatch: naming the file that is missing or differs.
    """
    if meta.model_file not in meta.files:
        raise DigestMismatch(
            f"{META_FILE} in {directory} lists no digest for its model file {meta.model_file!r}; "
            "the directory was not written by save_model_dir or was altered"
        )
    for name, entry in meta.files.items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise InvalidInput(f"{META_FILE} in {directory} lists an unsafe file name {name!r}")
        path = directory / name
        if not path.is_file():
            raise DigestMismatch(f"Model file {name} is missing from {directory}; re-download the model")
        digest, _size = hash_file(path)
        if digest != entry.get("digest"):
            raise DigestMismatch(
                f"Model file {name} in {directory} has BLAKE3 digest {digest[:16]}…, expected "
                f"{str(entry.get('digest'))[:16]}…: it was altered or corrupted; re-download the model",
                details={"file": name, "expected": entry.get("digest"), "actual": digest},
            )


def jsonable_classes(classes: Any) -> list[Any] | None:
    """``model.classes_`` as plain Python values for the YAML (numpy scalars unwrapped)."""
    if classes is None:
        return None
    return [c.item() if isinstance(c, np.generic) else c for c in np.asarray(classes).tolist()]
