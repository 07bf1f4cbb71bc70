"""Text and JSON renderings of an optimize run (the ``analyzer optimize`` output); both read the same
``analyzer.optimize/1`` document, :meth:`passes.OptimizeResult.to_dict` (the HTML page,
:func:`analyzer.render.html_compare.render_optimize`, reads it too)."""

from __future__ import annotations

import json
from typing import Any

from analyzer import units
from analyzer.render.verification_lines import comparison_line, verification_line
from passes.run import OptimizeResult


def _change(before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return "?"
    if before == 0:
        return f"{units.count(before)} → {units.count(after)}"
    return f"{units.count(before)} → {units.count(after)} ({100 * (after - before) / before:+.1f}%)"


def _step_lines(step: dict[str, Any]) -> list[str]:
    records = step["records"]
    changed = sum(r["rewritten"] for r in records)
    lines = ["", f"{step['pass']}: {changed} rewritten, {len(records) - changed} skipped"]
    for r in records:
        if not r["rewritten"]:
            lines.append(f"  {r['node']}: skipped: {r['detail']}")
            continue
        error = "" if r["weight_error"] is None else f"; weight error {r['weight_error']:.3g}"
        if not r["weight_preserving"]:
            error = "; weights re-initialised (not weight-preserving)"
        lines.append(f"  {r['node']}: {r['detail']}{error}")
        if r["old_macs"] is not None:
            lines.append(f"      params {_change(r['old_params'], r['new_params'])}, MACs {_change(r['old_macs'], r['new_macs'])}")
    lines.append(f"  verification: {verification_line(step['verification'], step['modified'])}")
    return lines


def _totals_lines(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = ["", f"{'':14}{'before':>12}{'after':>12}{'change':>10}"]
    for key, label, fmt in (("params", "params", units.count), ("macs", "MACs", units.count),
                            ("peak_memory_bytes", "peak memory", units.nbytes)):
        b, a = before[key], after[key]
        change = f"{100 * (a - b) / b:+.1f}%" if b else "-"
        lines.append(f"{label:14}{fmt(b):>12}{fmt(a):>12}{change:>10}")
    return lines


def render_table(run: OptimizeResult) -> str:
    doc = run.to_dict()
    lines = [f"{doc['input']} → {doc['output'] if doc['output'] else '(not written)'}"]
    for step in doc["passes"]:
        lines += _step_lines(step)
    if doc["before"] is not None and doc["after"] is not None:
        lines += _totals_lines(doc["before"], doc["after"])
    if doc["comparison"] is not None:
        lines += ["", f"output vs input model: {comparison_line(doc['comparison'])}"]
    if doc["failure"]:
        lines += ["", f"FAILED: {doc['failure']}; no output written"]
    return "\n".join(lines)


def render_json(run: OptimizeResult) -> str:
    return json.dumps(run.to_dict(), indent=2, allow_nan=True)
