"""A packaged model serves from its folder alone: a fresh virtual environment, ``pip install -r
requirements.txt`` (PyPI for the dependencies, the vendored wheel for Shipyard), then the Dockerfile's
command, ``shipyard serve model``, as a real process that answers like the original model.

No Docker needed: this is what ``docker build`` + ``docker run`` do, minus the image. The first run
downloads the dependencies (pandas, scikit-learn, ...); pip's cache makes later runs quick.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from server_process import free_port

from polling_helpers import wait_until
from shipyard.registry.flavors import save_model_dir
from shipyard.registry.packaging import MODEL_REF_ENV, package_model

pytestmark = pytest.mark.integration

INSTALL_TIMEOUT = 900  # a cold pip cache downloads ~200 MB
_KEEP_ENV = ("HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CACHE_DIR")


def clean_env(home: Path) -> dict[str, str]:
    """An environment with nothing from this checkout or its venv: no PYTHONPATH, no VIRTUAL_ENV."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", SHIPYARD_HOME=str(home), SHIPYARD_SYSTEM_METRICS="false")
    return env


def flights(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    delay = rng.normal(10, 20, n).round(1)
    delay[::7] = np.nan
    return pd.DataFrame(
        {
            "dep_delay": delay,
            "distance": rng.integers(100, 3000, n),
            "carrier": rng.choice(["UA", "AA", "DL", "B6"], n),
        }
    )


def train(frame: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["dep_delay", "distance"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["carrier"]),
        ]
    )
    target = ((frame["dep_delay"].fillna(0) > 15) | (frame["carrier"] == "B6")).astype(int)
    model = Pipeline(
        [("features", features), ("clf", RandomForestClassifier(n_estimators=20, random_state=0))]
    )
    return model.fit(frame, target)


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"shipyard serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(
        healthy, lambda: f"shipyard serve to be healthy:\n{log.read_text()}", timeout=timeout, interval=0.2
    )


def test_a_packaged_model_installs_in_a_fresh_venv_and_serves_the_same_predictions(tmp_path: Path) -> None:
    train_frame = flights(300, seed=0)
    model = train(train_frame)
    save_model_dir(model, tmp_path / "model-dir", input_example=train_frame.head(5))
    context = tmp_path / "context"
    package_model(tmp_path / "model-dir", context, model_ref="models:/flights@prod")

    env = clean_env(tmp_path / "home")
    env[MODEL_REF_ENV] = "models:/flights@prod"  # as the Dockerfile's ENV line sets it
    venv = tmp_path / "venv"
    started = time.monotonic()
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run([*pip, "-r", "requirements.txt"], cwd=context, env=env, timeout=INSTALL_TIMEOUT)
    installed = time.monotonic() - started
    where = run(
        [str(venv / "bin" / "python"), "-c", "import shipyard; print(shipyard.__file__)"], context, env, 60
    )
    assert where.stdout.strip().startswith(str(venv)), (
        where.stdout
    )  # Shipyard from the wheel, not this checkout

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "shipyard"), "serve", "model", "--port", str(port), "--log-level", "warning"],
            cwd=context,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        served = time.monotonic() - started
        frame = flights(25, seed=1)
        rows = json.loads(frame.to_json(orient="records"))
        response = httpx.post(f"{url}/predict", json={"records": rows}, params={"proba": "true"}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"] == model.predict(frame).tolist()
        np.testing.assert_allclose(body["probabilities"], model.predict_proba(frame), rtol=1e-9)
        assert body["model"] == "models:/flights@prod"
        assert response.headers["x-request-id"] == body["request_id"]
        bad = httpx.post(f"{url}/predict", json={"records": [{"dep_delay": "late"}]}, timeout=30)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "signature_mismatch"
        info = httpx.get(f"{url}/info", timeout=10).json()
        assert info["flavor"] == "sklearn" and info["signature"]["inputs"][2]["name"] == "carrier"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    print(f"\nvenv + pip install: {installed:.1f}s; serving after {served:.1f}s")


def test_several_workers_serve_the_same_model_from_the_environment(tmp_path: Path) -> None:
    """``--workers 2``: uvicorn's factory mode, each worker building the one-variant deployment that
    ``serve_deployment`` hands over in ``SHIPYARD_SERVE_DEPLOYMENT``."""
    frame = flights(200, seed=2)
    model = train(frame)
    save_model_dir(model, tmp_path / "model", input_example=frame.head(5))
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home"), "SHIPYARD_SYSTEM_METRICS": "false"}
    shipyard = Path(sys.executable).parent / "shipyard"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(shipyard), "serve", str(tmp_path / "model"), "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        rows = json.loads(frame.head(10).to_json(orient="records"))
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [client.post("/predict", json={"records": rows}) for _ in range(20)]
        assert all(a.status_code == 200 for a in answers), answers[0].text
        assert {json.dumps(a.json()["predictions"]) for a in answers} == {
            json.dumps(model.predict(frame.head(10)).tolist())
        }
        assert len({a.json()["request_id"] for a in answers}) == 20
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert "Started parent process" in log.read_text() or "worker" in log.read_text().lower(), log.read_text()
