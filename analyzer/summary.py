"""Figures derived from a report that several renderers show: top-N nodes, the conv-vs-FC share, the headline."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.report import NodeReport, Report

TOP_METRICS = ("macs", "params", "activation_bytes")


def top_nodes(report: Report, metric: str, n: int = 10) -> list[NodeReport]:
    """The ``n`` nodes with the largest ``metric`` (ties keep execution order), zeros left out."""
    ranked = sorted(report.nodes, key=lambda node: -getattr(node, metric))
    return [node for node in ranked[:n] if getattr(node, metric) > 0]


@dataclass
class CategoryShare:
    category: str  # conv | fc | other
    params: int
    macs: int
    params_share: float  # of the model's per-node params sum
    macs_share: float


def category_shares(report: Report) -> list[CategoryShare]:
    """Params and MACs of conv layers, fully connected layers and the rest, with their shares.

    The course's lesson: most parameters sit in the FC layers, most compute in the convs.
    """
    params = {c: 0 for c in ("conv", "fc", "other")}
    macs = dict(params)
    for node in report.nodes:
        params[node.category] = params.get(node.category, 0) + node.params
        macs[node.category] = macs.get(node.category, 0) + node.macs
    total_params = sum(params.values()) or 1
    total_macs = sum(macs.values()) or 1
    return [
        CategoryShare(c, params[c], macs[c], params[c] / total_params, macs[c] / total_macs) for c in params
    ]


@dataclass
class AssumedInput:
    """A graph input some of whose dims nothing bound: the counts describe the model at ``shape``."""

    name: str
    shape: list[int]  # the shape the counts used
    assumed: list[str]  # its dims nothing bound, by the names report.assumed_dims gives them


def assumed_inputs(report: Report) -> list[AssumedInput]:
    """Inputs with an assumed dim after the first axis (spatial, sequence, features), in input order.

    A leading batch dim evaluated as 1 alone does not count: per-sample figures are what it gives.
    """
    if not report.assumed_dims:
        return []
    found = []
    for tensor in report.model.inputs:
        names = _dim_names(tensor.name, tensor.shape or [])
        assumed_axes = [axis for axis, name in enumerate(names) if name in report.assumed_dims]
        if not any(axis > 0 for axis in assumed_axes):
            continue
        used = report.model.analyzed_inputs.get(tensor.name)
        if used is None:  # a report built without the analyzed shapes: the assumed values in place
            used = [report.assumed_dims[name] if axis in assumed_axes else d
                    for axis, (name, d) in enumerate(zip(names, tensor.shape))]
        found.append(AssumedInput(tensor.name, list(used), [names[axis] for axis in assumed_axes]))
    return found


def _dim_names(input_name: str, dims: list) -> list[str | None]:
    """The name each dim goes by in ``assumed_dims``: its symbol, ``input[axis]`` for a dim without one
    (as analyzer.shapes keys it), None for a fixed dim."""
    return [d if isinstance(d, str) else f"{input_name}[{axis}]" if d is None else None for axis, d in enumerate(dims)]


def analyzed_shapes_note(report: Report) -> str:
    """' at x: 1x3x1x1 (H, W assumed; bind with --input-shape)' when input dims were assumed, else ''.

    Goes right after the MACs figure, so a figure counted at a shape nobody chose never reads as the model's cost.
    """
    from analyzer import units

    inputs = assumed_inputs(report)
    if not inputs:
        return ""
    shapes = ", ".join(f"{i.name}: {units.shape(i.shape)}" for i in inputs)
    names = list(dict.fromkeys(name for i in inputs for name in i.assumed))
    return f" at {shapes} ({', '.join(names)} assumed; bind with --input-shape)"


def input_values_note(report: Report) -> str:
    """'sr=16000' for the inputs whose values were bound (a list joined by ','), '' when none."""
    def text(value) -> str:
        return ",".join(text(v) for v in value) if isinstance(value, list) else str(value)

    return ", ".join(f"{name}={text(value)}" for name, value in report.model.input_values.items())


def headline(report: Report) -> list[tuple[str, str]]:
    """The label/value lines every human-facing renderer shows above the node table."""
    from analyzer import units

    t = report.totals
    tm = report.training
    rows = [
        ("model", report.model.path or "(in memory)"),
        ("producer", report.model.producer or "?"),
        ("IR / opsets", f"{report.model.ir_version} / " + ", ".join(f"{d} {v}" for d, v in report.model.opsets.items())),
        ("inputs", ", ".join(f"{i.name} {units.shape(i.shape)} {i.dtype}" for i in report.model.inputs)),
        ("outputs", ", ".join(f"{o.name} {units.shape(o.shape)} {o.dtype}" for o in report.model.outputs)),
        *([("input values", input_values_note(report))] if report.model.input_values else []),
        ("nodes", str(t.nodes)),
        ("params", f"{t.params:,} ({units.count(t.params)})"),
        ("MACs", f"{t.macs:,} ({units.count(t.macs)}){analyzed_shapes_note(report)}"),
        ("FLOPs", f"{t.flops:,} ({units.count(t.flops)})"),
        ("weights", units.nbytes(t.weight_bytes)),
        ("activations (all outputs)", units.nbytes(t.activation_bytes)),
        ("peak inference memory", f"{units.nbytes(t.peak_memory_bytes)} (activations, at {t.peak_memory_node})"),
        (
            f"training memory (batch {tm.batch}, {tm.optimizer})",
            f"{units.nbytes(tm.total)} = weights {units.nbytes(tm.weights)} + grads {units.nbytes(tm.gradients)}"
            f" + optimizer {units.nbytes(tm.optimizer_state)} + activations {units.nbytes(tm.activations)}",
        ),
    ]
    if report.assumed_dims:
        rows.append(("assumed dims", ", ".join(f"{k}={v}" for k, v in report.assumed_dims.items())))
    rows.append(("complete", "yes" if report.complete else "no (see unsupported ops / warnings)"))
    return rows
