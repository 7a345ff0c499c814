"""scikit-learn autologging: every top-level ``fit`` logs params, timings, score and a safe model file."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import shipyard as sy
from shipyard import Client
from shipyard.entities import RunStatus

sklearn = pytest.importorskip("sklearn")
skops_io = pytest.importorskip("skops.io")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

ORIGINAL_FIT = LogisticRegression.__dict__["fit"]


@pytest.fixture
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture
def autologged(fluent_client: Client) -> Iterator[Client]:
    patched = sy.autolog()
    assert patched > 50  # every estimator class, not just a few
    yield fluent_client
    sy.disable_autolog()


def load_model(data: bytes) -> object:
    trusted = skops_io.get_untrusted_types(data=data)
    return skops_io.loads(data, trusted=trusted)


def test_fit_inside_a_run_logs_params_timing_score_and_a_loadable_model(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    with sy.start_run(experiment="iris", log_environment=False) as run:
        model = LogisticRegression(C=0.5, max_iter=1000).fit(X, y)
    stored = autologged.get_run(run.id)
    assert stored.params["estimator"] == "LogisticRegression"
    assert stored.params["C"] == "0.5"
    assert stored.params["max_iter"] == "1000"
    assert stored.metrics["fit_time_s"] > 0
    assert stored.metrics["training_score"] == pytest.approx(model.score(X, y))
    assert stored.tags["sy.autolog"] == "sklearn"
    assert stored.tags["sy.model.flavor"] == "sklearn"
    loaded = load_model(autologged.read_artifact(run.id, "model/model.skops"))
    assert type(loaded) is LogisticRegression
    assert np.array_equal(loaded.predict(X), model.predict(X))  # type: ignore[attr-defined]


def test_fit_returns_what_the_estimator_returns(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    est = LogisticRegression(max_iter=1000)
    with sy.start_run(log_environment=False):
        assert est.fit(X, y) is est


def test_fit_outside_a_run_creates_and_finishes_its_own_run(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    LogisticRegression(max_iter=1000).fit(X, y)
    assert sy.active_run() is None
    df = autologged.search_runs("default")
    assert len(df) == 1
    run = autologged.get_run(df["run_id"][0])
    assert run.status is RunStatus.FINISHED
    assert run.name == "LogisticRegression"
    assert run.params["estimator"] == "LogisticRegression"
    assert [a.path for a in autologged.list_artifacts(run.id) if a.path.startswith("model/")] == [
        "model/model.skops"
    ]


def test_a_pipeline_fit_is_logged_once_not_per_step(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    with sy.start_run(log_environment=False) as run:
        pipe.fit(X, y)
    stored = autologged.get_run(run.id)
    assert stored.params["estimator"] == "Pipeline"
    assert "C" not in stored.params  # the inner LogisticRegression was not logged on its own
    assert len(autologged.get_metric_history(run.id, "fit_time_s")) == 1
    assert len(autologged.get_metric_history(run.id, "training_score")) == 1
    loaded = load_model(autologged.read_artifact(run.id, "model/model.skops"))
    assert type(loaded) is Pipeline
    assert np.array_equal(loaded.predict(X), pipe.predict(X))  # type: ignore[attr-defined]


def test_a_pipeline_fit_outside_a_run_creates_exactly_one_run(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
    df = autologged.search_runs("default")
    assert df["run_name"].tolist() == ["Pipeline"]


def test_unsupervised_fit_logs_no_training_score(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = iris
    with sy.start_run(log_environment=False) as run:
        StandardScaler().fit(X)
    stored = autologged.get_run(run.id)
    assert "training_score" not in stored.metrics
    assert stored.params["estimator"] == "StandardScaler"


def test_autolog_twice_does_not_double_wrap(autologged: Client, iris: tuple[np.ndarray, np.ndarray]) -> None:
    assert sy.autolog() == 0
    X, y = iris
    with sy.start_run(log_environment=False) as run:
        LogisticRegression(max_iter=1000).fit(X, y)
    assert len(autologged.get_metric_history(run.id, "fit_time_s")) == 1


def test_disable_autolog_restores_the_original_fit(
    fluent_client: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    sy.autolog()
    assert LogisticRegression.__dict__["fit"] is not ORIGINAL_FIT
    sy.disable_autolog()
    assert LogisticRegression.__dict__["fit"] is ORIGINAL_FIT
    X, y = iris
    LogisticRegression(max_iter=1000).fit(X, y)
    assert fluent_client.list_experiments() == []  # no run was created


def test_a_second_fit_with_other_params_in_the_same_run_does_not_break_training(
    autologged: Client, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    with sy.start_run(log_environment=False) as parent:
        LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
        second = LogisticRegression(C=2.0, max_iter=1000)
        assert second.fit(X, y) is second
    assert autologged.get_run(parent.id).params["C"] == "1.0"
    children = autologged.search_runs(filter=f"attributes.parent_run_id = '{parent.id}'")
    assert children["params.C"].tolist() == ["2.0"]
    assert children["metrics.training_score"].notna().all()
