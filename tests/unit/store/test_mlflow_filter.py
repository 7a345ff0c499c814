"""MLflow's search grammar read as MLflow reads it (``shipyard.store.mlflow_filter``), checked against
MLflow's own parser and evaluator.

Three levels: the clauses equal what ``SearchUtils.parse_search_filter`` and its SQL store's checks
make of the same text (fixed examples and generated filters: both accept alike or both refuse); the
runs a translated filter selects from a real SQLite store are the runs MLflow's own in-memory
evaluator (``SearchUtils.filter``) selects from the same runs; and ``order_by`` orders them as
``SearchUtils.sort`` does. Experiments' filters and order are checked the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.entities import LogBatch, Run, RunCreate, RunStatus
from shipyard.errors import FilterSyntaxError
from shipyard.store import Store, open_store
from shipyard.store.mlflow_filter import (
    ExperimentRecord,
    MlflowComparison,
    artifact_uri,
    experiment_matches,
    experiment_order,
    parse_experiment_filter,
    parse_run_filter,
    run_filter,
    run_order_by,
    sort_experiments,
)
from shipyard.store.query import order_to_text, to_text

mlflow_entities = pytest.importorskip("mlflow.entities")
search_utils = pytest.importorskip("mlflow.utils.search_utils")
SearchUtils = search_utils.SearchUtils
SearchExperimentsUtils = search_utils.SearchExperimentsUtils


# -- MLflow's reading of a filter ----------------------------------------------------------------
def mlflow_reads(text: str) -> list[tuple[Any, ...]] | None:
    """What MLflow makes of a run filter: its parser, then the checks its SQL store makes of each
    clause (``_get_sqlalchemy_filter_clauses``); None when either refuses."""
    try:
        parsed = SearchUtils.parse_search_filter(text)
        out = []
        for c in parsed:
            kind, comparator = c["type"], c["comparator"].upper()
            key = SearchUtils.translate_key_alias(c["key"])
            value = c["value"]
            if SearchUtils.is_string_attribute(kind, key, comparator) or SearchUtils.is_numeric_attribute(
                kind, key, comparator
            ):
                pass
            elif SearchUtils.is_metric(kind, comparator):
                value = float(value)
                if not math.isfinite(value):
                    return None
            elif not (
                SearchUtils.is_param(kind, comparator)
                or SearchUtils.is_tag(kind, comparator)
                or SearchUtils.is_dataset(kind, comparator)
            ):
                return None
            if isinstance(value, tuple) and comparator not in ("IN", "NOT IN"):
                return None  # its parser lets "run_id = ('a')" through; its SQL store then fails on it
            out.append((kind, c["key"], comparator, value))
        return out
    except Exception:  # MLflow raises MlflowException, and ValueError for some values (a 500 there)
        return None


def ours(text: str) -> list[tuple[Any, ...]] | None:
    try:
        return [(c.type, c.key, c.comparator, c.value) for c in parse_run_filter(text)]
    except FilterSyntaxError:
        return None


def agree(text: str) -> None:
    theirs = mlflow_reads(text)
    if theirs is not None and any(c[0] == "dataset" for c in theirs):
        assert ours(text) is None, f"dataset filters are refused on Shipyard: {text!r}"
        return
    assert ours(text) == theirs, text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "metrics.acc > 0.9",
        "metrics.acc>0.9 and params.lr='0.1'",
        "metric.`val loss` <= -1e-3",
        'metrics."val.acc" != 5',
        "metrics.acc >= .5 AND metrics.loss < 7.",
        "params.model LIKE 'r%' and tags.team ILIKE '%RISK%'",
        'parameter.model = "rf"',
        "param.`max depth` != '3'",
        "tags.mlflow.runName = 'alpha'",
        "tag.`mlflow.user` IS NULL",
        "tags.team is not null",
        "params.model IS NULL AND tags.team IS NOT NULL",
        "attributes.run_id IN ('a1', 'b2')",
        'attribute.run_id NOT IN ("a1",)',
        "run_id = 'a1'",
        "attributes.status = 'FINISHED'",
        "status != 'RUNNING'",
        "attr.status LIKE 'F%'",
        "run.status ilike 'f%'",
        "attributes.run_name = 'alpha'",
        "`run name` = 'alpha'",
        "\"Run Name\" LIKE 'a%'",
        "attributes.user_id = 'ann'",
        "attributes.start_time > 1700000000000",
        "attributes.end_time <= 17.5",
        "created >= 5",
        "Created < 5",
        "attributes.artifact_uri = 'mlflow-artifacts:/1/abc/artifacts'",
        "params.x = 'it''s'",
        "dataset.name = 'iris'",
        "datasets.context = 'training'",
        # refused by both
        "metrics.acc > 0.9 OR metrics.acc < 0.1",
        "(metrics.acc > 0.9)",
        "metrics.acc LIKE '0.9'",
        "metrics.acc = 'x'",
        "metrics.acc == 1",
        "metrics.acc <> 1",
        "params.lr > '0.1'",
        "params.lr = 0.1",
        "params.lr = rf",
        "tags.team IN ('a')",
        "attributes.status IN ('FINISHED')",
        "attributes.start_time = 'x'",
        "attributes.run_name > 'a'",
        "attributes.foo = 'x'",
        "metric.acc IS NULL",
        "attributes.run_id IS NULL",
        "foo.acc > 1",
        "METRICS.acc > 1",
        "metrics.acc",
        "metrics.acc >",
        "metrics.acc > 0x1A",
        "attributes.run_id IN ()",
        "attributes.run_id IN ('a', 1)",
        "metrics.acc NOT LIKE 'x'",
        "params.model RLIKE 'r.*'",
    ],
)
def test_a_filter_reads_as_mlflow_reads_it(text: str) -> None:
    agree(text)


# Generated filters: clauses over every entity, comparator and value shape, some of them wrong.
_BARE_KEYS = ["acc", "loss", "lr", "model", "team", "x1", "a_b", "val.acc", "mlflow.runName", "mlflow.user"]
_QUOTED_KEYS = ["val loss", "a-b", "max depth", "1st", "mlflow.source.name", "mlflow.parentRunId"]
_ENTITIES = [
    "metric",
    "metrics",
    "param",
    "params",
    "parameter",
    "tag",
    "tags",
    "attribute",
    "attr",
    "run",
    "",
]
_ATTRIBUTES = [
    "run_id",
    "run_name",
    "status",
    "user_id",
    "start_time",
    "end_time",
    "created",
    "Created",
    "`run name`",
    "artifact_uri",
    "foo",
]
_COMPARATORS = ["=", "!=", "<", "<=", ">", ">=", "LIKE", "like", "ILIKE", "==", "<>"]
_TEXT = st.text(st.sampled_from("abcAB019 %_.-"), max_size=6)


def _quoted(draw: st.DrawFn) -> str:
    text = draw(_TEXT)
    return draw(st.sampled_from([f"'{text}'", f'"{text}"']))


def _number(draw: st.DrawFn) -> str:
    return draw(
        st.one_of(
            st.integers(-(10**6), 10**15).map(str),
            st.sampled_from(
                ["0.5", "-1.25", ".5", "3.", "1700000000000.5", "-0.0", "1e3", "-2.5E-2", "1E10"]
            ),
        )
    )


def _list(draw: st.DrawFn) -> str:
    items = draw(st.lists(_TEXT.map(repr), min_size=1, max_size=3))
    return "(" + ", ".join(items) + ")"


@st.composite
def _values(draw: st.DrawFn) -> str:
    """Any value, of any shape (most of them wrong for the clause they end up in)."""
    shape = draw(st.sampled_from(["quoted", "number", "word", "list"]))
    if shape == "word":
        return draw(st.sampled_from(["rf", "NULL", "abc", "`rf`"]))
    return {"quoted": _quoted, "number": _number, "list": _list}[shape](draw)


def _right(draw: st.DrawFn, entity: str, key: str) -> tuple[str, str]:
    """A comparator and a value of the shape the clause takes."""
    if entity in ("metric", "metrics") or key in ("start_time", "end_time", "created", "Created"):
        return draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="])), _number(draw)
    if entity in ("", "attribute", "attr", "run"):
        if key == "run_id" and draw(st.booleans()):
            return draw(st.sampled_from(["IN", "not in"])), _list(draw)
        return draw(st.sampled_from(["=", "!=", "LIKE", "ilike"])), _quoted(draw)
    if draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(["IS NULL", "is not null"])), ""
    return draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"])), _quoted(draw)


@st.composite
def _clauses(draw: st.DrawFn) -> str:
    entity = draw(st.sampled_from(_ENTITIES))
    if entity in ("attribute", "attr", "run", ""):
        key = draw(st.sampled_from(_ATTRIBUTES))
    else:
        key = draw(
            st.one_of(
                st.sampled_from(_BARE_KEYS),
                st.sampled_from(_QUOTED_KEYS).flatmap(lambda k: st.sampled_from([f"`{k}`", f'"{k}"'])),
            )
        )
    ident = f"{entity}.{key}" if entity else key
    if draw(st.integers(0, 5)) > 0:  # mostly well-formed
        comparator, value = _right(draw, entity, key)
    else:
        comparator = draw(st.sampled_from([*_COMPARATORS, "IS NULL", "IS NOT NULL", "IN", "NOT IN"]))
        value = "" if "NULL" in comparator else draw(_values())
    space = " " if comparator[0].isalpha() or draw(st.booleans()) else ""
    return f"{ident}{space}{comparator}{space}{value}".rstrip()


@given(st.lists(_clauses(), min_size=1, max_size=4), st.sampled_from([" AND ", " and ", "  AND  "]))
@settings(max_examples=400, deadline=None)
def test_generated_filters_read_as_mlflow_reads_them(clauses: list[str], joiner: str) -> None:
    agree(joiner.join(clauses))


def test_a_refusal_says_what_is_wrong_and_where() -> None:
    with pytest.raises(FilterSyntaxError) as err:
        parse_run_filter("metrics.acc > 0.9 OR params.lr = '0.1'")
    assert "AND" in err.value.reason and err.value.position == 18
    with pytest.raises(FilterSyntaxError, match="Invalid comparator 'LIKE'"):
        parse_run_filter("metrics.acc LIKE '1'")
    with pytest.raises(FilterSyntaxError, match="Dataset filters"):
        parse_run_filter("dataset.name = 'iris'")


# -- the runs a filter selects, on a real store and in MLflow's evaluator --------------------------
_DATA = [  # name, user, status, start, end, metrics, params, tags, parent index
    (
        "alpha",
        "ann",
        "finished",
        1000,
        2000,
        {"acc": 0.91, "loss": 0.3},
        {"lr": "0.1", "model": "rf"},
        {"team": "risk"},
        None,
    ),
    (
        "Alpha-2",
        "ann",
        "failed",
        1500,
        1600,
        {"acc": 0.5},
        {"lr": "0.01", "model": "RF"},
        {"team": "Risk"},
        0,
    ),
    ("beta", "bob", "running", 2000, None, {"acc": 0.77, "loss": 1.5}, {"model": "xgb"}, {}, None),
    ("gamma_x", "", "killed", 2000, 2500, {"loss": -2.0}, {"lr": "abc"}, {"team": "ops", "note": "a%b"}, 2),
    (
        "delta",
        "carol",
        "finished",
        3000,
        3100,
        {"acc": 0.91},
        {"model": "rf", "depth": "3"},
        {"team": "risk"},
        None,
    ),
    (
        "epsilon",
        "bob",
        "finished",
        3500,
        3600,
        {"acc": 1e-3, "loss": 0.0},
        {"model": "lin"},
        {"team": "ops"},
        None,
    ),
    ("zeta", "ann", "running", 4000, None, {}, {}, {"team": "ris"}, 4),
    (
        "eta",
        "dave",
        "failed",
        4500,
        5000,
        {"acc": 0.6, "loss": 2.5},
        {"model": "rf"},
        {"team": "risk", "x": "1"},
        None,
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root: Path = tmp_path_factory.mktemp("mlflow-filter")
    s = open_store(f"sqlite:///{root / 'runs.db'}")
    ids: list[str] = []
    for i, (name, user, status, start, end, metrics, params, tags, parent) in enumerate(_DATA):
        run_id = f"r{i:02d}"
        s.create_run(
            RunCreate(
                run_id,
                "filters",
                name,
                start,
                user,
                source=f"train_{i % 2}.py",
                parent_run_id=None if parent is None else ids[parent],
                params=params,
                tags=tags,
            )
        )
        if metrics:
            s.log_batch(run_id, LogBatch(metrics=[(k, v, 0, start) for k, v in metrics.items()]))
        if status != "running":
            s.update_run(run_id, status=RunStatus(status), end_time=end)
        ids.append(run_id)
    yield s
    s.close()


def _mlflow_run(run: Run) -> Any:
    """A Shipyard run as MLflow's entity, with the system tags MLflow keeps for its fields."""
    e = mlflow_entities
    tags = dict(run.tags)
    system = {"mlflow.runName": run.name, "mlflow.user": run.user, "mlflow.source.name": run.source}
    system["mlflow.parentRunId"] = run.parent_run_id or ""
    tags.update({k: v for k, v in system.items() if v})
    info = e.RunInfo(
        run_id=run.id,
        experiment_id=str(run.experiment_id),
        user_id=run.user,
        status=run.status.value.upper(),
        start_time=run.start_time,
        end_time=run.end_time,
        lifecycle_stage="active",
        artifact_uri=artifact_uri(run.experiment_id, run.id),
        run_name=run.name,
    )
    data = e.RunData(
        metrics=[e.Metric(k, v, 0, 0) for k, v in run.metrics.items()],
        params=[e.Param(k, v) for k, v in run.params.items()],
        tags=[e.RunTag(k, v) for k, v in tags.items()],
    )
    return e.Run(info, data)


def _all_runs(store: Store) -> list[Run]:
    return store.search_runs(limit=1000).runs


def _selected(store: Store, text: str) -> list[str]:
    expr = run_filter(text)
    return [r.id for r in store.search_runs(filter=None if expr is None else to_text(expr), limit=1000).runs]


def _mlflow_selected(store: Store, text: str) -> list[str]:
    runs = [_mlflow_run(r) for r in _all_runs(store)]
    return [r.info.run_id for r in SearchUtils.sort(SearchUtils.filter(runs, text), [])]


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc > 0.6",
        "metrics.acc = 0.91 and metrics.loss < 1",
        "metrics.loss <= 0",
        "metrics.acc != 0.91",
        "params.model = 'rf'",
        "params.model LIKE 'r%'",
        "params.model ILIKE 'r%'",
        "params.model != 'rf'",
        "params.lr IS NULL",
        "params.depth IS NOT NULL",
        "tags.team LIKE 'ris%'",
        "tags.team ILIKE 'RISK'",
        "tags.team != 'risk'",
        "tags.note LIKE 'a%'",
        "tags.team IS NULL",
        "tags.mlflow.runName = 'alpha'",
        "tags.mlflow.runName LIKE '%lpha%'",
        "tags.`mlflow.user` != 'ann'",
        "tags.`mlflow.user` IS NULL",
        "tags.`mlflow.user` IS NOT NULL",
        "tags.`mlflow.parentRunId` IS NOT NULL",
        "tags.`mlflow.parentRunId` = 'r00'",
        "tags.`mlflow.source.name` = 'train_1.py'",
        "attributes.run_name ILIKE 'alpha%'",
        "`run name` != 'beta'",
        "attributes.status = 'FINISHED'",
        "attributes.status != 'RUNNING'",
        "attributes.status LIKE '%ED'",
        "attributes.status ILIKE 'f%'",
        "attributes.status = 'SCHEDULED'",
        "attributes.status != 'SCHEDULED'",
        "attributes.status = 'finished'",
        "attributes.user_id = 'ann'",
        "attributes.user_id != 'ann'",
        "attributes.user_id LIKE '%o%'",
        "attributes.run_id IN ('r01', 'r03', 'nope')",
        "attributes.run_id NOT IN ('r01')",
        "attributes.run_id LIKE 'r0%'",
        "attributes.start_time > 2000",
        "attributes.start_time >= 2000 and attributes.start_time < 4000",
        "created <= 1500",
        "attributes.start_time > 1999.5",
        "attributes.start_time < 2000.5",
        "attributes.start_time = 2000.5",
        "attributes.start_time != 2000.5",
        "attributes.end_time != 2000.5",
        "attributes.end_time > 2000",
        "attributes.end_time != 2000",
        "attributes.artifact_uri = 'mlflow-artifacts:/1/r02/artifacts'",
        "attributes.artifact_uri != 'mlflow-artifacts:/1/r02/artifacts'",
        "attributes.artifact_uri = 'elsewhere'",
        "metrics.acc > 0.5 and params.model = 'rf' and tags.team = 'risk' and attributes.status != 'FAILED'",
    ],
)
def test_a_filter_selects_the_runs_mlflow_selects(store: Store, text: str) -> None:
    assert _selected(store, text) == _mlflow_selected(store, text)


_VALUES = ["'rf'", "'risk'", "'r%'", "'%a%'", "'RISK'", "'_lpha'", "'ann'", "'FINISHED'", "'%ED'", "'ris'"]


@st.composite
def _matching_clauses(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["metric", "text", "attribute", "null"]))
    if kind == "metric":
        key = draw(st.sampled_from(["acc", "loss"]))
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return f"metrics.{key} {op} {draw(st.sampled_from(['0', '0.91', '0.5', '-2', '1.5', '0.001']))}"
    if kind == "text":
        key = draw(
            st.sampled_from(
                ["params.model", "params.lr", "tags.team", "tags.mlflow.runName", "tags.`mlflow.user`"]
            )
        )
        return f"{key} {draw(st.sampled_from(['=', '!=', 'LIKE', 'ILIKE']))} {draw(st.sampled_from(_VALUES))}"
    if kind == "null":
        key = draw(
            st.sampled_from(["params.depth", "params.lr", "tags.team", "tags.`mlflow.parentRunId`", "tags.x"])
        )
        return f"{key} {draw(st.sampled_from(['IS NULL', 'IS NOT NULL']))}"
    key = draw(st.sampled_from(["status", "run_name", "user_id", "start_time", "end_time"]))
    if key in ("start_time", "end_time"):
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return f"attributes.{key} {op} {draw(st.sampled_from(['2000', '1500', '3100.5', '0']))}"
    op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
    return f"attributes.{key} {op} {draw(st.sampled_from(_VALUES))}"


@given(st.lists(_matching_clauses(), min_size=1, max_size=3))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_filters_select_the_runs_mlflow_selects(store: Store, clauses: list[str]) -> None:
    text = " AND ".join(clauses)
    assert _selected(store, text) == _mlflow_selected(store, text), text


@pytest.mark.parametrize(
    "order_by",
    [
        ["metrics.acc DESC"],
        ["metrics.acc"],
        ["metrics.loss ASC", "attributes.run_name DESC"],
        ["params.model"],
        ["params.model DESC", "metrics.acc"],
        ["tags.team DESC"],
        ["tags.mlflow.runName"],
        ["tags.`mlflow.user` DESC"],
        ["attributes.start_time ASC"],
        ["created DESC"],
        ["attributes.end_time"],
        ["attributes.status", "attributes.user_id DESC"],
        ["attributes.run_id DESC"],
        ["run_name"],
    ],
)
def test_order_by_orders_as_mlflow_orders(store: Store, order_by: list[str]) -> None:
    ordered = store.search_runs(order_by=order_to_text(run_order_by(order_by)), limit=1000).runs
    theirs = SearchUtils.sort([_mlflow_run(r) for r in _all_runs(store)], order_by)
    assert [r.id for r in ordered] == [r.info.run_id for r in theirs]


@pytest.mark.parametrize(
    "order_by",
    [
        ["metrics.acc DESC", "metrics.acc"],
        ["metrics.acc desc nulls last"],
        ["dataset.name"],
        ["attributes.foo"],
        ["("],
    ],
)
def test_a_bad_order_by_is_refused(order_by: list[str]) -> None:
    with pytest.raises(FilterSyntaxError):
        run_order_by(order_by)


# -- experiments ---------------------------------------------------------------------------------
_EXPERIMENTS = [
    ExperimentRecord(1, "Default", 100, 100),
    ExperimentRecord(2, "churn", 200, 900, {"team": "risk", "mlflow.note.content": "the churn model"}),
    ExperimentRecord(3, "churn-v2", 300, 300, {"team": "Risk"}),
    ExperimentRecord(4, "fraud", 300, 400, {"owner": "ann"}),
    ExperimentRecord(5, "Fraud_old", 50, 500),
]


def _mlflow_experiment(r: ExperimentRecord) -> Any:
    e = mlflow_entities
    tags = [e.ExperimentTag(k, v) for k, v in r.tags.items()]
    return e.Experiment(
        str(r.experiment_id),
        r.name,
        f"mlflow-artifacts:/{r.experiment_id}",
        "active",
        tags,
        creation_time=r.creation_time,
        last_update_time=r.last_update_time,
    )


@pytest.mark.parametrize(
    "text",
    [
        "name = 'churn'",
        "name LIKE 'churn%'",
        "name ILIKE 'fraud%'",
        "attribute.name != 'churn'",
        "tags.team = 'risk'",
        "tags.team ILIKE 'risk'",
        "tags.team != 'risk'",
        "tags.team IS NULL",
        "tag.owner IS NOT NULL",
        "tags.`mlflow.note.content` LIKE '%churn%'",
        "creation_time > 100",
        "last_update_time <= 400 and creation_time >= 100",
        "name LIKE '%r%' AND tags.team LIKE 'R%'",
    ],
)
def test_an_experiment_filter_selects_what_mlflow_selects(text: str) -> None:
    ours_ = [r.experiment_id for r in _EXPERIMENTS if experiment_matches(r, parse_experiment_filter(text))]
    theirs = SearchExperimentsUtils.filter([_mlflow_experiment(r) for r in _EXPERIMENTS], text)
    assert ours_ == [int(e.experiment_id) for e in theirs]


def test_experiment_ids_filter_as_integers() -> None:
    clauses = parse_experiment_filter("experiment_id IN ('2', '4') and experiment_id != '4'")
    assert [r.experiment_id for r in _EXPERIMENTS if experiment_matches(r, clauses)] == [2]


@pytest.mark.parametrize(
    "text",
    [
        "attributes.name = 'x'",  # MLflow's experiment search knows "attribute", not "attributes"
        "name IN ('a')",
        "experiment_id > '3'",
        "experiment_id = 'x'",
        "creation_time > 1.5",
        "creation_time = 'x'",
        "name IS NULL",
        "tags.team > 'a'",
        "params.x = 'a'",
        "name = 'a' OR name = 'b'",
    ],
)
def test_a_bad_experiment_filter_is_refused(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_experiment_filter(text)


@pytest.mark.parametrize(
    "order_by",
    [["name"], ["name DESC"], ["creation_time"], ["last_update_time DESC", "name"], ["experiment_id"]],
)
def test_experiments_order_as_mlflow_orders(order_by: list[str]) -> None:
    ours_ = sort_experiments(_EXPERIMENTS, experiment_order(order_by))
    theirs = SearchExperimentsUtils.sort([_mlflow_experiment(r) for r in _EXPERIMENTS], order_by)
    assert [r.experiment_id for r in ours_] == [int(e.experiment_id) for e in theirs]


def test_experiments_order_by_default_newest_first_then_id() -> None:
    ordered = sort_experiments(_EXPERIMENTS, experiment_order(None))
    assert [r.experiment_id for r in ordered] == [3, 4, 2, 1, 5]


def test_the_clauses_keep_mlflow_spelling_of_keys() -> None:
    assert parse_run_filter("`run name` = 'a'") == [MlflowComparison("attribute", "run name", "=", "a")]
