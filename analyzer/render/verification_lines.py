"""One-line summaries of a rewrite's verification, read from its plain-data form (the ``verification`` and
``comparison`` objects of the ``analyzer.optimize/1`` JSON), so that the optimize table and the optimize
page say the same words without the analyzer importing the passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer import units


def comparison_line(comparison: Mapping[str, Any]) -> str:
    """``max abs …, rel L2 …, cosine …[, top-1 agreement …] (N samples)``."""
    top1 = comparison.get("top1_agreement")
    agreement = "" if top1 is None else f", top-1 agreement {units.percent(top1)}"
    samples = comparison["samples"]
    return (f"max abs {comparison['max_abs_error']:.3g}, rel L2 {comparison['relative_l2_error']:.3g}, "
            f"cosine {comparison['cosine_similarity']:.6f}{agreement} ({samples} sample{'s' * (samples != 1)})")


def verification_line(verification: Mapping[str, Any] | None, modified: bool = False) -> str:
    """``passed; checker ok, shapes ok, onnxruntime ok, <comparison>`` or ``FAILED: <why>; …``; a step
    without a verification either changed nothing or was not a rewrite pass (an onnx-ir pass, say)."""
    if verification is None:
        return "not verified (not a rewrite pass)" if modified else "unchanged, nothing to verify"
    parts = [f"checker {'ok' if verification['checker'] == 'ok' else 'FAILED'}",
             f"shapes {'ok' if not verification['missing_shapes'] else 'INCOMPLETE'}",
             f"onnxruntime {'ok' if verification['onnxruntime'] == 'ok' else 'FAILED'}"]
    if verification.get("comparison") is not None:
        parts.append(comparison_line(verification["comparison"]))
    if verification.get("rounding_sensitivity") is not None:
        parts.append(f"the input model's own float32 rounding sensitivity {verification['rounding_sensitivity']:.3g}")
    status = "passed" if verification["passed"] else f"FAILED: {verification['failure']}"
    return f"{status}; " + ", ".join(parts)
