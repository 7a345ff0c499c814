"""A model's lineage as a graph the server draws: datasets in → training runs → versions →
aliases and deployments using them.

Pure functions over records the page has already read: :func:`model_lineage` turns them into
nodes and edges, :func:`layout` places them in columns (one per kind, left to right) and routes
each edge as a curve, ready for an inline SVG that needs no JavaScript. Nodes are ordered within
a column by the mean row of their neighbours already placed (the barycentre heuristic), which
keeps most edges short and uncrossed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from shipyard.entities import ModelVersion, RegisteredModel
from shipyard.errors import InvalidInput
from shipyard.registry.references import parse_model_ref
from shipyard.serving.deployment import DeploymentSpec

__all__ = ["COLUMNS", "Edge", "Graph", "Node", "PlacedEdge", "PlacedNode", "layout", "model_lineage"]

COLUMNS = {"dataset": 0, "run": 1, "version": 2, "alias": 3, "deployment": 3}
"""The column of each kind of node (empty columns are closed up)."""
NODE_W, NODE_H, ROW_H, COL_GAP, PAD = 180, 30, 42, 70, 8
MAX_LABEL = 24


@dataclass(frozen=True)
class Node:
    """A thing in the lineage: ``key`` is unique in the graph, ``href`` its page."""

    key: str
    kind: str
    label: str
    href: str


@dataclass(frozen=True)
class Edge:
    """``source`` fed or points at ``target`` (node keys); ``title`` says how, on hover."""

    source: str
    target: str
    title: str = ""


@dataclass(frozen=True)
class PlacedNode:
    """A node with its box's top-left corner and the label as drawn (cut to fit)."""

    node: Node
    x: float
    y: float
    text: str
    width: int = NODE_W
    height: int = NODE_H


@dataclass(frozen=True)
class PlacedEdge:
    """An edge as an SVG path (``d``) from its source's right side to its target's left side."""

    edge: Edge
    d: str


@dataclass(frozen=True)
class Graph:
    """Everything an SVG of the lineage needs."""

    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    width: int
    height: int


def _page(prefix: str, name: str) -> str:
    return f"{prefix}/{quote(name, safe='')}"


def _version_key(number: int) -> str:
    return f"version:{number}"


def model_lineage(
    model: RegisteredModel,
    versions: Sequence[ModelVersion],
    run_datasets: Mapping[str, Sequence[tuple[str, int, str]]],
    deployments: Sequence[DeploymentSpec],
) -> tuple[list[Node], list[Edge]]:
    """The lineage of ``versions`` of ``model``: their datasets, source runs, aliases and the
    deployments whose variants name them (by number, alias or ``latest``).

    ``run_datasets`` maps a run id to the ``(dataset, version, role)`` it consumed: those feed
    the run; a version's other datasets (given at registration) feed the version itself.

    Example:
        >>> from shipyard.entities import ModelVersion, RegisteredModel
        >>> m = RegisteredModel("churn", "", "ann", 0, 0, 1, {"champion": 1})
        >>> fed = [("flights", 2, "train")]
        >>> v = ModelVersion("churn", 1, "d", "sklearn", [], {}, {}, "r1", fed, "", "ann", 0)
        >>> nodes, edges = model_lineage(m, [v], {"r1": fed}, [])
        >>> sorted(n.key for n in nodes)
        ['alias:champion', 'dataset:flights@v2', 'run:r1', 'version:1']
        >>> [f"{e.source} -> {e.target}" for e in edges][:2]
        ['dataset:flights@v2 -> run:r1', 'run:r1 -> version:1']
    """
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str], Edge] = {}

    def add(node: Node) -> str:
        nodes.setdefault(node.key, node)
        return node.key

    def link(source: str, target: str, title: str) -> None:
        edges.setdefault((source, target), Edge(source, target, title))

    def dataset(name: str, number: int) -> str:
        ref = f"{name}@v{number}"
        return add(Node(f"dataset:{ref}", "dataset", ref, f"{_page('/datasets', name)}/versions/{number}"))

    model_page = _page("/models", model.name)
    shown = {v.version for v in versions}
    for v in versions:
        target = add(Node(_version_key(v.version), "version", f"v{v.version}", f"{model_page}#v{v.version}"))
        fed_run: set[tuple[str, int, str]] = set()
        if v.run_id:
            run = add(Node(f"run:{v.run_id}", "run", f"run {v.run_id[:8]}", _page("/runs", v.run_id)))
            for name, number, role in run_datasets.get(v.run_id, ()):
                link(dataset(name, number), run, role)
                fed_run.add((name, number, role))
            link(run, target, "trained")
        for name, number, role in v.datasets:
            if (name, number, role) not in fed_run:
                link(dataset(name, number), target, role)
    for alias, number in sorted(model.aliases.items()):
        if number in shown:
            key = add(Node(f"alias:{alias}", "alias", f"@{alias}", f"{model_page}#v{number}"))
            link(_version_key(number), key, f"@{alias} → v{number}")
    for spec in deployments:
        for variant in spec.variants:
            served = _served_version(model, variant.model)
            if served is not None and served in shown:
                key = add(
                    Node(f"deployment:{spec.name}", "deployment", spec.name, _page("/deployments", spec.name))
                )
                title = f"variant {variant.name} ({variant.mode}, weight {variant.weight:g}): {variant.model}"
                link(_version_key(served), key, title)
    return list(nodes.values()), list(edges.values())


def _served_version(model: RegisteredModel, reference: str) -> int | None:
    """The version of ``model`` a deployment variant's model reference names now, or None."""
    if not reference.startswith("models:/"):
        return None  # a model folder, not the registry
    try:
        ref = parse_model_ref(reference)
    except InvalidInput:
        return None
    if ref.name != model.name:
        return None
    if ref.version is not None:
        return ref.version
    if ref.ref == "latest":
        return model.latest_version
    return model.aliases.get(ref.ref)


def _cut(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _order(columns: dict[int, list[Node]], edges: Sequence[Edge]) -> None:
    """Order each column by the mean row of its neighbours in the columns already ordered.

    The version column keeps its given order (newest first); the columns left of it are ordered
    by their targets, the columns right of it by their sources.
    """
    neighbours: dict[str, list[str]] = {}
    for e in edges:
        neighbours.setdefault(e.source, []).append(e.target)
        neighbours.setdefault(e.target, []).append(e.source)
    anchor = COLUMNS["version"]
    row: dict[str, int] = {n.key: i for i, n in enumerate(columns.get(anchor, []))}
    for col in [*range(anchor - 1, -1, -1), *range(anchor + 1, max(columns, default=0) + 1)]:
        if col not in columns:
            continue

        def centre(node: Node, placed: dict[str, int] = row) -> float:
            known = [placed[k] for k in neighbours.get(node.key, ()) if k in placed]
            return sum(known) / len(known) if known else float("inf")

        columns[col].sort(key=centre)  # stable: ties keep their first-seen order
        row.update({n.key: i for i, n in enumerate(columns[col])})


def layout(nodes: Sequence[Node], edges: Sequence[Edge]) -> Graph:
    """Place ``nodes`` in columns by kind (empty columns closed up), each column centred on the
    tallest, and draw each edge as a cubic curve between the boxes it joins.

    Example:
        >>> nodes = [Node("a", "run", "run a", "/runs/a"), Node("b", "version", "v1", "#v1")]
        >>> g = layout(nodes, [Edge("a", "b")])
        >>> [(p.node.key, p.x, p.y) for p in g.nodes], g.edges[0].d
        ([('a', 8, 8.0), ('b', 258, 8.0)], 'M188,23.0 C223.0,23.0 223.0,23.0 258,23.0')
    """
    columns: dict[int, list[Node]] = {}
    for n in nodes:
        columns.setdefault(COLUMNS[n.kind], []).append(n)
    _order(columns, edges)
    tallest = max((len(c) for c in columns.values()), default=0)
    placed: dict[str, PlacedNode] = {}
    for slot, col in enumerate(sorted(columns)):
        offset = (tallest - len(columns[col])) * ROW_H / 2
        x = PAD + slot * (NODE_W + COL_GAP)
        for i, n in enumerate(columns[col]):
            placed[n.key] = PlacedNode(n, x, PAD + offset + i * ROW_H, _cut(n.label))
    drawn = []
    for e in edges:
        a, b = placed.get(e.source), placed.get(e.target)
        if a is None or b is None:
            continue
        x1, y1 = a.x + a.width, a.y + a.height / 2
        x2, y2 = b.x, b.y + b.height / 2
        mid = (x1 + x2) / 2
        drawn.append(PlacedEdge(e, f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    width = PAD * 2 + len(columns) * NODE_W + max(len(columns) - 1, 0) * COL_GAP
    height = PAD * 2 + max(tallest - 1, 0) * ROW_H + (NODE_H if tallest else 0)
    return Graph(list(placed.values()), drawn, width, height)
