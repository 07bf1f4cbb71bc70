"""Text and JSON renderings of a run of passes (the ``analyzer optimize`` output); both read the same results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analyzer import units
from analyzer.numerics import Comparison
from passes._records import RewriteResult, totals_dict


def _change(before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return "?"
    if before == 0:
        return f"{units.count(before)} → {units.count(after)}"
    return f"{units.count(before)} → {units.count(after)} ({100 * (after - before) / before:+.1f}%)"


def _comparison_line(c: Comparison) -> str:
    top1 = "" if c.top1_agreement is None else f", top-1 agreement {units.percent(c.top1_agreement)}"
    return (f"max abs {c.max_abs_error:.3g}, rel L2 {c.relative_l2_error:.3g}, "
            f"cosine {c.cosine_similarity:.6f}{top1} ({c.samples} sample{'s' * (c.samples != 1)})")


def _verification_line(step: RewriteResult) -> str:
    v = step.verification
    if v is None:
        return "unchanged, nothing to verify"
    parts = [f"checker {'ok' if not v.checker_error else 'FAILED'}",
             f"shapes {'ok' if not v.missing_shapes else 'INCOMPLETE'}",
             f"onnxruntime {'ok' if not v.load_error else 'FAILED'}"]
    if v.comparison is not None:
        parts.append(_comparison_line(v.comparison))
    status = "passed" if v.passed else f"FAILED: {v.failure or v.structural_failure}"
    return f"{status}; " + ", ".join(parts)


def render_table(steps: list[RewriteResult], *, source: Path, target: Path | None,
                 comparison: Comparison | None = None, failure: str | None = None) -> str:
    lines = [f"{source} → {target if target else '(not written)'}"]
    for step in steps:
        changed = len(step.rewritten)
        lines += ["", f"{step.pass_name}: {changed} rewritten, {len(step.skipped)} skipped"]
        for r in step.records:
            if not r.rewritten:
                lines.append(f"  {r.node}: skipped: {r.detail}")
                continue
            error = "" if r.weight_error is None else f"; weight error {r.weight_error:.3g}"
            if not r.weight_preserving:
                error = "; weights re-initialised (not weight-preserving)"
            lines.append(f"  {r.node}: {r.detail}{error}")
            if r.old_macs is not None:
                lines.append(f"      params {_change(r.old_params, r.new_params)}, MACs {_change(r.old_macs, r.new_macs)}")
        lines.append(f"  verification: {_verification_line(step)}")
    if steps:
        before = totals_dict(steps[0].report_before)
        after = totals_dict(steps[-1].report_after) if failure is None else None
        if before is not None and after is not None:
            lines += ["", f"{'':14}{'before':>12}{'after':>12}{'change':>10}"]
            for key, label, fmt in (("params", "params", units.count), ("macs", "MACs", units.count),
                                    ("peak_memory_bytes", "peak memory", units.nbytes)):
                b, a = before[key], after[key]
                change = f"{100 * (a - b) / b:+.1f}%" if b else "-"
                lines.append(f"{label:14}{fmt(b):>12}{fmt(a):>12}{change:>10}")
    if comparison is not None:
        lines += ["", f"output vs input model: {_comparison_line(comparison)}"]
    if failure:
        lines += ["", f"FAILED: {failure}; no output written"]
    return "\n".join(lines)


def render_json(steps: list[RewriteResult], *, source: Path, target: Path | None,
                comparison: Comparison | None = None, failure: str | None = None) -> str:
    doc: dict[str, Any] = {
        "schema": "analyzer.optimize/1",
        "input": str(source),
        "output": None if target is None else str(target),
        "written": target is not None,
        "failure": failure,
        "before": totals_dict(steps[0].report_before) if steps else None,
        "after": totals_dict(steps[-1].report_after) if steps and failure is None else None,
        "comparison": None if comparison is None else comparison.to_dict(),
        "passes": [step.to_dict() for step in steps],
    }
    return json.dumps(doc, indent=2, allow_nan=True)
