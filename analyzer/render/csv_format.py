"""CSV: one row per node, exact integers, for spreadsheets."""

from __future__ import annotations

import csv
import io

from analyzer.summary import analyzed_shapes_note, input_values_note
from analyzer.units import shape

COLUMNS = (
    "index", "name", "op_type", "module", "output_shape", "params", "macs", "flops", "weight_bytes",
    "activation_bytes", "live_bytes", "rf_size", "rf_stride", "rf_padding", "rf_global", "rf_aligned", "supported",
)


def render(report, **_: object) -> str:
    """One row per node after the header; when input dims were assumed, a ``#`` comment line first says
    at which input shape the rows were counted (read with ``pandas.read_csv(..., comment="#")``); so does
    one naming the input values bound."""
    buffer = io.StringIO()
    note = analyzed_shapes_note(report)
    if note:
        buffer.write(f"# MACs {report.totals.macs:,}{note}\n")
    if report.model.input_values:
        buffer.write(f"# input values: {input_values_note(report)}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for index, node in enumerate(report.nodes):
        rf = node.receptive_field
        writer.writerow([
            index, node.name, node.op_type, node.module or "",
            ";".join(shape(o.shape) for o in node.outputs),
            node.params, node.macs, node.flops, node.weight_bytes, node.activation_bytes, node.live_bytes,
            "" if rf is None else "x".join(map(str, rf.size)),
            "" if rf is None else "x".join(map(str, rf.stride)),
            "" if rf is None else "x".join(map(str, rf.padding)),
            "" if rf is None else rf.is_global,
            "" if rf is None else rf.aligned,
            node.supported,
        ])
    return buffer.getvalue()
