"""The full Mermaid graph (docs/state-machine.md) and the local console's SVG are drawn from one
graph of the ASL.

GIVEN the state machine's ASL, WHEN it is drawn both ways, THEN both show every state (a Map's
inner states inside it) and every Next / Choice / Default / Catch transition, and the same ones.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certrelay.console.diagram import START, graph, mermaid
from certrelay.console.svg import svg
from certrelay.local.asl import all_states

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachines" / "certificate_lifecycle.asl.json"
NODE = re.compile(r"^\s*(\w+)(?:\(\(\(|\(\[|\[\[|\[|\{)")
SUBGRAPH = re.compile(r"^\s*subgraph (\w+) ")
EDGE = re.compile(r'^\s*(\w+) (?:-->|-\.->)(?:\|"([^"]*)"\|)? (\w+)$')
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL.read_text(encoding="utf-8"))


def transitions(states: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(state, next state) for every transition the ASL declares, Map item processors too."""
    for name, state in states.items():
        targets = [c["Next"] for c in state.get("Choices", [])]
        targets += [state["Default"]] if "Default" in state else []
        targets += [c["Next"] for c in state.get("Catch", [])]
        targets += [state["Next"]] if "Next" in state else []
        yield from ((name, target) for target in targets)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from transitions(processor["States"])


def mermaid_parts(text: str) -> tuple[set[str], list[tuple[str, str, str]], dict[str, list[str]]]:
    """Node ids, edges (from, label, to), and the node ids declared inside each subgraph."""
    nodes: set[str] = set()
    edges: list[tuple[str, str, str]] = []
    inside: dict[str, list[str]] = {}
    open_subgraphs: list[str] = []
    for line in text.splitlines()[1:]:
        if found := EDGE.match(line):
            edges.append((found[1], found[2] or "", found[3]))
        elif found := SUBGRAPH.match(line):
            nodes.add(found[1])
            open_subgraphs.append(found[1])
            inside[found[1]] = []
        elif line.strip() == "end":
            open_subgraphs.pop()
        elif found := NODE.match(line):
            nodes.add(found[1])
            if open_subgraphs:
                inside[open_subgraphs[-1]].append(found[1])
        else:
            raise AssertionError(f"a Mermaid line this test does not understand: {line!r}")
    return nodes, edges, inside


def svg_parts(text: str) -> tuple[dict[str, ET.Element], list[tuple[str, str, str]]]:
    root = ET.fromstring(text)
    groups = list(root.iter(f"{SVG}g"))
    states = {g.get("data-id", ""): g for g in groups if "state" in g.get("class", "").split()}
    edges = [
        (g.get("data-from", ""), g.get("data-label", ""), g.get("data-to", ""))
        for g in groups
        if "edge" in g.get("class", "").split()
    ]
    return states, edges


def box(group: ET.Element) -> tuple[float, float, float, float]:
    shape = group[1]  # after the <title>
    if shape.tag == f"{SVG}rect":
        x, y = float(shape.get("x", 0)), float(shape.get("y", 0))
        return x, y, x + float(shape.get("width", 0)), y + float(shape.get("height", 0))
    if shape.tag == f"{SVG}circle":
        cx, cy, r = (float(shape.get(k, 0)) for k in ("cx", "cy", "r"))
        return cx - r, cy - r, cx + r, cy + r
    points = [tuple(map(float, p.split(","))) for p in shape.get("points", "").split()]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def test_the_graph_has_every_state_and_every_transition_of_the_asl(asl):
    drawn = graph(asl)

    states = [n for n in drawn.nodes if n.kind != START]
    assert sorted(n.name for n in states) == sorted(_names_of(asl["States"]))
    names = {n.id: n.name for n in drawn.nodes}
    declared = sorted(transitions(asl["States"]))
    drawn_edges = sorted(
        (names[e.source], names[e.target])
        for e in drawn.edges
        if drawn.node(e.source).kind != START
    )
    assert drawn_edges == declared
    starts = [n for n in drawn.nodes if n.kind == START]
    maps = [n for n in states if n.kind == "Map"]
    assert len(starts) == 1 + len(maps), "one entry for the machine, one inside each Map"


def test_mermaid_draws_each_map_as_a_subgraph_of_its_inner_states(asl):
    drawn = graph(asl)
    _, _, inside = mermaid_parts(mermaid(asl))

    maps = [n for n in drawn.nodes if n.kind == "Map"]
    assert maps, "the workflow distributes with a Map"
    for node in maps:
        assert sorted(inside[node.id]) == sorted(n.id for n in drawn.region(node.id)), node.name
    distribute = next(n for n in maps if n.name == "Distribute Certificate")
    inner = {n.name for n in drawn.region(distribute.id)}
    assert {"Target Kind?", "Copy To Bucket", "Send Install Command", "Cancel Install"} <= inner


def test_mermaid_and_the_svg_share_the_node_and_edge_set(asl):
    drawn = graph(asl)
    mermaid_nodes, mermaid_edges, _ = mermaid_parts(mermaid(asl))
    svg_states, svg_edges = svg_parts(svg(drawn))

    expected_nodes = {n.id for n in drawn.nodes}
    expected_edges = sorted((e.source, e.label, e.target) for e in drawn.edges)
    assert mermaid_nodes == expected_nodes
    assert set(svg_states) == expected_nodes
    assert sorted(mermaid_edges) == expected_edges
    assert sorted(svg_edges) == expected_edges


def test_no_two_states_of_the_svg_overlap(asl):
    drawn = graph(asl)
    states, _ = svg_parts(svg(drawn))
    boxes = {
        node.id: box(states[node.id]) for node in drawn.nodes if not drawn.region(node.id)
    }  # a Map's box holds its inner states by design

    overlaps = [
        (a, b)
        for a, (ax1, ay1, ax2, ay2) in boxes.items()
        for b, (bx1, by1, bx2, by2) in boxes.items()
        if a < b and ax1 < bx2 and bx1 < ax2 and ay1 < by2 and by1 < ay2
    ]
    assert not overlaps, [(drawn.node(a).name, drawn.node(b).name) for a, b in overlaps]


def test_the_svg_marks_the_path_it_is_given(asl):
    drawn = graph(asl)
    ids = drawn.ids()
    first = next(e for e in drawn.edges if e.source == ids["Triage Event"] and not e.catch)

    states, _ = svg_parts(
        svg(drawn, entered=[first.source, first.target], failed=[first.target], taken=[first])
    )
    root = ET.fromstring(svg(drawn, entered=[first.source], taken=[first]))
    taken = [g for g in root.iter(f"{SVG}g") if "taken" in g.get("class", "").split()]

    assert "entered" in states[first.source].get("class", "").split()
    assert "failed" in states[first.target].get("class", "").split()
    assert "entered" not in states[ids["Already Handled"]].get("class", "").split()
    assert [(g.get("data-source"), g.get("data-target")) for g in taken] == [
        ("Triage Event", drawn.node(first.target).name)
    ]


def _names_of(states: dict[str, Any]) -> Iterator[str]:
    return (name for name, _ in all_states(states))
