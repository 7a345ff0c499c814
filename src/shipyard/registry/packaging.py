"""Package a model directory as a self-contained Docker build context: ``docker build`` needs nothing else.

The context holds the model (copied file by file, each verified against its BLAKE3 digest), a pinned
``requirements.txt``, Shipyard itself as a wheel built here from the installed package (Shipyard is not
on PyPI), a ``Dockerfile`` (slim Python, non-root, health-checked, ``shipyard serve``), a
``.dockerignore`` and a ``README.md`` with the signature and an example request::

    OUT/
      Dockerfile  .dockerignore  README.md  requirements.txt
      model/      shipyard-model.yaml, model.skops, input_example.json, ...
      wheels/     shipyard-<version>-py3-none-any.whl

The context is written to a temporary sibling folder and renamed into place, so ``OUT`` is either
complete or untouched. The wheel is reproducible: same sources, same bytes (fixed timestamps, sorted
entries), so Docker's layer cache survives repackaging.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import blake3

from shipyard.errors import ConfigError, DigestMismatch, InvalidInput, UnsafePath
from shipyard.registry.flavors import ModelMeta
from shipyard.registry.signature import Signature

__all__ = ["MODEL_REF_ENV", "PackageResult", "build_shipyard_wheel", "package_model", "runtime_requirements"]

MODEL_FILE = "shipyard-model.yaml"  # flavors.META_FILE
SERVE_PORT = 8080
MODEL_REF_ENV = "SHIPYARD_SERVE_MODEL_REF"
"""The image's environment variable naming its model (``models:/churn@prod``): ``shipyard serve`` answers
under this name instead of the folder's. The one name for it: the Dockerfile sets it, the CLI reads it."""
_DIST = "shipyard"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: reproducible wheels
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")
_EXTRA_MARKER = re.compile(r"\bextra\s*==")
_CHUNK = 1024 * 1024
_SERVING_EXTRAS = ("orjson",)  # optional speed-ups the model server uses when installed


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package_model` wrote.

    Example:
        >>> result = package_model(Path("churn-model"), Path("churn-image"))  # doctest: +SKIP
        >>> result.build_command
        'docker build -t churn-model churn-image'
    """

    out: Path
    model_dir: Path
    wheel: Path
    requirements: list[str]
    image: str

    @property
    def build_command(self) -> str:
        """The ``docker build`` command for this context."""
        return f"docker build -t {self.image} {self.out}"


def package_model(
    model_dir: Path,
    out: Path,
    *,
    model_ref: str = "",
    base_image: str = "python:3.11-slim",
    overwrite: bool = False,
) -> PackageResult:
    """Write a Docker build context serving ``model_dir`` into the folder ``out``.

    Args:
        model_dir: A model directory (``shipyard-model.yaml`` inside, as ``save_model_dir`` writes it).
        out: The build context to create; must be absent or empty unless ``overwrite``.
        model_ref: How the served model names itself (``models:/churn@prod``); default: its folder name.
        base_image: The Python base image of the Dockerfile.
        overwrite: Replace the contents of a non-empty ``out``.

    Raises:
        InvalidInput: ``model_dir`` is not a model directory, or ``out`` is not empty.
        DigestMismatch: a model file does not match the digest recorded in ``shipyard-model.yaml``.

    Example:
        >>> result = package_model(Path("churn-model"), Path("build/churn"), model_ref="models:/churn@prod")
        ... # doctest: +SKIP
        >>> print(result.build_command)  # doctest: +SKIP
        docker build -t churn build/churn
    """
    model_dir, out = Path(model_dir), Path(out)
    meta = ModelMeta.read(model_dir)
    _check_out(model_dir, out, overwrite)
    ref = model_ref or model_dir.resolve().name
    image = _image_name(ref)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        _copy_model(model_dir, staging / "model", meta)
        wheel = build_shipyard_wheel(staging / "wheels")
        requirements = runtime_requirements(meta.requirements)
        lines = [*requirements, f"./wheels/{wheel.name}"]
        (staging / "requirements.txt").write_text(_requirements_text(lines, ref))
        (staging / "Dockerfile").write_text(_dockerfile(base_image, ref))
        (staging / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n.git\n")
        (staging / "README.md").write_text(_readme(meta, ref, image, _input_example(model_dir)))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return PackageResult(out, out / "model", out / "wheels" / wheel.name, lines, image)


def _check_out(model_dir: Path, out: Path, overwrite: bool) -> None:
    source, target = model_dir.resolve(), out.resolve()
    if target == source or source.is_relative_to(target):
        raise InvalidInput(
            f"The output folder {out} holds the model {model_dir}; choose another output folder"
        )
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"The output {out} is a file, not a folder; choose a folder for the build context")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InvalidInput(
            f"The output folder {out} is not empty; choose an empty or new folder, "
            "or pass overwrite=True (CLI: --overwrite) to replace its contents"
        )


def _copy_model(model_dir: Path, dest: Path, meta: ModelMeta) -> None:
    """Copy the files ``shipyard-model.yaml`` lists (and it), verifying each digest as it is copied."""
    dest.mkdir()
    shutil.copyfile(model_dir / MODEL_FILE, dest / MODEL_FILE)
    for name, entry in sorted(meta.files.items()):
        relative = PurePosixPath(str(name))
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise UnsafePath(f"{MODEL_FILE} of {model_dir} lists an unsafe file path {name!r}")
        source, target = model_dir / relative, dest / relative
        if not source.is_file():
            raise InvalidInput(f"{model_dir} lacks {name}, which {MODEL_FILE} lists; re-save the model")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = _copy_hashing(source, target)
        expected = str(entry.get("digest", ""))
        if digest != expected:
            raise DigestMismatch(
                f"{source} does not match its digest in {MODEL_FILE} (expected {expected[:16]}…, "
                f"got {digest[:16]}…): the file changed after the model was saved; re-save the model",
                details={"file": str(name), "expected": expected, "actual": digest},
            )


def _copy_hashing(source: Path, target: Path) -> str:
    hasher = blake3.blake3()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            hasher.update(chunk)
            dst.write(chunk)
    return hasher.hexdigest()


def _input_example(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / "input_example.json"
    try:
        example = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return example if isinstance(example, dict) else None


# -- requirements -----------------------------------------------------------------------------------------
def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(model_requirements: list[str]) -> list[str]:
    """Pinned requirements to serve a model: the model's own, then Shipyard's runtime dependencies at the
    versions installed here (the model's pin wins when both name a package). Shipyard itself is left out:
    it is vendored as a wheel.

    Example:
        >>> runtime_requirements(["scikit-learn==1.9.1"])[0]  # doctest: +SKIP
        'scikit-learn==1.9.1'
    """
    lines: list[str] = []
    seen: set[str] = set()
    for requirement in model_requirements:
        match = _REQ_NAME.match(requirement)
        if match is None or _normalize(match.group(1)) == _DIST:
            continue
        seen.add(_normalize(match.group(1)))
        lines.append(requirement.strip())
    for requirement in [*(_distribution().requires or []), *_SERVING_EXTRAS]:
        spec, _, marker = requirement.partition(";")
        match = _REQ_NAME.match(spec)
        if match is None or _EXTRA_MARKER.search(marker) or _normalize(match.group(1)) in seen:
            continue
        name, extras = match.group(1), match.group(2) or ""
        try:
            pinned = f"{name}{extras}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            if requirement in _SERVING_EXTRAS:
                continue
            pinned = spec.strip()  # not installed here (e.g. its marker is false): leave it to pip
        seen.add(_normalize(name))
        lines.append(f"{pinned}; {marker.strip()}" if marker.strip() else pinned)
    return lines


def _requirements_text(lines: list[str], ref: str) -> str:
    header = (
        f"# Requirements to serve {ref}: the model's pinned requirements, Shipyard's runtime\n"
        "# dependencies pinned to the versions it was packaged with, and Shipyard itself (vendored wheel).\n"
        "# Install from this folder: pip install -r requirements.txt\n"
    )
    return header + "\n".join(lines) + "\n"


# -- the Shipyard wheel -----------------------------------------------------------------------------------
def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "Shipyard is importable but not installed as a distribution, so it cannot be packaged; "
            "install it (pip install -e . in a checkout, or pip install shipyard)"
        ) from None


def _package_dir() -> Path:
    spec = importlib.util.find_spec(_DIST)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("Cannot locate the shipyard package directory to build its wheel")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(path in the wheel, file) for every file of the package: code, py.typed, migration templates."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and not path.name.endswith(_SKIP_SUFFIXES):
            yield f"{_DIST}/{relative.as_posix()}", path


def _metadata_text(dist: importlib.metadata.Distribution) -> str:
    meta = dist.metadata
    lines = ["Metadata-Version: 2.1", f"Name: {_DIST}", f"Version: {dist.version}"]
    for key in ("Summary", "License", "Requires-Python"):
        lines += [f"{key}: {value}" for value in (meta.get_all(key) or [])[:1]]
    lines += [f"Requires-Dist: {r}" for r in meta.get_all("Requires-Dist") or []]
    lines += [f"Provides-Extra: {e}" for e in meta.get_all("Provides-Extra") or []]
    return "\n".join(lines) + "\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_shipyard_wheel(dest: Path) -> Path:
    """Build ``shipyard-<version>-py3-none-any.whl`` into ``dest`` from the installed package, offline.

    The wheel holds every file of the importable ``shipyard`` package (no ``__pycache__``) and a
    dist-info with the installed distribution's metadata, its console script and a RECORD of sha256
    hashes, so ``pip install`` takes it and ``shipyard`` works.

    Example:
        >>> build_shipyard_wheel(Path("wheels")).name  # doctest: +SKIP
        'shipyard-0.1.0-py3-none-any.whl'
    """
    dist = _distribution()
    version = dist.version.replace("-", "_")
    info = f"{_DIST}-{version}.dist-info"
    entry_points = (
        dist.read_text("entry_points.txt") or "[console_scripts]\nshipyard = shipyard.cli.main:main\n"
    )
    members: list[tuple[str, bytes]] = [
        (name, path.read_bytes()) for name, path in _package_files(_package_dir())
    ]
    members += [
        (f"{info}/METADATA", _metadata_text(dist).encode()),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: shipyard.registry.packaging\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{info}/entry_points.txt", entry_points.encode()),
    ]
    record = "\n".join([*(_record_line(n, d) for n, d in members), f"{info}/RECORD,,"]) + "\n"
    members.append((f"{info}/RECORD", record.encode()))
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{_DIST}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in members:
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return wheel


# -- Dockerfile and README --------------------------------------------------------------------------------
def _image_name(ref: str) -> str:
    base = ref.removeprefix("models:/").split("@")[0].strip("/").lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", base).strip(".-_")
    return name or "shipyard-model"


_HEALTHCHECK = (
    '["python", "-c", "import sys, urllib.request; '
    f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{SERVE_PORT}/health', timeout=3).status != 200)\"]"
)


def _dockerfile(base_image: str, ref: str) -> str:
    return f"""\
# Serves {ref} with `shipyard serve` (written by shipyard.registry.packaging; build: docker build -t NAME .)
FROM {base_image}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    SHIPYARD_HOME=/tmp/shipyard \\
    {MODEL_REF_ENV}={json.dumps(ref)}

WORKDIR /app
# Dependencies first: this layer is reused as long as requirements.txt and the wheel do not change.
COPY requirements.txt ./
COPY wheels/ ./wheels/
RUN pip install --no-cache-dir -r requirements.txt

COPY model/ ./model/
RUN useradd --create-home --uid 10001 shipyard
USER 10001

EXPOSE {SERVE_PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \\
    CMD {_HEALTHCHECK}
ENTRYPOINT ["shipyard", "serve"]
CMD ["/app/model", "--host", "0.0.0.0", "--port", "{SERVE_PORT}"]
"""


def _example_records(signature: Signature | None, example: dict[str, Any] | None) -> list[dict[str, Any]]:
    if example and isinstance(example.get("columns"), list) and isinstance(example.get("data"), list):
        return [dict(zip(example["columns"], row, strict=False)) for row in example["data"][:2]]
    samples = {"int": 0, "uint": 0, "float": 0.0, "bool": False}
    inputs = signature.inputs if signature is not None else []
    record = {c.name: samples.get(re.sub(r"\d+$", "", c.type), "text") for c in inputs}
    return [record] if record else [{"feature": 0.0}]


def _signature_table(signature: Signature | None) -> str:
    if signature is None or not signature.inputs:
        return "The model has no signature: inputs are passed to it unchecked.\n"
    rows = ["| column | type | nullable |", "|---|---|---|"]
    rows += [f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} |" for c in signature.inputs]
    output = signature.output
    tail = f"\nOutput: `{output.type}`, shape {list(output.shape)}." if output is not None else ""
    tail += " Class probabilities: `?proba=true`." if signature.proba else ""
    return "\n".join(rows) + "\n" + tail + "\n"


def _readme(meta: ModelMeta, ref: str, image: str, example: dict[str, Any] | None) -> str:
    body = json.dumps({"records": _example_records(meta.signature, example)}, default=str).replace(
        "'", "'\\''"
    )
    requirements = "\n".join(f"- `{r}`" for r in meta.requirements) or "- (none recorded)"
    return f"""\
# {ref}: a Shipyard model server image

This folder is a self-contained Docker build context: the model ({meta.flavor}
flavor, task {meta.task or "unknown"}), Shipyard as a wheel in `wheels/`, pinned `requirements.txt`,
and a `Dockerfile` that runs `shipyard serve` as a non-root user on port {SERVE_PORT}, with a health check
on `/health`.

## Build and run

```console
docker build -t {image} .
docker run --rm -p {SERVE_PORT}:{SERVE_PORT} {image}
```

Without Docker (Python {meta.python or "3.11"}):

```console
python -m venv .venv && .venv/bin/pip install -r requirements.txt
.venv/bin/shipyard serve model --port {SERVE_PORT}
```

## Predict

```console
curl -s http://127.0.0.1:{SERVE_PORT}/predict -H 'Content-Type: application/json' \\
  -d '{body}'
```

The answer is `{{"predictions": [...], "variant": "main", "model": "{ref}", "model_version": ...,
"request_id": ...}}`. Send columns instead of records with `{{"columns": {{"name": [values, ...]}}}}`.
`GET /info` describes the model, `GET /ready` says it is loaded, `/docs` has the API.

## Signature

{_signature_table(meta.signature)}
## Model requirements

{requirements}
"""
