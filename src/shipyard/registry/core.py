"""Registering, resolving, downloading and loading model versions.

A model version is a folder (``shipyard-model.yaml`` plus the flavor's files, see
``flavors``) whose files are content-addressed blobs. Its ``digest`` is the BLAKE3 of the
sorted ``path digest`` lines, so the same model registered twice is one version.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import blake3
import yaml

from shipyard.entities import (
    Artifact,
    ModelRecord,
    ModelVersion,
    ModelVersionCreate,
    RegisteredModel,
    Run,
)
from shipyard.errors import DigestMismatch, InvalidInput, NotFound
from shipyard.registry.references import ModelRef, parse_model_ref
from shipyard.tracking import ActiveRun, Client
from shipyard.tracking.fluent import active_run, get_client

if TYPE_CHECKING:
    from shipyard.registry.flavors import LoadedModel

__all__ = [
    "MODEL_FILE",
    "download_model",
    "get_model_version",
    "get_registered_model",
    "list_model_records",
    "list_model_versions",
    "list_models",
    "load_model",
    "log_model",
    "manifest_digest",
    "register_model",
    "resolve",
]

MODEL_FILE = "shipyard-model.yaml"
MLMODEL_FILE = "MLmodel"  # an MLflow model folder (see registry.flavors.mlflow_folder)
RecordKind = Literal["evaluation", "approval", "promotion"]


def manifest_digest(files: Sequence[Artifact]) -> str:
    """BLAKE3 over the sorted ``path digest`` lines: one digest for the whole model folder."""
    lines = "".join(f"{f.path} {f.digest}\n" for f in sorted(files, key=lambda f: f.path))
    return blake3.blake3(lines.encode()).hexdigest()


def resolve(ref: str | ModelRef, client: Client | None = None) -> ModelVersion:
    """The model version a reference names (``models:/churn@champion``, ``churn/7``, ``churn``)."""
    client = client or get_client()
    parsed = parse_model_ref(ref) if isinstance(ref, str) else ref
    return client.store.get_model_version(parsed.name, parsed.ref)


def get_model_version(ref: str, *, client: Client | None = None) -> ModelVersion:
    """Same as :func:`resolve`; the public name.

    Example:
        >>> sy.get_model_version("models:/churn@champion").version  # doctest: +SKIP
        7
    """
    return resolve(ref, client)


def list_models(*, client: Client | None = None) -> list[RegisteredModel]:
    """Every registered model with its latest version and aliases.

    Example:
        >>> [m.name for m in sy.list_models()]  # doctest: +SKIP
        ['churn']
    """
    return (client or get_client()).store.list_registered_models()


def get_registered_model(name: str, *, client: Client | None = None) -> RegisteredModel:
    """One registered model: latest version, aliases, description and promotion policy text.

    Example:
        >>> sy.get_registered_model("churn").aliases  # doctest: +SKIP
        {'champion': 7}
    """
    return (client or get_client()).store.get_registered_model(name)


def list_model_versions(name: str, *, client: Client | None = None) -> list[ModelVersion]:
    """Every version of model ``name``, oldest first.

    Example:
        >>> [v.version for v in sy.list_model_versions("churn")]  # doctest: +SKIP
        [1, 2, 3]
    """
    return (client or get_client()).store.list_model_versions(name)


def list_model_records(
    name: str,
    version: int | None = None,
    *,
    kind: RecordKind | None = None,
    client: Client | None = None,
) -> list[ModelRecord]:
    """The evaluations, approvals and promotions recorded on a model (or on one version), oldest first.

    ``kind="promotion"`` gives the promotion history: every gate decision, promoted or blocked.

    Example:
        >>> [r.body["status"] for r in sy.list_model_records("churn", kind="promotion")]  # doctest: +SKIP
        ['blocked', 'promoted']
    """
    return (client or get_client()).store.list_model_records(name, version, kind)


def log_model(
    model: Any,
    artifact: str = "model",
    *,
    run: ActiveRun | None = None,
    input_example: Any = None,
    signature: Any = None,
    flavor: str | None = None,
    pip_requirements: Sequence[str] | None = None,
) -> list[Artifact]:
    """Save ``model`` as a model folder and log it as artifacts of the active (or given) run.

    Example:
        >>> with sy.start_run(experiment="churn") as run:  # doctest: +SKIP
        ...     sy.log_model(clf, "model", input_example=X_train.head())
        ...     sy.register_model(run, name="churn")
    """
    target = run or active_run()
    if target is None:
        raise InvalidInput("log_model needs a run: call it inside `with sy.start_run(...)` or pass run=")
    with _saved_folder(model, input_example, signature, flavor, pip_requirements) as folder:
        return target.client.log_artifact(target.id, folder, artifact)


@contextlib.contextmanager
def _saved_folder(
    model: Any,
    input_example: Any,
    signature: Any,
    flavor: str | None,
    pip_requirements: Sequence[str] | None,
) -> Iterator[Path]:
    """``model`` saved as a model folder in a temporary directory (removed on exit)."""
    from shipyard.registry.flavors import save_model_dir

    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        folder = Path(tmp) / "model"
        save_model_dir(
            model,
            folder,
            flavor=flavor,
            signature=signature,
            input_example=input_example,
            pip_requirements=list(pip_requirements) if pip_requirements else None,
        )
        yield folder


def register_model(
    run_or_model: Any,
    name: str,
    *,
    artifact: str = "model",
    client: Client | None = None,
    signature: Any = None,
    input_example: Any = None,
    training_data: Any = None,
    target: str | None = None,
    datasets: Sequence[tuple[str, str]] | None = None,
    metrics: Mapping[str, float] | None = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    flavor: str | None = None,
    pip_requirements: Sequence[str] | None = None,
) -> ModelVersion:
    """Register a model as the next version of ``name``.

    ``run_or_model`` is a run (an ``ActiveRun``, a ``Run`` or a run id) that logged the model
    folder under ``artifact`` (see :func:`log_model`), or a model object, which is saved and
    registered directly (and logged to the active run when there is one).

    The signature is, in order of precedence: ``signature``; the contract of ``training_data``
    (a dataset reference such as ``"flights@v3"`` whose version carries a contract, or a
    contract of the run's ``train`` dataset); inferred from ``training_data``; inferred from the
    input example stored with the model. Lineage: the source run's datasets plus ``datasets``
    (``[("flights@v3", "validation")]``). Metrics: the run's final metrics plus ``metrics``.

    Example:
        >>> mv = sy.register_model(run, name="churn", training_data="flights@v3", target="delayed")
        >>> mv.ref  # doctest: +SKIP
        'models:/churn/1'
    """
    from shipyard.registry import cards

    client = client or get_client()
    run = _as_run(run_or_model, client)
    if run is None:
        run, files = _upload_model(
            run_or_model, artifact, client, input_example, signature, flavor, pip_requirements
        )
    else:
        files = _run_model_files(run, artifact, client)
    digest = manifest_digest(files)
    if (existing := _existing(client, name, digest)) is not None:
        return existing
    meta = yaml.safe_load(client.blobs.get_bytes(next(f.digest for f in files if f.path == MODEL_FILE)))
    lineage = cards.lineage(client, run, training_data, datasets)
    sig = cards.signature_for(client, meta, signature, training_data, target, run)
    client.store.create_registered_model(name, created_by=client.settings.user)
    spec = ModelVersionCreate(
        name=name,
        digest=digest,
        flavor=str(meta.get("flavor", "")),
        files=files,
        signature=sig,
        metadata=cards.metadata(meta, run, metrics, tags, files, target, artifact if run else None),
        run_id=run.id if run is not None else None,
        datasets=lineage,
        description=description,
        created_by=client.settings.user,
    )
    return client.store.create_model_version(spec)


def _existing(client: Client, name: str, digest: str) -> ModelVersion | None:
    """The version of ``name`` with exactly these files, if it was registered before."""
    try:
        versions = client.store.list_model_versions(name)
    except NotFound:
        return None
    return next((v for v in versions if v.digest == digest), None)


def _as_run(obj: Any, client: Client) -> Run | None:
    if isinstance(obj, ActiveRun):
        obj.flush()
        return client.store.get_run(obj.id)
    if isinstance(obj, Run):
        return obj
    if isinstance(obj, str):
        return client.store.get_run(obj)
    return None


def _run_model_files(run: Run, artifact: str, client: Client) -> list[Artifact]:
    prefix = artifact.strip("/")
    found = client.store.list_artifacts(run.id, prefix)
    files = [
        Artifact(a.path[len(prefix) + 1 :], a.digest, a.size)
        for a in found
        if a.path.startswith(prefix + "/")
    ]
    if not any(f.path == MODEL_FILE for f in files):
        if any(f.path == MLMODEL_FILE for f in files):  # an MLflow folder: Shipyard says how to load it
            from shipyard.registry.flavors.mlflow_folder import with_shipyard_meta

            return with_shipyard_meta(files, client.blobs)
        raise NotFound(
            f"Run '{run.id}' has no model folder at artifact '{prefix}' (no {prefix}/{MODEL_FILE} "
            f"or {prefix}/{MLMODEL_FILE}); log one with sy.log_model(model, {prefix!r}) inside the run, "
            "or pass the model object"
        )
    return files


def _upload_model(
    model: Any,
    artifact: str,
    client: Client,
    input_example: Any,
    signature: Any,
    flavor: str | None,
    pip_requirements: Sequence[str] | None,
) -> tuple[Run | None, list[Artifact]]:
    """Save a model object to a folder and put its files in the blob store (and on the active run)."""
    current = active_run()
    with _saved_folder(model, input_example, signature, flavor, pip_requirements) as folder:
        if current is not None and current.client.store.uri == client.store.uri:
            current.client.log_artifact(current.id, folder, artifact)
            run = _as_run(current, client)
            assert run is not None
            return run, _run_model_files(run, artifact, client)
        files = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest, size = client.blobs.put_file(path)
            files.append(Artifact(path.relative_to(folder).as_posix(), digest, size))
        return None, files


def download_model(
    ref: str | ModelVersion, dest: str | os.PathLike[str] | None = None, *, client: Client | None = None
) -> Path:
    """Materialise a version's folder (every blob verified) and return its path.

    Without ``dest`` the folder is cached under ``<home>/models/<digest>`` and reused; the cache
    is verified again on every load, so an edited cached file is still refused.
    """
    client = client or get_client()
    version = ref if isinstance(ref, ModelVersion) else resolve(ref, client)
    model_files = [f for f in version.files if not f.path.startswith("records/")]
    if dest is None:
        root = Path(client.settings.home) / "models" / version.digest
        if (root / MODEL_FILE).is_file():
            return root
    else:
        root = Path(dest)
        if root.exists() and any(root.iterdir()):
            raise InvalidInput(f"Cannot download model {version.ref} into {root}: the folder is not empty")
    staging = root.parent / f".{root.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        for f in model_files:
            target = (staging / f.path).resolve()
            if staging.resolve() not in target.parents:
                raise InvalidInput(f"Model file path {f.path!r} of {version.ref} escapes its folder")
            try:
                client.blobs.download(f.digest, target)
            except DigestMismatch as exc:
                raise DigestMismatch(
                    f"Model {version.ref}: file '{f.path}' (blob {f.digest[:12]}…) failed verification; "
                    "the stored copy was altered or damaged. Refusing to load it.",
                    details={"file": f.path, "digest": f.digest, "model": version.ref},
                ) from exc
        if root.exists() and not any(root.iterdir()):
            root.rmdir()
        try:
            staging.rename(root)
        except OSError:
            if dest is None and (root / MODEL_FILE).is_file():  # another process cached it first
                shutil.rmtree(staging, ignore_errors=True)
                return root
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def load_model(ref: str | ModelVersion, *, trust: bool = False, client: Client | None = None) -> LoadedModel:
    """Load a registered model behind one interface: ``predict``, ``predict_proba``, ``signature``.

    Every file is verified against its digest; pickled content is scanned and refused when it
    would import modules outside the allowlist, unless ``trust=True`` (an audited decision).

    Example:
        >>> model = sy.load_model("models:/churn@champion")  # doctest: +SKIP
        >>> model.predict(df)  # doctest: +SKIP
    """
    from shipyard.registry.flavors import load_model_dir

    client = client or get_client()
    version = ref if isinstance(ref, ModelVersion) else resolve(ref, client)
    folder = download_model(version, client=client)
    _verify_model_file(folder, version)
    extra = [m.strip() for m in client.settings.unpickle_allowlist.split(",") if m.strip()]
    if trust:
        client.store.record_trusted_load(
            version.name,
            version.version,
            client.settings.user,
            "loaded with trust=True: the allowlist check was skipped",
        )
    return load_model_dir(
        folder,
        trust=trust,
        allowlist=extra or None,
        settings=client.settings,
        signature=version.signature or None,
    )


def _verify_model_file(folder: Path, version: ModelVersion) -> None:
    """The YAML lists every other file's digest, so it is checked against the store's record."""
    expected = next((f.digest for f in version.files if f.path == MODEL_FILE), None)
    actual = blake3.blake3((folder / MODEL_FILE).read_bytes()).hexdigest()
    if expected != actual:
        raise DigestMismatch(
            f"Model {version.ref}: {MODEL_FILE} in {folder} does not match the registry "
            f"(expected {str(expected)[:12]}…, got {actual[:12]}…); delete the folder to download it again",
            details={"file": MODEL_FILE, "model": version.ref},
        )
