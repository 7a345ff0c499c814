"""The real SDK against a real server process: same results as local, exact counts under concurrency."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from server_process import LiveServer, child_env

from shipyard import Client
from shipyard.entities import RunStatus
from shipyard.errors import ConfigError
from shipyard.server import serve
from shipyard.store.rest import RestStore

pytestmark = pytest.mark.integration


def use_sdk(client: Client, experiment: str, root: Path) -> dict[str, Any]:
    """Log, search, read and download through ``client``; what a user would see, ids normalised."""
    (root / "data" / "nested").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("x,y\n1,2\n")
    (root / "data" / "nested" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (root / "model.pkl").write_bytes(b"model" * 1000)
    ids = []
    for i in range(3):
        with client.start_run(
            experiment=experiment, params={"depth": i, "lr": 0.1}, log_environment=False
        ) as run:
            for step in range(20):
                run.log_metrics({"loss": 1.0 / (step + 1 + i), "acc": step * i / 100})
            run.log_metric("nan_metric", float("nan"))
            run.log_artifact(root / "model.pkl")
            run.log_artifact(root / "data", "dataset")
            run.set_tag("team", "risk" if i % 2 else "growth")
            ids.append(run.id)
    frame = client.search_runs(
        experiment, filter="params.depth >= 1 and tags.team != 'x'", order_by="metrics.acc desc"
    )
    out = root / "downloaded"
    client.download_artifacts(ids[1], "", out)
    history = client.get_metric_history(ids[2], "loss")
    return {
        "order": [ids.index(r) for r in frame["run_id"]],
        "acc": frame["metrics.acc"].round(6).tolist(),
        "history": (history["step"].tolist(), history["value"].round(9).tolist()),
        "nan": repr(client.get_run(ids[0]).metrics["nan_metric"]),
        "artifacts": [(a.path, a.digest, a.size) for a in client.list_artifacts(ids[0])],
        "files": {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()},
        "status": [client.get_run(r).status for r in ids],
        "params": client.get_run(ids[2]).params,
    }


def test_sdk_against_a_live_server_gives_the_same_results_as_local(
    shared_server: LiveServer, client: Client, tmp_path: Path
) -> None:
    experiment = f"live-{uuid.uuid4().hex[:6]}"
    local = use_sdk(client, experiment, tmp_path / "local")
    remote_client = Client(tracking_uri=shared_server.url)
    try:
        assert isinstance(remote_client.store, RestStore)
        remote = use_sdk(remote_client, experiment, tmp_path / "remote")
    finally:
        remote_client.close()
    assert remote == local
    assert remote["order"] == [2, 1] and remote["status"] == [RunStatus.FINISHED] * 3
    assert "dataset/nested/b.bin" in remote["files"]


def test_health_docs_and_json_errors_over_a_real_socket(shared_server: LiveServer) -> None:
    with httpx.Client(base_url=shared_server.url) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/openapi.json").json()["info"]["title"] == "Shipyard"
        missing = http.get("/api/v1/runs/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
        bad = http.get("/api/v1/runs/x/artifacts/%2e%2e/%2e%2e/etc/passwd")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "unsafe_path"
    head = b"POST /api/v1/runs/search HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n"
    answer = raw_exchange(shared_server.port, head)
    assert answer.startswith(b"HTTP/1.1 413 ") and b'"code":"payload_too_large"' in answer


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send bytes no HTTP client would (a body it never sends) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"}}" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


_WRITER = """
import sys
from shipyard import Client
client = Client(tracking_uri=sys.argv[1])
proc, steps = int(sys.argv[2]), int(sys.argv[3])
params = {"proc": proc, "steps": steps}
with client.start_run(experiment=sys.argv[4], params=params, log_environment=False) as run:
    for step in range(steps):
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / steps, "proc": float(proc)})
client.close()
print(run.id)
"""


def test_eight_processes_logging_at_once_get_exact_counts(shared_server: LiveServer, tmp_path: Path) -> None:
    experiment = f"eight-{uuid.uuid4().hex[:6]}"
    steps = 700  # x 3 keys: 2,100 points per process
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, shared_server.url, str(i), str(steps), experiment],
            env=child_env(tmp_path / f"home{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    run_ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        run_ids.append(out.decode().strip().splitlines()[-1])
    store = RestStore(shared_server.url)
    try:
        runs = store.search_runs([store.get_experiment_by_name(experiment).id]).runs
        assert sorted(r.id for r in runs) == sorted(run_ids)
        for run in runs:
            assert run.params == {"proc": run.params["proc"], "steps": str(steps)}
            for key in ("loss", "acc", "proc"):
                history = store.get_metric_history(run.id, key)
                assert history.steps == list(range(steps)), (run.id, key)
            assert run.metrics["proc"] == float(run.params["proc"])
        assert not list(tmp_path.glob("home*/spool/*.jsonl"))  # nothing had to be spooled
    finally:
        store.close()


def test_two_workers_over_postgresql_get_exact_counts(make_server: Any, pg_uri: str) -> None:
    server: LiveServer = make_server(tracking_uri=pg_uri, workers=2)
    assert server.proc is not None
    assert len(psutil.Process(server.proc.pid).children()) >= 2  # the uvicorn worker processes
    experiment = "pg-workers"
    steps, threads = 400, 6
    ids: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        client = Client(tracking_uri=server.url)
        try:
            with client.start_run(experiment=experiment, params={"t": i}, log_environment=False) as run:
                for step in range(steps):
                    run.log_metrics({"a": float(step), "b": float(i)})
                    if step % 100 == 99:
                        run.flush()
                run.log_text(f"thread {i}", "who.txt")
            ids.append(run.id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not errors, errors
    check = Client(tracking_uri=server.url)
    try:
        frame = check.search_runs(experiment)
        assert sorted(frame["run_id"]) == sorted(ids) and len(ids) == threads
        for run_id in ids:
            assert check.get_metric_history(run_id, "a")["step"].tolist() == list(range(steps))
            assert len(check.get_metric_history(run_id, "b")) == steps
            assert check.read_artifact(run_id, "who.txt").startswith(b"thread ")
    finally:
        check.close()


def test_serve_refuses_an_http_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", "sqlite:///unused.db")  # restored after the test
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", "unused")
    with pytest.raises(ConfigError, match="needs a SQL tracking URI"):
        serve(port=1, tracking_uri="http://127.0.0.1:1")
