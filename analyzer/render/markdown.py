"""Markdown: a summary ready for a README, a PR comment or a CI job summary."""

from __future__ import annotations

from analyzer import units
from analyzer.summary import TOP_METRICS, category_shares, headline, top_nodes


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    escape = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return lines + [""]


def render(report, **_: object) -> str:
    out = ["# Model analysis", ""]
    out += _table(["", ""], [[k, v] for k, v in headline(report)])
    out += ["## Conv vs fully connected", ""]
    out += _table(
        ["layers", "params", "share", "MACs", "share"],
        [[s.category, f"{s.params:,}", units.percent(s.params_share), f"{s.macs:,}", units.percent(s.macs_share)]
         for s in category_shares(report)],
    )
    for metric in TOP_METRICS:
        out += [f"## Top 10 by {metric}", ""]
        out += _table(["node", "op", metric], [[n.name, n.op_type, f"{getattr(n, metric):,}"] for n in top_nodes(report, metric)])
    out += ["## By op type", ""]
    out += _table(["op", "count", "params", "MACs", "FLOPs"],
                  [[op, s.count, f"{s.params:,}", f"{s.macs:,}", f"{s.flops:,}"] for op, s in report.by_op_type.items()])
    out += ["## Nodes", ""]
    out += _table(
        ["#", "name", "op", "output", "params", "MACs", "FLOPs", "activations", "live", "RF"],
        [[i, n.name, n.op_type, ", ".join(units.shape(o.shape) for o in n.outputs), f"{n.params:,}", f"{n.macs:,}",
          f"{n.flops:,}", units.nbytes(n.activation_bytes), units.nbytes(n.live_bytes), units.receptive_field(n.receptive_field)]
         for i, n in enumerate(report.nodes)],
    )
    if report.unsupported_ops:
        out += ["## Unsupported ops (counted as 0)", ""]
        out += [f"- {u.op_type} ({u.domain or 'ai.onnx'}): {u.count} node(s)" for u in report.unsupported_ops] + [""]
    if report.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in report.warnings] + [""]
    return "\n".join(out)
