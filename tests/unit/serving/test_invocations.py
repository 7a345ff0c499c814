"""MLflow's scoring protocol on ``shipyard serve`` (issue 15, deliverable 5): ``POST /invocations`` with
``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` and CSV answers what ``/predict`` and
the model itself answer; ``/ping``, ``/health`` and ``/version`` answer as MLflow's do; bad bodies get 400
in MLflow's error shape; and requests take the same path as ``/predict`` (variants, signature check,
prediction log, metrics). Real scikit-learn models registered in a real SQLite registry, served in-process
with their lifespan (the prediction log's feed runs); MLflow's own scoring client against a live uvicorn."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
import httpx
import numpy as np
import pandas as pd
import pytest
from deployment_harness import MemorySink, Registry, make_registry, records
from fastapi import FastAPI
from serving_harness import flights, make_classifier

from polling_helpers import wait_until
from shipyard.registry import core
from shipyard.serving import ServeOptions, create_deployment_app
from shipyard.serving.deployment import parse_deployment
from shipyard.version import __version__

JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
COLUMNS = ["dep_delay", "distance", "carrier"]


class Tagger:
    """A model over a text column and a list column: ``"t1:6"`` for ``a="t1"``, ``b=[1, 2, 3]``."""

    def predict(self, frame: pd.DataFrame) -> Any:
        return np.array([f"{a}:{sum(b)}" for a, b in zip(frame["a"], frame["b"], strict=True)])


@dataclass
class Models:
    registry: Registry
    ab: Any  # a LinearRegression on integer columns a and b (the MLflow CLI help's payloads)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Models]:
    from sklearn.linear_model import LinearRegression

    registry = make_registry(tmp_path_factory.mktemp("invocations"), make_classifier)
    ab_frame = pd.DataFrame({"a": [1, 2, 3, 4, 7], "b": [2, 1, 5, 3, 0]})
    ab = LinearRegression().fit(ab_frame, 3 * ab_frame["a"] - ab_frame["b"] + 1)
    core.register_model(ab, "ab", input_example=ab_frame.head(3), client=registry.client)
    tagged = pd.DataFrame({"a": ["x", "y"], "b": [[1, 2], [3]]})
    core.register_model(Tagger(), "tagger", input_example=tagged, client=registry.client)
    yield Models(registry, ab)
    registry.client.close()


class Served:
    """The app started (lifespan: models loaded, prediction log feed running) on a blocking portal's event
    loop, called synchronously through httpx; ``sink`` is its prediction log."""

    def __init__(self, app: FastAPI, sink: MemorySink) -> None:
        self.app, self.sink = app, sink
        self._stack = contextlib.ExitStack()
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._stack.enter_context(self.portal.wrap_async_context_manager(app.router.lifespan_context(app)))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(functools.partial(self._client.request, method, url, **kwargs))

    def invoke(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", "/invocations", content=content, headers={**JSON, **(headers or {})})

    def predict(self, frame: pd.DataFrame, headers: dict[str, str] | None = None) -> httpx.Response:
        body = json.dumps({"records": records(frame)}).encode()
        return self.request("POST", "/predict", content=body, headers={**JSON, **(headers or {})})

    def close(self) -> None:
        self.portal.call(self._client.aclose)
        self._stack.close()


def deployment(name: str, variants: list[dict[str, Any]], **settings: Any) -> Any:
    return parse_deployment(
        {"name": name, "variants": variants, "reload": {"poll_interval_s": 0}, **settings}
    )


@contextlib.contextmanager
def serving(models: Models, variants: list[dict[str, Any]], **settings: Any) -> Iterator[Served]:
    sink = MemorySink()
    spec = deployment(f"d{len(variants)}", variants, **settings)
    app = create_deployment_app(spec, ServeOptions(trust=True), client=models.registry.client, sink=sink)
    served = Served(app, sink)
    try:
        assert app.state.engine.ready()
        yield served
    finally:
        served.close()


@pytest.fixture(scope="module")
def flights_server(models: Models) -> Iterator[Served]:
    """The flights classifier (registered version 1) as the one variant ``main``."""
    with serving(models, [{"name": "main", "model": models.registry.alias("inv", models.registry.v1)}]) as s:
        yield s


@pytest.fixture(scope="module")
def model(models: Models) -> Any:
    return models.registry.models[models.registry.v1]


def frame_with_nulls() -> pd.DataFrame:
    frame = flights(40, seed=3)
    assert frame["dep_delay"].isna().any()  # NaN rows: JSON null, an empty CSV field, a NaN literal
    return frame


def columns_of(frame: pd.DataFrame) -> dict[str, list[Any]]:
    rows = records(frame)
    return {c: [row[c] for row in rows] for c in frame.columns}


def rows_of(frame: pd.DataFrame) -> list[list[Any]]:
    return [[row[c] for c in frame.columns] for row in records(frame)]


# Every JSON shape MLflow's scoring protocol takes, built from one frame (columns in signature order).
BODIES: dict[str, Any] = {
    "dataframe_split": lambda f: {"dataframe_split": {"columns": list(f.columns), "data": rows_of(f)}},
    "dataframe_split with index": lambda f: {
        "dataframe_split": {"index": list(range(len(f))), "columns": list(f.columns), "data": rows_of(f)}
    },
    "dataframe_split without columns": lambda f: {"dataframe_split": {"data": rows_of(f)}},
    "dataframe_records": lambda f: {"dataframe_records": records(f)},
    "dataframe_records without null keys": lambda f: {
        "dataframe_records": [{k: v for k, v in r.items() if v is not None} for r in records(f)]
    },
    "instances as records": lambda f: {"instances": records(f)},
    "instances as rows": lambda f: {"instances": rows_of(f)},
    "inputs as columns": lambda f: {"inputs": columns_of(f)},
    "inputs as rows": lambda f: {"inputs": rows_of(f)},
    "inputs as records": lambda f: {"inputs": records(f)},
    "with params": lambda f: {"dataframe_records": records(f), "params": {"predict_method": "predict"}},
    "NaN literals": lambda f: json.dumps(
        {"dataframe_split": {"columns": list(f.columns), "data": f.astype(object).values.tolist()}}
    ).encode(),
}


@pytest.mark.parametrize("shape", list(BODIES))
def test_every_json_shape_answers_what_predict_and_the_model_answer(
    flights_server: Served, model: Any, shape: str
) -> None:
    frame = frame_with_nulls()
    response = flights_server.invoke(BODIES[shape](frame))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"predictions"}  # MLflow's shape, nothing else
    predictions = response.json()["predictions"]
    assert predictions == model.predict(frame).tolist()
    assert predictions == flights_server.predict(frame).json()["predictions"]
    assert response.headers["x-shipyard-variant"] == "main" and response.headers["x-request-id"]


@pytest.mark.parametrize("index", [False, True], ids=["to_csv(index=False)", "to_csv() with its index"])
def test_csv_answers_what_predict_and_the_model_answer(
    flights_server: Served, model: Any, index: bool
) -> None:
    frame = frame_with_nulls()
    response = flights_server.request("POST", "/invocations", content=frame.to_csv(index=index), headers=CSV)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": model.predict(frame).tolist()}
    assert response.json()["predictions"] == flights_server.predict(frame).json()["predictions"]


def test_csv_values_are_typed_by_the_signature(flights_server: Served, model: Any) -> None:
    # '1' and 'NA' stay text in the string column; ' 12.5 ', '1e1' and 'NaN' are numbers (NaN: null)
    text = 'carrier,distance,dep_delay\n1,300, 12.5 \nNA,1e3,NaN\n"U,A",2500,\n'
    response = flights_server.request(
        "POST", "/invocations", content=text.encode(), headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert response.status_code == 200, response.text
    expected = pd.DataFrame(
        {"dep_delay": [12.5, np.nan, np.nan], "distance": [300, 1000, 2500], "carrier": ["1", "NA", "U,A"]}
    )
    assert response.json()["predictions"] == model.predict(expected).tolist()
    logged = wait_until(
        lambda: [r for r in flights_server.sink.rows if r["request_id"] == response.headers["x-request-id"]],
        "the CSV request in the prediction log",
    )
    assert [row["carrier"] for row in json.loads(logged[0]["inputs"])] == ["1", "NA", "U,A"]


def test_the_mlflow_cli_help_payloads_verbatim(models: Models) -> None:
    """The four examples ``mlflow models serve --help`` prints, sent as they are."""
    ab_variant, tagger_variant = (
        {"name": "ab", "model": "models:/ab/1"},
        {"name": "t", "model": "models:/tagger/1"},
    )
    with serving(models, [ab_variant]) as ab, serving(models, [tagger_variant]) as tagger:
        expected = models.ab.predict(pd.DataFrame({"a": [1, 3, 5], "b": [2, 4, 6]})).tolist()
        for body in (
            '{"dataframe_records": [{"a":1, "b":2}, {"a":3, "b":4}, {"a":5, "b":6}]}',
            '{"dataframe_split": {"columns": ["a", "b"], "index": [0, 1, 2], '
            '"data": [[1, 2], [3, 4], [5, 6]]}}',
            '{"inputs": [[1, 2], [3, 4], [5, 6]]}',
        ):
            response = ab.invoke(body.encode())
            assert response.status_code == 200, (body, response.text)
            assert response.json()["predictions"] == pytest.approx(expected)
        instances = (
            '{"instances": [{"a": "t1", "b": [1, 2, 3]}, {"a": "t2", "b": [4, 5, 6]}, '
            '{"a": "t3", "b": [7, 8, 9]}]}'
        )
        response = tagger.invoke(instances.encode())
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": ["t1:6", "t2:15", "t3:24"]}


def test_columns_the_model_does_not_take_are_ignored_as_mlflow_does(
    flights_server: Served, model: Any
) -> None:
    frame = flights(5, seed=8)
    with_label = frame.assign(late=1, note="from the warehouse")
    response = flights_server.invoke({"dataframe_records": records(with_label)})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == model.predict(frame).tolist()
    assert flights_server.predict(with_label).status_code == 422  # /predict stays strict


# -- probes ------------------------------------------------------------------------------------------------
def test_ping_health_and_version(flights_server: Served) -> None:
    ping = flights_server.request("GET", "/ping")
    assert (ping.status_code, ping.text) == (200, "\n")
    assert flights_server.request("GET", "/health").status_code == 200
    version = flights_server.request("GET", "/version")
    assert (version.status_code, version.text) == (200, __version__)


def test_ping_and_invocations_answer_503_until_the_model_is_loaded(models: Models) -> None:
    spec = deployment("cold", [{"name": "main", "model": "models:/flights/1"}])
    options = ServeOptions(trust=True, load_on_startup=False)
    app = create_deployment_app(spec, options, client=models.registry.client, sink=MemorySink())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def main() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body = json.dumps({"inputs": columns_of(flights(2))})
            cold = (await http.get("/ping"), await http.post("/invocations", content=body, headers=JSON))
            app.state.engine.preload()
            return (*cold, await http.get("/ping"))

    with anyio.from_thread.start_blocking_portal() as portal:
        ping, invocation, warm = portal.call(main)
    for response in (ping, invocation):
        assert response.status_code == 503, response.text
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert warm.status_code == 200


# -- refusals ----------------------------------------------------------------------------------------------
GOOD = records(flights(3, seed=5))
BAD: list[tuple[str, str, bytes, list[str]]] = [
    ("not JSON", "application/json", b'{"dataframe_records": [', ["Malformed JSON", "dataframe_split"]),
    ("empty body", "application/json", b"", ["empty"]),
    ("a bare list", "application/json", json.dumps(GOOD).encode(), ["JSON array", "dataframe_records"]),
    ("unknown key", "application/json", json.dumps({"records": GOOD}).encode(), ["'records'", "exactly one"]),
    (
        "unknown key beside a format",
        "application/json",
        json.dumps({"inputs": GOOD, "param": {}}).encode(),
        ["'param'"],
    ),
    (
        "two keys",
        "application/json",
        json.dumps({"dataframe_records": GOOD, "instances": GOOD}).encode(),
        ["it has 2 (dataframe_records, instances)"],
    ),
    ("no key", "application/json", b"{}", ["it has none"]),
    (
        "params not an object",
        "application/json",
        json.dumps({"inputs": GOOD, "params": [1]}).encode(),
        ["params"],
    ),
    (
        "records not a list",
        "application/json",
        json.dumps({"dataframe_records": GOOD[0]}).encode(),
        ["dataframe_records", "list of objects"],
    ),
    ("no rows", "application/json", json.dumps({"dataframe_records": []}).encode(), ["nothing to predict"]),
    (
        "a row that is not a record",
        "application/json",
        json.dumps({"dataframe_records": [GOOD[0], 7]}).encode(),
        ["dataframe_records[1]", "number"],
    ),
    (
        "split without data",
        "application/json",
        json.dumps({"dataframe_split": {"columns": COLUMNS}}).encode(),
        ['no "data"'],
    ),
    (
        "split with a short row",
        "application/json",
        json.dumps(
            {"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 300, "UA"], [2.0, 400]]}}
        ).encode(),
        ["dataframe_split.data[1] has 2 value(s)", "3 columns"],
    ),
    (
        "split with an index of the wrong length",
        "application/json",
        json.dumps(
            {"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 3, "UA"]], "index": [0, 1]}}
        ).encode(),
        ["dataframe_split.index"],
    ),
    (
        "split with a repeated column",
        "application/json",
        json.dumps({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}).encode(),
        ["'a' more than once"],
    ),
    (
        "rows of the wrong width",
        "application/json",
        json.dumps({"inputs": [[1.0, 300]]}).encode(),
        ["inputs[0] has 2 value(s)", "'dep_delay', 'distance', 'carrier', in that order"],
    ),
    (
        "single values for a three-column model",
        "application/json",
        json.dumps({"instances": [1.0, 2.0]}).encode(),
        ["one-column model", "takes 3 columns"],
    ),
    (
        "columns mixed with single values",
        "application/json",
        json.dumps({"inputs": {"dep_delay": [1.0], "distance": 300, "carrier": ["UA"]}}).encode(),
        ["inputs['distance'] is a single value"],
    ),
    (
        "columns of different lengths",
        "application/json",
        json.dumps({"inputs": {"dep_delay": [1.0, 2.0], "distance": [3], "carrier": ["UA", "AA"]}}).encode(),
        ['columns of "inputs" have different lengths'],
    ),
    (
        "missing column",
        "application/json",
        json.dumps({"dataframe_records": [{"dep_delay": 1.0, "distance": 300}]}).encode(),
        ["'carrier'"],
    ),
    (
        "wrong type",
        "application/json",
        json.dumps({"dataframe_records": [{"dep_delay": 1.0, "distance": "far", "carrier": "UA"}]}).encode(),
        ["'distance'"],
    ),
    ("empty CSV", "text/csv", b"", ["CSV body is empty", "header row"]),
    ("CSV with a header only", "text/csv", b"dep_delay,distance,carrier\n", ["no rows"]),
    (
        "CSV with a bad number",
        "text/csv",
        b"dep_delay,distance,carrier\n1.5,300,UA\n2.5,3OO,AA\n",
        ["CSV line 3", "'distance'", "'3OO' is not an integer", "int64"],
    ),
    (
        "CSV with a bad float",
        "text/csv",
        b"dep_delay,distance,carrier\nlate,300,UA\n",
        ["CSV line 2", "'dep_delay'", "not a number"],
    ),
    (
        "CSV with a short line",
        "text/csv",
        b"dep_delay,distance,carrier\n1.5,300\n",
        ["CSV line 2 has 2 field(s)", "names 3"],
    ),
    (
        "CSV with an integer past int64",
        "text/csv",
        f"dep_delay,distance,carrier\n1.5,{2**64},UA\n".encode(),
        ["'distance'"],
    ),
    (
        "CSV not UTF-8",
        "text/csv",
        "dep_delay,distance,carrier\n1.5,300,Zürich\n".encode("latin-1"),
        ["UTF-8"],
    ),
    ("CSV with a missing column", "text/csv", b"dep_delay,distance\n1.5,300\n", ["'carrier'"]),
]


@pytest.mark.parametrize(("content_type", "body", "fragments"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_bodies_get_400_in_mlflows_error_shape(
    flights_server: Served, content_type: str, body: bytes, fragments: list[str]
) -> None:
    response = flights_server.invoke(body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error_code", "message"}
    assert error["error_code"] == "BAD_REQUEST"
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [("application/xml", "'application/xml'"), ("application/json; charset=latin-1", "UTF-8")],
)
def test_other_content_types_get_415_in_mlflows_error_shape(
    flights_server: Served, content_type: str, fragment: str
) -> None:
    response = flights_server.invoke({"inputs": GOOD}, headers={"Content-Type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["error_code"] == "BAD_REQUEST" and fragment in response.json()["message"]


def test_a_body_over_the_limit_gets_413_in_mlflows_error_shape(models: Models) -> None:
    spec = deployment("small", [{"name": "main", "model": f"models:/flights/{models.registry.v1}"}])
    options = ServeOptions(trust=True, max_request_bytes=1024)
    app = create_deployment_app(spec, options, client=models.registry.client, sink=MemorySink())
    app.state.engine.preload()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    body = flights(200).to_csv(index=False).encode()
    assert len(body) > 1024

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.post("/invocations", content=body, headers=CSV)

    with anyio.from_thread.start_blocking_portal() as portal:
        response = portal.call(main)
    assert response.status_code == 413, response.text
    assert response.json()["error_code"] == "BAD_REQUEST" and "1024" in response.json()["message"]


# -- the same path as /predict ---------------------------------------------------------------------------
def metric(served: Served, status: str, variant: str) -> float:
    value = served.app.state.metrics.sample(
        "shipyard_serving_requests_total", {"variant": variant, "status": status}
    )
    return value or 0.0


def test_invocations_reach_the_prediction_log_and_metrics_like_predict(models: Models) -> None:
    ref = models.registry.alias("logged", models.registry.v1)
    with serving(models, [{"name": "main", "model": ref}]) as served:
        frame = flights(4, seed=11)
        answers = [
            served.invoke({"dataframe_split": {"columns": COLUMNS, "data": rows_of(frame)}}),
            served.request("POST", "/invocations", content=frame.to_csv(index=False), headers=CSV),
            served.predict(frame),
            served.invoke({"dataframe_records": [{"dep_delay": 1.0, "distance": 300}]}),  # no carrier
            served.invoke(b"{nope"),  # refused before routing
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 400, 400]
        ids = [a.headers["x-request-id"] for a in answers]
        rows = wait_until(
            lambda: served.sink.rows if len(served.sink.rows) >= 4 else None, "4 rows in the prediction log"
        )
        by_id = {row["request_id"]: row for row in rows}
        assert set(by_id) == set(ids[:4])  # the malformed body is counted, not logged (as on /predict)
        for i in range(3):
            row = by_id[ids[i]]
            assert (row["variant"], row["status"], row["n_rows"], row["shadow"]) == ("main", 200, 4, False)
            assert json.loads(row["outputs"])["predictions"] == answers[i].json()["predictions"]
        for i in range(3):  # logged as records, whatever the request held
            assert json.loads(by_id[ids[i]]["inputs"]) == records(frame)
        assert by_id[ids[3]]["status"] == 422  # the signature refused it: logged as on /predict
        assert metric(served, "200", "main") == 3
        assert metric(served, "422", "main") == 1
        assert metric(served, "400", "none") == 1


def test_invocations_are_routed_to_variants_and_mirrored_to_shadows(models: Models) -> None:
    reg = models.registry
    variants = [
        {"name": "blue", "model": f"models:/flights/{reg.v1}", "weight": 50},
        {"name": "green", "model": f"models:/flights/{reg.v2}", "weight": 50},
        {"name": "shade", "model": f"models:/flights/{reg.v2}", "mode": "shadow"},
    ]
    with serving(models, variants) as served:
        frame = flights(6, seed=2)
        seen: dict[str, str] = {}
        for key in (f"customer-{i}" for i in range(12)):
            headers = {"x-shipyard-key": key}
            mlflow = served.invoke({"inputs": columns_of(frame)}, headers=headers)
            native = served.predict(frame, headers=headers)
            assert mlflow.status_code == 200, mlflow.text
            variant = mlflow.headers["x-shipyard-variant"]
            assert variant == native.headers["x-shipyard-variant"]  # the same sticky routing
            version = reg.v1 if variant == "blue" else reg.v2
            assert mlflow.json()["predictions"] == reg.models[version].predict(frame).tolist()
            seen[mlflow.headers["x-request-id"]] = variant
        assert set(seen.values()) == {"blue", "green"}
        rows = wait_until(
            lambda: served.sink.rows if sum(r["shadow"] for r in served.sink.rows) >= 24 else None,
            "every request's shadow copy in the prediction log",
        )
        shadows = {r["request_id"] for r in rows if r["shadow"] and r["variant"] == "shade"}
        assert set(seen) <= shadows


def test_with_auth_invocations_need_a_token(models: Models) -> None:
    spec = deployment("locked", [{"name": "main", "model": f"models:/flights/{models.registry.v1}"}])
    app = create_deployment_app(spec, ServeOptions(trust=True, auth=True), client=models.registry.client)
    app.state.engine.preload()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def main() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            body = json.dumps({"inputs": GOOD})
            return (
                (await http.post("/invocations", content=body, headers=JSON)).status_code,
                (await http.get("/ping")).status_code,
            )

    with anyio.from_thread.start_blocking_portal() as portal:
        assert portal.call(main) == (401, 200)  # traffic needs a token; the probe stays open


# -- the API document --------------------------------------------------------------------------------------
def test_the_api_document_describes_invocations_with_the_models_own_examples(
    flights_server: Served, model: Any
) -> None:
    spec = flights_server.request("GET", "/openapi.json").json()
    operation = spec["paths"]["/invocations"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    shapes = content["application/json"]["schema"]["oneOf"]
    assert [next(iter(s["required"])) for s in shapes] == [
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
    ]
    record = shapes[1]["properties"]["dataframe_records"]["items"]
    assert record["properties"]["distance"]["type"] == "integer"
    assert record["required"] == ["distance", "carrier"]  # dep_delay may be left out (a float: nullable)
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["required"] == [
        "error_code",
        "message",
    ]
    for example in content["application/json"]["examples"].values():
        response = flights_server.invoke(example["value"])
        assert response.status_code == 200, (example, response.text)
    csv_example = content["text/csv"]["example"]
    answer = flights_server.request("POST", "/invocations", content=csv_example, headers=CSV)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == model.predict(pd.read_csv(io.StringIO(csv_example))).tolist()
    assert {"/ping", "/version"} <= set(spec["paths"])


# -- MLflow's own client code --------------------------------------------------------------------------------
# importing mlflow.pyfunc warns about its own type hints (mlflow/types/responses.py): not ours to fix
MLFLOW_IMPORT = pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")


@MLFLOW_IMPORT
@pytest.mark.filterwarnings("ignore:Operation with range is deprecated")  # inside MLflow's own helper
def test_mlflows_serialisers_payloads_are_answered(flights_server: Served, model: Any) -> None:
    """What MLflow writes for a DataFrame: ``dump_input_data`` (its scoring client's body, with the index and
    NaN literals) and ``convert_input_example_to_serving_input`` (the serving example it logs)."""
    pytest.importorskip("mlflow")
    from mlflow.models import convert_input_example_to_serving_input
    from mlflow.utils.proto_json_utils import dump_input_data

    frame = frame_with_nulls()
    for body in (dump_input_data(frame), convert_input_example_to_serving_input(frame)):
        assert "NaN" in body
        response = flights_server.invoke(body.encode())
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == model.predict(frame).tolist()


@pytest.fixture
def live(models: Models) -> Iterator[tuple[str, int]]:
    """The flights deployment under a real uvicorn on 127.0.0.1 (a free port), in a thread."""
    import uvicorn

    spec = deployment("live", [{"name": "main", "model": f"models:/flights/{models.registry.v1}"}])
    app = create_deployment_app(
        spec, ServeOptions(trust=True), client=models.registry.client, sink=MemorySink()
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-invocations", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start", timeout=60)
        assert server.started, "uvicorn did not start"
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield str(host), int(port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.integration
@MLFLOW_IMPORT
def test_mlflows_scoring_server_client_works_unchanged(live: tuple[str, int], model: Any) -> None:
    pytest.importorskip("mlflow")
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = ScoringServerClient(*live)
    client.ping()
    assert client.get_version() == __version__
    frame = frame_with_nulls()
    answer = client.invoke(frame)
    assert answer.get_predictions(predictions_format="ndarray").tolist() == model.predict(frame).tolist()
    with pytest.raises(Exception, match="error code 400"):
        client.invoke(frame.drop(columns=["carrier"]))
