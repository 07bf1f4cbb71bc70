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
        ("nodes", str(t.nodes)),
        ("params", f"{t.params:,} ({units.count(t.params)})"),
        ("MACs", f"{t.macs:,} ({units.count(t.macs)})"),
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
