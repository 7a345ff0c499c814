"""BentoML's side of ``bench/bench_serving.py``: the flights pipeline behind one batchable endpoint.

What a user would write to serve a scikit-learn pipeline with BentoML 1.4 (the ``@bentoml.service`` API),
adaptive batching on. It runs in ``bench/.venv-bentoml`` (``make bench/.venv-bentoml/bin/python``), never in
Shipyard's environment, and loads the pipeline the benchmark saved with ``joblib.dump`` in ``.venv`` (the
same scikit-learn version is installed there for that reason).

    BENCH_MODEL_PATH=/tmp/model.joblib BENCH_WORKERS=1 \
        bench/.venv-bentoml/bin/bentoml serve bentoml_service:FlightsDelay --port 3000
    curl -s localhost:3000/predict -H 'content-type: application/json' \
        -d '{"records": [{"carrier": "UA", "origin": "EWR", "dest": "IAH", "month": 7, ...}]}'
    # → [0]
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import joblib
import pandas as pd

# The pipeline's string columns; every other column is a float (nullable). A 1-row request with a null
# in a numeric column would otherwise become an object column that HistGradientBoosting refuses.
CATEGORICAL = ("carrier", "origin", "dest")


@bentoml.service(
    workers=int(os.environ.get("BENCH_WORKERS", "1")),  # processes, like `shipyard serve --workers`
    traffic={"timeout": 60},
    logging={"access": {"enabled": True}},  # BentoML's default; the benchmark keeps every access log on
)
class FlightsDelay:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL_PATH"])

    # Adaptive batching: BentoML's dispatcher joins the record lists of concurrent requests (batch_dim 0)
    # up to max_batch_size rows (Shipyard's default is 1,024 rows too) and splits the answer back.
    # max_latency_ms is the latency budget past which it sheds requests with 503: generous here, so that
    # it never sheds under the benchmark's closed loop. The input is a list of records rather than a
    # `pd.DataFrame` because BentoML 1.4.40 cannot batch DataFrames: its PandasDataFrameContainer
    # returns `df.shape` as the batch size and the dispatcher fails on `int + tuple` (every batched
    # request then times out).
    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=1024, max_latency_ms=10_000)
    def predict(self, records: list[dict[str, Any]]) -> list[int]:
        frame = pd.DataFrame.from_records(records)
        numeric = [c for c in frame.columns if c not in CATEGORICAL]
        answer: list[int] = self.model.predict(frame.astype(dict.fromkeys(numeric, "float64"))).tolist()
        return answer
