"""HTML: the page of ``analyzer optimize --auto --format html``, one offline file.

It reads the ``analyzer.optimize.auto/1`` document (plain data, so the analyzer never imports the
passes): a summary (outcome, measured end-to-end speed-up with its CI beside the MAC-ratio limit, error
against the budget), the latency/error trade-off as an inline SVG plot, the greedy steps and every
layer's candidates. Numbers are computed by the search; the page only formats and draws.
"""

from __future__ import annotations

import math
from typing import Any

from analyzer import units
from analyzer.render.html import asset, esc, kv_table

WIDTH, HEIGHT = 720, 380
MARGIN = {"left": 70, "right": 30, "top": 20, "bottom": 50}
LOG_SPAN = 100.0  # errors spanning more than this factor are drawn on a log scale


def _speedup(ratio: float | None, ci: list[float] | None) -> str:
    if not ratio:
        return "-"
    text = f"{1 / ratio:.2f}x"
    return text + (f" [{1 / ci[1]:.2f}, {1 / ci[0]:.2f}]" if ci and ci[0] > 0 and ci[1] > 0 else "")


def _fmt(value: float | None, pattern: str = "{:.3g}") -> str:
    return "-" if value is None else pattern.format(value)


def trade_off_points(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every candidate set the search evaluated as (output error, predicted latency): single candidates
    (kind "candidate"), the greedy steps' sets ("accepted"/"rejected") and the final set ("chosen")."""
    base = doc["baseline_ms"]
    points = []
    for layer in doc["layers"]:
        for c in layer["candidates"]:
            if c["output_error"] is None or c["layer_ms_before"] is None:
                continue
            points.append({"kind": "candidate", "error": c["output_error"], "ms": base - c["saved_ms"],
                           "label": f"{layer['node']}: {c['label']}"})
    for step in doc["steps"]:
        points.append({"kind": "accepted" if step["accepted"] else "rejected", "error": step["output_error"],
                       "ms": step["predicted_ms"], "label": f"set of {len(step['layers'])}: + {step['node']}: {step['label']}"})
    e2e = doc["end_to_end"]
    if e2e is not None and e2e["output_error"] is not None:
        points.append({"kind": "chosen", "error": e2e["output_error"], "ms": e2e["median_ms_after"] / e2e["median_ms_before"] * base,
                       "label": f"chosen: {len(e2e['layers'])} rewrites, measured {_speedup(e2e['ratio'], None)}"})
    return points


class _Axis:
    def __init__(self, values: list[float], low: int, high: int, *, log: bool):
        self.log = log
        values = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        pad = (hi - lo) * 0.06
        self.lo, self.hi, self.low, self.high = lo - pad, hi + pad, low, high

    def __call__(self, value: float) -> float:
        v = math.log10(max(value, 1e-300)) if self.log else value
        return self.low + (v - self.lo) / (self.hi - self.lo) * (self.high - self.low)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0 ** e for e in range(math.ceil(self.lo), math.floor(self.hi) + 1)]
        step = 10 ** math.floor(math.log10((self.hi - self.lo) / 4))
        for factor in (1, 2, 5, 10):
            if (self.hi - self.lo) / (step * factor) <= 6:
                step *= factor
                break
        return [i * step for i in range(math.ceil(self.lo / step), math.floor(self.hi / step) + 1)]


def trade_off_svg(doc: dict[str, Any]) -> str:
    """The latency/error plot: x the output error, y the predicted (chosen: measured) latency in ms."""
    points = trade_off_points(doc)
    if not points:
        return '<p class="muted">No candidate was fast enough to have its output error measured: nothing to plot.</p>'
    errors = [p["error"] for p in points] + [doc["max_error"]]
    positive = [e for e in errors if e > 0]
    log = bool(positive) and max(positive) / min(positive) > LOG_SPAN and all(e > 0 for e in errors)
    x = _Axis(errors, MARGIN["left"], WIDTH - MARGIN["right"], log=log)
    y = _Axis([p["ms"] for p in points] + [doc["baseline_ms"]], HEIGHT - MARGIN["bottom"], MARGIN["top"], log=False)
    parts = [f'<svg class="trade-off" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
             'aria-label="latency against output error">']
    bottom, left = HEIGHT - MARGIN["bottom"], MARGIN["left"]
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - MARGIN["right"]}" y2="{bottom}" stroke="#555"/>')
    parts.append(f'<line x1="{left}" y1="{MARGIN["top"]}" x2="{left}" y2="{bottom}" stroke="#555"/>')
    for t in x.ticks():
        parts.append(f'<text x="{x(t):.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle">{esc(f"{t:.3g}")}</text>')
    for t in y.ticks():
        parts.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" font-size="11" text-anchor="end">{esc(f"{t:.4g}")}</text>')
    parts.append(f'<text x="{(left + WIDTH - MARGIN["right"]) / 2}" y="{HEIGHT - 10}" font-size="12" text-anchor="middle">'
                 f'output error on the calibration inputs{" (log scale)" if log else ""}</text>')
    parts.append(f'<text x="14" y="{(MARGIN["top"] + bottom) / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(MARGIN["top"] + bottom) / 2})">latency (ms)</text>')
    bx = x(doc["max_error"])
    parts.append(f'<line class="budget" x1="{bx:.1f}" y1="{MARGIN["top"]}" x2="{bx:.1f}" y2="{bottom}" stroke="#c0392b" '
                 f'stroke-dasharray="5,4"/><text x="{bx + 4:.1f}" y="{MARGIN["top"] + 12}" font-size="11" fill="#c0392b">budget</text>')
    by = y(doc["baseline_ms"])
    parts.append(f'<line class="baseline" x1="{left}" y1="{by:.1f}" x2="{WIDTH - MARGIN["right"]}" y2="{by:.1f}" stroke="#777" '
                 f'stroke-dasharray="2,3"/><text x="{WIDTH - MARGIN["right"] - 4}" y="{by - 4:.1f}" font-size="11" '
                 'text-anchor="end" fill="#555">input model</text>')
    style = {"candidate": 'r="3.5" fill="#9db8d6"', "rejected": 'r="4.5" fill="none" stroke="#c0392b" stroke-width="1.5"',
             "accepted": 'r="4.5" fill="#2c6fb7"', "chosen": 'r="7" fill="none" stroke="#1e8449" stroke-width="3"'}
    for p in sorted(points, key=lambda p: ("candidate", "rejected", "accepted", "chosen").index(p["kind"])):
        if not math.isfinite(p["error"]) or (log and p["error"] <= 0):
            continue
        cx, cy = x(p["error"]), y(p["ms"])
        parts.append(f'<circle class="point {p["kind"]}" cx="{cx:.1f}" cy="{cy:.1f}" {style[p["kind"]]}>'
                     f'<title>{esc(p["label"])}: error {p["error"]:.3g}, {p["ms"]:.3f} ms</title></circle>')
        if p["kind"] == "chosen":
            parts.append(f'<text x="{cx + 10:.1f}" y="{cy + 4:.1f}" font-size="12" fill="#1e8449">chosen</text>')
    parts.append("</svg>")
    legend = ('<p class="muted">Light dots: one candidate alone (predicted from its measured layer saving); '
              'blue: a set the greedy search kept, red rings: a set it rejected; green ring: the chosen set, '
              'its latency measured end to end.</p>')
    return "".join(parts) + legend


def _summary(doc: dict[str, Any]) -> str:
    rows = [("outcome", doc["outcome"]), ("input → output", f"{doc['input']} → {doc['output'] or '(not written)'}"),
            ("provider", f"{doc['provider']} (requested {doc['requested_provider']})"),
            ("input model latency", f"{doc['baseline_ms']:.3f} ms (median)"), ("error budget", f"{doc['max_error']:g}")]
    e2e = doc["end_to_end"]
    if e2e is not None:
        share = "" if e2e["share_of_limit"] is None else f" ({e2e['share_of_limit']:.0%} of the limit)"
        rows += [("measured speed-up", f"{_speedup(e2e['ratio'], e2e['ci'])} — {e2e['verdict']}, p = {e2e['p_value']:.3g}, "
                                       f"{e2e['rounds']} rounds"),
                 ("MAC-ratio limit", f"{e2e['mac_limit']:.2f}x{share}")]
    comparison = doc["comparison"]
    if comparison is not None:
        rows.append(("output error", f"{comparison['budget_error']:.4g} (relative L2 {comparison['relative_l2_error']:.4g}, "
                                     f"cosine {comparison['cosine_similarity']:.6f}, max abs {comparison['max_abs_error']:.4g})"))
        if comparison.get("top1_agreement") is not None:
            rows.append(("top-1 agreement", f"{comparison['top1_agreement']:.1%}"))
    cal = doc["calibration"]
    shapes = ", ".join(f"{k} {units.shape(v)}" for k, v in cal["shapes"].items())
    rows.append(("calibration", f"{cal['kind']} ({cal.get('source') or '-'}), {cal['runs']} run(s) at {shapes}"))
    if cal.get("preprocessing"):
        rows.append(("preprocessing", cal["preprocessing"]))
    cache = doc["cache"]
    rows.append(("layer-latency table", f"{cache.get('hits', 0)} hit(s), {cache.get('misses', 0)} measured"))
    rows.append(("search time", ", ".join(f"{k} {v:.1f} s" for k, v in doc["timings"].items())))
    warning = f'<p class="warning"><strong>{esc(cal["note"])}</strong></p>' if cal.get("note") else ""
    notes = "".join(f"<li>{esc(n)}</li>" for n in doc["notes"])
    return f'<section id="summary"><h2>Summary</h2>{warning}{kv_table(rows)}{f"<ul>{notes}</ul>" if notes else ""}</section>'


def _steps_table(doc: dict[str, Any]) -> str:
    if not doc["steps"]:
        return ""
    rows = "".join(
        f'<tr class="{"accepted" if s["accepted"] else "rejected"}"><td class="num">{len(s["layers"])}</td>'
        f'<td>{esc(s["node"])}: {esc(s["label"])}</td><td class="num">{s["output_error"]:.3g}</td>'
        f'<td class="num">{s["predicted_ms"]:.3f}</td><td class="num">{units.count(s["macs"])}</td>'
        f'<td>{"accepted" if s["accepted"] else "rejected"}</td></tr>' for s in doc["steps"])
    return ('<section id="steps"><h2>Greedy steps</h2><table class="grid"><tr><th>set</th><th>added</th><th>output error</th>'
            f'<th>predicted ms</th><th>MACs</th><th></th></tr>{rows}</table></section>')


def _layers_table(doc: dict[str, Any]) -> str:
    parts = ['<section id="layers"><h2>Layers</h2>']
    for layer in doc["layers"]:
        head = f'<h3>{esc(layer["node"])}</h3><p>{esc(layer["signature"])}, {esc(units.count(layer["macs"]))} MACs'
        if layer["skipped"]:
            parts.append(head + f' — not searched: {esc(layer["skipped"])}</p>')
            continue
        rows = "".join(
            f'<tr class="{"chosen" if c["status"] == "chosen" else ""}"><td>{esc(c["label"])}</td>'
            f'<td class="num">{c["mac_ratio"]:.3f}</td><td class="num">{esc(_speedup(c["layer_ratio"], c["layer_ci"]))}</td>'
            f'<td>{esc(c["layer_verdict"] or "-")}</td><td class="num">{_fmt(c["layer_error"])}</td>'
            f'<td class="num">{_fmt(c["output_error"])}</td><td>{esc(c["status"])}{" (cached)" if c["cached"] else ""}</td></tr>'
            for c in layer["candidates"])
        parts.append(head + "</p><table class=\"grid\"><tr><th>candidate</th><th>MAC ratio</th><th>layer speed-up [95% CI]</th>"
                     f"<th>verdict</th><th>layer error</th><th>output error</th><th>status</th></tr>{rows}</table>")
    return "".join(parts) + "</section>"


def render_auto(doc: dict[str, Any]) -> str:
    title = f"optimize --auto: {doc['input']}"
    body = (f'<header class="page"><h1>{esc(title)}</h1></header><main>{_summary(doc)}'
            f'<section id="trade-off"><h2>Latency against error</h2>{trade_off_svg(doc)}</section>'
            f"{_steps_table(doc)}{_layers_table(doc)}</main>")
    extra = ".warning{color:#a04000} tr.chosen td{font-weight:600;background:#e8f6ec} tr.rejected td{color:#a33}"
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{asset('report.css')}{extra}</style></head>\n<body>\n{body}\n</body></html>\n")
