"""A pipeline's DAG laid out for drawing: layered left to right, as the server draws it in SVG.

A node's layer is the length of the longest path to it from a source (a node with no upstream),
so every edge points right and a step sits just after the last of its inputs. Within a layer the
first layer keeps the pipeline's own (definition) order and each later one is sorted by the mean
row of its upstream nodes (the barycenter heuristic), which keeps most edges from crossing. Pure:
node ids and upstream lists in, coordinates out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Layout", "PlacedEdge", "PlacedNode", "layers", "layout"]

NODE_WIDTH, NODE_HEIGHT = 160, 40
GAP_X, GAP_Y, PAD = 56, 18, 8
_CHAR_WIDTH = 7  # px per character of the node labels at the page's font size (roughly)


@dataclass(frozen=True)
class PlacedNode:
    """A node's box: its id, a label that fits the box, its layer and row, and its top-left corner."""

    id: str
    label: str
    layer: int
    row: int
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT


@dataclass(frozen=True)
class PlacedEdge:
    """An edge from ``source`` (upstream) to ``target``: an SVG path from the right of one box to
    the left of the other."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class Layout:
    """Nodes in the DAG's own order, edges, and the drawing's size."""

    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]
    width: int
    height: int


def layers(dag: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each node's layer: the length of the longest path to it from a source.

    ``dag`` maps each node to its upstream nodes; upstream ids that are not nodes are ignored.
    Nodes on a cycle (tracing cannot make one) go one layer past the others.

    Example:
        >>> layers({"load": [], "clean": ["load"], "train": ["load", "clean"]})
        {'load': 0, 'clean': 1, 'train': 2}
    """
    upstream = {n: [u for u in dict.fromkeys(ups) if u in dag and u != n] for n, ups in dag.items()}
    layer: dict[str, int] = {}
    pending = list(dag)
    while pending:
        ready = [n for n in pending if all(u in layer for u in upstream[n])]
        if not ready:  # a cycle: place what is left after everything else
            last = max(layer.values(), default=-1) + 1
            layer.update(dict.fromkeys(pending, last))
            break
        for n in ready:
            layer[n] = max((layer[u] + 1 for u in upstream[n]), default=0)
        pending = [n for n in pending if n not in layer]
    return {n: layer[n] for n in dag}


def _label(text: str, width: int) -> str:
    fits = max((width - 16) // _CHAR_WIDTH, 4)
    return text if len(text) <= fits else text[: fits - 1] + "…"


def layout(
    dag: Mapping[str, Sequence[str]],
    node_width: int = NODE_WIDTH,
    node_height: int = NODE_HEIGHT,
    gap_x: int = GAP_X,
    gap_y: int = GAP_Y,
) -> Layout:
    """Coordinates for drawing ``dag`` (node → its upstream nodes) left to right.

    Example:
        >>> drawn = layout({"load": [], "train": ["load"]})
        >>> [(n.id, n.layer, n.x) for n in drawn.nodes], drawn.edges[0].source
        ([('load', 0, 8), ('train', 1, 224)], 'load')
    """
    layer_of = layers(dag)
    order = {n: i for i, n in enumerate(dag)}
    by_layer: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for n in dag:
        by_layer[layer_of[n]].append(n)
    row: dict[str, int] = {}
    for nodes in by_layer:

        def barycenter(n: str) -> tuple[float, int]:
            ups = [row[u] for u in dag[n] if u in row]
            return (sum(ups) / len(ups) if ups else -1.0, order[n])

        for i, n in enumerate(sorted(nodes, key=barycenter)):
            row[n] = i
    tallest = max((len(nodes) for nodes in by_layer), default=0)

    def column_height(count: int) -> int:
        return count * node_height + max(count - 1, 0) * gap_y

    height = 2 * PAD + column_height(tallest)
    width = 2 * PAD + len(by_layer) * node_width + max(len(by_layer) - 1, 0) * gap_x
    placed: dict[str, PlacedNode] = {}
    for n in dag:
        top = PAD + (column_height(tallest) - column_height(len(by_layer[layer_of[n]]))) // 2
        placed[n] = PlacedNode(
            id=n,
            label=_label(n, node_width),
            layer=layer_of[n],
            row=row[n],
            x=PAD + layer_of[n] * (node_width + gap_x),
            y=top + row[n] * (node_height + gap_y),
            width=node_width,
            height=node_height,
        )
    edges = []
    for n in dag:
        for u in dict.fromkeys(dag[n]):
            if u not in placed or u == n:
                continue
            a, b = placed[u], placed[n]
            x1, y1 = a.x + a.width, a.y + a.height / 2
            x2, y2 = b.x, b.y + b.height / 2
            bend = max((x2 - x1) / 2, gap_x / 2)
            path = f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"
            edges.append(PlacedEdge(u, n, path))
    return Layout(tuple(placed.values()), tuple(edges), width, height)
