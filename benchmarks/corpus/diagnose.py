"""Where the analyzer loses a corpus model's shapes: the frontier nodes, with the run's real values.

    python benchmarks/corpus/diagnose.py MODEL [MODEL ...] [--limit 12]

A frontier node is a top-level node of the inspect report whose inputs all have known shapes but one of
whose outputs does not: the first place each unknown region starts, so the op to teach the shape
engine. For each, the report's input shapes are printed beside what onnxruntime computed: the output's
real shape and, for small integer inputs (the shape arithmetic), their values. Nodes whose MACs differ
from the oracle's and ops without a rule follow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.corpus import oracle  # noqa: E402
from benchmarks.corpus.fetch import model_path, selected  # noqa: E402
from benchmarks.corpus.run import feeds_for, inspect, node_diffs, shape_options  # noqa: E402

SMALL = 16  # tensors up to this many elements are printed: shape arithmetic and scalars, never weights
LINEAGE_DEPTH = 4


def _known(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def frontier(report: dict) -> list[dict]:
    """Report nodes with every input shape known and some output shape unknown (or symbolic)."""
    found = []
    for node in report["nodes"]:
        inputs = [t for t in node["inputs"] if t["name"]]
        if all(_known(t["shape"]) for t in inputs) and not all(_known(t["shape"]) for t in node["outputs"]):
            found.append(node)
    return found


def _value(values: dict, name: str) -> str:
    value = values.get(name)
    if value is None:
        return "not computed"
    array = np.asarray(value)
    if array.size <= SMALL:
        return f"shape {list(array.shape)} value {array.tolist()}"
    return f"shape {list(array.shape)} {array.dtype}"


def lineage(name: str, producers: dict, depth: int = LINEAGE_DEPTH) -> str:
    """The ops that compute ``name``, as nested calls: Concat(Slice(Shape(x), ...), Constant)."""
    node = producers.get(name)
    if node is None:
        return name
    if depth == 0:
        return f"{node.op_type}(...)"
    if node.op_type == "Shape":  # the data tensor above it is no part of the arithmetic
        return f"Shape({node.input[0]})"
    args = ", ".join(lineage(i, producers, depth - 1) for i in node.input if i)
    return f"{node.op_type}({args})"


def describe(node: dict, values: dict, producers: dict) -> list[str]:
    lines = [f"  {node['op_type']} {node['name']!r}"]
    for t in node["inputs"]:
        if t["name"]:
            lines.append(f"    in  {t['name']}: report {t['shape']}; run {_value(values, t['name'])}")
            if np.size(values.get(t["name"], np.zeros(SMALL + 1))) <= SMALL and t["name"] in producers:
                lines.append(f"        = {lineage(t['name'], producers)}")
    for t in node["outputs"]:
        lines.append(f"    out {t['name']}: report {t['shape']}; run {_value(values, t['name'])}")
    return lines


def diagnose(model, limit: int) -> list[str]:
    import onnx

    proto = onnx.load(model_path(model))
    feeds = feeds_for(model, proto)
    report, _, error = inspect(model_path(model), shape_options(feeds))
    if report is None:
        return [f"{model.name}: {error}"]
    values = oracle.run_all(proto, feeds)
    nodes = frontier(report)
    lines = [f"{model.name}: {len(nodes)} frontier node(s); complete={report['complete']}"]
    producers = {out: n for n in proto.graph.node for out in n.output}
    for node in nodes[:limit]:
        lines += describe(node, values, producers)
    lines += [f"  differs: {d}" for d in node_diffs(report, oracle.count(proto, feeds))[:limit]]
    lines += [f"  no rule: {u['op_type']} x{u['count']} {u['nodes'][:3]}" for u in report["unsupported_ops"]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model names or package keys from models.py")
    parser.add_argument("--limit", type=int, default=12, help="at most this many nodes of each kind (default 12)")
    args = parser.parse_args(argv)
    for model in selected(args.models, skip_large=False):
        print("\n".join(diagnose(model, args.limit)), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
