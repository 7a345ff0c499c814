"""package_model writes a complete, pinned, non-root Docker build context, or nothing at all."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import DigestMismatch, InvalidInput
from shipyard.registry.flavors import save_model_dir
from shipyard.registry.packaging import build_shipyard_wheel, package_model, runtime_requirements


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 60), "income": rng.normal(50, 10, 60)})
    target = (frame["income"] > 50).astype(int)
    path = tmp_path_factory.mktemp("models") / "churn"
    save_model_dir(LogisticRegression().fit(frame, target), path, input_example=frame.head(3))
    return path


@pytest.fixture(scope="module")
def context(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ctx") / "image"
    package_model(model_dir, out, model_ref="models:/churn@prod")
    return out


def test_the_context_holds_everything_docker_build_needs(context: Path, model_dir: Path) -> None:
    names = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    version = importlib.metadata.version("shipyard")
    assert {"Dockerfile", ".dockerignore", "README.md", "requirements.txt"} <= names
    assert f"wheels/shipyard-{version}-py3-none-any.whl" in names
    for source in model_dir.iterdir():
        assert (context / "model" / source.name).read_bytes() == source.read_bytes()
    assert not [p for p in context.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_the_dockerfile_runs_shipyard_serve_as_a_non_root_user_with_a_healthcheck(context: Path) -> None:
    dockerfile = (context / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert (
        lines[[i for i, line in enumerate(lines) if line.startswith("FROM ")][0]] == "FROM python:3.11-slim"
    )
    assert "RUN pip install --no-cache-dir -r requirements.txt" in lines
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert dockerfile.index("USER ") < dockerfile.index("ENTRYPOINT")
    assert "EXPOSE 8080" in lines
    assert "HEALTHCHECK" in dockerfile and "urllib.request" in dockerfile and "/health" in dockerfile
    assert "curl" not in dockerfile.split("HEALTHCHECK")[1]
    assert 'ENTRYPOINT ["shipyard", "serve"]' in lines
    assert 'CMD ["/app/model", "--host", "0.0.0.0", "--port", "8080"]' in lines
    assert 'SHIPYARD_SERVE_MODEL_REF="models:/churn@prod"' in dockerfile


def test_the_healthcheck_command_is_valid_python(context: Path) -> None:
    line = next(line for line in (context / "Dockerfile").read_text().splitlines() if "urllib" in line)
    code = line.split('"-c", ')[1].rstrip("]")
    compile(__import__("json").loads(code), "<healthcheck>", "exec")


def test_requirements_are_pinned_and_end_with_the_vendored_wheel(context: Path) -> None:
    lines = [
        line
        for line in (context / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    version = importlib.metadata.version("shipyard")
    assert lines[-1] == f"./wheels/shipyard-{version}-py3-none-any.whl"
    pins = lines[:-1]
    assert all("==" in line for line in pins), pins
    names = [line.split("==")[0].lower() for line in pins]
    assert "scikit-learn" in names and "fastapi" in names and "uvicorn" in names
    assert len(names) == len(set(names))
    assert "shipyard" not in names


def test_the_models_pins_win_over_shipyards(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = runtime_requirements(["numpy==1.26.0", "shipyard==0.0.1", "scikit-learn==1.9.1"])
    assert lines[:2] == ["numpy==1.26.0", "scikit-learn==1.9.1"]
    assert [line for line in lines if line.startswith("numpy")] == ["numpy==1.26.0"]
    assert not [line for line in lines if line.startswith("shipyard")]


def test_the_wheel_is_a_valid_wheel_with_dist_info_and_record(context: Path) -> None:
    wheel = next((context / "wheels").glob("*.whl"))
    version = importlib.metadata.version("shipyard")
    info = f"shipyard-{version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert "shipyard/__init__.py" in names and "shipyard/py.typed" in names
        assert "shipyard/cli/main.py" in names and "shipyard/serving/app.py" in names
        assert "shipyard/store/sql/migrations/script.py.mako" in names
        assert any(n.startswith("shipyard/store/sql/migrations/versions/0001") for n in names)
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        metadata = archive.read(f"{info}/METADATA").decode()
        assert f"Name: shipyard\nVersion: {version}\n" in metadata
        assert "Requires-Dist: fastapi" in metadata
        assert "Tag: py3-none-any" in archive.read(f"{info}/WHEEL").decode()
        assert "shipyard = shipyard.cli.main:main" in archive.read(f"{info}/entry_points.txt").decode()
        record = archive.read(f"{info}/RECORD").decode().splitlines()
        assert f"{info}/RECORD,," in record
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("RECORD"):
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name
        assert set(names) == {line.rsplit(",", 2)[0] for line in record}


def test_the_wheel_is_reproducible(tmp_path: Path) -> None:
    first = build_shipyard_wheel(tmp_path / "a").read_bytes()
    assert build_shipyard_wheel(tmp_path / "b").read_bytes() == first


def test_pip_accepts_the_wheel(context: Path, tmp_path: Path) -> None:
    """pip's own validation (no dependencies, no index): the wheel installs and the script is made."""
    wheel = next((context / "wheels").glob("*.whl"))
    target = tmp_path / "target"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (target / "bin" / "shipyard").is_file()
    assert (target / "shipyard" / "serving" / "app.py").is_file()


def test_the_readme_shows_the_signature_and_an_example_request(context: Path) -> None:
    readme = (context / "README.md").read_text()
    assert "| `age` | int64 | no |" in readme
    assert "| `income` | float64 | yes |" in readme
    assert "docker build -t churn ." in readme
    assert "curl -s http://127.0.0.1:8080/predict" in readme and '"records": [{"age": ' in readme


def test_a_non_empty_output_is_refused_unless_overwrite(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty.*overwrite=True"):
        package_model(model_dir, out)
    assert (out / "keep.txt").read_text() == "mine"
    result = package_model(model_dir, out, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert result.out == out and (out / "Dockerfile").is_file()
    assert result.image == "churn"


def test_packaging_into_the_model_directory_itself_is_refused(model_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="holds the model"):
        package_model(model_dir, model_dir.parent, overwrite=True)


def test_a_tampered_model_file_is_refused_and_nothing_is_written(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    copy.mkdir()
    for source in model_dir.iterdir():
        (copy / source.name).write_bytes(source.read_bytes())
    model_file = next(p for p in copy.iterdir() if p.name.startswith("model."))
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    with pytest.raises(DigestMismatch, match=model_file.name):
        package_model(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tampered"]


def test_a_folder_without_model_metadata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a model directory"):
        package_model(tmp_path, tmp_path / "out")
