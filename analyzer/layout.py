"""A layered (Sugiyama-style) drawing of a report's graph, top to bottom, for the HTML page.

The browser only draws what this computes, so a page opens fast and the same report always looks the same.

1. Edges come from tensor names: a node's input equal to another node's output (weights are no edges).
   Graph inputs and outputs become small terminal boxes of their own, not counted as nodes.
2. Layer = longest path from the sources; a source that is not a graph input (a Constant) is pulled
   down to just above its first consumer, so it does not hang at the top of the page.
3. An edge spanning several layers gets one virtual point per layer crossed (up to a budget: past it
   the longest edges are drawn straight), so it can bend around the boxes in between.
4. A few barycenter sweeps order each layer to cut crossings.
5. x by weighted isotonic regression per layer: each vertex as close as the minimum separation allows
   to the mean x of its neighbours, real boxes weighing more than virtual points, so chains stay
   straight, branches sit side by side and skip connections run beside the main path.

Pure: :func:`layout` reads a :class:`~analyzer.report.Report` and returns plain data.
"""

from __future__ import annotations

import gc
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

NODE_WIDTH = 132.0
NODE_HEIGHT = 34.0
TERMINAL_WIDTH = 104.0
TERMINAL_HEIGHT = 22.0
VIRTUAL_WIDTH = 6.0
NODE_GAP = 24.0  # horizontal gap between two boxes of one layer
VIRTUAL_GAP = 10.0  # between a virtual point and its neighbour
LAYER_GAP = 34.0
MARGIN = 20.0
ORDER_SWEEPS = 4
PLACE_SWEEPS = 5  # odd: the last pass hangs each vertex below its inputs
VIRTUAL_WEIGHT = 0.1  # how hard a virtual point pulls compared with a box
VIRTUAL_BUDGET_PER_VERTEX = 4  # virtual points allowed per real vertex before long edges go straight


class Box(NamedTuple):
    x: float  # centre
    y: float  # centre
    width: float
    height: float
    layer: int


class Terminal(NamedTuple):
    name: str
    kind: str  # "input" | "output"
    box: Box


class Edge(NamedTuple):
    source: int  # vertex id: a report node's index, or len(report.nodes) + a terminal's index
    target: int
    tensor: str
    points: tuple[tuple[float, float], ...]  # from the source box's bottom to the target box's top


@dataclass(frozen=True)
class Layout:
    nodes: tuple[Box, ...]  # one per report node, in the report's order
    terminals: tuple[Terminal, ...]  # graph inputs, then graph outputs
    edges: tuple[Edge, ...]
    width: float
    height: float
    layers: int

    def to_dict(self) -> dict[str, Any]:
        """Compact form for the page: boxes as [x, y, width, height, layer], points flattened."""
        return {
            "width": self.width,
            "height": self.height,
            "layers": self.layers,
            "nodes": [_box_list(b) for b in self.nodes],
            "terminals": [{"name": t.name, "kind": t.kind, "box": _box_list(t.box)} for t in self.terminals],
            "edges": [[e.source, e.target, [c for p in e.points for c in p]] for e in self.edges],
        }


def _box_list(b: Box) -> list[float]:
    return [b.x, b.y, b.width, b.height, b.layer]


def layout(report: Any) -> Layout:
    """The layered drawing of ``report`` (anything with ``.nodes`` and ``.model.inputs/outputs``)."""
    # Hundreds of thousands of small lists, none in a cycle: the cyclic collector's passes over them
    # would cost a quarter of the time on a 20k-node graph.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _layout(report)
    finally:
        if collecting:
            gc.enable()


def _layout(report: Any) -> Layout:
    terminals, edges = _graph_edges(report)
    n = len(report.nodes)
    vertex_count = n + len(terminals)
    preds: list[list[int]] = [[] for _ in range(vertex_count)]
    succs: list[list[int]] = [[] for _ in range(vertex_count)]
    for u, v, _ in edges:
        preds[v].append(u)
        succs[u].append(v)
    order = _topological_order(preds, succs)
    layer = _layers(order, preds, succs, is_input=[n <= v < n + _input_count(report) for v in range(vertex_count)])
    edges = [e for e in edges if layer[e[0]] < layer[e[1]]]  # only a cycle could break this; drop such edges
    widths = [NODE_WIDTH] * n + [TERMINAL_WIDTH] * len(terminals)
    heights = [NODE_HEIGHT] * n + [TERMINAL_HEIGHT] * len(terminals)

    chains, up, down, vertex_layer, virtual_count = _split_long_edges(edges, layer, vertex_count)
    total = vertex_count + virtual_count
    widths += [VIRTUAL_WIDTH] * virtual_count
    is_virtual = [False] * vertex_count + [True] * virtual_count
    rank = [0] * total  # tie-break: topological position, a virtual point takes its source's
    for position, v in enumerate(order):
        rank[v] = position
    for (u, _v, _t), chain in zip(edges, chains):
        for w in chain:
            rank[w] = rank[u]
    rows = _initial_rows(vertex_layer, rank)
    _order_rows(rows, up, down, rank)
    xs = _place(rows, up, down, widths, is_virtual)

    def y_of(layer_index: int) -> float:
        return MARGIN + layer_index * (NODE_HEIGHT + LAYER_GAP) + NODE_HEIGHT / 2

    left = min((xs[v] - widths[v] / 2 for v in range(total)), default=0.0)
    shift = MARGIN - left
    boxes = [Box(round(xs[v] + shift, 1), y_of(layer[v]), widths[v], heights[v], layer[v]) for v in range(vertex_count)]
    drawn_edges = []
    for (u, v, tensor), chain in zip(edges, chains):
        start = (boxes[u].x, boxes[u].y + boxes[u].height / 2)
        end = (boxes[v].x, boxes[v].y - boxes[v].height / 2)
        bends = tuple((round(xs[w] + shift, 1), y_of(vertex_layer[w])) for w in chain)
        drawn_edges.append(Edge(u, v, tensor, (start, *bends, end)))
    layers = (max(layer) + 1) if layer else 0
    right = max((xs[v] + widths[v] / 2 + shift for v in range(total)), default=0.0)
    terminal_boxes = tuple(
        Terminal(name, kind, boxes[n + k]) for k, (name, kind) in enumerate(terminals)
    )
    return Layout(
        nodes=tuple(boxes[:n]),
        terminals=terminal_boxes,
        edges=tuple(drawn_edges),
        width=round(right + MARGIN, 1),
        height=MARGIN * 2 + max(layers, 1) * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP,
        layers=layers,
    )


def _input_count(report: Any) -> int:
    return len(report.model.inputs)


def _graph_edges(report: Any) -> tuple[list[tuple[str, str]], list[tuple[int, int, str]]]:
    """Terminals as (name, kind) and edges (producer vertex, consumer vertex, tensor), one per pair."""
    n = len(report.nodes)
    terminals = [(t.name, "input") for t in report.model.inputs] + [(t.name, "output") for t in report.model.outputs]
    producer: dict[str, int] = {}
    for k, t in enumerate(report.model.inputs):
        producer[t.name] = n + k
    for i, node in enumerate(report.nodes):
        for out in node.outputs:
            if out.name:
                producer[out.name] = i
    edges: list[tuple[int, int, str]] = []
    seen: set[tuple[int, int]] = set()

    def connect(u: int | None, v: int, tensor: str) -> None:
        if u is not None and u != v and (u, v) not in seen:
            seen.add((u, v))
            edges.append((u, v, tensor))

    for i, node in enumerate(report.nodes):
        for t in node.inputs:
            if t.name:
                connect(producer.get(t.name), i, t.name)
    first_output = n + len(report.model.inputs)
    for k, t in enumerate(report.model.outputs):
        connect(producer.get(t.name), first_output + k, t.name)
    return terminals, edges


def _topological_order(preds: list[list[int]], succs: list[list[int]]) -> list[int]:
    """Kahn's order, smallest id first among the ready ones' arrival; vertices on a cycle go last."""
    missing = [len(p) for p in preds]
    ready = deque(v for v in range(len(preds)) if missing[v] == 0)
    order = []
    while ready:
        u = ready.popleft()
        order.append(u)
        for v in succs[u]:
            missing[v] -= 1
            if missing[v] == 0:
                ready.append(v)
    if len(order) < len(preds):
        placed = set(order)
        order += [v for v in range(len(preds)) if v not in placed]
    return order


def _layers(order: list[int], preds: list[list[int]], succs: list[list[int]], is_input: list[bool]) -> list[int]:
    """Longest path from the sources; sources other than graph inputs sit just above their first consumer."""
    layer = [0] * len(preds)
    done = [False] * len(preds)
    for v in order:
        layer[v] = max((layer[u] + 1 for u in preds[v] if done[u]), default=0)
        done[v] = True
    for v in order:
        if not preds[v] and succs[v] and not is_input[v]:
            layer[v] = min(layer[s] for s in succs[v]) - 1
    return layer


def _split_long_edges(
    edges: list[tuple[int, int, str]], layer: list[int], vertex_count: int
) -> tuple[list[list[int]], list[list[int]], list[list[int]], list[int], int]:
    """Virtual points for edges spanning more than one layer, shortest edges first within the budget.

    Returns each edge's chain of virtual vertex ids, the up/down neighbours of every vertex in the
    layered graph (one-layer segments only), every vertex's layer and the number of virtual points.
    """
    budget = VIRTUAL_BUDGET_PER_VERTEX * vertex_count
    spans = sorted(range(len(edges)), key=lambda k: (layer[edges[k][1]] - layer[edges[k][0]], k))
    chains: list[list[int]] = [[] for _ in edges]
    next_id = vertex_count
    vertex_layer = list(layer)
    for k in spans:
        u, v, _ = edges[k]
        needed = layer[v] - layer[u] - 1
        if needed <= 0 or needed > budget:
            continue
        budget -= needed
        chains[k] = list(range(next_id, next_id + needed))
        vertex_layer += range(layer[u] + 1, layer[v])
        next_id += needed
    total = next_id
    up: list[list[int]] = [[] for _ in range(total)]
    down: list[list[int]] = [[] for _ in range(total)]
    for (u, v, _), chain in zip(edges, chains):
        if not chain and layer[v] - layer[u] > 1:
            continue  # drawn straight, outside the ordering
        path = [u, *chain, v]
        for a, b in zip(path, path[1:]):
            down[a].append(b)
            up[b].append(a)
    return chains, up, down, vertex_layer, total - vertex_count


def _initial_rows(vertex_layer: list[int], rank: list[int]) -> list[list[int]]:
    rows: list[list[int]] = [[] for _ in range(max(vertex_layer, default=-1) + 1)]
    for v, layer_index in enumerate(vertex_layer):
        rows[layer_index].append(v)
    for row in rows:
        row.sort(key=lambda v: (rank[v], v))
    return rows


def _sweeps(count: int, rows: list[list[int]], up: list[list[int]], down: list[list[int]]):
    """(layer index, each vertex's neighbours to follow) for ``count`` sweeps, alternately down the layers
    (following the layer above) and up (following the layer below)."""
    for sweep in range(count):
        downward = sweep % 2 == 0
        indices = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        neighbours = up if downward else down
        for i in indices:
            yield i, neighbours


def _order_rows(rows: list[list[int]], up: list[list[int]], down: list[list[int]], rank: list[int]) -> None:
    """Barycenter sweeps, alternately down (by the layer above) and up (by the layer below), in place."""
    position = [0] * len(rank)

    def number(row: list[int]) -> None:
        for index, v in enumerate(row):
            position[v] = index

    for row in rows:
        number(row)
    for i, neighbours in _sweeps(ORDER_SWEEPS, rows, up, down):
        row = rows[i]
        if len(row) == 1:
            continue
        keys = {}
        for v in row:
            adjacent = neighbours[v]
            keys[v] = sum(position[a] for a in adjacent) / len(adjacent) if adjacent else position[v]
        row.sort(key=lambda v: (keys[v], position[v]))
        number(row)


def _place(
    rows: list[list[int]], up: list[list[int]], down: list[list[int]], widths: list[float], is_virtual: list[bool]
) -> list[float]:
    """x of every vertex: packed and centred first, then pulled towards its neighbours, layer by layer."""
    xs = [0.0] * len(widths)
    weight = [VIRTUAL_WEIGHT if virtual else 1.0 for virtual in is_virtual]
    offsets_of = [_offsets(row, widths, is_virtual) for row in rows]
    for row, offsets in zip(rows, offsets_of):
        middle = offsets[-1] / 2 if offsets else 0.0
        for v, offset in zip(row, offsets):
            xs[v] = offset - middle
    for i, neighbours in _sweeps(PLACE_SWEEPS, rows, up, down):
        row = rows[i]
        if len(row) == 1:  # most layers of a deep network: no neighbour to make room for
            v = row[0]
            if neighbours[v]:
                xs[v] = _weighted_mean(neighbours[v], xs, weight)
            continue
        desired = []
        for v in row:
            desired.append(_weighted_mean(neighbours[v], xs, weight) if neighbours[v] else xs[v])
        for v, x in zip(row, _closest_in_order(desired, [weight[v] for v in row], offsets_of[i])):
            xs[v] = x
    return xs


def _weighted_mean(vertices: list[int], xs: list[float], weight: list[float]) -> float:
    total = weighted = 0.0
    for a in vertices:
        total += weight[a]
        weighted += xs[a] * weight[a]
    return weighted / total


def _offsets(row: list[int], widths: list[float], is_virtual: list[bool]) -> list[float]:
    """Each vertex's distance from the first one's centre when the row is packed tight."""
    offsets = []
    at = 0.0
    for index, v in enumerate(row):
        if index:
            previous = row[index - 1]
            gap = VIRTUAL_GAP if is_virtual[v] or is_virtual[previous] else NODE_GAP
            at += (widths[previous] + widths[v]) / 2 + gap
        offsets.append(at)
    return offsets


def _closest_in_order(desired: list[float], weights: list[float], offsets: list[float]) -> list[float]:
    """Positions x minimising sum w_i (x_i - desired_i)^2 with x_{i+1} - x_i >= offsets_{i+1} - offsets_i.

    With y_i = x_i - offsets_i the constraint is y non-decreasing: weighted isotonic regression, solved
    exactly by pool-adjacent-violators in one pass.
    """
    if all(desired[i + 1] - desired[i] >= offsets[i + 1] - offsets[i] for i in range(len(desired) - 1)):
        return desired  # already far enough apart: the common case once the first sweeps have run
    values: list[float] = []
    block_weights: list[float] = []
    counts: list[int] = []
    for target, w in zip((d - o for d, o in zip(desired, offsets)), weights):
        value, total, count = target, w, 1
        while values and values[-1] >= value:
            previous_value, previous_weight, previous_count = values.pop(), block_weights.pop(), counts.pop()
            value = (previous_value * previous_weight + value * total) / (previous_weight + total)
            total += previous_weight
            count += previous_count
        values.append(value)
        block_weights.append(total)
        counts.append(count)
    ys = [value for value, count in zip(values, counts) for _ in range(count)]
    return [y + o for y, o in zip(ys, offsets)]
