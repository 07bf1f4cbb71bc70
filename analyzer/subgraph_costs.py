"""Costs of control-flow nodes, from the nodes of their bodies.

- ``If``: the branch its condition selects when the condition is known (a constant, a test on a shape
  the shape engine folded, an input value the user bound); else the more expensive branch (by MACs,
  then FLOPs): one branch runs per call, which one is data-dependent, so the report gives the worst
  case and says so.
- ``Loop``: body cost × trip count when the trip count is a known constant, else × 1 with a warning.
- ``Scan``: body cost × the length of the first scan input along its scan axis.
Nested control flow recurses. Body ops without a rule are listed as unsupported like any other.
"""

from __future__ import annotations

from typing import Any

import onnx

from analyzer.graph import ViewFactory, subgraphs, unique_names


def _body_cost(body: onnx.GraphProto, parent: ViewFactory, warnings: list[str], unsupported: dict) -> Any:
    from analyzer.costs import Cost, node_cost
    from analyzer.errors import MALFORMED_ERRORS, AnalyzerError
    from analyzer.views import ShapeUnknown

    factory = ViewFactory(parent.resolver, parent.opsets, parent)
    factory.add_graph(body)
    macs = flops = 0
    for node, name in zip(body.node, unique_names(body.node)):
        view = factory.node(node, name)
        try:
            cost = subgraph_cost(node, factory, warnings, unsupported)
            if cost is None:
                cost = node_cost(view)
        except (ShapeUnknown, AnalyzerError) as e:
            warnings.append(f"cost unknown (shape unknown) inside a subgraph: {name} ({e})")
            continue
        except MALFORMED_ERRORS as e:
            warnings.append(f"cost unknown (malformed node) inside a subgraph: {name} ({type(e).__name__}: {e})")
            continue
        if cost is None:
            unsupported[(view.domain, view.op_type)].append(name)
            continue
        macs += cost.macs
        flops += cost.flops
    return Cost(macs, flops)


def _scalar(factory: ViewFactory, name: str) -> int | None:
    value = factory.values.get(name) if name else None
    try:
        return int(value.reshape(-1)[0]) if value is not None and value.size == 1 else None
    except (TypeError, ValueError):
        return None


def subgraph_cost(node: onnx.NodeProto, factory: ViewFactory, warnings: list[str], unsupported: dict) -> Any:
    """The cost of a node with subgraphs, or None when it has none (the caller uses the op's rule)."""
    from analyzer.costs import Cost

    bodies = subgraphs(node)
    if not bodies:
        return None
    label = node.name or node.op_type
    if node.op_type == "If":
        condition = _scalar(factory, node.input[0] if node.input else "")
        taken = None if condition is None else dict(bodies).get("then_branch" if condition else "else_branch")
        if taken is not None:
            return _body_cost(taken, factory, warnings, unsupported)  # the other branch never runs
    costs = [_body_cost(body, factory, warnings, unsupported) for _, body in bodies]
    if node.op_type == "If":
        worst = max(costs, key=lambda c: (c.macs, c.flops))
        warnings.append(f"If node {label!r}: counted its more expensive branch ({worst.macs} MACs)")
        return worst
    total = Cost(sum(c.macs for c in costs), sum(c.flops for c in costs))
    if node.op_type == "Loop":
        trips = _scalar(factory, node.input[0] if node.input else "")
        if trips is None:
            warnings.append(f"Loop node {label!r}: trip count unknown, body counted once")
            return total
        return Cost(total.macs * trips, total.flops * trips)
    if node.op_type == "Scan":
        num_scan = next((a.i for a in node.attribute if a.name == "num_scan_inputs"), 0)
        axes = next((list(a.ints) for a in node.attribute if a.name == "scan_input_axes"), [])
        first_scan = node.input[len(node.input) - num_scan] if num_scan else ""
        shape = factory.tensor(first_scan).shape if first_scan else None
        axis = axes[0] if axes else 0
        if shape is None or not shape:
            warnings.append(f"Scan node {label!r}: iteration count unknown, body counted once")
            return total
        steps = shape[axis]
        return Cost(total.macs * steps, total.flops * steps)
    warnings.append(f"{node.op_type} node {label!r}: subgraph counted once per call")
    return total
