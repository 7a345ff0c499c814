"""``SqlStore`` behaviour, run against SQLite and the real PostgreSQL (``store_uri``)."""

from __future__ import annotations

import base64
import json
import math
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pg_helpers import pg_database
from shipyard.entities import Artifact, LogBatch, RunCreate, RunStatus
from shipyard.errors import (
    AlreadyExists,
    ExperimentNotFound,
    FilterSyntaxError,
    InvalidInput,
    InvalidState,
    RunNotFound,
    UnsafePath,
)
from shipyard.store import Store, open_store
from shipyard.store.sql import SqlStore
from shipyard.store.sql import schema as t

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms
DIGEST_A = "a" * 64
DIGEST_B = "b" * 64
DIGEST_C = "c" * 64


@pytest.fixture(scope="module")
def _pg_module_db() -> Iterator[tuple[str, sa.Engine]]:
    with pg_database() as uri:
        SqlStore(uri).close()  # migrate once
        engine = sa.create_engine(uri)
        yield uri, engine
        engine.dispose()


@pytest.fixture(scope="module")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    SqlStore(f"sqlite:///{path}").close()  # migrate once; closing checkpoints the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, sqlite_uri: str) -> str:
    """Overrides conftest's ``store_uri`` for this module: the same two backends, each test on an
    empty, already-migrated database. Migrating a fresh database per test (and, on PostgreSQL,
    creating and dropping it: 0.5-2 s) blew the suite's time budget; migrations of fresh databases
    are covered by ``test_migrations.py`` with the conftest fixture."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), sqlite_uri.removeprefix("sqlite:///"))
        return sqlite_uri
    uri, engine = request.getfixturevalue("_pg_module_db")
    with engine.begin() as conn:  # DELETE, not TRUNCATE: far cheaper on tables this small
        for table in reversed(t.metadata.sorted_tables):
            conn.execute(sa.delete(table))
    return str(uri)


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


@pytest.fixture
def db(store_uri: str) -> Iterator[sa.Engine]:
    """A second, plain connection to the same database, to look at rows the API does not expose."""
    engine = sa.create_engine(store_uri)
    yield engine
    engine.dispose()


def new_run(
    store: SqlStore,
    experiment: str = "exp",
    *,
    run_id: str | None = None,
    name: str = "",
    start: int = T0,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    parent: str | None = None,
) -> str:
    run_id = run_id or uuid.uuid4().hex
    store.create_run(
        RunCreate(
            run_id=run_id,
            experiment_name=experiment,
            name=name or f"run-{run_id[:6]}",
            start_time=start,
            user="ada",
            source="train.py",
            parent_run_id=parent,
            params=params or {},
            tags=tags or {},
        )
    )
    return run_id


def points(
    key: str, values: list[float], start_step: int = 0, ts: int = T0
) -> list[tuple[str, float, int, int]]:
    return [(key, v, start_step + i, ts + start_step + i) for i, v in enumerate(values)]


def chunk_rows(db: sa.Engine, run_id: str, key: str) -> int:
    c = t.metric_chunks.c
    with db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.metric_chunks)
                .where(c.run_id == run_id, c.key == key)
            ).scalar_one()
        )


def same_floats(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


# ---------------------------------------------------------------------------------------------- opening


def test_open_store_picks_sql_store_by_scheme(store_uri: str) -> None:
    s = open_store(store_uri)
    try:
        assert isinstance(s, SqlStore)
        assert isinstance(s, Store)
        assert s.uri == store_uri
    finally:
        s.close()


def test_in_memory_sqlite_store_works() -> None:
    s = SqlStore("sqlite:///:memory:")
    run_id = new_run(s)
    s.log_batch(run_id, LogBatch(metrics=points("loss", [1.0, 0.5])))
    assert s.get_metric_history(run_id, "loss").values == [1.0, 0.5]


# ---------------------------------------------------------------------------------------------- experiments


def test_create_experiment_then_get_it_by_id_and_by_name(store: SqlStore) -> None:
    exp = store.create_experiment("churn", "predict churn")
    assert (exp.name, exp.description) == ("churn", "predict churn")
    assert exp.created_at > T0 - 10**12
    assert store.get_experiment(exp.id) == exp
    assert store.get_experiment_by_name("churn") == exp


def test_list_experiments_returns_them_in_creation_order(store: SqlStore) -> None:
    names = ["b", "a", "c"]
    for n in names:
        store.create_experiment(n)
    assert [e.name for e in store.list_experiments()] == names


def test_duplicate_experiment_name_raises_already_exists(store: SqlStore) -> None:
    store.create_experiment("churn")
    with pytest.raises(AlreadyExists, match="'churn'"):
        store.create_experiment("churn")
    assert [e.name for e in store.list_experiments()] == ["churn"]


def test_unknown_experiment_raises_experiment_not_found_with_a_hint(store: SqlStore) -> None:
    with pytest.raises(ExperimentNotFound, match="shipyard experiments ls"):
        store.get_experiment(4242)
    with pytest.raises(ExperimentNotFound, match="'nope'"):
        store.get_experiment_by_name("nope")


@pytest.mark.parametrize("name", ["", "x" * 256])
def test_invalid_experiment_name_raises_invalid_input(store: SqlStore, name: str) -> None:
    with pytest.raises(InvalidInput):
        store.create_experiment(name)


def test_create_run_creates_its_experiment_on_first_use(store: SqlStore) -> None:
    run_id = new_run(store, "fresh")
    run = store.get_run(run_id)
    assert run.experiment_name == "fresh"
    assert store.get_experiment_by_name("fresh").id == run.experiment_id
    new_run(store, "fresh")
    assert [e.name for e in store.list_experiments()] == ["fresh"]


# ---------------------------------------------------------------------------------------------- runs


def test_created_run_is_running_with_its_params_tags_and_attributes(store: SqlStore) -> None:
    run_id = new_run(store, name="first", params={"lr": "0.1"}, tags={"team": "risk"})
    run = store.get_run(run_id)
    assert run.id == run_id
    assert run.status is RunStatus.RUNNING
    assert (run.name, run.user, run.source, run.start_time) == ("first", "ada", "train.py", T0)
    assert run.end_time is None
    assert run.deleted is False
    assert run.params == {"lr": "0.1"}
    assert run.tags == {"team": "risk"}
    assert run.metrics == {}


def test_create_run_with_an_existing_id_returns_the_existing_run(store: SqlStore, db: sa.Engine) -> None:
    run_id = new_run(store, params={"lr": "0.1"})
    again = store.create_run(
        RunCreate(
            run_id=run_id,
            experiment_name="other",
            name="retry",
            start_time=T0 + 5,
            user="bob",
            params={"lr": "0.2"},
        )
    )
    assert again.params == {"lr": "0.1"}
    assert again.experiment_name == "exp"
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar_one() == 1


def test_get_run_of_unknown_id_raises_run_not_found_naming_the_run_store_and_fix(
    store: SqlStore, store_uri: str
) -> None:
    with pytest.raises(RunNotFound) as info:
        store.get_run("deadbeef")
    message = str(info.value)
    assert "'deadbeef'" in message
    assert store_uri in message
    assert "shipyard runs ls" in message
    assert info.value.http_status == 404


def test_run_with_unknown_parent_is_refused(store: SqlStore) -> None:
    with pytest.raises(RunNotFound, match="'no-such-parent'"):
        new_run(store, parent="no-such-parent")


def test_child_run_records_its_parent(store: SqlStore) -> None:
    parent = new_run(store)
    child = new_run(store, parent=parent)
    assert store.get_run(child).parent_run_id == parent


def test_ending_a_run_sets_status_and_end_time(store: SqlStore) -> None:
    run_id = new_run(store)
    store.update_run(run_id, status=RunStatus.FAILED, end_time=T0 + 1234)
    run = store.get_run(run_id)
    assert (run.status, run.end_time) == (RunStatus.FAILED, T0 + 1234)


def test_ending_a_run_without_an_end_time_uses_now(store: SqlStore) -> None:
    run_id = new_run(store)
    store.update_run(run_id, status=RunStatus.FINISHED)
    assert store.get_run(run_id).end_time is not None
    assert store.get_run(run_id).end_time > T0 - 10**12  # type: ignore[operator]


def test_update_of_unknown_run_raises_run_not_found(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.update_run("nope", status=RunStatus.FINISHED)


# ---------------------------------------------------------------------------------------------- params, tags


def test_logging_a_param_again_with_the_same_value_is_fine(store: SqlStore) -> None:
    run_id = new_run(store, params={"lr": "0.1"})
    store.log_batch(run_id, LogBatch(params={"lr": "0.1", "depth": "3"}))
    assert store.get_run(run_id).params == {"lr": "0.1", "depth": "3"}


def test_changing_a_param_raises_invalid_input_and_writes_nothing_of_the_batch(store: SqlStore) -> None:
    run_id = new_run(store, params={"lr": "0.1"})
    batch = LogBatch(metrics=points("loss", [1.0]), params={"lr": "0.2", "new": "x"}, tags={"t": "v"})
    with pytest.raises(InvalidInput) as info:
        store.log_batch(run_id, batch)
    message = str(info.value)
    assert "'lr'" in message and "'0.1'" in message and "'0.2'" in message
    run = store.get_run(run_id)
    assert run.params == {"lr": "0.1"}  # the batch is one transaction: nothing of it landed
    assert run.tags == {}
    assert run.metrics == {}


def test_too_long_param_value_is_refused(store: SqlStore) -> None:
    run_id = new_run(store)
    with pytest.raises(InvalidInput, match="limit"):
        store.log_batch(run_id, LogBatch(params={"blob": "x" * 6001}))


def test_tags_are_upserted(store: SqlStore) -> None:
    run_id = new_run(store, tags={"stage": "dev", "team": "risk"})
    store.log_batch(run_id, LogBatch(tags={"stage": "prod"}))
    store.log_batch(run_id, LogBatch(tags={"note": "ok"}))
    assert store.get_run(run_id).tags == {"stage": "prod", "team": "risk", "note": "ok"}


# ---------------------------------------------------------------------------------------------- metrics


def test_latest_metric_is_the_point_with_the_highest_step_whatever_the_arrival_order(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, LogBatch(metrics=[("loss", 0.5, 10, T0 + 10)]))
    store.log_batch(run_id, LogBatch(metrics=[("loss", 0.9, 3, T0 + 99)]))  # late, lower step
    assert store.get_run(run_id).metrics == {"loss": 0.5}
    store.log_batch(run_id, LogBatch(metrics=[("loss", 0.4, 11, T0 + 1)]))
    assert store.get_run(run_id).metrics == {"loss": 0.4}


def test_latest_metric_breaks_step_ties_by_timestamp(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, LogBatch(metrics=[("acc", 0.1, 5, T0 + 50)]))
    store.log_batch(run_id, LogBatch(metrics=[("acc", 0.2, 5, T0 + 40)]))  # same step, older
    assert store.get_run(run_id).metrics["acc"] == 0.1
    store.log_batch(run_id, LogBatch(metrics=[("acc", 0.3, 5, T0 + 60)]))  # same step, newer
    assert store.get_run(run_id).metrics["acc"] == 0.3


def test_latest_metric_within_one_batch_is_the_highest_step_not_the_last_row(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_batch(
        run_id, LogBatch(metrics=[("m", 7.0, 7, T0), ("m", 2.0, 2, T0 + 5), ("m", 7.5, 7, T0 + 1)])
    )
    assert store.get_run(run_id).metrics == {"m": 7.5}


def test_nan_and_infinities_are_stored_faithfully_in_history(store: SqlStore) -> None:
    run_id = new_run(store)
    values = [1.0, math.nan, math.inf, -math.inf, -0.0, 2.0]
    store.log_batch(run_id, LogBatch(metrics=points("weird", values)))
    history = store.get_metric_history(run_id, "weird")
    assert same_floats(history.values, values)
    assert math.copysign(1.0, history.values[4]) == -1.0
    assert history.steps == list(range(6))


def test_nan_latest_value_reads_back_as_nan(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, LogBatch(metrics=points("loss", [0.3, math.nan])))
    latest = store.get_run(run_id).metrics["loss"]
    assert math.isnan(latest)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_latest_value_reads_back_as_infinite(store: SqlStore, value: float) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, LogBatch(metrics=points("loss", [0.3, value])))
    assert store.get_run(run_id).metrics["loss"] == value


def test_history_is_ordered_by_step_across_batches(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, LogBatch(metrics=points("loss", [0.5, 0.4], start_step=5)))
    store.log_batch(run_id, LogBatch(metrics=points("loss", [1.0, 0.9, 0.8], start_step=0)))
    store.log_batch(run_id, LogBatch(metrics=points("loss", [0.7], start_step=3)))
    history = store.get_metric_history(run_id, "loss")
    assert history.steps == [0, 1, 2, 3, 5, 6]
    assert history.values == [1.0, 0.9, 0.8, 0.7, 0.5, 0.4]
    assert history.timestamps == sorted(history.timestamps)
    assert len(history) == 6


def test_history_keeps_keys_apart(store: SqlStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, LogBatch(metrics=points("a", [1.0, 2.0]) + points("b", [9.0])))
    assert store.get_metric_history(run_id, "a").values == [1.0, 2.0]
    assert store.get_metric_history(run_id, "b").values == [9.0]
    assert store.get_run(run_id).metrics == {"a": 2.0, "b": 9.0}


def test_history_of_a_key_never_logged_is_empty(store: SqlStore) -> None:
    run_id = new_run(store)
    history = store.get_metric_history(run_id, "nothing")
    assert (history.key, len(history)) == ("nothing", 0)


def test_history_of_an_unknown_run_raises_run_not_found(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.get_metric_history("nope", "loss")


def test_the_same_batch_id_applied_twice_is_counted_once(store: SqlStore) -> None:
    run_id = new_run(store)
    batch = LogBatch(metrics=points("loss", [1.0, 0.5]), tags={"a": "1"}, batch_id=uuid.uuid4().hex)
    store.log_batch(run_id, batch)
    store.log_batch(run_id, batch)  # a replay after a lost response
    store.log_batch(run_id, LogBatch(metrics=points("loss", [0.25], start_step=2), batch_id=uuid.uuid4().hex))
    assert store.get_metric_history(run_id, "loss").values == [1.0, 0.5, 0.25]


def test_batches_without_an_id_are_applied_every_time(store: SqlStore) -> None:
    run_id = new_run(store)
    batch = LogBatch(metrics=[("loss", 1.0, 0, T0)])
    store.log_batch(run_id, batch)
    store.log_batch(run_id, batch)
    assert len(store.get_metric_history(run_id, "loss")) == 2


def test_logging_to_an_unknown_run_raises_run_not_found(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.log_batch("nope", LogBatch(metrics=points("x", [1.0])))


def test_logging_to_a_deleted_run_raises_invalid_state_with_the_restore_command(store: SqlStore) -> None:
    run_id = new_run(store)
    store.delete_runs([run_id])
    with pytest.raises(InvalidState, match=f"shipyard runs restore {run_id}"):
        store.log_batch(run_id, LogBatch(metrics=points("x", [1.0])))


def test_an_empty_batch_is_a_no_op_even_for_an_unknown_run(store: SqlStore) -> None:
    run_id = new_run(store)
    before = store.get_run(run_id)
    store.log_batch("nope", LogBatch())
    store.log_batch(run_id, LogBatch())
    after = store.get_run(run_id)
    assert (after.metrics, after.params, after.tags) == (before.metrics, before.params, before.tags)
    with pytest.raises(RunNotFound):
        store.get_run("nope")  # the empty batch created nothing


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_invalid_metric_key_is_refused_and_nothing_is_written(store: SqlStore, key: str) -> None:
    run_id = new_run(store)
    with pytest.raises(InvalidInput):
        store.log_batch(run_id, LogBatch(metrics=points("ok", [1.0]) + points(key, [2.0])))
    assert store.get_run(run_id).metrics == {}


def test_ending_a_run_compacts_many_small_flushes_without_changing_history(
    store: SqlStore, db: sa.Engine
) -> None:
    run_id = new_run(store)
    for i in range(40):  # 40 flushes of 5 points for two keys
        store.log_batch(
            run_id,
            LogBatch(
                metrics=points("loss", [1.0 / (i * 5 + j + 1) for j in range(5)], start_step=i * 5)
                + points("acc", [math.nan if j == 2 else i / 40 for j in range(5)], start_step=i * 5)
            ),
        )
    before = {k: store.get_metric_history(run_id, k) for k in ("loss", "acc")}
    assert chunk_rows(db, run_id, "loss") == 40
    store.update_run(run_id, status=RunStatus.FINISHED)
    assert chunk_rows(db, run_id, "loss") == 1
    assert chunk_rows(db, run_id, "acc") == 1
    for key, history in before.items():
        after = store.get_metric_history(run_id, key)
        assert after.steps == history.steps == list(range(200))
        assert after.timestamps == history.timestamps
        assert same_floats(after.values, history.values)


def test_a_non_terminal_update_does_not_compact(store: SqlStore, db: sa.Engine) -> None:
    run_id = new_run(store)
    for i in range(3):
        store.log_batch(run_id, LogBatch(metrics=points("loss", [1.0], start_step=i)))
    store.update_run(run_id, status=RunStatus.RUNNING)
    assert chunk_rows(db, run_id, "loss") == 3


# ---------------------------------------------------------------------------------------------- artifacts


def test_record_and_list_artifacts_sorted_by_path(store: SqlStore) -> None:
    run_id = new_run(store)
    store.record_artifacts(
        run_id,
        [Artifact("model/model.skops", DIGEST_A, 10, T0), Artifact("data/./train.csv", DIGEST_B, 20, T0)],
    )
    listed = store.list_artifacts(run_id)
    assert [(a.path, a.digest, a.size) for a in listed] == [
        ("data/train.csv", DIGEST_B, 20),
        ("model/model.skops", DIGEST_A, 10),
    ]


def test_recording_an_artifact_path_again_points_it_at_the_new_digest(store: SqlStore) -> None:
    run_id = new_run(store)
    store.record_artifacts(run_id, [Artifact("a.txt", DIGEST_A, 1, T0)])
    store.record_artifacts(run_id, [Artifact("a.txt", DIGEST_B, 2, T0 + 1)])
    assert [(a.path, a.digest) for a in store.list_artifacts(run_id)] == [("a.txt", DIGEST_B)]


def test_list_artifacts_prefix_matches_whole_path_segments_only(store: SqlStore) -> None:
    run_id = new_run(store)
    paths = ["model/a", "model/b/c", "model2/x", "model-x", "mod_l/y", "mod%l/z"]
    store.record_artifacts(run_id, [Artifact(p, DIGEST_A, 1, T0) for p in paths])
    assert [a.path for a in store.list_artifacts(run_id, "model")] == ["model/a", "model/b/c"]
    assert [a.path for a in store.list_artifacts(run_id, "model/a")] == ["model/a"]  # a file itself
    assert [a.path for a in store.list_artifacts(run_id, "mod_l")] == ["mod_l/y"]  # _ is not a wildcard
    assert [a.path for a in store.list_artifacts(run_id, "mod%l")] == ["mod%l/z"]  # nor is %


@pytest.mark.parametrize(
    ("first", "second"),
    [(["m"], ["m/n"]), (["m/n/o"], ["m"]), (["m/n"], ["m/n/o"]), ([], ["m", "m/n"]), (["M/x"], ["M"])],
)
def test_a_file_and_a_folder_of_the_same_name_are_refused_on_both_backends(
    store: SqlStore, first: list[str], second: list[str]
) -> None:
    run_id = new_run(store)
    store.record_artifacts(run_id, [Artifact(p, DIGEST_A, 1, T0) for p in first])
    with pytest.raises(UnsafePath, match="cannot hold both"):
        store.record_artifacts(run_id, [Artifact(p, DIGEST_A, 1, T0) for p in second])
    assert [a.path for a in store.list_artifacts(run_id)] == first


def test_names_that_only_start_alike_are_no_conflict(store: SqlStore) -> None:
    run_id = new_run(store)
    paths = ["m", "m-1/x", "m.d/y", "m0/z", "mm/w", "M/v"]
    store.record_artifacts(run_id, [Artifact(p, DIGEST_A, 1, T0) for p in paths])
    store.record_artifacts(run_id, [Artifact("m", DIGEST_A, 2, T0)])  # re-recording overwrites
    assert len(store.list_artifacts(run_id)) == len(paths)


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../b", "a\\b", ""])
def test_unsafe_artifact_path_is_refused(store: SqlStore, path: str) -> None:
    run_id = new_run(store)
    with pytest.raises(UnsafePath):
        store.record_artifacts(run_id, [Artifact(path, DIGEST_A, 1, T0)])
    assert store.list_artifacts(run_id) == []


def test_artifacts_of_an_unknown_run_raise_run_not_found(store: SqlStore) -> None:
    with pytest.raises(RunNotFound):
        store.record_artifacts("nope", [Artifact("a", DIGEST_A, 1, T0)])
    with pytest.raises(RunNotFound):
        store.list_artifacts("nope")


def test_referenced_digests_are_those_some_run_records(store: SqlStore) -> None:
    r1, r2 = new_run(store), new_run(store)
    store.record_artifacts(r1, [Artifact("a", DIGEST_A, 1, T0), Artifact("shared", DIGEST_C, 1, T0)])
    store.record_artifacts(r2, [Artifact("b", DIGEST_B, 1, T0), Artifact("shared", DIGEST_C, 1, T0)])
    assert store.referenced_digests([DIGEST_A, DIGEST_C, "d" * 64]) == {DIGEST_A, DIGEST_C}
    assert store.referenced_digests([]) == set()
    store.delete_runs([r1])
    store.purge_deleted_runs()
    assert store.referenced_digests([DIGEST_A, DIGEST_B, DIGEST_C]) == {DIGEST_B, DIGEST_C}


# ---------------------------------------------------------------------------------------------- delete, purge


def test_deleted_run_is_marked_and_restore_brings_it_back(store: SqlStore) -> None:
    run_id = new_run(store)
    assert store.delete_runs([run_id]) == 1
    assert store.get_run(run_id).deleted is True
    assert store.search_runs().runs == []
    assert store.restore_runs([run_id]) == 1
    assert store.get_run(run_id).deleted is False
    assert [r.id for r in store.search_runs().runs] == [run_id]


def test_deleting_a_list_with_an_unknown_run_changes_nothing(store: SqlStore) -> None:
    run_id = new_run(store)
    with pytest.raises(RunNotFound, match="'ghost'"):
        store.delete_runs([run_id, "ghost"])
    assert store.get_run(run_id).deleted is False


def test_purge_removes_deleted_runs_and_everything_they_own(store: SqlStore, db: sa.Engine) -> None:
    gone = new_run(store, params={"p": "1"}, tags={"t": "1"})
    kept = new_run(store, params={"p": "2"})
    child = new_run(store, parent=gone)
    store.log_batch(gone, LogBatch(metrics=points("loss", [1.0, 2.0]), batch_id="batch-1"))
    store.record_artifacts(gone, [Artifact("a", DIGEST_A, 1, T0)])
    store.delete_runs([gone])
    assert store.purge_deleted_runs() == 1
    with pytest.raises(RunNotFound):
        store.get_run(gone)
    assert store.get_run(kept).params == {"p": "2"}
    assert store.get_run(child).parent_run_id is None
    with db.connect() as conn:
        for table in (t.params, t.tags, t.latest_metrics, t.metric_chunks, t.artifacts, t.applied_batches):
            count = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.run_id == gone)
            ).scalar_one()
            assert count == 0, table.name
    assert store.purge_deleted_runs() == 0


def test_purge_of_1200_deleted_runs_works_in_batches_of_500(store: SqlStore, db: sa.Engine) -> None:
    exp = store.create_experiment("bulk")
    ids = [uuid.uuid4().hex for _ in range(1200)]
    with db.begin() as conn:  # bulk setup; the purge under test goes through the API
        conn.execute(
            sa.insert(t.runs),
            [
                {
                    "id": i,
                    "experiment_id": exp.id,
                    "name": "",
                    "status": "finished",
                    "start_time": T0 + n,
                    "user": "",
                    "source": "",
                    "deleted": False,
                }
                for n, i in enumerate(ids)
            ],
        )
        conn.execute(
            sa.insert(t.params), [{"run_id": i, "key": "p", "value": "1", "value_num": 1.0} for i in ids]
        )
    survivor = new_run(store)
    assert store.delete_runs(ids) == 1200
    assert store.purge_deleted_runs(batch_size=500) == 1200
    with db.connect() as conn:
        assert conn.execute(sa.select(t.runs.c.id)).scalars().all() == [survivor]
        assert conn.execute(sa.select(sa.func.count()).select_from(t.params)).scalar_one() == 0


def test_iter_run_ids_pages_through_every_run_once(store: SqlStore) -> None:
    ids = {new_run(store) for _ in range(7)}
    pages = list(store.iter_run_ids(batch_size=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [i for p in pages for i in p]
    assert flat == sorted(ids)


def test_iter_run_ids_of_an_empty_store_yields_nothing(store: SqlStore) -> None:
    assert list(store.iter_run_ids()) == []


# ---------------------------------------------------------------------------------------------- search


def populate(store: SqlStore) -> dict[str, str]:
    """Runs with known params/metrics/tags; returns name -> run id."""
    spec = {
        # name: (lr, model, metrics, team tag, status)
        "r0": ("0.001", "rf", {"auc": 0.70, "loss": 0.5}, "Risk", RunStatus.FINISHED),
        "r1": ("0.1", "lr", {"auc": 0.90, "loss": 0.2}, "risk", RunStatus.FINISHED),
        "r2": ("0.05", "rf", {"auc": 0.80, "loss": math.nan}, None, RunStatus.FAILED),
        "r3": ("auto", "lr", {"loss": 0.9}, "Ops", RunStatus.RUNNING),
        "r4": ("1e-3", "rf", {"auc": 0.60}, "Risky", RunStatus.FINISHED),
        "r5": ("2", "svm", {}, None, RunStatus.KILLED),
    }
    ids = {}
    for n, (name, (lr, model, metrics, team, status)) in enumerate(spec.items()):
        run_id = new_run(
            store,
            "search",
            name=name,
            start=T0 + n * 1000,
            params={"lr": lr, "model": model},
            tags={"team": team} if team else {},
        )
        store.log_batch(run_id, LogBatch(metrics=[(k, v, 0, T0) for k, v in metrics.items()]))
        if status is not RunStatus.RUNNING:
            store.update_run(run_id, status=status, end_time=T0 + n * 1000 + 500)
        ids[name] = run_id
    ids["other"] = new_run(store, "other-exp", name="other", start=T0 + 9000, params={"lr": "0.5"})
    store.log_batch(ids["other"], LogBatch(metrics=[("auc", 0.95, 0, T0)]))
    ids["deleted"] = new_run(store, "search", name="deleted", start=T0 + 8000, params={"lr": "0.3"})
    store.log_batch(ids["deleted"], LogBatch(metrics=[("auc", 0.99, 0, T0)]))
    store.delete_runs([ids["deleted"]])
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def searchable(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqlStore, dict[str, str]]]:
    """One populated store per backend, shared by the read-only search tests (they never write)."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path_factory.mktemp('search') / 'search.db'}"
        s = SqlStore(uri)
        yield s, populate(s)
        s.close()
        return
    with pg_database() as uri:
        s = SqlStore(uri)
        try:
            yield s, populate(s)
        finally:
            s.close()


@pytest.fixture
def population(searchable: tuple[SqlStore, dict[str, str]]) -> dict[str, str]:
    return searchable[1]


@pytest.fixture
def search_store(searchable: tuple[SqlStore, dict[str, str]]) -> SqlStore:
    return searchable[0]


def names_of(
    store: SqlStore, population: dict[str, str], filter: str | None = None, **kwargs: object
) -> set[str]:
    exp = store.get_experiment_by_name("search").id
    by_id = {v: k for k, v in population.items()}
    runs = store.search_runs([exp], filter, **kwargs).runs  # type: ignore[arg-type]
    return {by_id[r.id] for r in runs}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.auc > 0.75", {"r1", "r2"}),
        ("metrics.auc >= 0.7 and metrics.loss < 0.4", {"r1"}),
        ("metrics.loss != 0.5", {"r1", "r3"}),  # the NaN loss compares false, like on every backend
        ("params.model = 'rf'", {"r0", "r2", "r4"}),
        ("params.model in ('lr', 'svm')", {"r1", "r3", "r5"}),
        ("params.model not in ('rf')", {"r1", "r3", "r5"}),
        ("tags.team = 'Risk'", {"r0"}),
        ("attributes.status = 'finished'", {"r0", "r1", "r4"}),
        ("attributes.status != 'finished'", {"r2", "r3", "r5"}),
        ("attributes.run_name = 'r3'", {"r3"}),
        (f"attributes.start_time >= {T0 + 4000}", {"r4", "r5"}),
        ("attributes.end_time is null", {"r3"}),
        ("metrics.auc > 0.85 or params.model = 'svm'", {"r1", "r5"}),
        ("not params.model = 'rf'", {"r1", "r3", "r5"}),
        ("not (metrics.auc > 0.65 or tags.team = 'Ops')", {"r4"}),
        ("(params.model = 'rf' or params.model = 'lr') and not tags.team like 'R%'", {"r1", "r3"}),
    ],
)
def test_search_filters_on_metrics_params_tags_and_attributes(
    search_store: SqlStore, population: dict[str, str], filter: str, expected: set[str]
) -> None:
    assert names_of(search_store, population, filter) == expected


def test_params_compare_numerically_when_the_filter_value_is_a_number(
    search_store: SqlStore, population: dict[str, str]
) -> None:
    # lr is stored as text: '1e-3' > '0.01' as strings, but 0.001 < 0.01 as numbers; 'auto' is no number.
    assert names_of(search_store, population, "params.lr > 0.01") == {"r1", "r2", "r5"}
    assert names_of(search_store, population, "params.lr = 0.001") == {"r0", "r4"}
    assert names_of(search_store, population, "params.lr = '0.001'") == {"r0"}


def test_is_null_matches_runs_without_the_field(search_store: SqlStore, population: dict[str, str]) -> None:
    assert names_of(search_store, population, "metrics.auc is null") == {"r3", "r5"}
    assert names_of(search_store, population, "tags.team is null") == {"r2", "r5"}
    assert names_of(search_store, population, "tags.team is not null") == {"r0", "r1", "r3", "r4"}
    # A NaN latest value is a value, not a missing metric.
    assert "r2" not in names_of(search_store, population, "metrics.loss is null")


def test_like_is_case_sensitive_and_ilike_is_not(search_store: SqlStore, population: dict[str, str]) -> None:
    assert names_of(search_store, population, "tags.team like 'R%'") == {"r0", "r4"}
    assert names_of(search_store, population, "tags.team like 'Ris_'") == {"r0"}
    assert names_of(search_store, population, "tags.team ilike 'ris%'") == {"r0", "r1", "r4"}


def test_order_by_metric_desc_puts_runs_missing_it_last(
    search_store: SqlStore, population: dict[str, str]
) -> None:
    exp = search_store.get_experiment_by_name("search").id
    by_id = {v: k for k, v in population.items()}
    runs = search_store.search_runs([exp], order_by=["metrics.auc desc"]).runs
    names = [by_id[r.id] for r in runs]
    assert names[:4] == ["r1", "r2", "r0", "r4"]
    assert set(names[4:]) == {"r3", "r5"}
    asc = [by_id[r.id] for r in search_store.search_runs([exp], order_by=["metrics.auc asc"]).runs]
    assert asc[:4] == ["r4", "r0", "r2", "r1"]
    assert set(asc[4:]) == {"r3", "r5"}


def test_order_by_param_sorts_numbers_numerically(search_store: SqlStore, population: dict[str, str]) -> None:
    exp = search_store.get_experiment_by_name("search").id
    by_id = {v: k for k, v in population.items()}
    names = [by_id[r.id] for r in search_store.search_runs([exp], order_by=["params.lr"]).runs]
    assert names[-1] == "r3"  # 'auto' has no numeric value
    assert names[:5].index("r2") < names[:5].index("r1") < names[:5].index("r5")
    assert set(names[:2]) == {"r0", "r4"}


def test_default_order_is_newest_first(search_store: SqlStore, population: dict[str, str]) -> None:
    exp = search_store.get_experiment_by_name("search").id
    by_id = {v: k for k, v in population.items()}
    assert [by_id[r.id] for r in search_store.search_runs([exp]).runs] == ["r5", "r4", "r3", "r2", "r1", "r0"]


@pytest.mark.parametrize("order_by", [None, ["metrics.auc desc"], ["params.model", "metrics.loss"]])
def test_paging_with_tokens_returns_every_run_exactly_once(
    search_store: SqlStore, population: dict[str, str], order_by: list[str] | None
) -> None:
    everything = [r.id for r in search_store.search_runs(order_by=order_by).runs]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = search_store.search_runs(order_by=order_by, limit=2, page_token=token)
        seen.extend(r.id for r in page.runs)
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert seen == everything
    assert len(set(seen)) == len(seen) == 7  # 6 in 'search' + 1 in 'other-exp'; the deleted one is hidden
    assert pages == 4


def test_last_full_page_has_no_next_token(search_store: SqlStore, population: dict[str, str]) -> None:
    exp = search_store.get_experiment_by_name("search").id
    page = search_store.search_runs([exp], limit=6)
    assert len(page.runs) == 6
    assert page.next_page_token is None


def test_columns_selects_which_params_metrics_and_tags_are_loaded(
    search_store: SqlStore, population: dict[str, str]
) -> None:
    exp = search_store.get_experiment_by_name("search").id
    runs = search_store.search_runs(
        [exp], filter="attributes.run_name = 'r0'", columns=["metrics.auc", "params.lr"]
    ).runs
    (run,) = runs
    assert run.metrics == {"auc": 0.70}
    assert run.params == {"lr": "0.001"}
    assert run.tags == {}
    assert run.name == "r0"  # attributes always come


def test_search_results_carry_full_runs_with_nan_metrics(
    search_store: SqlStore, population: dict[str, str]
) -> None:
    exp = search_store.get_experiment_by_name("search").id
    (run,) = search_store.search_runs([exp], filter="attributes.run_name = 'r2'").runs
    assert run.experiment_name == "search"
    assert run.status is RunStatus.FAILED
    assert run.params == {"lr": "0.05", "model": "rf"}
    assert run.metrics["auc"] == 0.80
    assert math.isnan(run.metrics["loss"])


def test_experiment_filter_limits_the_search(search_store: SqlStore, population: dict[str, str]) -> None:
    other = search_store.get_experiment_by_name("other-exp").id
    assert [r.id for r in search_store.search_runs([other]).runs] == [population["other"]]
    assert len(search_store.search_runs().runs) == 7
    assert search_store.search_runs([]).runs == []


def test_deleted_runs_are_excluded_even_when_they_match(store: SqlStore) -> None:
    population = populate(store)
    assert "deleted" not in names_of(store, population, "metrics.auc > 0.9")
    store.restore_runs([population["deleted"]])
    assert "deleted" in names_of(store, population, "metrics.auc > 0.9")


@pytest.mark.parametrize("limit", [0, -1, 50_001, True, 1.5, "10"])
def test_limit_outside_1_to_50000_raises_invalid_input(search_store: SqlStore, limit: object) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        search_store.search_runs(limit=limit)  # type: ignore[arg-type]


def test_limit_of_50000_is_accepted(search_store: SqlStore) -> None:
    assert len(search_store.search_runs(limit=50_000).runs) == 7


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "token",
    ["garbage!", "bm90IGpzb24=", _token({}), _token({"offset": -1}), _token({"offset": "2"}), _token([1])],
)
def test_bad_page_token_raises_invalid_input(search_store: SqlStore, token: str) -> None:
    with pytest.raises(InvalidInput, match="page token"):
        search_store.search_runs(page_token=token)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("metrics.auc >> 1", 13),
        ("metrix.auc > 1", 0),
        ("metrics.auc > 0.5 and", 21),
        ("metrics.auc = 'x'", 14),
    ],
)
def test_bad_filter_raises_filter_syntax_error_with_its_position(
    search_store: SqlStore, text: str, position: int
) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        search_store.search_runs(filter=text)
    assert info.value.position == position
    assert info.value.text == text
    assert isinstance(info.value, InvalidInput)


def test_bad_order_by_raises_filter_syntax_error(search_store: SqlStore) -> None:
    with pytest.raises(FilterSyntaxError):
        search_store.search_runs(order_by=["metrics.auc sideways"])


def test_error_messages_never_show_the_database_password(pg_uri: str) -> None:
    """Messages travel to REST clients and logs: the store names itself with the password redacted."""
    with_password = pg_uri.replace("postgres@", "postgres:hunter2@", 1)  # trust auth ignores it
    assert "hunter2" in with_password
    store = SqlStore(with_password)
    try:
        with pytest.raises(RunNotFound) as err:
            store.get_run("nope")
        assert "hunter2" not in str(err.value) and "postgres:***@" in str(err.value)
        with pytest.raises(ExperimentNotFound) as err2:
            store.get_experiment_by_name("nope")
        assert "hunter2" not in str(err2.value)
    finally:
        store.close()
