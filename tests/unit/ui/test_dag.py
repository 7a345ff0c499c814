"""The pipeline DAG's layout: layers are longest paths from the sources (against a plain recursive
definition), every edge points right, boxes never overlap and stay inside the drawing."""

from __future__ import annotations

import functools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.ui.dag import layers, layout


def reference_layers(dag: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from a source, straight from the definition (recursion over upstream nodes)."""

    @functools.cache
    def depth(node: str) -> int:
        return max((depth(u) + 1 for u in dag[node] if u in dag), default=0)

    return {n: depth(n) for n in dag}


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random DAGs: node i may take inputs only from nodes before it (so no cycles), in a shuffled
    definition order."""
    n = draw(st.integers(min_value=0, max_value=25))
    names = [f"step_{i}" for i in range(n)]
    dag = {
        names[i]: draw(st.lists(st.sampled_from(names[:i]), max_size=4, unique=True)) if i else []
        for i in range(n)
    }
    order = draw(st.permutations(names))
    return {name: dag[name] for name in order}


def test_a_diamond_is_three_layers_with_its_branches_side_by_side() -> None:
    dag = {"load": [], "clean": ["load"], "a": ["clean"], "b": ["clean"], "join": ["a", "b"]}
    drawn = layout(dag)
    nodes = {n.id: n for n in drawn.nodes}
    assert [n.id for n in drawn.nodes] == list(dag)  # the pipeline's own order
    assert {n: nodes[n].layer for n in dag} == {"load": 0, "clean": 1, "a": 2, "b": 2, "join": 3}
    assert nodes["a"].x == nodes["b"].x and nodes["a"].y < nodes["b"].y  # definition order in a layer
    assert nodes["load"].y == nodes["join"].y  # lone nodes are centred on the tallest layer
    assert nodes["load"].y == (nodes["a"].y + nodes["b"].y) // 2
    assert sorted((e.source, e.target) for e in drawn.edges) == [
        ("a", "join"),
        ("b", "join"),
        ("clean", "a"),
        ("clean", "b"),
        ("load", "clean"),
    ]


def test_a_step_sits_after_the_last_of_its_inputs() -> None:
    # train reads load directly and through features: the longest path puts it after features
    assert layers({"load": [], "features": ["load"], "train": ["load", "features"]}) == {
        "load": 0,
        "features": 1,
        "train": 2,
    }


def test_rows_follow_the_upstream_rows_so_edges_do_not_cross() -> None:
    # x is defined before y, but y's input (b) is drawn above x's input (a): y goes above x
    drawn = layout({"b": [], "a": [], "x": ["a"], "y": ["b"]})
    rows = {n.id: n.row for n in drawn.nodes}
    assert rows["b"] < rows["a"] and rows["y"] < rows["x"]


def test_an_empty_dag_and_a_cycle_still_lay_out() -> None:
    empty = layout({})
    assert empty.nodes == () and empty.edges == ()
    assert layers({"a": ["b"], "b": ["a"], "c": []}) == {"c": 0, "a": 1, "b": 1}


def test_long_names_are_cut_to_fit_their_box() -> None:
    name = "a_very_long_step_name_that_would_overflow_the_box"
    node = layout({name: []}).nodes[0]
    assert node.id == name and node.label.endswith("…") and len(node.label) < len(name)
    assert name.startswith(node.label[:-1])


@settings(max_examples=200, deadline=None)
@given(dags())
def test_any_dag_lays_out_in_layers_of_longest_paths_without_overlaps(dag: dict[str, list[str]]) -> None:
    drawn = layout(dag)
    nodes = {n.id: n for n in drawn.nodes}
    assert list(nodes) == list(dag)
    assert {n: nodes[n].layer for n in dag} == reference_layers(dag)
    boxes = {(n.x, n.y) for n in drawn.nodes}
    assert len(boxes) == len(dag)  # one box per place
    for n in drawn.nodes:
        assert n.x >= 0 and n.x + n.width <= drawn.width and n.y >= 0 and n.y + n.height <= drawn.height
        assert n.x == min(m.x for m in drawn.nodes if m.layer == n.layer)  # a layer is one column
    for a in drawn.nodes:
        for b in drawn.nodes:
            if a.layer == b.layer and a.id != b.id:
                assert a.y + a.height <= b.y or b.y + b.height <= a.y
    assert sorted((e.source, e.target) for e in drawn.edges) == sorted((u, n) for n in dag for u in dag[n])
    for e in drawn.edges:
        src, dst = nodes[e.source], nodes[e.target]
        assert src.layer < dst.layer  # every edge points right
        coords = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", e.path)]
        assert coords[:2] == [src.x + src.width, src.y + src.height / 2]
        assert coords[-2:] == [dst.x, dst.y + dst.height / 2]
