"""The side-by-side table of :mod:`analyzer.side_by_side` as a terminal table, Markdown, CSV or JSON.

All read ``SideBySide.to_dict()``; the HTML page is :mod:`analyzer.render.html_side_by_side`. CSV and
JSON carry exact integers (bytes, counts); the table and Markdown the same figures made readable.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from analyzer import units

CSV_FIELDS = ("name", "params", "macs", "flops", "weight_bytes", "peak_memory_bytes", "training_memory_bytes",
              "conv_params", "fc_params", "conv_macs", "fc_macs", "depth", "receptive_field", "receptive_field_node",
              "latency_median_s", "latency_ci_low_s", "latency_ci_high_s", "latency_iterations", "accuracy", "path")


def _share(part: int, whole: int) -> str:
    return units.percent(part / whole) if whole else "-"


def columns(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The readable header and rows both the terminal table and Markdown show."""
    timed = any(r["latency"] for r in doc["rows"])
    rated = any(r["accuracy"] is not None for r in doc["rows"])
    header = ["model", "params", "MACs", "FLOPs", "weights", "peak inference memory",
              f"training memory (batch {doc['batch']}, {doc['optimizer']})", "conv / fc params", "conv / fc MACs",
              "depth", "receptive field"]
    header += ["latency ms, median [95% CI]"] * timed + ["accuracy"] * rated
    rows = []
    for r in doc["rows"]:
        rf = "x".join(map(str, r["receptive_field"])) if r["receptive_field"] else "-"
        row = [r["name"], units.count(r["params"]), units.count(r["macs"]), units.count(r["flops"]),
               units.nbytes(r["weight_bytes"]), units.nbytes(r["peak_memory_bytes"]),
               units.nbytes(r["training_memory_bytes"]),
               f"{_share(r['conv_params'], r['params'])} / {_share(r['fc_params'], r['params'])}",
               f"{_share(r['conv_macs'], r['macs'])} / {_share(r['fc_macs'], r['macs'])}", str(r["depth"]), rf]
        if timed:
            latency = r["latency"]
            row.append(f"{units.ms(latency['median_s'])} [{units.ms(latency['ci_s'][0])}, {units.ms(latency['ci_s'][1])}]"
                       if latency else "-")
        if rated:
            row.append("-" if r["accuracy"] is None else f"{r['accuracy']:g}")
        rows.append(row)
    return header, rows


def footer(doc: dict[str, Any]) -> list[str]:
    lines = []
    if doc["latency_settings"]:
        s = doc["latency_settings"]
        lines.append(f"latency: {s['provider']}, {s['seconds_per_model']:g} s per model, {s['method']}")
        fits = doc["fits_r2"]
        if fits["macs"] is not None:
            lines.append(f"log-log R² of latency: against MACs {fits['macs']:.3f}, against params {fits['params']:.3f}")
    if doc["device_memory_bytes"]:
        fit = ", ".join(f"{r['name']} {r['largest_batch']}" for r in doc["rows"])
        lines.append(f"largest training batch in {units.nbytes(doc['device_memory_bytes'])}: {fit}")
    return lines + doc["notes"]


def render_markdown(doc: dict[str, Any]) -> str:
    header, rows = columns(doc)
    escape = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    extra = footer(doc)
    return "\n".join(lines + ([""] + [f"- {line}" for line in extra] if extra else [])) + "\n"


def render_table(doc: dict[str, Any]) -> str:
    from rich.console import Console
    from rich.table import Table

    header, rows = columns(doc)
    table = Table(show_lines=False)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(record=True, width=max(120, 14 * len(header)), force_terminal=False)
    with console.capture() as capture:
        console.print(table)
        for line in footer(doc):
            console.print(line, highlight=False)
    return capture.get()


def render_csv(doc: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in doc["rows"]:
        latency = r["latency"] or {}
        ci = latency.get("ci_s") or (None, None)
        values = {**r, "receptive_field": "x".join(map(str, r["receptive_field"])) if r["receptive_field"] else "",
                  "latency_median_s": latency.get("median_s"), "latency_ci_low_s": ci[0], "latency_ci_high_s": ci[1],
                  "latency_iterations": latency.get("iterations")}
        writer.writerow(["" if values[f] is None else values[f] for f in CSV_FIELDS])
    return buffer.getvalue()


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "csv": render_csv, "json": render_json}


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "html":
        from analyzer.render.html_side_by_side import render_html

        return render_html(doc)
    return RENDERERS[fmt](doc)
