"""The terminal report: a rich table per node, totals, per-op summary, top-10s, conv-vs-FC share."""

from __future__ import annotations

import io

from analyzer import units
from analyzer.summary import TOP_METRICS, category_shares, headline, top_nodes


def render(report, *, max_rows: int = 0, color: bool = False, width: int | None = None, show_constants: bool = False,
           **_: object) -> str:
    """``show_constants``: list Constant nodes too (hidden by default: their values count as weights of the
    nodes that read them, which are listed)."""
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=color, color_system="auto" if color else None,
                      width=width or 160, record=False)
    for table in (_summary(report), _nodes(report, max_rows, show_constants), _by_op_type(report),
                  *(_top(report, metric) for metric in TOP_METRICS), _category_shares(report)):
        console.print(table)
    if report.unsupported_ops:
        console.print("[bold]Unsupported ops[/bold] (no counting rule, counted as 0, marked * above):")
        for u in report.unsupported_ops:
            console.print(f"  {u.op_type} ({u.domain or 'ai.onnx'}): {u.count} node(s)")
    for w in report.warnings:
        console.print(f"warning: {w}", markup=False, highlight=False)
    return console.file.getvalue()


def _summary(report):
    from rich.table import Table

    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    for key, value in headline(report):
        summary.add_row(key, value)
    return summary


def _nodes(report, max_rows: int, show_constants: bool = False):
    from rich.table import Table

    nodes = Table(title="Nodes (execution order)", title_justify="left", header_style="bold")
    for col, justify in (("#", "right"), ("name", "left"), ("op", "left"), ("output", "left"), ("params", "right"),
                         ("MACs", "right"), ("FLOPs", "right"), ("activations", "right"), ("live after", "right"),
                         ("RF", "left")):
        nodes.add_column(col, justify=justify, overflow="fold")
    # "#" stays the node's position in the report (and the JSON's node list) when Constant rows are hidden
    listed = [(i, n) for i, n in enumerate(report.nodes) if show_constants or not _is_constant(n)]
    shown = listed if max_rows <= 0 else listed[:max_rows]
    for i, n in shown:
        nodes.add_row(
            str(i), n.name, n.op_type + ("" if n.supported else " *"), ", ".join(units.shape(o.shape) for o in n.outputs),
            f"{n.params:,}", f"{n.macs:,}", f"{n.flops:,}", units.nbytes(n.activation_bytes), units.nbytes(n.live_bytes),
            units.receptive_field(n.receptive_field),
        )
    t = report.totals
    nodes.add_section()
    nodes.add_row("", "total", "", "", f"{t.params:,}", f"{t.macs:,}", f"{t.flops:,}", units.nbytes(t.activation_bytes),
                  f"peak {units.nbytes(t.peak_memory_bytes)}", "")
    notes = []
    if len(shown) < len(listed):
        notes.append(f"{len(listed) - len(shown)} more nodes not shown (--max-rows)")
    if len(listed) < len(report.nodes):
        notes.append(f"{len(report.nodes) - len(listed)} Constant nodes not shown: their values count with the nodes "
                     "that read them, weights as params and weight bytes (--show-constants lists them)")
    if notes:
        nodes.caption = "; ".join(notes)
    return nodes


def _is_constant(node) -> bool:
    return node.op_type == "Constant" and node.domain in ("", "ai.onnx")


def _by_op_type(report):
    from rich.table import Table

    ops = Table(title="By op type", title_justify="left", header_style="bold")
    for col in ("op", "count", "params", "MACs", "FLOPs"):
        ops.add_column(col, justify="left" if col == "op" else "right")
    for op, s in report.by_op_type.items():
        ops.add_row(op, str(s.count), f"{s.params:,}", f"{s.macs:,}", f"{s.flops:,}")
    return ops


def _top(report, metric: str):
    from rich.table import Table

    top = Table(title=f"Top 10 by {metric}", title_justify="left", header_style="bold")
    for col in ("name", "op", metric, "share"):
        top.add_column(col, justify="right" if col in (metric, "share") else "left")
    total = sum(getattr(n, metric) for n in report.nodes) or 1
    for n in top_nodes(report, metric):
        value = getattr(n, metric)
        top.add_row(n.name, n.op_type, units.nbytes(value) if metric.endswith("bytes") else f"{value:,}",
                    units.percent(value / total))
    return top


def _category_shares(report):
    from rich.table import Table

    share = Table(title="Conv vs fully connected", title_justify="left", header_style="bold")
    for col in ("layers", "params", "share", "MACs", "share"):
        share.add_column(col, justify="left" if col == "layers" else "right")
    for s in category_shares(report):
        share.add_row(s.category, f"{s.params:,}", units.percent(s.params_share), f"{s.macs:,}", units.percent(s.macs_share))
    return share
