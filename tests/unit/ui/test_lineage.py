"""The lineage graph: which nodes and edges a model's records make, and how the layout places
them (columns by kind, neighbours kept level so edges do not cross, every box inside the picture
and none overlapping, edges joining the boxes they name)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.entities import ModelVersion, RegisteredModel
from shipyard.serving.deployment import DeploymentSpec, parse_deployment
from shipyard.ui.lineage import COLUMNS, MAX_LABEL, Edge, Graph, Node, layout, model_lineage


def _version(
    n: int, run: str | None = None, datasets: list[tuple[str, int, str]] | None = None
) -> ModelVersion:
    return ModelVersion("churn", n, f"d{n}", "sklearn", [], {}, {}, run, datasets or [], "", "ann", 0)


def _model(aliases: dict[str, int], latest: int) -> RegisteredModel:
    return RegisteredModel("churn", "", "ann", 0, 0, latest, aliases)


def _deployment(name: str, *models: str) -> DeploymentSpec:
    variants = ", ".join(f"{{name: v{i}, model: '{m}'}}" for i, m in enumerate(models))
    return parse_deployment(f"name: {name}\nvariants: [{variants}]")


def test_run_datasets_feed_the_run_and_registration_datasets_feed_the_version() -> None:
    v1 = _version(1, "r1", [("flights", 3, "train"), ("holdout", 1, "validation")])
    nodes, edges = model_lineage(_model({}, 1), [v1], {"r1": [("flights", 3, "train")]}, [])
    assert {(e.source, e.target, e.title) for e in edges} == {
        ("dataset:flights@v3", "run:r1", "train"),
        ("run:r1", "version:1", "trained"),
        ("dataset:holdout@v1", "version:1", "validation"),
    }
    hrefs = {n.key: n.href for n in nodes}
    assert hrefs["dataset:flights@v3"] == "/datasets/flights/versions/3" and hrefs["run:r1"] == "/runs/r1"
    assert hrefs["version:1"] == "/models/churn#v1"


def test_two_versions_of_one_run_share_its_node() -> None:
    versions = [_version(2, "r1"), _version(1, "r1")]
    nodes, edges = model_lineage(_model({}, 2), versions, {"r1": [("flights", 1, "train")]}, [])
    assert sorted(n.key for n in nodes) == ["dataset:flights@v1", "run:r1", "version:1", "version:2"]
    assert len(edges) == 3  # one dataset edge, two run → version edges


def test_deployments_link_the_versions_their_variants_serve() -> None:
    model = _model({"champion": 1, "old": 9}, latest=2)
    deployments = [
        _deployment("live", "models:/churn@champion", "models:/churn/2"),
        _deployment("edge", "models:/churn"),  # latest
        _deployment("other", "models:/fraud/1", "/srv/models/churn"),  # another model, a folder
        _deployment("gone", "models:/churn/7"),  # a version not drawn
    ]
    nodes, edges = model_lineage(model, [_version(2), _version(1)], {}, deployments)
    served = {(e.source, e.target) for e in edges if e.target.startswith("deployment:")}
    assert served == {
        ("version:1", "deployment:live"),
        ("version:2", "deployment:live"),
        ("version:2", "deployment:edge"),
    }
    aliases = {(e.source, e.target) for e in edges if e.target.startswith("alias:")}
    assert aliases == {("version:1", "alias:champion")}  # @old points at a version not drawn
    assert {n.href for n in nodes if n.kind == "deployment"} == {"/deployments/live", "/deployments/edge"}


def test_names_in_links_are_quoted() -> None:
    nodes, _ = model_lineage(_model({}, 1), [_version(1, None, [("a b/c", 1, "train")])], {}, [])
    assert {n.href for n in nodes if n.kind == "dataset"} == {"/datasets/a%20b%2Fc/versions/1"}


def _row_of(graph: Graph, key: str) -> float:
    return next(p.y for p in graph.nodes if p.node.key == key)


def test_columns_follow_the_kinds_and_empty_ones_close_up() -> None:
    nodes = [Node("v", "version", "v1", "#"), Node("d", "dataset", "d", "/d"), Node("a", "alias", "@a", "#")]
    graph = layout(nodes, [Edge("d", "v"), Edge("v", "a")])
    xs = {p.node.key: p.x for p in graph.nodes}
    assert xs["d"] < xs["v"] < xs["a"]
    gap = xs["v"] - xs["d"]
    assert xs["a"] - xs["v"] == gap  # no empty run column between them


def test_neighbours_are_kept_level_so_edges_do_not_cross() -> None:
    versions = [Node(f"version:{n}", "version", f"v{n}", "#") for n in (3, 2, 1)]  # newest first
    runs = [Node("run:a", "run", "a", "#"), Node("run:b", "run", "b", "#")]
    data = [Node("dataset:x", "dataset", "x", "#"), Node("dataset:y", "dataset", "y", "#")]
    edges = [
        Edge("run:a", "version:1"),
        Edge("run:b", "version:3"),
        Edge("dataset:x", "run:a"),
        Edge("dataset:y", "run:b"),
    ]
    graph = layout([*runs, *data, *versions], edges)
    assert _row_of(graph, "version:3") < _row_of(graph, "version:2") < _row_of(graph, "version:1")
    assert _row_of(graph, "run:b") < _row_of(graph, "run:a")  # b feeds the top version
    assert _row_of(graph, "dataset:y") < _row_of(graph, "dataset:x")


def test_long_labels_are_cut_and_kept_whole_on_the_node() -> None:
    name = "a-very-long-dataset-name-indeed@v12"
    graph = layout([Node("d", "dataset", name, "#")], [])
    placed = graph.nodes[0]
    assert len(placed.text) == MAX_LABEL and placed.text.endswith("…") and placed.node.label == name


_KINDS = sorted(COLUMNS)


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[list[Node], list[Edge]]:
    kinds = draw(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=30))
    nodes = [Node(f"n{i}", kind, f"node {i}", "#") for i, kind in enumerate(kinds)]
    pairs = draw(
        st.lists(st.tuples(st.integers(0, len(nodes) - 1), st.integers(0, len(nodes) - 1)), max_size=60)
    )
    edges = [
        Edge(nodes[a].key, nodes[b].key)
        for a, b in pairs
        if COLUMNS[nodes[a].kind] < COLUMNS[nodes[b].kind]  # lineage flows left to right
    ]
    return nodes, edges


@settings(max_examples=150, deadline=None)
@given(_graphs())
def test_every_box_is_inside_the_picture_and_none_overlap(graph_in: tuple[list[Node], list[Edge]]) -> None:
    nodes, edges = graph_in
    graph = layout(nodes, edges)
    assert sorted(p.node.key for p in graph.nodes) == sorted(n.key for n in nodes)
    for p in graph.nodes:
        assert p.x >= 0 and p.x + p.width <= graph.width and p.y >= 0 and p.y + p.height <= graph.height
    boxes = [(p.x, p.y, p.x + p.width, p.y + p.height) for p in graph.nodes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    placed = {p.node.key: p for p in graph.nodes}
    assert len(graph.edges) == len(edges)
    for e in graph.edges:
        numbers = [float(v) for v in re.findall(r"-?[\d.]+", e.d)]
        source, target = placed[e.edge.source], placed[e.edge.target]
        assert numbers[:2] == [source.x + source.width, source.y + source.height / 2]
        assert numbers[-2:] == [target.x, target.y + target.height / 2]
