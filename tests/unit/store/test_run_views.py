"""``search_runs``'s ``view``: the active runs (the default), the deleted ones or all, with the same
filter, order and pages; on ``SqlStore`` over SQLite and the real PostgreSQL (``store_uri``), and
through the SDK's ``Client``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import Client
from shipyard.config import load_settings
from shipyard.entities import LogBatch, RunCreate, RunView
from shipyard.errors import InvalidInput
from shipyard.store.sql import SqlStore
from shipyard.store.sql.search import FREE_JOINS

T0 = 1_700_000_000_000
DELETED = ("r1", "r3", "r5")


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


@pytest.fixture
def population(store: SqlStore) -> dict[str, str]:
    """Six runs of experiment ``views``, r0 oldest; r1, r3 and r5 deleted; ``auc`` is i / 10."""
    store.create_experiment("views")
    ids = {}
    for i in range(6):
        spec = RunCreate(f"run{i:02d}" + "0" * 26, "views", f"r{i}", T0 + i, "ana")
        run = store.create_run(spec)
        store.log_batch(run.id, LogBatch(metrics=[("auc", i / 10, 0, T0)], params={"odd": str(i % 2)}))
        ids[f"r{i}"] = run.id
    store.delete_runs([ids[n] for n in DELETED])
    return ids


def names(store: SqlStore, population: dict[str, str], **kwargs: object) -> list[str]:
    by_id = {v: k for k, v in population.items()}
    exp = store.get_experiment_by_name("views").id
    return [by_id[r.id] for r in store.search_runs([exp], **kwargs).runs]  # type: ignore[arg-type]


def test_the_view_picks_active_deleted_or_all_runs(store: SqlStore, population: dict[str, str]) -> None:
    assert names(store, population) == names(store, population, view="active") == ["r4", "r2", "r0"]
    assert names(store, population, view=RunView.DELETED) == ["r5", "r3", "r1"]
    assert names(store, population, view="all") == ["r5", "r4", "r3", "r2", "r1", "r0"]
    exp = store.get_experiment_by_name("views").id
    deleted = store.search_runs([exp], view="deleted").runs
    assert all(r.deleted for r in deleted) and deleted[0].metrics == {"auc": 0.5}  # whole runs


def test_each_view_filters_orders_and_pages_alike(store: SqlStore, population: dict[str, str]) -> None:
    assert names(
        store, population, filter="metrics.auc >= 0.2", order_by=["metrics.auc asc"], view="all"
    ) == [
        "r2",
        "r3",
        "r4",
        "r5",
    ]
    assert names(store, population, filter="params.odd = '1'", view="deleted") == ["r5", "r3", "r1"]
    assert names(store, population, filter="params.odd = '1'", view="active") == []
    exp = store.get_experiment_by_name("views").id
    by_id = {v: k for k, v in population.items()}
    for view, whole in (("all", "r5 r4 r3 r2 r1 r0"), ("deleted", "r5 r3 r1"), ("active", "r4 r2 r0")):
        seen, token = [], None
        while True:
            page = store.search_runs(
                [exp], order_by=["metrics.auc desc"], limit=2, page_token=token, view=view
            )
            seen += [by_id[r.id] for r in page.runs]
            if (token := page.next_page_token) is None:
                break
        assert seen == whole.split(), view


def test_a_search_past_the_free_joins_keeps_its_view(store: SqlStore, population: dict[str, str]) -> None:
    """On PostgreSQL a search naming more keys reads pivots, not joins: the view holds there too."""
    absent = " and ".join(f"tags.absent{i} is null" for i in range(FREE_JOINS + 1))
    assert names(store, population, filter=absent, view="deleted") == ["r5", "r3", "r1"]
    assert names(store, population, filter=absent) == ["r4", "r2", "r0"]


def test_a_bad_view_is_refused_naming_the_choices(store: SqlStore, population: dict[str, str]) -> None:
    for bad in ("deleted_only", "ALL", None, 2):
        with pytest.raises(InvalidInput, match="'active', 'deleted', 'all'"):
            store.search_runs(view=bad)  # type: ignore[arg-type]


def test_the_sdk_searches_deleted_runs_on_request(tmp_path: Path, store_uri: str) -> None:
    settings = load_settings(tracking_uri=store_uri, home=str(tmp_path / "home"), system_metrics=False)
    client = Client(settings=settings)
    try:
        with client.start_run(experiment="sdk-views", name="gone") as gone:
            gone.log_metric("auc", 0.5)
        with client.start_run(experiment="sdk-views", name="kept"):
            pass
        client.delete_runs([gone.id])
        assert list(client.search_runs("sdk-views")["run_name"]) == ["kept"]  # the default is unchanged
        assert list(client.search_runs("sdk-views", view="deleted")["run_name"]) == ["gone"]
        assert sorted(client.search_runs("sdk-views", view="all")["run_name"]) == ["gone", "kept"]
        runs, _ = client.search_runs_page("sdk-views", filter="metrics.auc > 0.4", view="all")
        assert [r.name for r in runs] == ["gone"]
        with pytest.raises(InvalidInput, match="Invalid run view 'removed'"):
            client.search_runs("sdk-views", view="removed")
    finally:
        client.close()
