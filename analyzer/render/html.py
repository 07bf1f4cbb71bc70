"""HTML: one self-contained page (no network) with the summary and a sortable node table."""

from __future__ import annotations

import html
import json

from analyzer import units
from analyzer.summary import category_shares, headline

_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#e66;height:4px}
"""
_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  const dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
  const key = r => { const c = r.cells[col]; return c.dataset.v !== undefined ? Number(c.dataset.v) : c.textContent; };
  rows.sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * dir; });
  rows.forEach(r => body.appendChild(r));
}));
"""


def _num(value: int, text: str | None = None) -> str:
    return f'<td class="n" data-v="{value}">{html.escape(text if text is not None else f"{value:,}")}</td>'


def render(report, **_: object) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(report.model.path or 'model')} — analysis</title>",
             f"<style>{_STYLE}</style></head><body><h1>Model analysis</h1><table>"]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in headline(report)]
    parts.append("</table><h2>Conv vs fully connected</h2><table><tr><th>layers</th><th>params</th><th>share</th><th>MACs</th><th>share</th></tr>")
    for s in category_shares(report):
        parts.append(f"<tr><td>{s.category}</td>{_num(s.params)}<td>{units.percent(s.params_share)}</td>{_num(s.macs)}<td>{units.percent(s.macs_share)}</td></tr>")
    parts.append("</table><h2>Nodes</h2><table class='sortable'><thead><tr>")
    parts += [f"<th>{c}</th>" for c in ("#", "name", "op", "output", "params", "MACs", "FLOPs", "activations", "live after", "RF", "MAC share")]
    parts.append("</tr></thead><tbody>")
    total_macs = report.totals.macs or 1
    for i, n in enumerate(report.nodes):
        share = n.macs / total_macs
        parts.append(
            f"<tr title='{e(json.dumps(n.to_dict()))}'>{_num(i, str(i))}<td>{e(n.name)}</td><td>{e(n.op_type)}</td>"
            f"<td>{e(', '.join(units.shape(o.shape) for o in n.outputs))}</td>{_num(n.params)}{_num(n.macs)}{_num(n.flops)}"
            f"{_num(n.activation_bytes, units.nbytes(n.activation_bytes))}{_num(n.live_bytes, units.nbytes(n.live_bytes))}"
            f"<td>{e(units.receptive_field(n.receptive_field))}</td>"
            f"<td data-v='{share}'><div class='bar' style='width:{100 * share:.1f}px'></div></td></tr>"
        )
    parts.append("</tbody></table>")
    if report.unsupported_ops:
        parts.append("<h2>Unsupported ops</h2><ul>" + "".join(f"<li>{e(u.op_type)}: {u.count}</li>" for u in report.unsupported_ops) + "</ul>")
    if report.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{e(w)}</li>" for w in report.warnings) + "</ul>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)
