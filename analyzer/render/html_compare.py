"""HTML: the before/after page of ``analyzer optimize --format html`` and ``analyzer compare --format html``.

The same page machinery as the single report (:mod:`analyzer.render.html`): one graph component per
side, both coloured on one scale so their colours compare, each with its own details panel. Above
them a totals delta table and, for optimize, every pass's records and verification; for compare, the
verdict, ratio with its CI, p-value, gates and the latency distributions of A and B (every timed
iteration, the block medians the statistics use, and their quartiles).

Every figure shown is computed here in Python (or by the code that made the results); the page only
formats and draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analyzer import units
from analyzer.render.html import complete_badge, esc, kv_table, metric_toolbar, page, panel_data
from analyzer.render.verification_lines import comparison_line, verification_line

TOTAL_ROWS = (
    ("params", "params", units.count),
    ("macs", "MACs", units.count),
    ("flops", "FLOPs", units.count),
    ("weight_bytes", "weight bytes", units.nbytes),
    ("peak_memory_bytes", "peak memory", units.nbytes),
    ("activation_bytes", "activation bytes", units.nbytes),
    ("nodes", "nodes", str),
)
MAX_SAMPLES_SHOWN = 4000  # per side: more dots add nothing to the picture but megabytes to the page


def totals_delta_html(before: Any, after: Any) -> str:
    """Totals of two reports: before, after, the exact change and the relative one."""
    rows = []
    for key, label, human in TOTAL_ROWS:
        b, a = getattr(before.totals, key), getattr(after.totals, key)
        change = a - b
        relative = f"{100 * change / b:+.1f}%" if b else ("0" if not change else "new")
        css = "delta-up" if change > 0 else "delta-down" if change < 0 else ""
        rows.append(
            f'<tr data-metric="{key}"><th>{esc(label)}</th><td class="num">{b:,}</td><td class="num">{a:,}</td>'
            f'<td class="num {css}">{change:+,}</td><td class="num {css}">{esc(relative)}</td>'
            f'<td class="num">{esc(human(b))} → {esc(human(a))}</td></tr>'
        )
    return ('<table class="grid totals-delta"><tr><th></th><th class="num">before</th><th class="num">after</th>'
            '<th class="num">change</th><th class="num">%</th><th class="num">readable</th></tr>' + "".join(rows) + "</table>")


def graphs_section(labels: list[str]) -> str:
    hosts = "".join(f'<div class="graph-host" data-panel="{i}"><h3>{esc(label)}</h3></div>' for i, label in enumerate(labels))
    return f'<section id="graph"><h2>Graphs</h2>{metric_toolbar()}<div class="graphs">{hosts}</div></section>'


def _before_after_page(title: str, badge: str, sections: str, panels: list[dict[str, Any]], kind: str,
                       latency: dict[str, Any] | None = None) -> str:
    body = (f'<header class="page"><h1>{esc(title)}</h1>{badge}</header><main>{sections}'
            f'{graphs_section([p["label"] for p in panels]) if panels else ""}</main>')
    return page(title, body, {"kind": kind, "title": title, "panels": panels, "latency": latency})


# ---- optimize ----


def _change(before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return ""
    return f"{before:,} → {after:,}"


def _records_table(step: dict[str, Any]) -> str:
    rows = []
    for r in step["records"]:
        error = ""
        if r["rewritten"]:
            error = "" if r["weight_error"] is None else f"{r['weight_error']:.3g}"
            if not r["weight_preserving"]:
                error = "re-initialised"
        rows.append(
            f'<tr><td>{esc(r["node"])}</td><td>{esc(r["op_type"])}</td><td>{"rewritten" if r["rewritten"] else "skipped"}</td>'
            f'<td>{esc(r["detail"])}</td><td class="num">{_change(r["old_params"], r["new_params"])}</td>'
            f'<td class="num">{_change(r["old_macs"], r["new_macs"])}</td><td class="num">{esc(error)}</td></tr>'
        )
    if not rows:
        return '<p class="hint">no candidate nodes</p>'
    return ('<table class="grid records"><tr><th>node</th><th>op</th><th>result</th><th>detail</th><th class="num">params</th>'
            '<th class="num">MACs</th><th class="num">weight error</th></tr>' + "".join(rows) + "</table>")


def passes_html(steps: list[dict[str, Any]]) -> str:
    """Every pass's records and verification, from the ``passes`` list of the ``analyzer.optimize/1`` document."""
    parts = []
    for step in steps:
        changed = sum(r["rewritten"] for r in step["records"])
        verification = verification_line(step["verification"], step["modified"])
        parts.append(
            f'<div class="pass" data-pass="{esc(step["pass"])}"><h3>{esc(step["pass"])}: {changed} rewritten, '
            f'{len(step["records"]) - changed} skipped</h3><p>verification: {esc(verification)}</p>{_records_table(step)}</div>'
        )
    return "".join(parts)


def render_optimize(run: Any) -> str:
    """The page for an optimize run, a :class:`passes.OptimizeResult`: the records from its ``to_dict()``
    (the ``analyzer.optimize/1`` document), the graphs and totals from its first and last steps' reports."""
    doc = run.to_dict()
    steps = run.steps
    before = steps[0].report_before if steps else None
    after = steps[-1].report_after if steps else None  # on failure: the rejected rewrite's
    source, target, written, failure = doc["input"], doc["output"], doc["written"], doc["failure"]
    panels = []
    if before is not None:
        panels.append(panel_data(f"before: {source}", before))
    if after is not None and after is not before:
        panels.append(panel_data(f"after: {target}" if written else "rejected rewrite (not written)", after))
    sections = []
    if failure:
        sections.append(f'<p class="failure" id="failure">FAILED: {esc(failure)}; no output written</p>')
    if before is not None and after is not None:
        sections.append(f'<section id="totals"><h2>Totals</h2>{totals_delta_html(before, after)}</section>')
    if doc["comparison"] is not None:
        sections.append(f'<p id="comparison">output vs input model: {esc(comparison_line(doc["comparison"]))}</p>')
    sections.append(f'<section id="passes"><h2>Passes</h2>{passes_html(doc["passes"]) or "<p class=hint>none ran</p>"}</section>')
    badge = ('<span class="badge ok">written</span>' if written else '<span class="badge bad">not written</span>')
    title = f"{source} → {target if written else '(not written)'}"
    return _before_after_page(title, badge, "".join(sections), panels, "optimize")


# ---- compare ----


def _rounded(values: list[float]) -> list[float]:
    return [round(float(v), 9) for v in values]  # ns resolution: the clock's, not float noise


def latency_side(label: str, result: Any, block_medians: list[float]) -> dict[str, Any]:
    """One model's latency distribution for the chart: samples (thinned evenly past a cap), block medians
    and their quartiles, and the display's upper bound (outliers past the 99th percentile sit at the edge)."""
    samples = list(result.samples)
    stride = max(1, -(-len(samples) // MAX_SAMPLES_SHOWN))
    shown = samples[::stride]
    medians = list(block_medians) or samples
    return {
        "label": label,
        "iterations": len(samples),
        "samples_shown": len(shown),
        "samples_s": _rounded(shown),
        "block_medians_s": _rounded(medians),
        "quartiles_s": _rounded(np.percentile(medians, [25, 50, 75]).tolist()) if medians else [0.0, 0.0, 0.0],
        "median_s": float(result.stats.median),
        "upper_s": float(max(np.percentile(samples, 99), max(medians))) if samples else 0.0,
    }


def render_compare(result: Any, report_a: Any = None, report_b: Any = None, *, note: str | None = None) -> str:
    """The page for ``analyzer compare``: ``result`` is a :class:`analyzer.latency.compare.CompareResult`; the
    reports (from :func:`analyzer.pipeline.inspect` on each model) give the graphs and the totals delta."""
    from analyzer.latency.compare import summary_rows

    verdict_class = {"faster": "ok", "slower": "bad"}.get(result.verdict, "neutral")
    badge = (f'<span class="badge {verdict_class}" data-field="verdict">{esc(result.verdict)}</span> '
             f'<span class="badge {"ok" if result.passed else "bad"}" data-field="gates">gates {"passed" if result.passed else "FAILED"}</span>')
    sections = [f'<section id="latency"><h2>Latency</h2><div class="cards"><div>{kv_table(summary_rows(result))}</div></div>'
                '<div class="latency-host"></div></section>']
    notes = list(result.notes) + ([note] if note else [])
    if notes:
        sections.append('<ul class="issues" id="notes">' + "".join(f'<li class="warning">{esc(n)}</li>' for n in notes) + "</ul>")
    if report_a is not None and report_b is not None:
        sections.append(f'<section id="totals"><h2>Analyzer totals (B against A)</h2>{totals_delta_html(report_a, report_b)}'
                        f'<p>A {complete_badge(report_a)} B {complete_badge(report_b)}</p></section>')
    panels = []
    if report_a is not None and report_b is not None:
        panels = [panel_data(f"A: {result.model_a}", report_a), panel_data(f"B: {result.model_b}", report_b)]
    latency = {
        "a": latency_side(f"A {result.model_a}", result.a, result.block_medians_a),
        "b": latency_side(f"B {result.model_b}", result.b, result.block_medians_b),
    }
    title = f"{result.model_b} vs {result.model_a}"
    return _before_after_page(title, badge, "".join(sections), panels, "compare", latency)
