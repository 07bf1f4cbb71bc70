"""The side-by-side page: the table and the course's charts, one self-contained HTML file (inline SVG, no script).

Charts, each drawing one mark per model (``class="mark" data-model=NAME``):

- accuracy against MACs (latency when no accuracy was given), each bubble's area proportional to params;
- training memory against batch size (1..512, log scales), one line per model, with the device memory
  and each model's largest batch that fits when ``--device-memory`` was given;
- with latency: latency against MACs and against params, each with its least-squares line and R² in
  log-log space (the course's point: compute explains latency, parameters do not).
"""

from __future__ import annotations

import html
import math
from typing import Any

from analyzer import units
from analyzer.render.side_by_side import columns, footer
from analyzer.side_by_side import BATCH_CURVE

WIDTH, HEIGHT, PAD = 580, 360, 62
COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b")


class Axes:
    """Maps data to the plot area; log or linear on each axis."""

    def __init__(self, xs: list[float], ys: list[float], *, log_x: bool, log_y: bool) -> None:
        self.log_x, self.log_y = log_x, log_y
        self.x0, self.x1 = self._range(xs, log_x)
        self.y0, self.y1 = self._range(ys, log_y)

    @staticmethod
    def _range(values: list[float], log: bool) -> tuple[float, float]:
        values = [math.log10(v) if log else v for v in values if (v > 0 or not log)]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        margin = (high - low) * 0.08 or (0.5 if log else abs(high) * 0.1 or 1.0)
        return low - margin, high + margin

    def x(self, value: float) -> float:
        v = math.log10(value) if self.log_x else value
        return PAD + (v - self.x0) / (self.x1 - self.x0) * (WIDTH - 2 * PAD)

    def y(self, value: float) -> float:
        v = math.log10(value) if self.log_y else value
        return HEIGHT - PAD - (v - self.y0) / (self.y1 - self.y0) * (HEIGHT - 2 * PAD)

    def frame(self, x_label: str, y_label: str, x_fmt, y_fmt) -> str:
        parts = [f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" class="frame"/>']
        for axis, (low, high), log, fmt in (("x", (self.x0, self.x1), self.log_x, x_fmt),
                                            ("y", (self.y0, self.y1), self.log_y, y_fmt)):
            for tick in _ticks(low, high, log):
                value = 10**tick if log else tick
                if axis == "x":
                    px = self.x(value)
                    parts.append(f'<line x1="{px:.1f}" y1="{HEIGHT - PAD}" x2="{px:.1f}" y2="{HEIGHT - PAD + 4}" class="tick"/>'
                                 f'<text x="{px:.1f}" y="{HEIGHT - PAD + 16}" class="tl" text-anchor="middle">{fmt(value)}</text>')
                else:
                    py = self.y(value)
                    parts.append(f'<line x1="{PAD - 4}" y1="{py:.1f}" x2="{PAD}" y2="{py:.1f}" class="tick"/>'
                                 f'<text x="{PAD - 6}" y="{py + 4:.1f}" class="tl" text-anchor="end">{fmt(value)}</text>')
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle" class="al">{html.escape(x_label)}</text>')
        parts.append(f'<text x="14" y="{HEIGHT / 2}" text-anchor="middle" class="al" '
                     f'transform="rotate(-90 14 {HEIGHT / 2})">{html.escape(y_label)}</text>')
        return "".join(parts)


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        return [float(k) for k in range(math.ceil(low), math.floor(high) + 1)] or [round((low + high) / 2, 1)]
    step = 10 ** math.floor(math.log10((high - low) / 4 or 1))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= 6:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _svg(chart: str, title: str, body: str) -> str:
    return (f'<figure><figcaption>{html.escape(title)}</figcaption><svg id="{chart}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}">{body}</svg></figure>')


def _empty(chart: str, title: str, why: str) -> str:
    return _svg(chart, title, f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="al">{html.escape(why)}</text>')


def bubble_chart(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    by_accuracy = any(r["accuracy"] is not None for r in rows)
    value = (lambda r: r["accuracy"]) if by_accuracy else (lambda r: r["latency"]["median_s"] * 1e3 if r["latency"] else None)
    title = ("accuracy" if by_accuracy else "latency (ms)") + " against MACs; bubble area ∝ params"
    points = [(r, value(r)) for r in rows if value(r) is not None and r["macs"] > 0]
    if not points:
        return _empty("bubble", title, "give --accuracy NAME=VALUE or --latency to draw this chart")
    axes = Axes([r["macs"] for r, _ in points], [v for _, v in points], log_x=True, log_y=not by_accuracy)
    biggest = max(r["params"] for r, _ in points) or 1
    body = [axes.frame("MACs", title.split(" against")[0], units.count, (lambda v: f"{v:g}") if by_accuracy else units.count)]
    for i, (r, v) in enumerate(points):
        radius = 4 + 26 * math.sqrt(r["params"] / biggest)
        x, y = axes.x(r["macs"]), axes.y(v)
        name = html.escape(r["name"])
        body.append(f'<circle class="mark" data-model="{name}" cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" '
                    f'fill="{COLOURS[i % len(COLOURS)]}" fill-opacity="0.45"><title>{name}: {units.count(r["macs"])} MACs, '
                    f'{units.count(r["params"])} params, {v:g}</title></circle>'
                    f'<text x="{x:.1f}" y="{y - radius - 3:.1f}" text-anchor="middle" class="label">{name}</text>')
    return _svg("bubble", title, "".join(body))


def memory_chart(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    title = f"training memory ({doc['optimizer']}) against batch size"
    mib = float(1 << 20)  # the axis in MiB: round ticks (0.1, 1, 10, ...)
    values = [v / mib for r in rows for v in r["training_memory_curve"].values()]
    device = doc["device_memory_bytes"]
    axes = Axes([float(b) for b in BATCH_CURVE], values + ([device / mib] if device else []), log_x=True, log_y=True)
    body = [axes.frame("batch size", "training memory (MiB)", lambda v: f"{v:g}", lambda v: f"{v:g}")]
    if device:
        y = axes.y(device / mib)
        body.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" class="device"/>'
                    f'<text x="{WIDTH - PAD - 4}" y="{y - 4:.1f}" text-anchor="end" class="label">device '
                    f'{units.nbytes(device)}</text>')
    for i, r in enumerate(rows):
        colour = COLOURS[i % len(COLOURS)]
        name = html.escape(r["name"])
        points = " ".join(f"{axes.x(int(b)):.1f},{axes.y(v / mib):.1f}" for b, v in r["training_memory_curve"].items())
        fits = f", largest batch that fits: {r['largest_batch']}" if device else ""
        body.append(f'<polyline class="mark" data-model="{name}" points="{points}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"><title>{name}{fits}</title></polyline>')
        last_b, last_v = list(r["training_memory_curve"].items())[-1]
        body.append(f'<text x="{axes.x(int(last_b)) + 4:.1f}" y="{axes.y(last_v / mib) + 4:.1f}" class="label">{name}</text>')
        if device and r["largest_batch"]:
            batch = r["largest_batch"]
            if BATCH_CURVE[0] <= batch <= BATCH_CURVE[-1]:
                body.append(f'<circle class="fit" data-model="{name}" cx="{axes.x(batch):.1f}" cy="{axes.y(device / mib):.1f}" '
                            f'r="4" fill="{colour}"><title>{name}: batch {batch} fits</title></circle>')
    return _svg("memory", title, "".join(body))


def latency_chart(doc: dict[str, Any], key: str) -> str:
    chart = f"latency-{key}"
    r2 = doc["fits_r2"][key]
    title = f"latency against {'MACs' if key == 'macs' else 'params'}" + (f" (log-log R² = {r2:.2f})" if r2 is not None else "")
    rows = [r for r in doc["rows"] if r["latency"] and r[key] > 0]
    if not rows:
        return _empty(chart, title, "give --latency to draw this chart")
    xs, ys = [r[key] for r in rows], [r["latency"]["median_s"] * 1e3 for r in rows]
    axes = Axes(xs, ys, log_x=True, log_y=True)
    body = [axes.frame("MACs" if key == "macs" else "params", "latency (ms)", units.count, lambda v: f"{v:g}")]
    if r2 is not None:
        import numpy as np

        slope, intercept = np.polyfit(np.log10(xs), np.log10(ys), 1)
        ends = [min(xs), max(xs)]
        line = [(axes.x(x), axes.y(10 ** (intercept + slope * math.log10(x)))) for x in ends]
        body.append(f'<line x1="{line[0][0]:.1f}" y1="{line[0][1]:.1f}" x2="{line[1][0]:.1f}" y2="{line[1][1]:.1f}" '
                    'class="fitline"/>')
    for i, (r, x, y) in enumerate(zip(rows, xs, ys)):
        name = html.escape(r["name"])
        low, high = (v * 1e3 for v in r["latency"]["ci_s"])
        px = axes.x(x)
        body.append(f'<line x1="{px:.1f}" y1="{axes.y(low):.1f}" x2="{px:.1f}" y2="{axes.y(high):.1f}" class="ci"/>'
                    f'<circle class="mark" data-model="{name}" cx="{px:.1f}" cy="{axes.y(y):.1f}" r="5" '
                    f'fill="{COLOURS[i % len(COLOURS)]}"><title>{name}: {y:.3g} ms</title></circle>'
                    f'<text x="{px + 7:.1f}" y="{axes.y(y) - 6:.1f}" class="label">{name}</text>')
    return _svg(chart, title, "".join(body))


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } th, td { padding: .3em .6em; border-bottom: 1px solid #ddd; }
td { text-align: right; } td:first-child, th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; } figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
svg .frame { fill: #fff; stroke: #999; } svg .tick { stroke: #999; } svg .tl { font-size: 10px; fill: #555; }
svg .al { font-size: 12px; fill: #333; } svg .label { font-size: 10px; fill: #222; }
svg .device { stroke: #b00; stroke-dasharray: 5 4; } svg .fitline { stroke: #888; stroke-dasharray: 4 3; }
svg .ci { stroke: #555; }
"""


def render_html(doc: dict[str, Any]) -> str:
    header, rows = columns(doc)
    table = ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
             + "</tbody></table>")
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in footer(doc))
    charts = [bubble_chart(doc), memory_chart(doc)]
    if any(r["latency"] for r in doc["rows"]):
        charts += [latency_chart(doc, "macs"), latency_chart(doc, "params")]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Architectures side by side</title>'
            f"<style>{STYLE}</style></head><body><h1>Architectures side by side</h1>{table}"
            f"{'<ul>' + notes + '</ul>' if notes else ''}<div class=\"charts\">{''.join(charts)}</div></body></html>\n")
