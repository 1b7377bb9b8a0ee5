"""The state machine drawn as SVG for the local console, from `diagram.graph` (as the README's
Mermaid is), with one execution's path on it.

A layered layout, readable rather than pretty: edges that close a loop are found by a depth-first
walk from the start and set aside; every other state sits one row below the lowest state that
leads to it (longest path); a row keeps its states near their predecessors. A Map is a box with
its own item processor laid out inside. Edges are drawn under the states; a loop's edge goes
around the right-hand side. Presentation attributes only, so a strict CSP needs no style rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from certrelay.console.diagram import START, Edge, Graph, Node

CHAR = 7.0  # average advance of a 12px sans-serif character
HEIGHT = 30
START_SIZE = 16
GAP_X = 22
GAP_Y = 34
HEADER = 24  # a Map box's title band
PAD = 10
LANE = 9  # spacing of the loop edges' lanes on the right

INK = "#57606a"
FAINT = "#afb8c1"
GREEN = "#1a7f37"
GREEN_FILL = "#dafbe1"
RED = "#cf222e"
RED_FILL = "#ffebe9"


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class _Layout:
    """One region laid out: boxes and edge routes of it and its Maps, relative to its origin."""

    width: float = 0.0
    height: float = 0.0
    boxes: dict[str, _Box] = field(default_factory=dict)
    routes: list[tuple[Edge, list[tuple[float, float]]]] = field(default_factory=list)


def svg(
    drawn: Graph,
    *,
    entered: Iterable[str] = (),
    failed: Iterable[str] = (),
    taken: Iterable[Edge] = (),
    title: str = "The state machine",
) -> str:
    """The whole graph; `entered` and `failed` are node ids, `taken` the edges followed."""
    on, red, path = set(entered), set(failed), set(taken)
    layout = _layout(drawn, None)
    width, height = layout.width + 2 * PAD, layout.height + 2 * PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="state-machine" role="img" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="system-ui,sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        "<defs>",
        _marker("arrow", INK),
        _marker("arrow-faint", FAINT),
        _marker("arrow-taken", GREEN),
        "</defs>",
        f'<g transform="translate({PAD},{PAD})">',
    ]
    nodes = {node.id: node for node in drawn.nodes}
    maps = [n for n in drawn.nodes if n.id in layout.boxes and drawn.region(n.id)]
    parts.extend(_map_box(n, layout.boxes[n.id], n.id in on, n.id in red) for n in maps)
    for edge, points in layout.routes:
        parts.append(_edge(edge, points, nodes, edge in path))
    for node in drawn.nodes:
        if node not in maps:
            parts.append(_state(node, layout.boxes[node.id], node.id in on, node.id in red))
    parts.append("</g></svg>")
    return "\n".join(parts)


# -- layout ----------------------------------------------------------------------------------
def _layout(drawn: Graph, parent: str | None) -> _Layout:
    """One region: rows of states (each Map laid out inside first), then the edges' routes."""
    nodes = drawn.region(parent)
    ids = {node.id for node in nodes}
    edges = [e for e in drawn.edges if e.source in ids]
    inner = {n.id: _layout(drawn, n.id) for n in nodes if drawn.region(n.id)}
    size = {n.id: _size(n, inner.get(n.id)) for n in nodes}
    loops, layer = _layers(nodes, edges)
    predecessors, slots = _slots(nodes, edges, loops, layer, size)
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for node_id in layer:
        rows[layer[node_id]].append(node_id)

    result = _Layout(boxes=_place(rows, size, predecessors))
    result.width = max((b.x + b.w for b in result.boxes.values()), default=0.0)
    result.height = max((b.bottom for b in result.boxes.values()), default=0.0)
    _route(result, edges, loops, slots)
    for map_id, region in inner.items():
        _nest(result, result.boxes[map_id], region)
    return result


def _slots(
    nodes: list[Node],
    edges: list[Edge],
    loops: set[tuple[str, str]],
    layer: dict[str, int],
    size: dict[str, tuple[float, float]],
) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
    """Each node's predecessors, and each edge's chain of empty slots through the rows between.

    A long forward edge passes its rows through slots of its own (added to `layer` and `size`),
    so it goes around the states between; a catch edge (faint, dashed) is drawn straight instead.
    """
    predecessors: dict[str, list[str]] = {n.id: [] for n in nodes}
    slots: dict[int, list[str]] = {}
    for number, edge in enumerate(edges):
        if (edge.source, edge.target) in loops:
            continue
        chain: list[str] = []
        if not edge.catch:
            for row in range(layer[edge.source] + 1, layer[edge.target]):
                slot = f"~{number}.{row}"
                layer[slot], size[slot] = row, (0.0, HEIGHT)
                predecessors[slot] = [chain[-1] if chain else edge.source]
                chain.append(slot)
        slots[number] = chain
        predecessors[edge.target].append(chain[-1] if chain else edge.source)
    return predecessors, slots


def _route(
    result: _Layout, edges: list[Edge], loops: set[tuple[str, str]], slots: dict[int, list[str]]
) -> None:
    """Each edge's points: down through its slots; a loop goes around the right, in its lane."""
    lane = result.width
    for number, edge in enumerate(edges):
        source, target = result.boxes[edge.source], result.boxes[edge.target]
        if (edge.source, edge.target) in loops:
            lane += LANE
            result.routes.append((edge, _around(source, target, lane)))
            continue
        points = [(source.cx, source.bottom)]
        for box in (result.boxes[slot] for slot in slots[number]):
            points.extend([(box.cx, box.y), (box.cx, box.bottom)])
        result.routes.append((edge, [*points, (target.cx, target.y)]))
    result.width = lane + (LANE if lane > result.width else 0)


def _nest(result: _Layout, box: _Box, region: _Layout) -> None:
    """A Map's item processor, centred in its box below the title band."""
    dx, dy = box.x + (box.w - region.width) / 2, box.y + HEADER
    for node_id, child in region.boxes.items():
        result.boxes[node_id] = _Box(child.x + dx, child.y + dy, child.w, child.h)
    for edge, points in region.routes:
        result.routes.append((edge, [(x + dx, y + dy) for x, y in points]))


def _layers(nodes: list[Node], edges: list[Edge]) -> tuple[set[tuple[str, str]], dict[str, int]]:
    """The edges that close a loop, and each node's row: one below its lowest predecessor."""
    successors: dict[str, list[str]] = {n.id: [] for n in nodes}
    for edge in edges:
        if edge.target not in successors[edge.source]:
            successors[edge.source].append(edge.target)
    loops, topological = _loops(nodes, successors)
    layer = {node_id: 0 for node_id in topological}
    for source in topological:
        for target in successors[source]:
            if (source, target) not in loops:
                layer[target] = max(layer[target], layer[source] + 1)
    return loops, {n.id: layer[n.id] for n in nodes}


def _place(
    rows: list[list[str]], size: dict[str, tuple[float, float]], predecessors: dict[str, list[str]]
) -> dict[str, _Box]:
    """Rows top-down; a node as close as its row allows to the mean of its predecessors."""
    boxes: dict[str, _Box] = {}
    widest = max((sum(size[i][0] + GAP_X for i in row) for row in rows), default=0.0)
    y = 0.0
    for row in rows:
        desired = {i: _mean([boxes[p].cx for p in predecessors[i]], widest / 2) for i in row}
        row.sort(key=lambda i: desired[i])
        height = max(size[i][1] for i in row)
        right = -float(GAP_X)
        for node_id in row:
            w, h = size[node_id]
            x = max(desired[node_id] - w / 2, right + (GAP_X if w else GAP_X / 2), 0.0)
            boxes[node_id] = _Box(x, y, w, h if w else height)
            right = x + w
        # packing pushes a crowded row to the right: centre it on what its nodes wanted
        placed = [boxes[i] for i in row]
        shift = _mean([desired[i] - b.cx for i, b in zip(row, placed, strict=True)], 0.0)
        for box in placed:
            box.x += max(shift, -placed[0].x)
        y += height + GAP_Y
    return boxes


def _size(node: Node, inner: _Layout | None) -> tuple[float, float]:
    if node.kind == START:
        return START_SIZE, START_SIZE
    if inner is not None:
        title = len(node.name) * CHAR + 6 * CHAR + 2 * PAD
        return max(inner.width + 2 * PAD, title), inner.height + HEADER + PAD
    slant = 2 * 8 if node.kind == "Choice" else 0  # the hexagon's pointed ends
    return max(len(node.name) * CHAR + 2 * PAD + slant, 70.0), HEIGHT


def _loops(
    nodes: list[Node], successors: dict[str, list[str]]
) -> tuple[set[tuple[str, str]], list[str]]:
    """Edges that close a cycle (depth-first from the start) and a topological order of the rest."""
    loops: set[tuple[str, str]] = set()
    visiting: set[str] = set()
    finished: list[str] = []

    def visit(node_id: str) -> None:
        visiting.add(node_id)
        for target in successors[node_id]:
            if target in visiting:
                loops.add((node_id, target))
            elif target not in finished:
                visit(target)
        visiting.discard(node_id)
        finished.append(node_id)

    for node in nodes:  # the start marker comes first; unreachable states still get a place
        if node.id not in finished:
            visit(node.id)
    return loops, finished[::-1]


def _around(source: _Box, target: _Box, lane: float) -> list[tuple[float, float]]:
    """A loop edge: down out of the source, right to its lane, up, and into the target's top."""
    below, above = source.bottom + GAP_Y / 3, target.y - GAP_Y / 3
    return [
        (source.cx, source.bottom),
        (source.cx, below),
        (lane, below),
        (lane, above),
        (target.cx, above),
        (target.cx, target.y),
    ]


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


# -- drawing ---------------------------------------------------------------------------------
def _marker(name: str, color: str) -> str:
    return (
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" '
        f'fill="{color}"/></marker>'
    )


def _edge(
    edge: Edge, points: list[tuple[float, float]], nodes: dict[str, Node], taken: bool
) -> str:
    source, target = nodes[edge.source], nodes[edge.target]
    color, marker = (GREEN, "arrow-taken") if taken else (FAINT, "arrow-faint")
    if not taken and not edge.catch:
        color, marker = INK, "arrow"
    width = "2.5" if taken else "1.2"
    dash = ' stroke-dasharray="5 4"' if edge.catch else ""
    classes = "edge" + (" catch" if edge.catch else "") + (" taken" if taken else "")
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    label = ""
    if edge.label and not edge.catch:
        # just above the target, where the branches of one choice have spread apart
        (x1, y1), (x2, y2) = points[-2], points[-1]
        t = max(0.0, 1 - (GAP_Y / 2) / max(abs(y2 - y1), 1.0))
        x, y = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t + 4
        label = (
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="10.5" fill="{INK}" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">{escape(edge.label)}</text>'
        )
    return (
        f'<g class="{classes}" data-from="{edge.source}" data-to="{edge.target}" '
        f'data-label="{escape(edge.label)}" data-source="{escape(source.name)}" '
        f'data-target="{escape(target.name)}">'
        f"<title>{escape(source.name)} → {escape(target.name)}"
        f"{': ' + escape(edge.label) if edge.label else ''}</title>"
        f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="{width}"{dash} '
        f'marker-end="url(#{marker})"/>{label}</g>'
    )


def _state(node: Node, box: _Box, entered: bool, failed: bool) -> str:
    stroke, fill, ink = FAINT, "#fff", INK
    if entered:
        stroke, fill, ink = GREEN, GREEN_FILL, "#1f2328"
    if failed:
        stroke, fill, ink = RED, RED_FILL, "#1f2328"
    classes = "state" + (" entered" if entered else "") + (" failed" if failed else "")
    head = (
        f'<g class="{classes}" data-id="{node.id}" data-state="{escape(node.name)}" '
        f'data-kind="{escape(node.kind)}">'
        f"<title>{escape(node.name)} ({escape(node.kind)})</title>"
    )
    width = "2" if entered or failed else "1.2"
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"'
    if node.kind == START:
        r = box.w / 2
        return f'{head}<circle cx="{box.cx:.1f}" cy="{box.y + r:.1f}" r="{r:.1f}" {paint}/></g>'
    x, y, w, h = box.x, box.y, box.w, box.h
    if node.kind == "Choice":
        shape = (
            f'<polygon points="{x + 8:.1f},{y:.1f} {x + w - 8:.1f},{y:.1f} {x + w:.1f},'
            f"{y + h / 2:.1f} {x + w - 8:.1f},{y + h:.1f} {x + 8:.1f},{y + h:.1f} {x:.1f},"
            f'{y + h / 2:.1f}" {paint}/>'
        )
    else:
        rounded = h / 2 if node.kind in ("Succeed", "Fail") else 5
        shape = (
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rounded}" '
            f"{paint}/>"
        )
    mark = {"Succeed": " ✓", "Fail": " ✗"}.get(node.kind, "")
    weight = ' font-weight="600"' if entered or failed else ""
    text = (
        f'<text x="{box.cx:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="middle" fill="{ink}"'
        f"{weight}>{escape(node.name)}{mark}</text>"
    )
    return f"{head}{shape}{text}</g>"


def _map_box(node: Node, box: _Box, entered: bool, failed: bool) -> str:
    stroke = RED if failed else GREEN if entered else FAINT
    classes = "state map" + (" entered" if entered else "") + (" failed" if failed else "")
    weight = ' font-weight="600"' if entered or failed else ""
    return (
        f'<g class="{classes}" data-id="{node.id}" data-state="{escape(node.name)}" '
        'data-kind="Map">'
        f"<title>{escape(node.name)} (Map: its item processor runs once per item)</title>"
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="8" '
        f'fill="#f6f8fa" stroke="{stroke}" stroke-width="{2 if entered or failed else 1.2}" '
        f'stroke-dasharray="6 3"/>'
        f'<text x="{box.x + PAD:.1f}" y="{box.y + 16:.1f}" fill="#1f2328"{weight}>'
        f"{escape(node.name)} (Map)</text></g>"
    )
