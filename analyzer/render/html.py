"""HTML: one self-contained page (no network, works from file://) showing a report visually.

The page holds the model summary; the graph as a layered diagram (laid out here in Python by
:mod:`analyzer.layout`) coloured by a chosen metric, with hover, a details panel, zoom and pan; charts
(MACs and params per layer, memory liveness with the peak, receptive-field growth); and a sortable,
filterable node table. The report itself is embedded as JSON in ``<script type="application/json"
id="analyzer-data">`` (``{"kind", "title", "panels": [{"label", "report", "layout"}]}``: one panel per
model drawn, its graph, charts and table), and the script and style in ``analyzer/render/assets/`` are
inlined, so the file is all there is.

:func:`page`, :func:`panel_data` and :func:`summary_html` are shared with the before/after page
(:mod:`analyzer.render.html_compare`).
"""

from __future__ import annotations

import html
import importlib.resources
import json
from typing import Any

from analyzer import units
from analyzer.layout import layout
from analyzer.summary import category_shares, headline

METRIC_CHOICES = (
    ("macs", "MACs"),
    ("params", "params"),
    ("activation_bytes", "activation bytes"),
    ("receptive_field", "receptive field size"),
    ("flops", "FLOPs"),
    ("weight_bytes", "weight bytes"),
)

esc = html.escape


def asset(name: str) -> str:
    """A file of ``analyzer/render/assets/`` as text (installed with the package as package data)."""
    return (importlib.resources.files("analyzer.render") / "assets" / name).read_text(encoding="utf-8")


def embedded_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' left to end it or open a comment."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def panel_data(label: str, report: Any) -> dict[str, Any]:
    """One panel's page data (one model drawn): the report as in ``--format json`` and its layout."""
    return {"label": label, "report": report.to_dict(), "layout": layout(report).to_dict()}


def model_name(report: Any) -> str:
    return report.model.path or "(in memory)"


def page(title: str, body: str, data: dict[str, Any]) -> str:
    """The whole document: style, body, data and script inlined."""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{asset('report.css')}</style></head>\n"
        f"<body>\n{body}\n"
        # the script reads the SVG namespace from this element instead of spelling out its URL
        "<svg id=\"svg-namespace\" width=\"0\" height=\"0\" aria-hidden=\"true\" style=\"position:absolute\"></svg>\n"
        f"<script type=\"application/json\" id=\"analyzer-data\">{embedded_json(data)}</script>\n"
        f"<script>{asset('report.js')}</script>\n</body></html>\n"
    )


def complete_badge(report: Any) -> str:
    if report.complete:
        return '<span class="badge ok" data-field="complete">complete</span>'
    return '<span class="badge bad" data-field="complete">incomplete: see unsupported ops and warnings</span>'


def metric_toolbar() -> str:
    options = "".join(f'<option value="{value}">{esc(label)}</option>' for value, label in METRIC_CHOICES)
    return (f'<div class="toolbar"><label>colour and label nodes by <select id="metric">{options}</select></label>'
            '<div class="legend" id="legend"></div>'
            '<span class="hint">wheel: zoom · drag: pan · click: details</span></div>')


def kv_table(rows: list[tuple[str, str]]) -> str:
    return '<table class="kv">' + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def issues_html(report: Any) -> str:
    """Unsupported ops, assumed dims and warnings; says so when there are none."""
    parts = []
    if report.unsupported_ops:
        items = "".join(
            f"<li><b>{esc(u.op_type)}</b>{esc(' (' + u.domain + ')' if u.domain else '')}: {u.count} node"
            f"{'s' * (u.count != 1)}, counted as 0 — {esc(', '.join(u.nodes[:5]))}{' …' if len(u.nodes) > 5 else ''}</li>"
            for u in report.unsupported_ops
        )
        parts.append(f'<h3>Unsupported ops</h3><ul class="issues" id="unsupported-ops">{items}</ul>')
    if report.assumed_dims:
        dims = ", ".join(f"{k}={v}" for k, v in report.assumed_dims.items())
        parts.append(f'<h3>Assumed dims</h3><p id="assumed-dims">symbolic dims not bound, evaluated as {esc(dims)}</p>')
    if report.warnings:
        items = "".join(f'<li class="warning">{esc(w)}</li>' for w in report.warnings)
        parts.append(f'<h3>Warnings</h3><ul class="issues" id="warnings">{items}</ul>')
    return "".join(parts) or '<p class="hint">No unsupported ops, no assumed dims, no warnings.</p>'


def summary_html(report: Any) -> str:
    """Headline figures, the conv-vs-FC split and the issues, as static HTML."""
    shares = "".join(
        f'<tr><td>{s.category}</td><td class="num">{s.params:,}</td><td class="num">{units.percent(s.params_share)}</td>'
        f'<td class="num">{s.macs:,}</td><td class="num">{units.percent(s.macs_share)}</td></tr>'
        for s in category_shares(report)
    )
    top = sorted(report.by_op_type.items(), key=lambda kv: (-kv[1].macs, -kv[1].count, kv[0]))[:12]
    ops = "".join(
        f'<tr><td>{esc(op)}</td><td class="num">{s.count:,}</td><td class="num">{s.params:,}</td><td class="num">{s.macs:,}</td></tr>'
        for op, s in top
    )
    return (
        '<div class="cards">'
        f"<div><h3>Summary</h3>{kv_table(headline(report))}</div>"
        '<div><h3>Conv vs fully connected</h3><table class="grid"><tr><th>layers</th><th class="num">params</th>'
        f'<th class="num">share</th><th class="num">MACs</th><th class="num">share</th></tr>{shares}</table>'
        '<h3>By op type</h3><table class="grid"><tr><th>op</th><th class="num">nodes</th><th class="num">params</th>'
        f'<th class="num">MACs</th></tr>{ops}</table></div>'
        f"<div>{issues_html(report)}</div></div>"
    )


def render(report: Any, **_: object) -> str:
    name = model_name(report)
    body = (
        f'<header class="page"><h1>{esc(name)}</h1>{complete_badge(report)}</header><main>'
        f'<section id="summary">{summary_html(report)}</section>'
        f'<section id="graph"><h2>Graph</h2>{metric_toolbar()}<div class="graph-host" data-panel="0"></div></section>'
        '<section id="charts"><h2>Charts</h2><div class="charts-host" data-panel="0"></div></section>'
        '<section id="nodes"><h2>Nodes</h2><div class="table-host" data-panel="0"></div></section></main>'
    )
    data = {"kind": "report", "title": name, "panels": [panel_data(name, report)]}
    return page(f"{name} — analysis", body, data)
