"""Text and JSON renderings of an ``optimize --auto`` run; both read the ``analyzer.optimize.auto/1``
document (:meth:`passes.auto.AutoResult.to_dict`), as the HTML page
(:func:`analyzer.render.html_auto.render_auto`) does."""

from __future__ import annotations

import json
from typing import Any

from analyzer import units


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def speedup_text(ratio: float | None, ci: list[float] | tuple[float, float] | None) -> str:
    """A time ratio (after / before) as a speed-up with its CI: 0.5, [0.4, 0.6] -> "2.00x [1.67, 2.50]"."""
    if not ratio:
        return "-"
    text = f"{1 / ratio:.2f}x"
    if ci and ci[0] > 0 and ci[1] > 0:
        text += f" [{1 / ci[1]:.2f}, {1 / ci[0]:.2f}]"
    return text


def calibration_lines(calibration: dict[str, Any]) -> list[str]:
    shapes = ", ".join(f"{name} {units.shape(shape)}" for name, shape in calibration["shapes"].items())
    lines = [f"calibration: {calibration['kind']} ({calibration.get('source') or '-'}), {calibration['runs']} run(s) at {shapes}"]
    if calibration.get("preprocessing"):
        lines.append(f"  preprocessing: {calibration['preprocessing']}")
    if calibration.get("note"):
        lines.append(calibration["note"])
    return lines


def _candidate_row(c: dict[str, Any]) -> str:
    cached = " (cached)" if c["cached"] else ""
    return (f"    {c['label']:<28}{c['mac_ratio']:>6.2f}  {speedup_text(c['layer_ratio'], c['layer_ci']):<22}"
            f"{_error(c['layer_error']):>9}{_error(c['output_error']):>9}  {c['status']}{cached}")


def _layer_lines(layers: list[dict[str, Any]]) -> list[str]:
    searched = [layer for layer in layers if not layer["skipped"]]
    skipped = [layer for layer in layers if layer["skipped"]]
    lines = ["", f"layers searched: {len(searched)}  (candidate: MAC ratio, measured layer speed-up [95% CI], "
                 "layer error, output error alone, what the search did)"]
    for layer in searched:
        lines.append(f"  {layer['node']}: {layer['signature']}, {units.count(layer['macs'])} MACs")
        lines += [_candidate_row(c) for c in layer["candidates"]] or ["    (no candidate applies)"]
    if skipped:
        lines.append(f"layers not searched: {len(skipped)}")
        lines += [f"  {layer['node']}: {layer['skipped']}" for layer in skipped]
    return lines


def _step_lines(steps: list[dict[str, Any]], budget: float) -> list[str]:
    if not steps:
        return []
    lines = ["", f"greedy steps (budget {budget:g}): set size, added rewrite, output error, predicted latency"]
    for step in steps:
        verdict = "accepted" if step["accepted"] else "rejected"
        lines.append(f"  {len(step['layers']):>3}  {step['node']}: {step['label']:<28} {step['output_error']:>9.3g}"
                     f"  {step['predicted_ms']:8.3f} ms  {verdict}")
    return lines


def _timing_line(label: str, e2e: dict[str, Any]) -> str:
    share = "" if e2e["share_of_limit"] is None else f", {e2e['share_of_limit']:.0%} of the MAC-ratio limit"
    return (f"{label}: {speedup_text(e2e['ratio'], e2e['ci'])} measured ({e2e['verdict']}, p={e2e['p_value']:.3g}, "
            f"{e2e['rounds']} rounds; {e2e['median_ms_before']:.3f} → {e2e['median_ms_after']:.3f} ms), "
            f"MAC-ratio limit {_x(e2e['mac_limit'])}{share}")


def _comparison_lines(comparison: dict[str, Any] | None, budget: float) -> list[str]:
    if comparison is None:
        return []
    line = (f"output error on the calibration inputs: {comparison['budget_error']:.4g} (budget {budget:g}); "
            f"relative L2 {comparison['relative_l2_error']:.4g}, cosine {comparison['cosine_similarity']:.6f}, "
            f"max abs {comparison['max_abs_error']:.4g}")
    if comparison.get("top1_agreement") is not None:
        line += f", top-1 agreement {comparison['top1_agreement']:.1%}"
    return [line]


def render_table(doc: dict[str, Any]) -> str:
    lines = [f"{doc['input']} → {doc['output'] or '(not written)'}: {doc['outcome']}"]
    lines += calibration_lines(doc["calibration"])
    lines.append(f"provider: {doc['provider']} (requested {doc['requested_provider']}); input model "
                 f"{doc['baseline_ms']:.3f} ms median; max error {doc['max_error']:g}")
    lines += _layer_lines(doc["layers"])
    lines += _step_lines(doc["steps"], doc["max_error"])
    lines.append("")
    for attempt in doc["attempts"]:
        lines.append(_timing_line(f"dropped ({len(attempt['layers'])} rewrites)", attempt))
    if doc["end_to_end"] is not None:
        lines.append(_timing_line(f"end to end ({len(doc['chosen'])} rewrites)", doc["end_to_end"]))
        lines += [f"  chose {c['node']}: {c['label']}" for c in doc["chosen"]]
    else:
        lines.append(f"RESULT: {doc['outcome']}; the model is written unchanged")
    lines += _comparison_lines(doc["comparison"], doc["max_error"])
    if doc["before"] and doc["after"]:
        lines.append(f"MACs {units.count(doc['before']['macs'])} → {units.count(doc['after']['macs'])}, params "
                     f"{units.count(doc['before']['params'])} → {units.count(doc['after']['params'])}")
    cache = doc["cache"]
    lines.append(f"layer-latency table: {cache.get('hits', 0)} hit(s), {cache.get('misses', 0)} measured"
                 f" ({cache.get('path') or 'not kept'})")
    lines.append("search time: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in doc["timings"].items()))
    lines += [f"note: {note}" for note in doc["notes"]]
    return "\n".join(lines) + "\n"


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, allow_nan=True, default=str) + "\n"


__all__ = ["render_table", "render_json", "speedup_text"]
