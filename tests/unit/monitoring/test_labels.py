"""Labels joined to logged predictions: by request id (from POST /feedback's rows and sy.log_feedback alike)
and by a user key; missing, duplicate, ambiguous, unmatched and late labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.errors import InvalidInput
from shipyard.monitoring.labels import join_labels, read_feedback, read_label_file, read_predictions
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.serving.routes import _feedback_rows
from shipyard.tracking import Client

T0 = 1_764_226_800_000


def log_requests(root: Path, n: int = 10, rows_per_request: int = 1) -> None:
    sink = ParquetPredictionLog(str(root), deployment="d", flush_interval_s=0.05)
    rows = []
    for i in range(n):
        frame = pd.DataFrame(
            {"x": np.arange(rows_per_request) + i, "user": [f"u{i}-{j}" for j in range(rows_per_request)]}
        )
        p = np.full(rows_per_request, 0.25 + 0.05 * (i % 10))
        rows.append(
            encode_row(
                {
                    "request_id": f"r{i}",
                    "ts": T0 + i * 1000,
                    "variant": "main",
                    "model": "m",
                    "model_version": "1",
                    "shadow": False,
                    "latency_ms": 1.0,
                    "n_rows": rows_per_request,
                    "inputs": frame,
                    "outputs": {
                        "predictions": (p > 0.5).astype(int).tolist(),
                        "probabilities": np.c_[1 - p, p].tolist(),
                    },
                    "status": 200,
                }
            )
        )
    sink.append(rows)
    sink.close()


def server_feedback(root: Path, items: list[dict[str, object]]) -> None:
    """Feedback rows exactly as POST /feedback builds and appends them."""
    sink = ParquetPredictionLog(str(root), deployment="d", flush_interval_s=0.05)
    sink.append_feedback(_feedback_rows(items))
    sink.close()


def joined(client: Client, root: Path, key: str | None = None):  # type: ignore[no-untyped-def]
    rows, features = read_predictions("d", root=root, client=client)
    return join_labels(rows, features, read_feedback("d", root=root, client=client), key=key)


def test_server_and_sdk_feedback_join_by_request_id(client: Client, tmp_path: Path) -> None:
    log_requests(tmp_path)
    server_feedback(tmp_path, [{"request_id": "r0", "label": 1}, {"request_id": "r1", "label": 0, "row": 0}])
    assert sy.log_feedback("d", [1, 1], request_ids=["r2", "r3"], root=tmp_path, client=client) == 2
    join = joined(client, tmp_path)
    labels = dict(zip(join.rows["request_id"], join.rows["label"], strict=True))
    assert (labels["r0"], labels["r1"], labels["r2"], labels["r3"]) == (1, 0, 1, 1)
    assert pd.isna(labels["r4"])  # missing: not labelled yet
    assert join.labelled.sum() == 4 and join.matched == 4 and join.unmatched == 0


def test_duplicate_labels_keep_the_latest_and_are_counted(client: Client, tmp_path: Path) -> None:
    log_requests(tmp_path)
    sy.log_feedback("d", [0], request_ids=["r5"], ts=T0 + 10, root=tmp_path, client=client)
    sy.log_feedback("d", [1], request_ids=["r5"], ts=T0 + 20, root=tmp_path, client=client)
    join = joined(client, tmp_path)
    assert join.rows.loc[join.rows["request_id"] == "r5", "label"].item() == 1
    assert join.duplicates == 1 and join.matched == 1


def test_late_labels_join_on_a_later_pass(client: Client, tmp_path: Path) -> None:
    log_requests(tmp_path)
    sy.log_feedback("d", [1, 0], request_ids=["r0", "r1"], root=tmp_path, client=client)
    first = joined(client, tmp_path).labelled.mean()
    sy.log_feedback("d", [1, 0, 1], request_ids=["r2", "r3", "r4"], root=tmp_path, client=client)
    assert (first, joined(client, tmp_path).labelled.mean()) == (0.2, 0.5)


def test_unmatched_and_ambiguous_labels_are_counted_not_joined(client: Client, tmp_path: Path) -> None:
    log_requests(tmp_path, n=3, rows_per_request=2)
    sy.log_feedback(
        "d", [1, 1, 0], request_ids=["nope", "r0", "r1"], rows=[None, None, 1], root=tmp_path, client=client
    )
    join = joined(client, tmp_path)
    assert (join.unmatched, join.ambiguous, int(join.labelled.sum())) == (1, 1, 1)
    hit = join.rows[join.labelled]
    assert (hit["request_id"].item(), hit["row"].item(), hit["label"].item()) == ("r1", 1, 0)
    assert "send 'row'" in join.notes[0]


def test_labels_join_by_user_key(client: Client, tmp_path: Path) -> None:
    log_requests(tmp_path, n=4, rows_per_request=2)
    sy.log_feedback("d", [1, 0], keys=["u2-1", "u3-0"], root=tmp_path, client=client)
    join = joined(client, tmp_path, key="user")
    got = join.features.loc[join.labelled, "user"].tolist()
    assert got == ["u2-1", "u3-0"] and join.rows.loc[join.labelled, "label"].tolist() == [1, 0]
    with pytest.raises(InvalidInput, match="Key column 'nobody'"):
        joined(client, tmp_path, key="nobody")


def test_a_labelled_file_joins_like_feedback(client: Client, tmp_path: Path) -> None:
    log_requests(tmp_path)
    path = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["r7", "r8", "r9"], "late": [1, None, 0]}).to_csv(path, index=False)
    labels = read_label_file(path, label="late")
    rows, features = read_predictions("d", root=tmp_path, client=client)
    join = join_labels(rows, features, labels)
    assert join.rows.loc[join.labelled, "request_id"].tolist() == ["r7", "r9"]
    with pytest.raises(InvalidInput, match="no column"):
        read_label_file(path, label="label")


def test_log_feedback_refuses_mismatched_input(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="exactly one of"):
        sy.log_feedback("d", [1], root=tmp_path, client=client)
    with pytest.raises(InvalidInput, match="2 labels for 1 request ids"):
        sy.log_feedback("d", [1, 0], request_ids=["a"], root=tmp_path, client=client)
