"""The deployment server in-process: micro-batching, traffic split, stickiness, shadows, swaps on alias
moves, readiness, metrics, explanations, feedback and Arrow bodies — with real scikit-learn models in a
real (SQLite) registry."""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deployment_harness import MemorySink, PicksyModel, Registry, make_registry, records, running
from serving_harness import flights, folder_app, make_classifier

from polling_helpers import await_until
from shipyard.registry.flavors import save_model_dir
from shipyard.serving import ServeOptions
from shipyard.serving.app import create_deployment_app
from shipyard.serving.deployment import parse_deployment
from shipyard.serving.router import Router
from shipyard.serving.slots import RegistrySource, VersionKey

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    reg = make_registry(tmp_path_factory.mktemp("registry"), make_classifier)
    yield reg
    reg.client.close()


def deployment(name: str, variants: list[dict[str, Any]], **settings: Any) -> Any:
    return parse_deployment(
        {"name": name, "variants": variants, "reload": {"poll_interval_s": 0}, **settings}
    )


def serve(registry: Registry, spec: Any, sink: MemorySink | None = None) -> Any:
    return create_deployment_app(
        spec, ServeOptions(trust=True), client=registry.client, sink=sink or MemorySink()
    )


async def predict(http: httpx.AsyncClient, frame: pd.DataFrame, **kw: Any) -> httpx.Response:
    body: dict[str, Any] = {"records": records(frame)}
    body.update(kw.pop("extra", {}))
    return await http.post(
        "/predict", content=json.dumps(body), headers={**JSON, **kw.pop("headers", {})}, **kw
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- micro-batching ----------------------------------------------------------------------------------------
def test_concurrent_requests_get_exactly_their_own_answers(registry: Registry) -> None:
    spec = deployment("batch", [{"name": "main", "model": registry.alias("b1", registry.v1)}])
    app = serve(registry, spec)
    model = registry.models[registry.v1]
    rng = random.Random(1)
    frames = [flights(rng.randint(1, 7), seed=i) for i in range(120)]
    probas = [rng.random() < 0.5 for _ in frames]

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            return await asyncio.gather(
                *(
                    predict(http, f, params={"proba": str(p).lower()})
                    for f, p in zip(frames, probas, strict=True)
                )
            )

    answers = run(main())
    for frame, proba, response in zip(frames, probas, answers, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"] == model.predict(frame).tolist()
        assert ("probabilities" in body) == proba
        if proba:
            np.testing.assert_allclose(body["probabilities"], model.predict_proba(frame), rtol=1e-9)
    batcher = app.state.engine.plan.variants["main"].batcher
    assert batcher.calls < len(frames) / 2  # requests shared model calls


def test_a_lone_request_is_dispatched_without_waiting(registry: Registry) -> None:
    spec = deployment(
        "lone",
        [{"name": "main", "model": registry.alias("l1", registry.v1)}],
        batching={"max_wait_ms": 1000, "max_batch_size": 64},
    )
    app = serve(registry, spec)

    async def main() -> float:
        async with running(app) as http:
            await predict(http, flights(1))  # warm up
            started = time.perf_counter()
            for i in range(5):
                assert (await predict(http, flights(1, seed=i))).status_code == 200
            return time.perf_counter() - started

    elapsed = run(main())
    assert app.state.engine.plan.variants["main"].batcher.calls == 6  # one call each, none waited for company
    assert elapsed < 2.5  # waiting max_wait each time would take at least 5 s


def test_a_bad_request_never_fails_the_others_in_its_batch(registry: Registry) -> None:
    spec = deployment("bad", [{"name": "main", "model": registry.alias("x1", registry.v1)}])
    app = serve(registry, spec)
    good = flights(3, seed=9)
    bad_body = {"records": [{"dep_delay": "soon", "distance": 1, "carrier": "UA"}]}

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            calls = []
            for i in range(40):
                if i % 4 == 0:
                    calls.append(http.post("/predict", content=json.dumps(bad_body), headers=JSON))
                else:
                    calls.append(predict(http, good))
            return await asyncio.gather(*calls)

    answers = run(main())
    for i, response in enumerate(answers):
        if i % 4 == 0:
            assert response.status_code == 422, response.text
        else:
            assert response.status_code == 200
            assert response.json()["predictions"] == registry.models[registry.v1].predict(good).tolist()


def test_a_model_failure_in_a_batch_is_isolated_to_its_request(tmp_path: Path) -> None:
    example = pd.DataFrame({"distance": [1.0, 2.0]})
    save_model_dir(PicksyModel(), tmp_path / "picksy", input_example=example)
    app = folder_app(tmp_path / "picksy", "picksy", trust=True)

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            bodies = [{"records": [{"distance": -1.0 if i % 5 == 0 else float(i)}]} for i in range(30)]
            return await asyncio.gather(
                *(http.post("/predict", content=json.dumps(b), headers=JSON) for b in bodies)
            )

    for i, response in enumerate(run(main())):
        if i % 5 == 0:
            assert response.status_code == 400 and "negative distance" in response.text
        else:
            assert response.status_code == 200 and response.json()["predictions"] == [2.0 * i]


def test_batching_off_predicts_each_request_directly(registry: Registry) -> None:
    spec = deployment(
        "nobatch", [{"name": "main", "model": registry.alias("n1", registry.v1)}], batching={"enabled": False}
    )
    app = serve(registry, spec)
    frames = [flights(2, seed=i) for i in range(10)]

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            return await asyncio.gather(*(predict(http, f) for f in frames))

    answers = run(main())
    assert app.state.engine.plan.variants["main"].batcher is None
    calls = app.state.metrics.sample("shipyard_serving_predict_seconds_count", {"variant": "main"})
    assert calls == len(frames)  # one model call each, still measured
    for frame, response in zip(frames, answers, strict=True):
        assert response.json()["predictions"] == registry.models[registry.v1].predict(frame).tolist()


# -- traffic split -----------------------------------------------------------------------------------------
def within(count: int, n: int, share: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * share) <= sigmas * math.sqrt(n * share * (1 - share))


def test_keys_split_by_share_within_binomial_tolerance() -> None:
    shares = {"a": 0.7, "b": 0.2, "c": 0.1}
    router = Router(shares)
    keys = [f"customer-{random.getrandbits(64)}" for _ in range(10_000)]
    chosen = [router.choose(k) for k in keys]
    for name, share in shares.items():
        assert within(chosen.count(name), len(keys), share), (name, chosen.count(name))
    unkeyed = [router.choose() for _ in range(10_000)]
    for name, share in shares.items():
        assert within(unkeyed.count(name), 10_000, share)


def test_the_same_key_always_lands_on_the_same_variant() -> None:
    first = Router({"a": 0.5, "b": 0.5})
    again = Router({"a": 50, "b": 50})  # a new process, the same weights
    for i in range(500):
        key = f"k{i}"
        assert first.choose(key) == again.choose(key) == first.choose(key)
    moved = Router({"a": 0.6, "b": 0.4})  # a weight change only moves keys in the shifted slice
    assert all(moved.choose(f"k{i}") == "a" for i in range(500) if first.choose(f"k{i}") == "a")


def test_ab_weights_and_sticky_keys_over_http(registry: Registry) -> None:
    spec = deployment(
        "ab",
        [
            {"name": "a", "model": registry.alias("ab1", registry.v1), "weight": 80},
            {"name": "b", "model": registry.alias("ab2", registry.v2), "weight": 20, "mode": "canary"},
        ],
        sticky_key="customer_id",
    )
    app = serve(registry, spec)
    row = flights(1, seed=3)

    async def main() -> tuple[list[str], list[str], list[str], list[str]]:
        async with running(app) as http:
            free = await asyncio.gather(*(predict(http, row) for _ in range(600)))
            header = [await predict(http, row, headers={"x-shipyard-key": "c-7"}) for _ in range(10)]
            field = [await predict(http, row, extra={"customer_id": "c-8"}) for _ in range(10)]
            column = [await predict(http, row.assign(customer_id="c-9")) for _ in range(10)]
            return tuple([r.json()["variant"] for r in group] for group in (free, header, field, column))

    free, header, field, column = run(main())
    assert within(free.count("b"), len(free), 0.2)
    for group in (header, field, column):
        assert len(set(group)) == 1
    router = Router({"a": 0.8, "b": 0.2})
    assert (header[0], field[0], column[0]) == (
        router.choose("c-7"),
        router.choose("c-8"),
        router.choose("c-9"),
    )


def test_each_variant_answers_with_its_own_model_and_version(registry: Registry) -> None:
    spec = deployment(
        "two",
        [
            {"name": "a", "model": registry.alias("t1", registry.v1)},
            {"name": "b", "model": registry.alias("t2", registry.v2)},
        ],
    )
    app = serve(registry, spec)
    frame = flights(30, seed=5)

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            return await asyncio.gather(*(predict(http, frame) for _ in range(40)))

    for response in run(main()):
        body = response.json()
        version = registry.v1 if body["variant"] == "a" else registry.v2
        assert body["model_version"] == str(version) and body["model"] == f"models:/flights/{version}"
        assert body["predictions"] == registry.models[version].predict(frame).tolist()
        assert response.headers["x-shipyard-variant"] == body["variant"]


# -- shadows -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shadow_model", ["models:/raises/1", "models:/garbage/1"])
def test_a_shadow_never_changes_or_delays_the_answer(registry: Registry, shadow_model: str) -> None:
    spec = deployment(
        "shadowed",
        [
            {"name": "main", "model": registry.alias("s1", registry.v1)},
            {"name": "next", "model": shadow_model, "mode": "shadow"},
        ],
    )
    sink = MemorySink()
    app = serve(registry, spec, sink)
    frames = [flights(2, seed=i) for i in range(20)]

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            return await asyncio.gather(*(predict(http, f) for f in frames))

    answers = run(main())  # leaving `running` waits for the shadow copies and flushes the log
    for frame, response in zip(frames, answers, strict=True):
        assert response.status_code == 200
        body = response.json()
        assert body["variant"] == "main"
        assert body["predictions"] == registry.models[registry.v1].predict(frame).tolist()
    live = {r["request_id"] for r in sink.rows if not r["shadow"]}
    shadow = [r for r in sink.rows if r["shadow"]]
    assert live == {r.json()["request_id"] for r in answers}
    assert {r["request_id"] for r in shadow} == live and {r["variant"] for r in shadow} == {"next"}
    errors = app.state.metrics.sample("shipyard_serving_shadow_errors_total", {"variant": "next"})
    if "raises" in shadow_model:
        assert errors == len(frames) and {r["status"] for r in shadow} == {500}
    assert sink.closed


# -- swaps -------------------------------------------------------------------------------------------------
def test_an_alias_move_is_served_after_admin_reload(registry: Registry) -> None:
    ref = registry.alias("m1", registry.v1)
    app = serve(registry, deployment("moving", [{"name": "main", "model": ref}]))
    frame = flights(25, seed=11)

    async def main() -> tuple[Any, Any, Any]:
        async with running(app) as http:
            before = (await predict(http, frame)).json()
            registry.alias("m1", registry.v2)
            still = (await predict(http, frame)).json()  # no poll yet: the old version answers
            reloaded = (await http.post("/admin/reload")).json()
            after = (await predict(http, frame)).json()
            return before, (still, reloaded), after

    before, (still, reloaded), after = run(main())
    assert before["model_version"] == still["model_version"] == str(registry.v1)
    assert reloaded["changed"]["main"]["version"] == str(registry.v2)
    assert after["model_version"] == str(registry.v2)
    assert after["predictions"] == registry.models[registry.v2].predict(frame).tolist()


def test_the_poller_follows_an_alias_and_no_request_fails_during_the_swap(registry: Registry) -> None:
    ref = registry.alias("p1", registry.v1)
    spec = parse_deployment(
        {"name": "polled", "variants": [{"name": "main", "model": ref}], "reload": {"poll_interval_s": 0.05}}
    )
    app = serve(registry, spec)
    frame = flights(3, seed=12)

    async def main() -> list[tuple[int, str | None]]:
        async with running(app) as http:
            answers: list[tuple[int, str | None]] = []  # (status, model version) in answer order
            new = str(registry.v2)

            async def load() -> None:  # until the new version has answered a few times (or 10 s)
                deadline = time.monotonic() + 10
                while sum(v == new for _, v in answers) < 5 and time.monotonic() < deadline:
                    response = await predict(http, frame)
                    answers.append((response.status_code, response.json().get("model_version")))

            async def move() -> None:  # once the load is under way
                await await_until(lambda: len(answers) >= 20, "20 answers before the alias moves")
                registry.alias("p1", registry.v2)

            await asyncio.gather(load(), load(), move())
            return answers

    answers = run(main())
    assert {status for status, _ in answers} == {200}  # not one request failed around the swap
    versions = [version for _, version in answers]
    assert versions[0] == str(registry.v1) and versions[-1] == str(registry.v2)
    assert versions.count(str(registry.v1)) >= 20  # the old version answered until the move


class SlowSource:
    """A model source whose first load waits for a signal (a slow download)."""

    def __init__(self, inner: RegistrySource) -> None:
        self.inner = inner
        self.release = threading.Event()

    def resolve(self, model: str) -> VersionKey:
        return self.inner.resolve(model)

    def load(self, model: str, key: VersionKey) -> Any:
        assert self.release.wait(10)
        return self.inner.load(model, key)


def test_loading_in_the_background_is_not_ready_until_every_live_variant_is_loaded(
    registry: Registry,
) -> None:
    ref = registry.alias("r1", registry.v1)
    source = SlowSource(RegistrySource(registry.client))
    spec = deployment("slow", [{"name": "main", "model": ref}])
    app = create_deployment_app(spec, ServeOptions(load_on_startup=False), source=source)

    async def main() -> tuple[int, int, int, int]:
        async with running(app, wait_ready=False) as http:
            health = (await http.get("/health")).status_code
            waiting = (await http.get("/ready")).status_code
            early = await predict(http, flights(1))
            source.release.set()

            async def ready() -> bool:
                return (await http.get("/ready")).status_code == 200

            await await_until(ready, "GET /ready to answer 200 once the model is loaded")
            late = await predict(http, flights(1))
            assert early.json()["error"]["code"] == "not_ready"
            assert early.headers["x-request-id"]
            return health, waiting, early.status_code, late.status_code

    assert run(main()) == (200, 503, 503, 200)


def test_a_reference_that_does_not_resolve_yet_starts_not_ready_until_it_does(registry: Registry) -> None:
    spec = deployment("early", [{"name": "main", "model": "models:/flights@not-yet"}])
    app = serve(registry, spec)

    async def main() -> tuple[int, int, int, int]:
        async with running(app, wait_ready=False) as http:
            waiting = (await http.get("/ready")).status_code
            early = (await predict(http, flights(1))).status_code
            assert "no alias 'not-yet'" in (await http.get("/info")).json()["last_reload"]["errors"]["main"]
            registry.alias("not-yet", registry.v2)
            reloaded = (await http.post("/admin/reload")).json()
            assert reloaded["changed"]["main"]["version"] == str(registry.v2)
            return (
                waiting,
                early,
                (await http.get("/ready")).status_code,
                (await predict(http, flights(1))).status_code,
            )

    assert run(main()) == (503, 503, 200, 200)


# -- metrics, info, explain, feedback, arrow -----------------------------------------------------------------
def test_metrics_report_requests_batches_versions_and_the_log(registry: Registry) -> None:
    ref = registry.alias("mt", registry.v1)
    app = serve(registry, deployment("metered", [{"name": "main", "model": ref}]))

    async def main() -> str:
        async with running(app) as http:
            await asyncio.gather(*(predict(http, flights(2, seed=i)) for i in range(10)))
            await http.post("/predict", content=b"{", headers=JSON)

            async def logged() -> str:  # the log feed hands rows over in the background
                text = (await http.get("/metrics")).text
                return text if "shipyard_serving_prediction_log_written 10.0" in text else ""

            return await await_until(logged, "the 10 answers to reach the prediction log")

    text = run(main())
    assert 'shipyard_serving_requests_total{status="200",variant="main"} 10.0' in text
    assert "shipyard_serving_request_seconds_bucket" in text
    assert 'shipyard_serving_batch_rows_count{variant="main"}' in text
    assert (
        f'shipyard_serving_model_info{{model="models:/flights/{registry.v1}",variant="main",version="1"}}'
        in text
    )
    assert "shipyard_serving_prediction_log_written 10.0" in text
    assert 'shipyard_serving_requests_total{status="400",variant="none"} 1.0' in text


def test_info_lists_variants_with_versions_and_shares(registry: Registry) -> None:
    spec = deployment(
        "informed",
        [
            {"name": "a", "model": registry.alias("i1", registry.v1), "weight": 3},
            {"name": "b", "model": registry.alias("i2", registry.v2), "weight": 1, "mode": "canary"},
            {"name": "s", "model": "models:/garbage/1", "mode": "shadow"},
        ],
    )
    app = serve(registry, spec)

    async def main() -> dict[str, Any]:
        async with running(app) as http:
            return dict((await http.get("/info")).json())

    info = run(main())
    variants = {v["name"]: v for v in info["variants"]}
    assert variants["a"]["share"] == 0.75 and variants["b"]["share"] == 0.25 and variants["s"]["share"] == 0
    assert variants["b"]["version"] == str(registry.v2) and variants["s"]["mode"] == "shadow"
    assert info["deployment"] == "informed"
    assert [c["name"] for c in info["signature"]["inputs"]] == ["dep_delay", "distance", "carrier"]


def test_explain_gives_one_attribution_per_feature_and_row(registry: Registry) -> None:
    ref = registry.alias("e1", registry.v1)
    app = serve(registry, deployment("explained", [{"name": "main", "model": ref}]))
    frame = flights(4, seed=2)

    async def main() -> dict[str, Any]:
        async with running(app) as http:
            response = await http.post(
                "/explain", content=json.dumps({"records": records(frame)}), headers=JSON
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

    body = run(main())
    assert body["method"] == "occlusion"  # a Pipeline: not a tree model
    assert len(body["attributions"]) == 4
    assert all(set(row) == {"dep_delay", "distance", "carrier"} for row in body["attributions"])
    assert body["baseline"]["carrier"] == "B6"  # the input example's most frequent carrier
    for i, carrier in enumerate(frame["carrier"]):  # B6 is late: any other carrier lowers the probability
        assert (
            body["attributions"][i]["carrier"] < 0
            if carrier != "B6"
            else body["attributions"][i]["carrier"] == 0
        )


def test_explain_uses_tree_shap_for_a_tree_model(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor

    frame = pd.DataFrame({"a": np.arange(50, dtype=float), "b": np.arange(50, dtype=float)[::-1]})
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(frame, frame["a"] * 2)
    save_model_dir(model, tmp_path / "forest", input_example=frame.head(3))
    app = folder_app(tmp_path / "forest", "forest")

    async def main() -> dict[str, Any]:
        async with running(app) as http:
            body = {"records": [{"a": 3.0, "b": 46.0}, {"a": 40.0, "b": 9.0}]}
            return dict((await http.post("/explain", content=json.dumps(body), headers=JSON)).json())

    body = run(main())
    assert body["method"] == "shap"
    total = [
        sum(row.values()) + base for row, base in zip(body["attributions"], body["base_values"], strict=True)
    ]
    np.testing.assert_allclose(
        total, model.predict(pd.DataFrame({"a": [3.0, 40.0], "b": [46.0, 9.0]})), rtol=1e-6
    )


def test_feedback_reaches_the_prediction_log(registry: Registry) -> None:
    sink = MemorySink()
    app = serve(
        registry, deployment("fed", [{"name": "main", "model": registry.alias("f1", registry.v1)}]), sink
    )

    async def main() -> list[int]:
        async with running(app) as http:
            ok = await http.post("/feedback", json={"request_id": "r-1", "label": 1, "row": 0})
            many = await http.post("/feedback", json={"feedback": [{"request_id": "r-2", "label": [0, 1]}]})
            bad = await http.post("/feedback", json={"label": 1})
            return [ok.status_code, many.status_code, bad.status_code]

    assert run(main()) == [202, 202, 400]
    assert [(f["request_id"], f["label"], f["row"]) for f in sink.feedback] == [
        ("r-1", 1, 0),
        ("r-2", [0, 1], None),
    ]


def test_feedback_without_a_prediction_log_is_409(classifier_dir: Path) -> None:
    app = folder_app(classifier_dir, "nolog")

    async def main() -> int:
        async with running(app) as http:
            return (await http.post("/feedback", json={"request_id": "r", "label": 1})).status_code

    assert run(main()) == 409


def arrow_bytes(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def test_arrow_streams_in_and_out(classifier_dir: Path, classifier: Any) -> None:
    app = folder_app(classifier_dir, "arrow")
    frame = flights(500, seed=6)
    headers = {"Content-Type": "application/vnd.apache.arrow.stream"}

    async def main() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with running(app) as http:
            as_json = await http.post("/predict", content=arrow_bytes(frame), headers=headers)
            as_arrow = await http.post(
                "/predict?proba=true",
                content=arrow_bytes(frame),
                headers={**headers, "Accept": "application/vnd.apache.arrow.stream"},
            )
            broken = await http.post("/predict", content=b"not arrow", headers=headers)
            return as_json, as_arrow, broken

    as_json, as_arrow, broken = run(main())
    assert as_json.json()["predictions"] == classifier.predict(frame).tolist()
    table = pa.ipc.open_stream(as_arrow.content).read_all()
    assert table.column_names == ["prediction", "proba_0", "proba_1"]
    assert table["prediction"].to_pylist() == classifier.predict(frame).tolist()
    np.testing.assert_allclose(table["proba_1"].to_numpy(), classifier.predict_proba(frame)[:, 1])
    assert broken.status_code == 400 and "Arrow" in broken.json()["error"]["message"]


def test_every_answer_and_log_row_carries_the_request_id(registry: Registry) -> None:
    sink = MemorySink()
    app = serve(
        registry, deployment("ids", [{"name": "main", "model": registry.alias("id1", registry.v1)}]), sink
    )

    async def main() -> list[httpx.Response]:
        async with running(app) as http:
            return [
                await http.get("/health"),
                await http.get("/metrics"),
                await http.post("/admin/reload"),
                await predict(http, flights(2), headers={"x-request-id": "req-1"}),
            ]

    answers = run(main())
    assert all(r.headers.get("x-request-id") for r in answers)
    (row,) = sink.rows
    assert row["request_id"] == "req-1" and row["status"] == 200 and row["n_rows"] == 2
    assert row["model"] == f"models:/flights/{registry.v1}" and row["deployment"] == "ids"
    assert json.loads(row["inputs"])[0]["carrier"] == flights(2)["carrier"][0]
    assert json.loads(row["outputs"])["predictions"] == answers[-1].json()["predictions"]


def test_a_stored_deployment_is_followed_to_its_next_version(registry: Registry) -> None:
    store = registry.client.store
    first = deployment("stored", [{"name": "a", "model": registry.alias("st1", registry.v1)}])
    store.save_deployment("stored", first.to_yaml(), "tests")
    app = create_deployment_app(
        None, ServeOptions(stored="stored"), client=registry.client, sink=MemorySink()
    )
    second = deployment(
        "stored",
        [
            {"name": "a", "model": registry.alias("st1", registry.v1), "weight": 50},
            {"name": "b", "model": registry.alias("st2", registry.v2), "weight": 50, "mode": "canary"},
        ],
    )

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with running(app) as http:
            before = (await http.get("/info")).json()
            store.save_deployment("stored", second.to_yaml(), "tests", reason="50% canary")
            reloaded = (await http.post("/admin/reload")).json()
            after = (await http.get("/info")).json()
            return before, reloaded, after

    before, reloaded, after = run(main())
    assert [v["name"] for v in before["variants"]] == ["a"]
    assert reloaded["deployment"] == {"from": before["deployment_version"], "to": after["deployment_version"]}
    assert {v["name"]: v["share"] for v in after["variants"]} == {"a": 0.5, "b": 0.5}
    assert reloaded["changed"]["b"]["version"] == str(registry.v2)
    assert after["last_reload"]["changed"] == reloaded["changed"] and after["last_reload"]["errors"] == {}


def test_a_folder_variant_answers_under_its_label(classifier_dir: Path) -> None:
    spec = deployment("packaged", [{"name": "main", "model": str(classifier_dir)}])
    labels = {str(classifier_dir): "models:/flights@prod"}
    app = create_deployment_app(spec, ServeOptions(labels=labels), sink=MemorySink())

    async def main() -> dict[str, Any]:
        async with running(app) as http:
            return dict((await predict(http, flights(2))).json())

    body = run(main())
    assert body["model"] == "models:/flights@prod" and len(body["model_version"]) == 12


def test_a_client_that_goes_away_mid_request_is_not_an_error(
    classifier_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = folder_app(classifier_dir, "gone")
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("test", 1),
        "root_path": "",
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert not sent  # nobody to answer
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_the_api_docs_show_the_served_models_example(registry: Registry) -> None:
    app = serve(registry, deployment("docs", [{"name": "main", "model": registry.alias("d1", registry.v1)}]))

    async def main() -> dict[str, Any]:
        async with running(app) as http:
            return dict((await http.get("/openapi.json")).json())

    spec = run(main())
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(body["application/json"]["example"]["records"][0]) == {"dep_delay", "distance", "carrier"}
    assert "application/vnd.apache.arrow.stream" in body
