"""The layered layout: layers by longest path, edges strictly downward, no overlaps within a layer,
branches side by side, deterministic, and fast enough for thousands of nodes."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

import analyzer
from analyzer.layout import layout
from analyzer.report import ModelInfo, NodeReport, Report, TensorInfo, Totals, TrainingMemory

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def tensor(name: str) -> TensorInfo:
    return TensorInfo(name, [1, 8, 8, 8], "float32")


def report_of(nodes: list[tuple[str, list[str], list[str]]], inputs: list[str], outputs: list[str]) -> Report:
    """A report with only what the layout reads: node names, tensor names, graph inputs and outputs."""
    model = ModelInfo(None, 10, {"": 17}, "test", [tensor(n) for n in inputs], [tensor(n) for n in outputs])
    node_reports = [NodeReport(name, "Op", inputs=[tensor(t) for t in ins], outputs=[tensor(t) for t in outs])
                    for name, ins, outs in nodes]
    return Report(model, Totals(), node_reports, {}, TrainingMemory(1, "sgd", 0, 0, 0, 0))


def residual_network(blocks: int) -> Report:
    """Residual blocks (conv, relu, conv, add) with an Inception-like 3-branch block every fourth."""
    nodes, x = [], "x"
    for b in range(blocks):
        if b % 4 == 3:
            heads = []
            for k in range(3):
                nodes += [(f"b{b}c{k}", [x, f"w{b}{k}"], [f"b{b}c{k}"]), (f"b{b}r{k}", [f"b{b}c{k}"], [f"b{b}r{k}"])]
                heads.append(f"b{b}r{k}")
            nodes.append((f"b{b}cat", heads, [f"b{b}out"]))
        else:
            nodes += [(f"b{b}c1", [x, f"w{b}"], [f"b{b}c1"]), (f"b{b}r", [f"b{b}c1"], [f"b{b}r"]),
                      (f"b{b}c2", [f"b{b}r"], [f"b{b}c2"]), (f"b{b}add", [f"b{b}c2", x], [f"b{b}out"])]
        x = f"b{b}out"
    return report_of(nodes, ["x"], [x])


@pytest.fixture(scope="module")
def inception():
    return analyzer.inspect(SAMPLES / "inception_naive.onnx")


def all_boxes(drawing):
    return list(drawing.nodes) + [t.box for t in drawing.terminals]


def test_layers_of_a_small_dag_by_hand():
    #   x → a → b ─┐
    #       └→ c ──┴→ d → e → (y)
    #   x ───────────────→ e          k (a Constant) → e
    report = report_of(
        [("a", ["x"], ["ta"]), ("b", ["ta"], ["tb"]), ("c", ["ta", "weight"], ["tc"]), ("d", ["tb", "tc"], ["td"]),
         ("e", ["td", "x", "tk"], ["y"]), ("k", [], ["tk"])],
        inputs=["x"], outputs=["y"],
    )
    drawing = layout(report)
    layers = {n.name: box.layer for n, box in zip(report.nodes, drawing.nodes)}
    # a source that is not a graph input (the Constant k) sits just above its consumer, not at the top
    assert layers == {"a": 1, "b": 2, "c": 2, "d": 3, "e": 4, "k": 3}
    assert [(t.name, t.kind, t.box.layer) for t in drawing.terminals] == [("x", "input", 0), ("y", "output", 5)]
    assert drawing.layers == 6
    names = [n.name for n in report.nodes] + ["x", "y"]
    edges = sorted((names[e.source], names[e.target], e.tensor) for e in drawing.edges)
    assert edges == sorted([("x", "a", "x"), ("a", "b", "ta"), ("a", "c", "ta"), ("b", "d", "tb"), ("c", "d", "tc"),
                            ("d", "e", "td"), ("x", "e", "x"), ("k", "e", "tk"), ("e", "y", "y")])  # no "weight" edge


@pytest.mark.parametrize("make", [residual_network.__name__, "inception"])
def test_every_edge_goes_strictly_down_and_boxes_in_a_layer_do_not_overlap(make, inception):
    report = inception if make == "inception" else residual_network(40)
    drawing = layout(report)
    boxes = all_boxes(drawing)
    for edge in drawing.edges:
        assert boxes[edge.source].layer < boxes[edge.target].layer
        ys = [y for _, y in edge.points]
        assert ys == sorted(ys) and ys[0] < ys[-1]
        assert edge.points[0] == (boxes[edge.source].x, boxes[edge.source].y + boxes[edge.source].height / 2)
        assert edge.points[-1] == (boxes[edge.target].x, boxes[edge.target].y - boxes[edge.target].height / 2)
    by_layer = defaultdict(list)
    for box in boxes:
        by_layer[box.layer].append(box)
    for row in by_layer.values():
        assert len({b.y for b in row}) == 1
        row.sort(key=lambda b: b.x)
        for left, right in zip(row, row[1:]):
            assert left.x + left.width / 2 <= right.x - right.width / 2 + 1e-6
    assert all(b.x - b.width / 2 >= 0 and b.x + b.width / 2 <= drawing.width for b in boxes)
    assert all(b.y + b.height / 2 <= drawing.height for b in boxes)


def test_inception_branches_sit_side_by_side_in_one_layer(inception):
    drawing = layout(inception)
    heads = [box for node, box in zip(inception.nodes, drawing.nodes) if node.op_type in ("Conv", "MaxPool")]
    assert len(heads) == 4 and len({b.layer for b in heads}) == 1 and len({b.y for b in heads}) == 1
    xs = sorted(b.x for b in heads)
    assert all(right - left >= heads[0].width for left, right in zip(xs, xs[1:]))  # apart, not stacked
    concat = drawing.nodes[[n.op_type for n in inception.nodes].index("Concat")]
    assert concat.layer > heads[0].layer and xs[0] < concat.x < xs[-1]  # the merge sits between its branches
    assert len(drawing.edges) == 4 + 3 + 4 + 1  # input → 4 heads, conv → relu ×3, 4 → concat, concat → output


def test_a_chain_is_drawn_straight_and_a_long_edge_bends_through_virtual_points():
    chain = report_of([("a", ["x"], ["ta"]), ("b", ["ta"], ["tb"]), ("c", ["tb"], ["tc"])], ["x"], ["tc"])
    assert len({box.x for box in layout(chain).nodes}) == 1
    skip = report_of([("a", ["x"], ["ta"]), ("b", ["ta"], ["tb"]), ("c", ["tb"], ["tc"]), ("d", ["tc", "ta"], ["td"])],
                     ["x"], ["td"])
    drawing = layout(skip)
    long_edge = next(e for e in drawing.edges if e.tensor == "ta" and e.target == 3)
    assert len(long_edge.points) == 4  # start, one point in each of the two layers crossed, end
    b, c = drawing.nodes[1], drawing.nodes[2]
    for x, y in long_edge.points[1:-1]:  # the bends pass beside the boxes they cross, not through them
        box = b if y == b.y else c
        assert abs(x - box.x) >= box.width / 2


def test_layout_is_deterministic(inception):
    first = layout(inception)
    assert layout(inception) == first
    assert layout(analyzer.inspect(SAMPLES / "inception_naive.onnx")).to_dict() == first.to_dict()
    big = residual_network(200)
    assert layout(big).to_dict() == layout(big).to_dict()


def test_to_dict_is_compact_plain_data(inception):
    import json

    drawing = layout(inception)
    data = json.loads(json.dumps(drawing.to_dict()))
    assert len(data["nodes"]) == len(inception.nodes) and len(data["nodes"][0]) == 5
    assert [t["kind"] for t in data["terminals"]] == ["input", "output"]
    source, target, points = data["edges"][0]
    assert len(points) % 2 == 0 and points[:2] == list(drawing.edges[0].points[0])


def test_a_cycle_does_not_hang_and_its_back_edge_is_not_drawn():
    report = report_of([("a", ["x", "tb"], ["ta"]), ("b", ["ta"], ["tb"])], ["x"], ["tb"])
    drawing = layout(report)
    boxes = all_boxes(drawing)
    assert all(boxes[e.source].layer < boxes[e.target].layer for e in drawing.edges)


def test_thousands_of_nodes_lay_out_in_reasonable_time():
    report = residual_network(1053)
    assert len(report.nodes) >= 5000
    start = time.perf_counter()
    drawing = layout(report)
    elapsed = time.perf_counter() - start
    assert len(drawing.nodes) == len(report.nodes)
    assert elapsed < 5.0, f"5k-node layout took {elapsed:.2f} s"  # about 0.2 s unloaded; generous for shared CI
