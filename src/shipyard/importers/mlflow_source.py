"""An MLflow store read through MLflow's own client, as the plain records of ``records``.

Every kind of store MLflow itself reads works, because MLflow's client reads it: a ``mlruns``
folder (MLflow's file store), an MLflow database (``sqlite:///mlflow.db``,
``postgresql://…``, ``mysql://…``) or a running MLflow server (``http(s)://host:port``).
Nothing here writes to the source: a database URI or folder that does not exist is refused rather
than created (MLflow's client would create an empty store there).

MLflow's names become Shipyard's here (:func:`to_run`): the system tags ``mlflow.runName``,
``mlflow.user`` and ``mlflow.source.name`` become the run's name, user and source, and
``mlflow.parentRunId`` its parent; every other tag is kept as it is.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from shipyard.config import redact_uri
from shipyard.entities import (
    MAX_KEY_LENGTH,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelStatus,
    MetricHistory,
    Run,
    RunStatus,
)
from shipyard.errors import ExperimentNotFound, InvalidInput, MissingExtra, StoreUnavailable
from shipyard.importers.records import (
    SourceExperiment,
    SourceFile,
    SourceLoggedModel,
    SourceModel,
    SourceRun,
    SourceVersion,
)
from shipyard.names import check_name
from shipyard.tracking.mlflow_inputs import DATASET_FIELDS, dataset_input

__all__ = [
    "PAGE_SIZE",
    "SYSTEM_TAGS",
    "MlflowSource",
    "experiment_name",
    "mlflow_error",
    "model_name",
    "to_run",
]

Put = Callable[[Path], tuple[str, int]]
"""Store a local file, answering its digest and size (``BlobStore.put_file``)."""
Copied = tuple[str, str, int]
"""A copied file: its path, digest and size."""

PAGE_SIZE = 1000
"""Runs asked for per ``search_runs`` page (MLflow's server caps pages at 50,000)."""

SYSTEM_TAGS = {
    "mlflow.runName": "name",
    "mlflow.user": "user",
    "mlflow.source.name": "source",
    "mlflow.parentRunId": "parent_run_id",
}
"""MLflow's tags that are fields of a Shipyard run (dropped as tags when the field holds their value)."""

_STATUS = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.RUNNING,
    "FINISHED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.KILLED,
}
_LOGGED_STATUS = {
    "PENDING": LoggedModelStatus.PENDING,
    "READY": LoggedModelStatus.READY,
    "FAILED": LoggedModelStatus.FAILED,
}
_DESCRIPTION_TAG = "mlflow.note.content"  # how MLflow stores an experiment's description
_MODEL_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise MissingExtra(
            "Importing from MLflow needs the MLflow client: pip install 'shipyard[mlflow]'"
        ) from None
    return mlflow


def mlflow_error(exc: BaseException) -> str:
    """The message of an MLflow exception (its ``message`` without the traceback noise)."""
    return str(getattr(exc, "message", None) or exc).strip().splitlines()[0][:500]


@contextlib.contextmanager
def _env(uri: str) -> Iterator[None]:
    """MLflow's client set up for reading the store at ``uri``, restored after: the file store
    opens (MLflow 3 keeps it for old stores only when told), MLflow's calls that resolve a run
    through the default tracking URI find this store (instead of creating ./mlflow.db), and the
    import reports no usage to MLflow's telemetry on the user's behalf."""
    values = {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # the import draws its own
    }
    saved = {k: os.environ.get(k) for k in [*values, "MLFLOW_DISABLE_TELEMETRY"]}
    os.environ.update(values)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _resolve(uri: str) -> str:
    """The URI MLflow's client is given; a folder or database that does not exist is refused."""
    if "://" not in uri or uri.startswith("file:"):
        folder = Path(uri.removeprefix("file://") if uri.startswith("file://") else uri).expanduser()
        if not folder.is_dir():
            raise InvalidInput(
                f"MLflow store folder {str(folder)!r} does not exist (expected a mlruns/ folder)"
            )
        if not any(folder.glob("*/meta.yaml")) and not (folder / "models").is_dir():
            raise InvalidInput(
                f"{str(folder)!r} is not an MLflow store: it holds no experiment (no */meta.yaml); "
                "point --from at the mlruns/ folder itself"
            )
        return folder.resolve().as_uri()
    if uri.startswith("sqlite:"):
        path = uri.split(":///", 1)[-1] if ":///" in uri else ""
        if not path or not Path(path).is_file():
            raise InvalidInput(
                f"MLflow database {uri!r} does not exist (expected sqlite:///path/to/mlflow.db)"
            )
    return uri


def experiment_name(name: str) -> str:
    """The Shipyard name of an MLflow experiment: the same, unless Shipyard cannot keep it (over 255
    characters, hidden characters, spaces around it); then those are cut or replaced by ``-``.

    Example:
        >>> experiment_name("/Users/ann@corp.com/churn")
        '/Users/ann@corp.com/churn'
    """
    try:
        return check_name("Experiment name", name, at_sign=True)
    except InvalidInput:
        cleaned = "".join("-" if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in name)
        return cleaned.strip()[:MAX_KEY_LENGTH].strip() or "experiment"


def model_name(name: str) -> str:
    """The Shipyard name of an MLflow registered model: characters Shipyard's names do not take
    (spaces, slashes, ...) become ``-``; a name that starts with neither letter nor digit gets ``m-``.

    Example:
        >>> model_name("churn model/v2")
        'churn-model-v2'
    """
    cleaned = _MODEL_NAME_BAD.sub("-", name).strip("-")[:255] or "model"
    return cleaned if cleaned[0].isalnum() else f"m-{cleaned}"[:255]


def to_run(mlrun: Any, experiment_name: str) -> Run:
    """An MLflow run as the Shipyard run it becomes (see the module docstring for the tags).

    ``parent_run_id`` is MLflow's; the importer drops it (keeping the tag) when the parent is not
    in Shipyard.
    """
    info, data = mlrun.info, mlrun.data
    tags = dict(data.tags)
    name = info.run_name or tags.get("mlflow.runName", "") or ""
    user = info.user_id or tags.get("mlflow.user", "") or ""
    fields = {
        "name": name,
        "user": user,
        "source": tags.get("mlflow.source.name", ""),
        "parent_run_id": tags.get("mlflow.parentRunId") or None,
    }
    for tag, field_name in SYSTEM_TAGS.items():
        if tag in tags and tags[tag] == (fields[field_name] or ""):
            del tags[tag]
    return Run(
        id=info.run_id,
        experiment_id=0,
        experiment_name=experiment_name,
        name=name,
        status=_STATUS.get(str(info.status), RunStatus.RUNNING),
        start_time=int(info.start_time or 0),
        end_time=int(info.end_time) if info.end_time else None,
        parent_run_id=fields["parent_run_id"],
        user=user,
        source=fields["source"],
        deleted=info.lifecycle_stage == "deleted",
        params=dict(data.params),
        metrics=dict(data.metrics),
        tags=tags,
    )


def _walk(repo: Any) -> list[SourceFile]:
    """Every file under an MLflow artifact repository's root (folders walked), sorted by path."""
    files, folders = [], [None]
    while folders:
        folder = folders.pop()
        for info in repo.list_artifacts(folder):
            if info.is_dir:
                folders.append(info.path)
            else:
                files.append(SourceFile(info.path, int(info.file_size or 0)))
    return sorted(files, key=lambda f: f.path)


def _file_histories(files: Any, info: Any, keys: list[str]) -> dict[str, list[Any]]:
    """Metric points of a run of MLflow's file store, read by MLflow's own file-store code."""
    from mlflow.store.tracking.file_store import FileStore
    from mlflow.utils.file_utils import read_file_lines

    folder, names = files._get_run_files(info, "metric")
    return {
        key: [
            FileStore._get_metric_from_line(info.run_id, key, line, info.experiment_id)
            for line in read_file_lines(folder, key)  # type: ignore[no-untyped-call]
        ]
        if key in names
        else []
        for key in keys
    }


def _dataset_input(given: Any) -> dict[str, Any]:
    """An MLflow ``DatasetInput`` as the JSON Shipyard keeps (the shape MLflow's client sends)."""
    dataset = {f: getattr(given.dataset, f, None) for f in DATASET_FIELDS}
    return dataset_input(dataset, [(str(t.key or ""), str(t.value or "")) for t in given.tags or []])


def _logged_model_id(source: str) -> str | None:
    """The logged model (MLflow 3) a version was registered from: ``models:/m-…`` names it."""
    match = re.match(r"^models:/(m-[0-9a-f]+)$", source)
    return match.group(1) if match else None


class MlflowSource:
    """One MLflow store, read through ``mlflow.MlflowClient``.

    Example:
        >>> source = MlflowSource("mlruns")  # doctest: +SKIP
        >>> [e.name for e in source.experiments()]  # doctest: +SKIP
        ['Default', 'churn']
    """

    def __init__(self, uri: str) -> None:
        mlflow = _mlflow()
        self.uri = redact_uri(uri)
        self._uri = _resolve(uri)
        self._env = _env(self._uri)
        self._env.__enter__()
        self._files: Any = None  # MLflow's reader of a file store's folders (see _histories)
        try:
            self.client = mlflow.MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)
            if self._uri.startswith("file:"):
                from mlflow.store.tracking.file_store import FileStore

                self._files = FileStore(self._uri)  # type: ignore[no-untyped-call]
            self.client.search_experiments(max_results=1)  # fail now, naming the store
        except Exception as exc:
            self.close()
            raise StoreUnavailable(f"Cannot read the MLflow store {self.uri}: {mlflow_error(exc)}") from exc

    def close(self) -> None:
        self._env.__exit__(None, None, None)

    def __enter__(self) -> MlflowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- experiments and runs --------------------------------------------------------------------
    def experiments(self, names: Sequence[str] | None = None) -> list[SourceExperiment]:
        """Every experiment (deleted ones too), or those named (by name or MLflow id)."""
        from mlflow.entities import ViewType

        found, token = [], None
        while True:
            page = self.client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        out = [
            SourceExperiment(
                source_id=str(e.experiment_id),
                name=e.name,
                description=e.tags.get(_DESCRIPTION_TAG, ""),
                created_at=int(e.creation_time or 0),
                tags={k: v for k, v in e.tags.items() if k != _DESCRIPTION_TAG},
                deleted=e.lifecycle_stage == "deleted",
            )
            for e in found
        ]
        out.sort(key=lambda e: (e.created_at, e.source_id))
        if not names:
            return out
        wanted = list(dict.fromkeys(names))
        chosen = [e for e in out if e.name in wanted or e.source_id in wanted]
        missing = [n for n in wanted if not any(n in (e.name, e.source_id) for e in chosen)]
        if missing:
            known = ", ".join(repr(e.name) for e in out[:20])
            raise ExperimentNotFound(
                f"MLflow store {self.uri} has no experiment {missing[0]!r} (it has: {known})"
            )
        return chosen

    def run_pages(self, experiment_id: str) -> Iterator[list[Any]]:
        """The experiment's runs (deleted ones too), oldest first, a page at a time (MLflow ``Run``\\ s)."""
        from mlflow.entities import ViewType

        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                run_view_type=ViewType.ALL,
                max_results=PAGE_SIZE,
                order_by=["attributes.start_time ASC", "attributes.run_id ASC"],
                page_token=token,
            )
            if page:
                yield list(page)
            token = page.token
            if not token:
                return

    def read_run(self, mlrun: Any, experiment_name: str) -> SourceRun:
        """The whole run: its fields, full metric histories and artifact listing."""
        run = to_run(mlrun, experiment_name)
        histories = {}
        for key, points in self._histories(mlrun.info, sorted(run.metrics)).items():
            histories[key] = MetricHistory(
                key,
                [int(m.step) for m in points],
                [int(m.timestamp) for m in points],
                [float(m.value) for m in points],
            )
        uri = str(mlrun.info.artifact_uri or "")
        inputs = getattr(getattr(mlrun, "inputs", None), "dataset_inputs", None) or []
        used = getattr(getattr(mlrun, "inputs", None), "model_inputs", None) or []
        outputs = getattr(getattr(mlrun, "outputs", None), "model_outputs", None) or []
        source = SourceRun(
            run,
            histories,
            _walk(self._repo(uri)) if uri else [],
            artifact_uri=uri,
            inputs=[_dataset_input(given) for given in inputs],
            model_inputs=[str(m.model_id) for m in used],
        )
        for output in outputs:
            try:
                source.logged_models.append(self.logged_model(str(output.model_id), output.step, run.id))
            except Exception as exc:  # reported with the run; the run itself is imported
                source.unreadable.append(f"logged model {output.model_id}: {mlflow_error(exc)}")
        return source

    def logged_model(self, model_id: str, step: int | None, run_id: str) -> SourceLoggedModel:
        """A logged model (MLflow 3) of run ``run_id``, with its params, tags, metric points and the
        files at its artifact location."""
        found = self.client.get_logged_model(model_id)
        if found.source_run_id and found.source_run_id != run_id:
            raise InvalidInput(
                f"it was logged by run {found.source_run_id}; Shipyard keeps a logged model with the "
                "run that logged it"
            )
        points = {
            (p.key, int(p.step), int(p.timestamp), p.run_id or run_id): LoggedModelMetric(
                model_id,
                p.key,
                float(p.value),
                int(p.step),
                int(p.timestamp),
                p.run_id or run_id,
                p.dataset_name or "",
                p.dataset_digest or "",
            )
            for p in found.metrics or []
        }
        status = getattr(found.status, "name", str(found.status))
        model = LoggedModel(
            id=model_id,
            experiment_id=0,
            run_id=run_id,
            name=found.name,
            status=_LOGGED_STATUS.get(status, LoggedModelStatus.PENDING),
            created_at=int(found.creation_timestamp or 0),
            updated_at=int(found.last_updated_timestamp or found.creation_timestamp or 0),
            model_type=found.model_type or "",
            step=int(step) if step is not None else None,
            params=dict(found.params or {}),
            tags=dict(found.tags or {}),
            metrics=tuple(points.values()),
        )
        uri = str(found.artifact_location or "")
        return SourceLoggedModel(model, uri, _walk(self._repo(uri)) if uri else [])

    def copy_logged_model_files(self, model: SourceLoggedModel, put: Put) -> list[Copied]:
        """A logged model's files, each downloaded alone and handed to ``put`` (see :meth:`_copy`)."""
        return self._copy(self._repo(model.artifact_uri), model.files, put)

    def _histories(self, info: Any, keys: list[str]) -> dict[str, list[Any]]:
        """Every point of each metric. A file store's are read from the run's own folder by MLflow's
        file-store reader: its public ``get_metric_history`` first finds the run by listing every
        run folder of every experiment, which makes a whole import take time quadratic in the runs.
        Should MLflow's reader change, the public call is used."""
        if self._files is not None and keys:
            try:
                return _file_histories(self._files, info, keys)
            except (AttributeError, TypeError):
                self._files = None
        return {key: list(self.client.get_metric_history(info.run_id, key)) for key in keys}

    def _repo(self, artifact_uri: str) -> Any:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(artifact_uri, tracking_uri=self._uri, registry_uri=self._uri)

    def copy_run_files(self, artifact_uri: str, files: Sequence[SourceFile], put: Put) -> list[Copied]:
        """The run's files, each downloaded alone and handed to ``put`` (see :meth:`_copy`)."""
        return self._copy(self._repo(artifact_uri), files, put)

    def _copy(self, repo: Any, files: Sequence[SourceFile], put: Put) -> list[Copied]:
        """Download each file into a temporary folder, hand its path to ``put`` (which streams it
        into the blob store) and delete it: the disk holds one file at a time, memory none."""
        out = []
        with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-") as tmp:
            for f in files:
                local = Path(repo.download_artifacts(f.path, dst_path=tmp))
                try:
                    digest, size = put(local)
                finally:
                    local.unlink(missing_ok=True)
                out.append((f.path, digest, size))
        return out

    # -- the registry ------------------------------------------------------------------------------
    def models(self) -> list[SourceModel]:
        """Every registered model with its versions (oldest first) and aliases."""
        found, token = [], None
        while True:
            page = self.client.search_registered_models(max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        return [self._model(m) for m in sorted(found, key=lambda m: m.name)]

    def _model(self, m: Any) -> SourceModel:
        quoted = m.name.replace("'", "\\'")
        versions, token = [], None
        while True:
            page = self.client.search_model_versions(f"name = '{quoted}'", max_results=1000, page_token=token)
            versions.extend(page)
            token = page.token
            if not token:
                break
        return SourceModel(
            name=m.name,
            description=m.description or "",
            created_at=int(m.creation_timestamp or 0),
            updated_at=int(m.last_updated_timestamp or m.creation_timestamp or 0),
            tags=dict(m.tags or {}),
            aliases={str(a): int(v) for a, v in (m.aliases or {}).items()},
            versions=sorted((self._version(v) for v in versions), key=lambda v: v.version),
        )

    @staticmethod
    def _version(v: Any) -> SourceVersion:
        return SourceVersion(
            version=int(v.version),
            description=v.description or "",
            created_at=int(v.creation_timestamp or 0),
            updated_at=int(v.last_updated_timestamp or v.creation_timestamp or 0),
            user=v.user_id or "",
            source=v.source or "",
            run_id=v.run_id or None,
            status=str(v.status or ""),
            stage=str(v.current_stage or "None"),
            tags=dict(v.tags or {}),
            model_id=getattr(v, "model_id", None) or _logged_model_id(v.source or ""),
        )

    def _version_repo(self, name: str, version: int) -> Any:
        return self._repo(self.client.get_model_version_download_uri(name, str(version)))

    def version_files(self, name: str, version: int) -> list[SourceFile]:
        """Every file of a model version's folder (walked), sorted by path."""
        return _walk(self._version_repo(name, version))

    def copy_version_files(
        self, name: str, version: int, files: Sequence[SourceFile], put: Put
    ) -> list[Copied]:
        """A model version's files, each downloaded alone and handed to ``put`` (see :meth:`_copy`)."""
        return self._copy(self._version_repo(name, version), files, put)
