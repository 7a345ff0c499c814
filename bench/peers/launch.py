"""BentoML and MLServer for ``bench/bench_serving.py``: their environments, commands, requests and answers.

Each peer runs from a virtualenv of its own, ``bench/.venv-bentoml`` and ``bench/.venv-mlserver``
(git-ignored): BentoML and MLServer pin FastAPI, uvicorn, pydantic and OpenTelemetry differently from
Shipyard and from each other. Their pins are the ``bench-bentoml`` and ``bench-mlserver`` extras in
``pyproject.toml``; on top, each gets exactly ``.venv``'s scikit-learn (and numpy major), read at run
time, because it loads the pipeline the benchmark ``joblib.dump``-ed in ``.venv``. ``make
bench/.venv-bentoml/bin/python`` (and ``…-mlserver…``) creates one; :func:`ensure_env` does the same on
first use, and re-aligns scikit-learn when ``.venv``'s has moved.

    >>> peer = PEERS["mlserver"]
    >>> ensure_env(peer)                      # creates bench/.venv-mlserver on first use (a few minutes)
    >>> argv, env = command(peer, Path("/tmp/model.joblib"), Path("/tmp/home"), 8080, workers=1)
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PEERS", "Peer", "answers", "command", "ensure_env", "model_pins", "v2_body", "version"]

PEERS_DIR = Path(__file__).resolve().parent
BENCH_DIR = PEERS_DIR.parent
PYPROJECT = BENCH_DIR.parent / "pyproject.toml"
MODEL_NAME = "flights"  # MLServer's model name, as in peers/mlserver/model-settings.json


@dataclass(frozen=True)
class Peer:
    """One peer server: where it lives and how it is asked."""

    system: str  # bentoml | mlserver: also the venv's suffix and the extra's
    name: str  # as the table's column says it
    ready_path: str  # 200 once it serves
    predict_path: str
    started_line: str  # what each worker process logs once it can serve ("" → trust ready_path)

    @property
    def venv(self) -> Path:
        return BENCH_DIR / f".venv-{self.system}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def extra(self) -> str:
        return f"bench-{self.system}"

    @property
    def make_target(self) -> str:
        return f"make bench/.venv-{self.system}/bin/python"


PEERS = {
    "bentoml": Peer("bentoml", "BentoML", "/readyz", "/predict", "Service FlightsDelay initialized"),
    "mlserver": Peer(
        "mlserver",
        "MLServer",
        f"/v2/models/{MODEL_NAME}/ready",
        f"/v2/models/{MODEL_NAME}/infer",
        "",  # its inference workers log nothing per process; the model's ready route waits for them
    ),
}


# -- environments -----------------------------------------------------------------------------------
def model_pins() -> list[str]:
    """This interpreter's scikit-learn, exactly, and its numpy major: what a pickled pipeline needs."""
    import numpy
    import sklearn

    major = int(numpy.__version__.split(".")[0])
    return [f"scikit-learn=={sklearn.__version__}", f"numpy>={major},<{major + 1}"]


def extra_pins(extra: str) -> list[str]:
    """The requirements of one optional-dependencies extra of pyproject.toml."""
    with PYPROJECT.open("rb") as f:
        pins: list[str] = tomllib.load(f)["project"]["optional-dependencies"][extra]
    return pins


def _peer_versions(peer: Peer) -> tuple[str, str] | None:
    """(scikit-learn, numpy) versions in the peer's venv; None when it cannot import them."""
    out = subprocess.run(
        [
            str(peer.python),
            "-c",
            "import json, numpy, sklearn; print(json.dumps([sklearn.__version__, numpy.__version__]))",
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return None
    sklearn_version, numpy_version = json.loads(out.stdout)
    return sklearn_version, numpy_version


def _pip_install(peer: Peer, requirements: list[str]) -> None:
    cmd = [str(peer.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]
    if subprocess.run(cmd).returncode != 0:
        raise RuntimeError(
            f"could not install {' '.join(requirements)} into {peer.venv}; create it by hand with "
            f"`{peer.make_target}` (the pins are pyproject.toml's {peer.extra} extra), or run the "
            "benchmark with --no-peers"
        )


def ensure_env(peer: Peer) -> None:
    """Create the peer's venv when it is missing; align its scikit-learn and numpy with this one's."""
    pins = model_pins()
    if not peer.python.exists():
        print(
            f"{peer.venv} is missing: creating it with pyproject.toml's {peer.extra} extra and {pins} "
            f"(what `{peer.make_target}` does; a few minutes, once)",
            file=sys.stderr,
            flush=True,
        )
        subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(peer.venv)], check=True)
        _pip_install(peer, [*extra_pins(peer.extra), *pins])
    want_sklearn = pins[0].partition("==")[2]
    want_major = pins[1].partition(">=")[2].partition(",")[0]
    found = _peer_versions(peer)
    if found is None or found[0] != want_sklearn or found[1].split(".")[0] != want_major:
        print(
            f"{peer.venv} has scikit-learn/numpy {found}, .venv has {pins}: installing those, since "
            "the peer loads the pipeline pickled here",
            file=sys.stderr,
            flush=True,
        )
        _pip_install(peer, pins)


# -- commands ---------------------------------------------------------------------------------------
def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def command(
    peer: Peer, model: Path, home: Path, port: int, workers: int, host: str = "127.0.0.1"
) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment that serve ``model`` (a joblib file) on ``host:port``."""
    bin_dir = peer.python.parent
    if peer.system == "bentoml":
        argv = [
            str(bin_dir / "bentoml"),
            "serve",
            "bentoml_service:FlightsDelay",
            "--working-dir",
            str(PEERS_DIR),
            "--host",
            host,
            "--port",
            str(port),
        ]
        env = {
            "BENCH_MODEL_PATH": str(model),
            "BENCH_WORKERS": str(workers),
            "BENTOML_HOME": str(home / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "True",
        }
        return argv, env
    # MLServer serves a folder: model-settings.json and the model side by side, settings.json for the
    # server; the ports and worker count are this run's, the rest is peers/mlserver/ as committed.
    folder = home / f"mlserver-w{workers}-{port}"
    folder.mkdir(parents=True)
    shutil.copy(PEERS_DIR / "mlserver" / "model-settings.json", folder)
    (folder / "model.joblib").symlink_to(model)
    settings: dict[str, Any] = json.loads((PEERS_DIR / "mlserver" / "settings.json").read_text())
    settings.update(
        http_port=port,
        grpc_port=_free_port(host),
        metrics_port=_free_port(host),
        parallel_workers=workers,
        host=host,
    )
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    return [str(bin_dir / "mlserver"), "start", str(folder)], {}


# -- requests and answers ---------------------------------------------------------------------------
def v2_body(columns: list[str], rows: list[list[Any]], categorical: set[str]) -> bytes:
    """An Open Inference Protocol (V2) request of the rows, one input per column, as MLServer's
    ``PandasCodec.encode_request`` writes it: strings as BYTES with the ``str`` content type, numbers as
    FP64 with null for missing, the whole request marked ``pd`` so the runtime decodes a DataFrame."""
    inputs = []
    for i, name in enumerate(columns):
        data = [row[i] for row in rows]
        if name in categorical:
            inputs.append(
                {
                    "name": name,
                    "shape": [len(data), 1],
                    "datatype": "BYTES",
                    "parameters": {"content_type": "str"},
                    "data": data,
                }
            )
        else:
            inputs.append({"name": name, "shape": [len(data), 1], "datatype": "FP64", "data": data})
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


def answers(system: str, body: Any) -> list[Any]:
    """The predictions in a decoded JSON answer of ``system`` (shipyard, mlflow, bentoml, mlserver)."""
    if system == "bentoml":
        return list(body)
    if system == "mlserver":
        return list(body["outputs"][0]["data"])
    return list(body["predictions"])


def version(peer: Peer) -> str:
    """The peer's distribution version in its venv ("?" when it cannot say)."""
    out = subprocess.run(
        [str(peer.python), "-c", f"import importlib.metadata as m; print(m.version({peer.system!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else "?"
